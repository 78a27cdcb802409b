/* Probes: pseudo-terminals without a second process: posix_openpt/grantpt/unlockpt/
   ptsname, the slave locked until unlockpt (EIO), isatty/ttyname, fstat of both ends,
   the slave's initial termios, canonical input with echo (ONLCR, VERASE, VKILL, VWERASE,
   VEOF), output processing, raw mode, VMIN 0, window size, TIOCGPTN/TIOCGPTLCK,
   TIOCGPTPEER, FIONREAD, and the hang-up when one end closes (EOF, EIO, POLLHUP). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

static void show(const char *what, const char *buf, ssize_t n) {
    printf("%s (%zd): \"", what, n);
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = buf[i];
        if (c >= 32 && c < 127 && c != '\\' && c != '"') putchar(c);
        else printf("\\x%02x", c);
    }
    printf("\"\n");
}

/* what fd has now (after up to 2 s for the first byte) */
static ssize_t take(int fd, char *buf, size_t size) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 2000) <= 0) return -2;
    return read(fd, buf, size);
}

/* Linux hands typed bytes to the line discipline from a work queue: wait for them */
static void settle(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    poll(&p, 1, 2000);
    usleep(50000);
}

static void type(int m, int s, const char *in) {
    char buf[256];
    write(m, in, strlen(in));
    ssize_t n = take(s, buf, sizeof buf);
    show("  slave read", buf, n);
    settle(m);   /* Linux writes an echo in pieces (a kill's erasures one by one): all of it */
    n = take(m, buf, sizeof buf);
    show("  echo", buf, n);
}

