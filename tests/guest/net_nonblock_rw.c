/* read(2) and write(2) on non-blocking TCP and UDP sockets over loopback, as a busy
 * server makes them: EAGAIN on an empty socket, reads into buffers across a page boundary
 * and into pages never touched before, a write that fills the socket buffer until EAGAIN,
 * EOF after the peer's shutdown, EPIPE (SIGPIPE ignored) after its close, and a datagram
 * cut short by a small read. And sendfile(2) of the program's own file to such a socket:
 * with and without an offset, short at the end of the file, until EAGAIN, to a closed peer. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net_loopback.h"

static void wait_in(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    poll(&p, 1, 5000);
}

static void show(const char *what, ssize_t n) {
    if (n < 0)
        printf("%s: -1 %s\n", what, strerror(errno));
    else
        printf("%s: %zd\n", what, n);
}

/* A TCP connection over loopback: *c the connecting end, the accepted end returned
 * (non-blocking), *l the listener. */
static int connection(int *c, int *l) {
    struct sockaddr_in a;
    *l = bound(SOCK_STREAM, &a);
    listen(*l, 4);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    connect(*c, (struct sockaddr *)&a, sizeof a);
    return accept4(*l, NULL, NULL, SOCK_NONBLOCK);
}

static void tcp(void) {
    int c, l;
    int s = connection(&c, &l);
    fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
    char small[64];
    show("read of an empty socket", read(s, small, sizeof small));

    /* A buffer across a page boundary whose second page was moved there by mremap (so that
     * in the VM's RAM its frame need not follow the first's). */
    unsigned char *two = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *moved = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    moved[0] = 1;
    two[0] = 1;
    printf("mremap: %d\n", mremap(moved, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, two + 4096) == two + 4096);
    unsigned char msg[200];
    for (int i = 0; i < 200; i++) msg[i] = (unsigned char)(i * 7 + 1);
    show("write 200", write(c, msg, sizeof msg));
    wait_in(s);
    ssize_t n = read(s, two + 4096 - 50, 200);
    show("read across a page boundary", n);
    printf("same bytes: %d\n", n == 200 && memcmp(two + 4096 - 50, msg, 200) == 0);

    /* Into pages never touched of a large mapping (umiak backs them on first touch), in
     * two parts. */
    unsigned char *fresh = mmap(NULL, 4 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fresh += 1 << 20;
    show("write 200 again", write(c, msg, sizeof msg));
    wait_in(s);
    n = read(s, fresh + 4000, 150);
    show("read into untouched pages", n);
    n += read(s, fresh + 4000 + n, 3 * 4096 - 4000 - n);
    printf("all 200 arrived: %d, same bytes: %d\n", (int)n, memcmp(fresh + 4000, msg, 200) == 0);

    /* Fill the socket buffers until EAGAIN; then the peer drains them all. */
    static unsigned char big[60000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i % 251);
    long sent = 0;
    for (;;) {
        n = write(s, big, sizeof big);
        if (n < 0) break;
        sent += n;
    }
    printf("filling the buffer ended with %s, after some bytes: %d\n", strerror(errno), sent > 0);
    long got = 0, bad = 0;
    static unsigned char in[65536];
    while (got < sent) {
        wait_in(c);
        n = read(c, in, sizeof in);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++)
            if (in[i] != (unsigned char)(((got + i) % sizeof big) % 251)) bad++;
        got += n;
    }
    printf("drained all: %d, bytes out of place: %ld\n", got == sent, bad);
    show("read of a drained socket", read(c, in, sizeof in));

    /* EOF after the peer's shutdown. */
    show("write 5", write(c, "hello", 5));
    shutdown(c, SHUT_WR);
    wait_in(s);
    n = read(s, small, sizeof small);
    printf("read before EOF: %zd %.5s\n", n, small);
    wait_in(s);
    show("read at EOF", read(s, small, sizeof small));

    /* EPIPE once the peer is gone (SIGPIPE ignored). */
    close(c);
    usleep(20000);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < 10; i++) {
        n = write(s, "x", 1);
        if (n < 0) break;
        usleep(10000);
    }
    show("write to a closed peer", n);
    close(s);
    close(l);
}

