/* fd_numbers: the numbers Linux hands out and when an open file really closes.
 * Probes: lowest-free after a pattern of closes (dup, fcntl F_DUPFD/F_DUPFD_CLOEXEC with
 * a minimum, dup2, dup3, close_range and CLOSE_RANGE_CLOEXEC), EMFILE/EBADF/EINVAL at
 * RLIMIT_NOFILE; SCM_RIGHTS: the file stays open while in flight after the sender
 * closes its fd, and closes when the unread message is discarded (EPIPE on the pipe);
 * epoll: a registration survives closing its fd while a dup holds the file (events
 * still come, ADD at the same fd and file is EEXIST) and goes with the last close. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *errname(int e) {   /* musl has no strerrorname_np */
    switch (e) {
    case EBADF: return "EBADF"; case EINVAL: return "EINVAL"; case EMFILE: return "EMFILE";
    case EEXIST: return "EEXIST"; case ENOENT: return "ENOENT"; case EPIPE: return "EPIPE";
    default: return "E?";
    }
}

#define SHOW(label, expr) do { errno = 0; long r_ = (long)(expr); \
    printf("%-34s %ld%s%s\n", label, r_, r_ < 0 ? " " : "", r_ < 0 ? errname(errno) : ""); } while (0)

static int is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static void show_open(const char *label, int upto) {
    printf("%s:", label);
    int run = -1;
    for (int fd = 0; fd <= upto + 1; fd++) {
        int o = fd <= upto && is_open(fd);
        if (o && run < 0) run = fd;
        if (!o && run >= 0) {
            if (run == fd - 1) printf(" %d", run); else printf(" %d-%d", run, fd - 1);
            run = -1;
        }
    }
    printf("\n");
}

static void numbers(void) {
    int p[2];
    pipe(p);                                      /* 3, 4 */
    for (int i = 5; i < 100; i++)
        dup(p[0]);
    for (int fd = 5; fd < 100; fd += 3)          /* holes at 5, 8, 11, ... 98 */
        close(fd);
    close(60); close(61); close(7);
    show_open("after closes", 120);
    SHOW("dup", dup(p[0]));
    SHOW("dup", dup(p[0]));
    SHOW("F_DUPFD 50", fcntl(p[0], F_DUPFD, 50));
    SHOW("F_DUPFD 50", fcntl(p[0], F_DUPFD, 50));
    SHOW("F_DUPFD 50", fcntl(p[0], F_DUPFD, 50));
    int c = fcntl(p[0], F_DUPFD_CLOEXEC, 90);
    printf("%-34s %d cloexec %d\n", "F_DUPFD_CLOEXEC 90", c, fcntl(c, F_GETFD));
    SHOW("F_DUPFD 200", fcntl(p[0], F_DUPFD, 200));
    SHOW("dup2 -> 500", dup2(p[0], 500));
    SHOW("dup2 same fd", dup2(p[0], p[0]));
    SHOW("dup2 onto an open fd", dup2(7, 9));
    SHOW("dup2 closed oldfd", dup2(17, 18));
    int d3 = dup3(p[0], 14, O_CLOEXEC);
    printf("%-34s %d cloexec %d\n", "dup3 -> 14 O_CLOEXEC", d3, fcntl(14, F_GETFD));
    SHOW("dup3 same fd", dup3(p[0], p[0], 0));
    SHOW("dup3 bad flags", dup3(p[0], 15, 1));
    SHOW("dup", dup(p[0]));
    SHOW("close_range 20-40", syscall(SYS_close_range, 20, 40, 0));
    SHOW("dup", dup(p[0]));
    SHOW("close_range cloexec 41-45", syscall(SYS_close_range, 41, 45, 4));
    printf("%-34s %d %d %d\n", "FD_CLOEXEC 40 41 45", fcntl(40, F_GETFD), fcntl(41, F_GETFD), fcntl(45, F_GETFD));
    SHOW("close_range bad", syscall(SYS_close_range, 10, 5, 0));
    show_open("before close_range 100-~0", 600);
    SHOW("close_range 100-~0", syscall(SYS_close_range, 100, ~0U, 0));
    SHOW("dup", dup(p[0]));
    show_open("now", 600);

    struct rlimit rl = {128, 128}, old;
    getrlimit(RLIMIT_NOFILE, &old);
    setrlimit(RLIMIT_NOFILE, &rl);
    int last = -1;
    while ((c = dup(p[0])) >= 0)
        last = c;
    printf("%-34s %d %s\n", "dup until full", last, errname(errno));
    SHOW("F_DUPFD 128", fcntl(p[0], F_DUPFD, 128));
    SHOW("F_DUPFD 127 (full)", fcntl(p[0], F_DUPFD, 127));
    SHOW("dup2 -> 128", dup2(p[0], 128));
    close(77);
    SHOW("dup after close 77", dup(p[0]));
    setrlimit(RLIMIT_NOFILE, &old);
    SHOW("close_range 3-~0", syscall(SYS_close_range, 3, ~0U, 0));
    show_open("end", 600);
}

