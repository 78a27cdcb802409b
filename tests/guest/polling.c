/* Waiting on many things: epoll across threads with eventfd and pipes
 * (level and edge triggered, EPOLLONESHOT), eventfd semaphore mode, timerfd,
 * signalfd, poll and select timeouts, a producer/consumer over a pipe. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

static int efd, go, pfd[2];
static void *writer(void *a) {
    (void)a;
    usleep(20000);
    uint64_t one = 3; write(efd, &one, 8);
    uint64_t v; read(go, &v, 8);   /* the pipe is written only after main saw the eventfd alone */
    usleep(20000);
    write(pfd[1], "hello", 5);
    return NULL;
}
static void *producer(void *a) {
    int fd = *(int *)a;
    char buf[1000];
    for (int i = 0; i < 200; i++) { memset(buf, 'a' + i % 26, sizeof buf); write(fd, buf, sizeof buf); }
    close(fd);
    return NULL;
}

int main(void) {
    efd = eventfd(0, 0);
    go = eventfd(0, 0);
    pipe(pfd);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 1 };
    epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
    ev.events = EPOLLIN | EPOLLET; ev.data.u32 = 2;
    epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &ev);
    pthread_t t; pthread_create(&t, NULL, writer, NULL);
    struct epoll_event out[4];
    int n = epoll_wait(ep, out, 4, 5000);
    printf("epoll 1: n=%d id=%u\n", n, out[0].data.u32);
    uint64_t v; read(efd, &v, 8); printf("eventfd value %lu\n", (unsigned long)v);
    uint64_t one_go = 1; write(go, &one_go, 8);
    n = epoll_wait(ep, out, 4, 5000);
    printf("epoll 2: n=%d id=%u\n", n, out[0].data.u32);
    n = epoll_wait(ep, out, 4, 10);
    printf("edge triggered: no repeat n=%d\n", n);
    char buf[16]; ssize_t got = read(pfd[0], buf, sizeof buf);
    printf("pipe read %zd '%.*s'\n", got, (int)got, buf);
    pthread_join(t, NULL);

    int sem = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    uint64_t a, b, c;
    read(sem, &a, 8); read(sem, &b, 8);
    int r = read(sem, &c, 8);
    printf("semaphore reads %lu %lu then %d EAGAIN %d\n", (unsigned long)a, (unsigned long)b, r, errno == EAGAIN);

    ev.events = EPOLLIN | EPOLLONESHOT; ev.data.u32 = 3;
    epoll_ctl(ep, EPOLL_CTL_MOD, efd, &ev);
    uint64_t one = 1; write(efd, &one, 8);
    n = epoll_wait(ep, out, 4, 100);
    int n2 = epoll_wait(ep, out, 4, 10);
    printf("oneshot: first %d then %d\n", n, n2);

    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = { { 0, 5000000 }, { 0, 5000000 } };
    timerfd_settime(tfd, 0, &its, NULL);
    read(tfd, &v, 8);
    printf("timerfd expired %d\n", v >= 1);
    struct pollfd p = { tfd, POLLIN, 0 };
    printf("poll timerfd %d\n", poll(&p, 1, 1000));

    sigset_t m; sigemptyset(&m); sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    int sfd = signalfd(-1, &m, 0);
    raise(SIGUSR1);
    struct signalfd_siginfo si;
    ssize_t sn = read(sfd, &si, sizeof si);
    printf("signalfd read %zd signo %u\n", sn, si.ssi_signo);

    struct pollfd none = { pfd[0], POLLIN, 0 };
    printf("poll timeout %d\n", poll(&none, 1, 30));
    fd_set rs; FD_ZERO(&rs); FD_SET(pfd[0], &rs);
    struct timeval tv = { 0, 30000 };
    printf("select timeout %d\n", select(pfd[0] + 1, &rs, NULL, NULL, &tv));

    int q[2]; pipe(q);
    pthread_t pr; pthread_create(&pr, NULL, producer, &q[1]);
    long total = 0; long sum = 0; ssize_t k;
    while ((k = read(q[0], buf, sizeof buf)) > 0) { total += k; for (int i = 0; i < k; i++) sum += buf[i]; }
    pthread_join(pr, NULL);
    printf("producer/consumer: %ld bytes, checksum %ld\n", total, sum);
    return 0;
}