static void udp(void) {
    struct sockaddr_in ra, sa;
    int r = bound(SOCK_DGRAM, &ra), s = bound(SOCK_DGRAM, &sa);
    connect(s, (struct sockaddr *)&ra, sizeof ra);
    connect(r, (struct sockaddr *)&sa, sizeof sa);
    fcntl(r, F_SETFL, O_NONBLOCK);
    fcntl(s, F_SETFL, O_NONBLOCK);
    char buf[64];
    show("udp read of nothing", read(r, buf, sizeof buf));
    show("udp write", write(s, "datagram-one", 12));
    show("udp write", write(s, "two", 3));
    wait_in(r);
    ssize_t n = read(r, buf, 5);
    printf("udp read 5 of 12: %zd %.5s\n", n, buf);
    wait_in(r);
    n = read(r, buf, sizeof buf);
    printf("udp next datagram: %zd %.3s\n", n, buf);
    show("udp read of nothing again", read(r, buf, sizeof buf));
    close(r);
    close(s);
}

static long drain(int fd, unsigned *sum) {
    static unsigned char in[65536];
    long got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0) break;
        ssize_t n = read(fd, in, sizeof in);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) *sum = *sum * 31 + in[i];
        got += n;
    }
    return got;
}

static unsigned file_sum(int fd, off_t at, long n) {
    static unsigned char buf[1 << 16];
    unsigned s = 0;
    while (n > 0) {
        ssize_t k = pread(fd, buf, n < (long)sizeof buf ? n : (long)sizeof buf, at);
        if (k <= 0) break;
        for (ssize_t i = 0; i < k; i++) s = s * 31 + buf[i];
        at += k;
        n -= k;
    }
    return s;
}

static void sendfile_to_socket(const char *self) {
    int c, l;
    int s = connection(&c, &l);
    int f = open(self, O_RDONLY);
    off_t size = lseek(f, 0, SEEK_END);
    lseek(f, 0, SEEK_SET);

    off_t off = 100;
    ssize_t n = sendfile(s, f, &off, 5000);
    unsigned sum = 0;
    long got = drain(c, &sum);
    printf("sendfile at 100: %zd, offset now %ld, file position %ld, arrived %ld, same bytes %d\n", n,
           (long)off, (long)lseek(f, 0, SEEK_CUR), got, sum == file_sum(f, 100, 5000));
    lseek(f, 10, SEEK_SET);
    n = sendfile(s, f, NULL, 3000);
    sum = 0;
    got = drain(c, &sum);
    printf("sendfile from the position: %zd, file position %ld, arrived %ld, same bytes %d\n", n,
           (long)lseek(f, 0, SEEK_CUR), got, sum == file_sum(f, 10, 3000));
    off = size - 7;
    n = sendfile(s, f, &off, 100);
    printf("sendfile past the end: %zd, offset at the end %d\n", n, off == size);
    show("sendfile at the end", sendfile(s, f, &off, 100));
    drain(c, &sum);
    show("sendfile to a bad offset pointer", sendfile(s, f, (off_t *)8, 100));
    long total = 0;
    off = 0;
    for (;;) {   /* until the socket is full */
        if (off >= size) off = 0;
        n = sendfile(s, f, &off, size - off);
        if (n < 0) break;
        total += n;
    }
    printf("sendfile until full ended with %s, after some bytes: %d\n", strerror(errno), total > 0);
    sum = 0;
    printf("drained all: %d\n", drain(c, &sum) == total);
    close(c);
    usleep(20000);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < 10; i++) {
        off = 0;
        n = sendfile(s, f, &off, 1);
        if (n < 0) break;
        usleep(10000);
    }
    show("sendfile to a closed peer", n);
    close(s);
    close(l);
    close(f);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    (void)argc;
    tcp();
    udp();
    sendfile_to_socket(argv[0]);
    return 0;
}