int main(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0) { perror("posix_openpt"); return 1; }
    printf("grantpt = %d\n", grantpt(m));
    char name[64];
    strcpy(name, ptsname(m));
    printf("ptsname under /dev/pts: %s\n", strncmp(name, "/dev/pts/", 9) == 0 ? "yes" : "no");
    unsigned ptn = 99, lck = 99;
    ioctl(m, TIOCGPTN, &ptn);
    ioctl(m, TIOCGPTLCK, &lck);
    printf("TIOCGPTN matches: %s, locked=%u\n", (unsigned)atoi(name + 9) == ptn ? "yes" : "no", lck);
    int s = open(name, O_RDWR | O_NOCTTY);
    printf("open locked slave: %d errno=%d\n", s, s < 0 ? errno : 0);
    printf("unlockpt = %d\n", unlockpt(m));
    ioctl(m, TIOCGPTLCK, &lck);
    printf("locked=%u\n", lck);
    s = open(name, O_RDWR | O_NOCTTY);
    if (s < 0) { perror("open slave"); return 1; }
    printf("isatty master=%d slave=%d\n", isatty(m), isatty(s));
    char *tn = ttyname(s);
    printf("ttyname(slave) is ptsname: %s\n", tn && strcmp(tn, name) == 0 ? "yes" : "no");
    struct stat st, st2;
    fstat(s, &st);
    stat(name, &st2);
    printf("slave: chr=%d major=%u same as path: %s\n", S_ISCHR(st.st_mode), major(st.st_rdev),
           st.st_rdev == st2.st_rdev && st.st_ino == st2.st_ino ? "yes" : "no");
    fstat(m, &st);
    printf("master: chr=%d rdev=%u:%u\n", S_ISCHR(st.st_mode), major(st.st_rdev), minor(st.st_rdev));

    struct termios t, tm;
    memset(&t, 0, sizeof t);
    memset(&tm, 0, sizeof tm);
    tcgetattr(s, &t);
    tcgetattr(m, &tm);
    printf("termios iflag=%o oflag=%o cflag=%o lflag=%o same on master: %s\n", t.c_iflag, t.c_oflag,
           t.c_cflag, t.c_lflag, memcmp(&t, &tm, sizeof t) == 0 ? "yes" : "no");
    printf("cc:");
    for (int i = 0; i < 17; i++) printf(" %d", t.c_cc[i]);
    printf("\nspeed %d\n", (int)cfgetospeed(&t));

    printf("canonical:\n");
    type(m, s, "hello\n");
    type(m, s, "abx\177c\n");
    type(m, s, "junk\025ok\n");
    type(m, s, "one two\027three\r");
    type(m, s, "tab\there\n");
    write(m, "ab\004", 3);
    char buf[256];
    ssize_t n = take(s, buf, sizeof buf);
    show("  ab^D", buf, n);
    write(m, "\004", 1);
    n = take(s, buf, sizeof buf);
    show("  ^D alone", buf, n);
    write(m, "two\nlines\n", 10);
    int avail = -1;
    settle(s);
    ioctl(s, FIONREAD, &avail);
    printf("  FIONREAD slave=%d\n", avail);
    n = take(s, buf, 2);
    show("  short read", buf, n);
    n = take(s, buf, sizeof buf);
    show("  rest of line", buf, n);
    n = take(s, buf, sizeof buf);
    show("  next line", buf, n);
    settle(m);
    n = take(m, buf, sizeof buf);
    show("  echo", buf, n);

    printf("output:\n");
    write(s, "one\ntwo\r\n", 9);
    settle(m);
    ioctl(m, FIONREAD, &avail);
    printf("  FIONREAD master=%d\n", avail);
    n = take(m, buf, sizeof buf);
    show("  master read", buf, n);

    printf("raw:\n");
    cfmakeraw(&t);
    tcsetattr(s, TCSANOW, &t);
    tcgetattr(m, &tm);
    printf("  master sees lflag=%o\n", tm.c_lflag);
    write(m, "x\ry\003", 4);
    n = take(s, buf, sizeof buf);
    show("  slave read", buf, n);
    struct pollfd p = {m, POLLIN, 0};
    printf("  master readable: %d\n", poll(&p, 1, 100));
    write(s, "a\nb", 3);
    n = take(m, buf, sizeof buf);
    show("  master read", buf, n);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    tcsetattr(s, TCSANOW, &t);
    n = read(s, buf, sizeof buf);
    printf("  VMIN=0 read of nothing = %zd\n", n);

    struct winsize ws = {24, 80, 0, 0}, got = {0, 0, 0, 0};
    ioctl(s, TIOCGWINSZ, &got);
    printf("winsize initially %ux%u\n", got.ws_row, got.ws_col);
    ioctl(m, TIOCSWINSZ, &ws);
    ioctl(s, TIOCGWINSZ, &got);
    printf("winsize %ux%u\n", got.ws_row, got.ws_col);
    pid_t pg = 12345;
    int r = ioctl(s, TIOCGPGRP, &pg);
    printf("TIOCGPGRP on a slave that is no ctty: %d errno=%d\n", r, errno);

    int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    tn = peer >= 0 ? ttyname(peer) : NULL;
    printf("TIOCGPTPEER ttyname is ptsname: %s\n", tn && strcmp(tn, name) == 0 ? "yes" : "no");
    close(peer);

    printf("slave closed:\n");
    close(s);
    p.fd = m; p.events = POLLIN; p.revents = 0;
    r = poll(&p, 1, 0);
    printf("  poll master = %d revents=%x\n", r, p.revents);
    n = read(m, buf, sizeof buf);
    printf("  master read = %zd errno=%d\n", n, n < 0 ? errno : 0);

    int m2 = posix_openpt(O_RDWR | O_NOCTTY);
    unlockpt(m2);
    char name2[64];
    strcpy(name2, ptsname(m2));
    int s2 = open(name2, O_RDWR | O_NOCTTY);
    write(m2, "pending\n", 8);
    printf("master closed:\n");
    close(m2);
    p.fd = s2; p.events = POLLIN | POLLOUT; p.revents = 0;
    r = poll(&p, 1, 0);
    printf("  poll slave = %d revents=%x\n", r, p.revents);
    n = read(s2, buf, sizeof buf);
    printf("  slave read = %zd\n", n);
    n = write(s2, "x", 1);
    printf("  slave write = %zd errno=%d\n", n, n < 0 ? errno : 0);
    printf("  slave path gone: %d\n", access(name2, F_OK) < 0);
    close(s2);
    close(m);
    return 0;
}