static void send_fd(int s, int fd) {
    char cbuf[CMSG_SPACE(sizeof(int))] = {0};
    struct iovec iov = {.iov_base = "x", .iov_len = 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(h), &fd, sizeof fd);
    SHOW("sendmsg SCM_RIGHTS", sendmsg(s, &m, 0));
}

static int recv_fd(int s) {
    char cbuf[CMSG_SPACE(sizeof(int))], b;
    struct iovec iov = {.iov_base = &b, .iov_len = 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    if (recvmsg(s, &m, 0) < 0)
        return -1;
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    int fd = -1;
    if (h && h->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(h), sizeof fd);
    return fd;
}

static void rights(void) {
    int sv[2], p[2];
    char buf[16] = {0};
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pipe(p);
    send_fd(sv[0], p[0]);
    SHOW("close sender's read end", close(p[0]));
    SHOW("write while in flight", write(p[1], "hello", 5));
    int r = recv_fd(sv[1]);
    printf("%-34s %d\n", "received fd", r);
    SHOW("read received", read(r, buf, sizeof buf - 1));
    printf("%-34s %s\n", "data", buf);
    close(r);
    /* A message nobody receives: the file closes with the receiving socket. */
    pipe(p);
    send_fd(sv[0], p[0]);
    close(p[0]);
    SHOW("write, read end only in flight", write(p[1], "a", 1));
    SHOW("close receiving socket", close(sv[1]));
    SHOW("write, read end discarded", write(p[1], "a", 1));
    close(p[1]);
    close(sv[0]);
}

static void epoll_dups(void) {
    int p[2];
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42}, out[4];
    pipe(p);
    int e = epoll_create1(0);
    SHOW("epoll ADD read end", epoll_ctl(e, EPOLL_CTL_ADD, p[0], &ev));
    int d = dup(p[0]);
    SHOW("close registered fd (dup holds)", close(p[0]));
    write(p[1], "z", 1);
    int n = epoll_wait(e, out, 4, 1000);
    printf("%-34s %d data %llu\n", "epoll_wait after close", n, n > 0 ? (unsigned long long)out[0].data.u64 : 0ULL);
    SHOW("epoll DEL closed fd", epoll_ctl(e, EPOLL_CTL_DEL, p[0], &ev));
    int q = dup(d);
    printf("%-34s %d\n", "dup back to the same number", q == p[0]);
    SHOW("epoll ADD same fd and file", epoll_ctl(e, EPOLL_CTL_ADD, q, &ev));
    SHOW("epoll MOD same fd and file", epoll_ctl(e, EPOLL_CTL_MOD, q, &ev));
    close(q);
    SHOW("last close", close(d));
    n = epoll_wait(e, out, 4, 0);
    printf("%-34s %d\n", "epoll_wait after last close", n);
    int p2[2];
    pipe(p2);
    printf("%-34s %d\n", "new pipe at the old number", p2[0] == p[0]);
    SHOW("epoll ADD new file there", epoll_ctl(e, EPOLL_CTL_ADD, p2[0], &ev));
    SHOW("epoll DEL it", epoll_ctl(e, EPOLL_CTL_DEL, p2[0], &ev));
    SHOW("epoll DEL again", epoll_ctl(e, EPOLL_CTL_DEL, p2[0], &ev));
    close(p[1]); close(p2[0]); close(p2[1]); close(e);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    syscall(SYS_close_range, 3, ~0U, 0);        /* whatever the parent left open */
    numbers();
    rights();
    epoll_dups();
    return 0;
}
