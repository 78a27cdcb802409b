/* file_kinds: what each kind of open file answers to the calls that depend on its kind
 * (pipe, regular file on tmpfs and on the root, socket, eventfd, epoll, memfd, device).
 * Probes: epoll_ctl of regular files (EPERM, tmpfs and root alike) and of a pipe;
 * EPOLLET on a pipe reports once per write; SIGPIPE with EPIPE from a pipe and from a
 * socket, none with MSG_NOSIGNAL; fadvise64 on a pipe (ESPIPE); F_GETPIPE_SZ on
 * non-pipes (EBADF); fallocate on tmpfs, memfd, pipe (ESPIPE), /dev/null (ENODEV);
 * fstatfs f_type of a pipe, a socket, an eventfd, an epoll fd and a memfd;
 * mmap of a pipe and of a socket (ENODEV). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

static volatile int sigpipes;
static void on_pipe(int s) { (void)s; sigpipes++; }

static void res(const char *what, long r) {
    if (r < 0) printf("%s: -1 %s\n", what, strerror(errno));
    else printf("%s: %ld\n", what, r);
}

static void ctl(const char *what, int ep, int fd) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    res(what, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
}

static void fstype(const char *what, int fd) {
    struct statfs s;
    if (fstatfs(fd, &s) < 0) printf("%s fstatfs: -1 %s\n", what, strerror(errno));
    else printf("%s fstatfs: f_type %#lx\n", what, (unsigned long)s.f_type);
}

int main(void) {
    int ep = epoll_create1(0);
    int p[2];
    pipe(p);
    char path[] = "/dev/shm/umiak-kinds-XXXXXX";
    int tf = mkstemp(path);
    unlink(path);
    int rf = open("/etc/passwd", O_RDONLY);
    ctl("epoll_ctl tmpfs file", ep, tf);
    ctl("epoll_ctl root file", ep, rf);
    ctl("epoll_ctl pipe", ep, p[0]);

    /* EPOLLET: one report per change */
    int ep2 = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = p[0]}, out[4];
    epoll_ctl(ep2, EPOLL_CTL_ADD, p[0], &ev);
    write(p[1], "a", 1);
    res("ET after write", epoll_wait(ep2, out, 4, 0));
    res("ET again", epoll_wait(ep2, out, 4, 0));
    write(p[1], "b", 1);
    res("ET after 2nd write", epoll_wait(ep2, out, 4, 0));

    /* SIGPIPE */
    signal(SIGPIPE, on_pipe);
    int q[2];
    pipe(q);
    close(q[0]);
    res("write to readerless pipe", write(q[1], "x", 1));
    printf("sigpipes %d\n", sigpipes);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    close(sv[1]);
    res("send MSG_NOSIGNAL", send(sv[0], "x", 1, MSG_NOSIGNAL));
    printf("sigpipes %d\n", sigpipes);
    res("write to closed socket", write(sv[0], "x", 1));
    printf("sigpipes %d\n", sigpipes);

    /* pipes and not */
    int e = posix_fadvise(p[0], 0, 0, POSIX_FADV_SEQUENTIAL);
    printf("fadvise pipe: %s\n", e ? strerror(e) : "0");
    res("F_GETPIPE_SZ pipe", fcntl(p[0], F_GETPIPE_SZ));
    res("F_GETPIPE_SZ file", fcntl(tf, F_GETPIPE_SZ));
    res("F_GETPIPE_SZ socket", fcntl(sv[0], F_GETPIPE_SZ));

    /* fallocate */
    res("fallocate tmpfs", fallocate(tf, 0, 0, 8192));
    struct stat st;
    fstat(tf, &st);
    printf("tmpfs size %ld\n", (long)st.st_size);
    int mfd = memfd_create("kinds", 0);
    res("fallocate memfd", fallocate(mfd, 0, 0, 100));
    res("fallocate pipe", fallocate(p[1], 0, 0, 100));
    int null = open("/dev/null", O_RDWR);
    res("fallocate /dev/null", fallocate(null, 0, 0, 100));

    /* fstatfs of files with no place in the tree */
    int efd = eventfd(0, 0);
    fstype("pipe", p[0]);
    fstype("socket", sv[0]);
    fstype("eventfd", efd);
    fstype("epoll", ep);
    fstype("memfd", mfd);

    /* mmap */
    void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, p[0], 0);
    res("mmap pipe", m == MAP_FAILED ? -1 : 0);
    m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, sv[0], 0);
    res("mmap socket", m == MAP_FAILED ? -1 : 0);
    m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, mfd, 0);
    res("mmap memfd", m == MAP_FAILED ? -1 : 0);
    return 0;
}
