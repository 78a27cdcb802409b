/* UDP over loopback (sendto/recvfrom, connect, MSG_PEEK, MSG_TRUNC, sendmmsg/recvmmsg,
 * SO_RCVTIMEO giving EAGAIN), a non-blocking TCP connect with EINPROGRESS + poll + SO_ERROR,
 * a refused connect, and an epoll echo server serving 3 clients in one thread. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "net_loopback.h"

static void udp(void) {
    struct sockaddr_in ra, sa;
    int r = bound(SOCK_DGRAM, &ra), s = bound(SOCK_DGRAM, &sa);
    printf("udp sendto: %zd\n", sendto(s, "datagram-one", 12, 0, (struct sockaddr *)&ra, sizeof ra));
    char buf[64];
    struct sockaddr_in from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(r, buf, sizeof buf, MSG_PEEK, (struct sockaddr *)&from, &flen);
    printf("peek %zd, from sender %d\n", n, from.sin_port == sa.sin_port);
    n = recv(r, buf, 4, MSG_TRUNC);
    printf("trunc %zd\n", n);
    connect(s, (struct sockaddr *)&ra, sizeof ra);
    struct mmsghdr mm[3];
    struct iovec iov[3];
    const char *words[3] = {"a", "bb", "ccc"};
    for (int i = 0; i < 3; i++) {
        iov[i].iov_base = (void *)words[i];
        iov[i].iov_len = strlen(words[i]);
        memset(&mm[i], 0, sizeof mm[i]);
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    printf("sendmmsg %d\n", sendmmsg(s, mm, 3, 0));
    char bufs[3][16];
    for (int i = 0; i < 3; i++) { iov[i].iov_base = bufs[i]; iov[i].iov_len = 16; }
    int got = recvmmsg(r, mm, 3, MSG_WAITFORONE, NULL);
    printf("recvmmsg %d:", got);
    for (int i = 0; i < got; i++) printf(" %u", mm[i].msg_len);
    printf("\n");
    struct timeval tv = {0, 50000};
    setsockopt(r, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct timeval back;
    socklen_t blen = sizeof back;
    getsockopt(r, SOL_SOCKET, SO_RCVTIMEO, &back, &blen);
    printf("SO_RCVTIMEO %ld s, about 50 ms %d\n", (long)back.tv_sec, back.tv_usec >= 50000 && back.tv_usec < 60000);
    errno = 0;
    n = recv(r, buf, sizeof buf, 0);
    printf("timed out: %zd %s\n", n, strerror(errno));
    close(r);
    close(s);
}

static void nonblocking_connect(void) {
    struct sockaddr_in la;
    int l = bound(SOCK_STREAM, &la);
    listen(l, 1);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int r = connect(s, (struct sockaddr *)&la, sizeof la);
    printf("nb connect: %s\n", r == 0 || errno == EINPROGRESS ? "ok or EINPROGRESS" : strerror(errno));
    struct pollfd p = {.fd = s, .events = POLLOUT};
    int pr = poll(&p, 1, 2000);
    printf("poll %d revents %#x\n", pr, p.revents);
    int err = -1;
    socklen_t len = sizeof err;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
    printf("SO_ERROR %d\n", err);
    close(s);
    close(l);
    /* refused: nothing listens on the port of the closed listener */
    s = socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    r = connect(s, (struct sockaddr *)&la, sizeof la);
    printf("refused: %d %s\n", r, strerror(errno));
    close(s);
}

static void epoll_echo(void) {
    struct sockaddr_in la;
    int l = bound(SOCK_STREAM, &la);
    listen(l, 8);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    int cl[3];
    for (int i = 0; i < 3; i++) {
        cl[i] = socket(AF_INET, SOCK_STREAM, 0);
        connect(cl[i], (struct sockaddr *)&la, sizeof la);
        char msg[32];
        int n = snprintf(msg, sizeof msg, "client-%d", i);
        send(cl[i], msg, n, 0);
    }
    int echoed = 0, accepted = 0;
    while (echoed < 3) {
        struct epoll_event evs[8];
        int n = epoll_wait(ep, evs, 8, 2000);
        if (n <= 0) { printf("epoll_wait %d\n", n); break; }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
                struct epoll_event ce = {.events = EPOLLIN | EPOLLET, .data.fd = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                accepted++;
            } else {
                char buf[64];
                ssize_t k = read(fd, buf, sizeof buf);
                if (k > 0) { write(fd, buf, k); echoed++; }
                else { close(fd); }
            }
        }
    }
    printf("epoll: accepted %d, echoed %d\n", accepted, echoed);
    for (int i = 0; i < 3; i++) {
        char buf[64];
        ssize_t n = recv(cl[i], buf, sizeof buf, 0);
        printf("client %d got '%.*s'\n", i, (int)n, buf);
        close(cl[i]);
    }
    close(ep);
    close(l);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    udp();
    nonblocking_connect();
    epoll_echo();
    return 0;
}
