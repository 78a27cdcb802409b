/* AF_UNIX: socketpair (stream, dgram, seqpacket), SCM_RIGHTS passing a pipe end and a
 * socket, SCM_CREDENTIALS with SO_PASSCRED, SO_PEERCRED, a named stream server in an
 * abstract name and a path name, datagram sendto/recvfrom with names, MSG_PEEK,
 * MSG_DONTWAIT, MSG_TRUNC, EPIPE with MSG_NOSIGNAL, SIGPIPE, shutdown, FIONREAD. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void send_fd(int s, int fd, const char *msg) {
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = strlen(msg)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    printf("sendmsg with fd: %zd\n", sendmsg(s, &m, 0));
}

static int recv_fd(int s) {
    char buf[64], cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t n = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    int fd = -1;
    if (c && c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof fd);
    printf("recvmsg: %zd bytes '%.*s', cmsg %s, flags %#x, cloexec %d\n", n, (int)n, buf,
           c ? "SCM_RIGHTS" : "none", m.msg_flags, fd >= 0 ? (fcntl(fd, F_GETFD) & FD_CLOEXEC) : -1);
    return fd;
}

static int got_sigpipe;
static void on_pipe(int s) { got_sigpipe = s; }

static void named(const char *label, struct sockaddr_un *a, socklen_t alen) {
    int srv = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(srv, (struct sockaddr *)a, alen)) { printf("%s bind: %s\n", label, strerror(errno)); return; }
    int again = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("%s second bind: %s\n", label, bind(again, (struct sockaddr *)a, alen) ? strerror(errno) : "ok");
    close(again);
    listen(srv, 4);
    int cli = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    printf("%s connect: %d\n", label, connect(cli, (struct sockaddr *)a, alen));
    struct sockaddr_un got;
    socklen_t glen = sizeof got;
    int c = accept4(srv, (struct sockaddr *)&got, &glen, SOCK_CLOEXEC);
    printf("%s accept: ok %d, peer addrlen %d\n", label, c >= 0, (int)glen);
    glen = sizeof got;
    getpeername(cli, (struct sockaddr *)&got, &glen);
    printf("%s client's peer: len %d same %d\n", label, (int)glen,
           glen == alen && memcmp(&got, a, glen) == 0);
    struct ucred cr;
    socklen_t clen = sizeof cr;
    getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &clen);
    printf("%s SO_PEERCRED pid ok %d uid %d\n", label, cr.pid == getpid(), (int)cr.uid);
    write(cli, "ping", 4);
    char buf[16];
    ssize_t n = read(c, buf, sizeof buf);
    printf("%s read %zd '%.*s'\n", label, n, (int)n, buf);
    close(c);
    n = read(cli, buf, sizeof buf);
    printf("%s after close: %zd\n", label, n);
    close(cli);
    close(srv);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int sv[2];
    printf("socketpair: %d\n", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    printf("write %zd\n", write(sv[0], "hello", 5));
    int avail = -1;
    ioctl(sv[1], FIONREAD, &avail);
    printf("FIONREAD %d\n", avail);
    char buf[64];
    printf("peek %zd\n", recv(sv[1], buf, 3, MSG_PEEK));
    ssize_t n = read(sv[1], buf, sizeof buf);
    printf("read %zd '%.*s'\n", n, (int)n, buf);
    errno = 0;
    n = recv(sv[1], buf, sizeof buf, MSG_DONTWAIT);
    printf("empty: %zd %s\n", n, strerror(errno));

    /* SCM_RIGHTS: a pipe's write end travels, the sender closes its copy, the receiver writes */
    int p[2];
    pipe(p);
    send_fd(sv[0], p[1], "fd!");
    close(p[1]);
    int wfd = recv_fd(sv[1]);
    printf("write via passed fd: %zd\n", write(wfd, "through", 7));
    close(wfd);
    n = read(p[0], buf, sizeof buf);
    printf("pipe got %zd '%.*s'\n", n, (int)n, buf);
    n = read(p[0], buf, sizeof buf);
    printf("pipe then: %zd\n", n);
    close(p[0]);

    /* SO_PASSCRED + SCM_CREDENTIALS */
    int on = 1;
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    write(sv[0], "c", 1);
    char cbuf[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    n = recvmsg(sv[1], &m, 0);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    struct ucred cr = {0};
    if (c && c->cmsg_type == SCM_CREDENTIALS) memcpy(&cr, CMSG_DATA(c), sizeof cr);
    printf("creds: %zd, type %d, pid ok %d, uid %d\n", n, c ? c->cmsg_type : -1, cr.pid == getpid(), (int)cr.uid);

    /* EPIPE and SIGPIPE */
    shutdown(sv[1], SHUT_RD);
    close(sv[1]);
    errno = 0;
    n = send(sv[0], "x", 1, MSG_NOSIGNAL);
    printf("send to closed peer: %zd %s\n", n, strerror(errno));
    signal(SIGPIPE, on_pipe);
    n = write(sv[0], "x", 1);
    printf("write: %zd %s, SIGPIPE %d\n", n, strerror(errno), got_sigpipe);
    close(sv[0]);

    /* datagrams and seqpacket keep boundaries */
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    send(sv[0], "one", 3, 0);
    send(sv[0], "twotwo", 6, 0);
    n = recv(sv[1], buf, 2, MSG_TRUNC);
    printf("dgram trunc: %zd\n", n);
    n = recv(sv[1], buf, sizeof buf, 0);
    printf("dgram 2: %zd '%.*s'\n", n, (int)n, buf);
    close(sv[0]); close(sv[1]);
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
    send(sv[0], "abc", 3, 0);
    send(sv[0], "defg", 4, 0);
    n = recv(sv[1], buf, sizeof buf, 0);
    printf("seqpacket: %zd\n", n);
    close(sv[0]);
    n = recv(sv[1], buf, sizeof buf, 0);
    printf("seqpacket 2: %zd\n", n);
    n = recv(sv[1], buf, sizeof buf, 0);
    printf("seqpacket eof: %zd\n", n);
    close(sv[1]);

    /* named servers: abstract and path names */
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, "\0umiak-test-abstract", 20);
    named("abstract", &a, offsetof(struct sockaddr_un, sun_path) + 20);
    struct sockaddr_un pa = {.sun_family = AF_UNIX};
    snprintf(pa.sun_path, sizeof pa.sun_path, "/tmp/umiak-net-unix-test.sock");
    unlink(pa.sun_path);
    named("path", &pa, offsetof(struct sockaddr_un, sun_path) + strlen(pa.sun_path) + 1);
    unlink(pa.sun_path);
    struct sockaddr_un none = {.sun_family = AF_UNIX, .sun_path = "/nonexistent-dir/x.sock"};
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("connect missing: %s\n", connect(s, (struct sockaddr *)&none, sizeof none) ? strerror(errno) : "ok");
    close(s);

    /* named datagrams */
    int d1 = socket(AF_UNIX, SOCK_DGRAM, 0), d2 = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un n1 = {.sun_family = AF_UNIX}, n2 = {.sun_family = AF_UNIX};
    memcpy(n1.sun_path, "\0umiak-d1", 9);
    memcpy(n2.sun_path, "\0umiak-d2", 9);
    socklen_t l1 = offsetof(struct sockaddr_un, sun_path) + 9;
    bind(d1, (struct sockaddr *)&n1, l1);
    bind(d2, (struct sockaddr *)&n2, l1);
    sendto(d1, "to-d2", 5, 0, (struct sockaddr *)&n2, l1);
    struct sockaddr_un from;
    socklen_t flen = sizeof from;
    n = recvfrom(d2, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
    printf("dgram from: %zd bytes, fromlen %d, from d1 %d\n", n, (int)flen, memcmp(from.sun_path, "\0umiak-d1", 9) == 0);
    close(d1); close(d2);
    return 0;
}
