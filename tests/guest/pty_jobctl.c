/* Probes: job control on a pty made in the program (posix_openpt), as a shell on an
 * xterm has it: a session leader with the slave as controlling terminal keeps the
 * foreground group; a process in a background group of that session that reads the
 * terminal is stopped by SIGTTIN (EIO when it ignores SIGTTIN), one that writes with
 * TOSTOP set is stopped by SIGTTOU (the write goes through when it ignores SIGTTOU;
 * without TOSTOP it always does), and tcsetattr and tcsetpgrp from the background are
 * stopped by SIGTTOU. The foreground group reads and writes freely. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int slave = -1;

enum { READ, READ_IGN, WRITE_TOSTOP, WRITE_TOSTOP_IGN, WRITE_PLAIN, TCSETATTR, TCSETPGRP };
static const char *names[] = {"read", "read ignoring SIGTTIN", "write with TOSTOP",
                              "write with TOSTOP ignoring SIGTTOU", "write without TOSTOP",
                              "tcsetattr", "tcsetpgrp"};

/* In a background group of the session: do one thing; exit 0 if it went through,
 * 10 + errno-ish codes otherwise (a stop is seen by the parent). */
static int background(int what) {
    if (setpgid(0, 0))
        return 2;
    if (what == READ_IGN)
        signal(SIGTTIN, SIG_IGN);
    if (what == WRITE_TOSTOP_IGN)
        signal(SIGTTOU, SIG_IGN);
    char c;
    ssize_t r = 0;
    struct termios t;
    switch (what) {
    case READ: case READ_IGN:
        r = read(slave, &c, 1);
        break;
    case WRITE_TOSTOP: case WRITE_TOSTOP_IGN: case WRITE_PLAIN:
        r = write(slave, "bg\n", 3);
        break;
    case TCSETATTR:
        tcgetattr(slave, &t);
        r = tcsetattr(slave, TCSANOW, &t);
        break;
    case TCSETPGRP:
        r = tcsetpgrp(slave, getpgrp());
        break;
    }
    if (r < 0)
        return errno == EIO ? 11 : 12;
    return 0;
}

static void leader(const char *name) {
    setsid();
    slave = open(name, O_RDWR);   /* a session leader without a terminal: it becomes its own */
    if (slave < 0 || tcgetpgrp(slave) != getpgrp()) {
        printf("no controlling terminal\n");
        exit(1);
    }
    struct termios t;
    tcgetattr(slave, &t);
    for (int what = READ; what <= TCSETPGRP; what++) {
        if (what == WRITE_TOSTOP)
            t.c_lflag |= TOSTOP;
        if (what == WRITE_PLAIN || what == TCSETATTR)
            t.c_lflag &= ~TOSTOP;
        tcsetattr(slave, TCSANOW, &t);
        pid_t p = fork();
        if (p == 0)
            _exit(background(what));
        int st;
        if (waitpid(p, &st, WUNTRACED) != p)
            exit(1);
        if (WIFSTOPPED(st)) {
            printf("background %s: stopped by %s\n", names[what], strsignal(WSTOPSIG(st)));
            kill(p, SIGKILL);
            waitpid(p, &st, 0);
        } else if (WIFEXITED(st)) {
            int code = WEXITSTATUS(st);
            printf("background %s: %s\n", names[what], code == 0 ? "went through" : code == 11 ? "EIO" : "failed");
        } else {
            printf("background %s: killed by %d\n", names[what], WTERMSIG(st));
        }
    }
    fflush(stdout);
    printf("foreground write: %zd\n", write(slave, "fg\n", 3));
    fflush(stdout);
    exit(0);
}

int main(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m))
        return 1;
    char name[64];
    if (ptsname_r(m, name, sizeof name))
        return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    pid_t p = fork();
    if (p == 0)
        leader(name);
    int st;
    waitpid(p, &st, 0);
    printf("leader: exit %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    /* Linux moves what the slave wrote to the master from a work queue: under load the last
     * line may come after the leader's exit, so read until the hang-up (EIO) or 2 s of quiet. */
    char buf[256];
    ssize_t n = 0;
    fcntl(m, F_SETFL, O_NONBLOCK);
    for (;;) {
        struct pollfd pf = {m, POLLIN, 0};
        if (poll(&pf, 1, 2000) <= 0 || n >= (ssize_t)sizeof buf)
            break;
        ssize_t r = read(m, buf + n, sizeof buf - n);
        if (r <= 0)
            break;
        n += r;
    }
    int bg = 0, fg = 0;
    for (ssize_t i = 0; i + 1 < n; i++) {
        bg += buf[i] == 'b' && buf[i + 1] == 'g';
        fg += buf[i] == 'f' && buf[i + 1] == 'g';
    }
    printf("the terminal got %d background and %d foreground lines\n", bg, fg);
    return 0;
}
