/* Probes: epoll's ready list as Linux keeps it: epoll_wait reports files in the order they
   became ready (not the order they were registered); a level-triggered file reported with a
   small maxevents goes behind the others (round robin); EPOLLET reports once per change;
   EPOLLONESHOT once until EPOLL_CTL_MOD re-arms it; MOD of a ready file reports it again;
   DEL and close of a queued file drop it (a dup keeps the registration). A blocking poll(2)
   on an epoll fd, and a blocking epoll_wait on an epoll holding that epoll, wake when a
   member (a timerfd) fires; a cycle of epolls is ELOOP. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

static void add(int ep, int fd, uint32_t events, int tag) {
    struct epoll_event ev = {.events = events, .data.u32 = tag};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) perror("add");
}

static void show(const char *what, int ep, int maxevents) {
    struct epoll_event out[16];
    int n = epoll_wait(ep, out, maxevents, 0);
    printf("%-14s %d:", what, n);
    for (int i = 0; i < n; i++) printf(" %u/%x", out[i].data.u32, out[i].events);
    printf("\n");
}

static void bump(int fd) {
    uint64_t one = 1;
    if (write(fd, &one, 8) != 8) perror("write");
}

static void drain(int fd) {
    uint64_t v;
    if (read(fd, &v, 8) != 8) perror("read");
}

static int timer_in(int ms) {
    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec its = {.it_value = {0, ms * 1000000L}};
    timerfd_settime(t, 0, &its, NULL);
    return t;
}

int main(void) {
    int ep = epoll_create1(0), e[5];
    for (int i = 0; i < 5; i++) {
        e[i] = eventfd(0, EFD_NONBLOCK);
        add(ep, e[i], EPOLLIN, i);
    }
    show("none", ep, 16);
    bump(e[3]);
    bump(e[1]);
    bump(e[4]);
    show("order 3 1 4", ep, 16);
    show("rotate 1", ep, 1);
    show("rotate 2", ep, 1);
    show("rotate 3", ep, 2);
    drain(e[1]);
    show("1 drained", ep, 16);
    drain(e[3]);
    drain(e[4]);

    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u32 = 10};
    epoll_ctl(ep, EPOLL_CTL_MOD, e[0], &ev);
    bump(e[0]);
    show("et once", ep, 16);
    show("et again", ep, 16);
    bump(e[0]);
    show("et new write", ep, 16);
    ev.data.u32 = 11;
    epoll_ctl(ep, EPOLL_CTL_MOD, e[0], &ev);
    show("et mod ready", ep, 16);
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u32 = 12;
    epoll_ctl(ep, EPOLL_CTL_MOD, e[0], &ev);
    show("oneshot", ep, 16);
    bump(e[0]);
    show("oneshot off", ep, 16);
    epoll_ctl(ep, EPOLL_CTL_MOD, e[0], &ev);
    show("oneshot rearm", ep, 16);

    bump(e[2]);
    epoll_ctl(ep, EPOLL_CTL_DEL, e[2], NULL);
    show("del queued", ep, 16);
    bump(e[4]);
    int keep = dup(e[4]);
    close(e[4]);
    show("closed, dup", ep, 16);
    close(keep);
    show("dup closed", ep, 16);

    /* blocking waits woken by a member of the epoll */
    int inner = epoll_create1(0), outer = epoll_create1(0);
    int t = timer_in(20);
    add(inner, t, EPOLLIN, 20);
    add(outer, inner, EPOLLIN, 21);
    struct pollfd p = {.fd = inner, .events = POLLIN};
    int r = poll(&p, 1, 5000);
    printf("poll on epoll  %d %x\n", r, p.revents);
    drain(t);
    struct itimerspec its = {.it_value = {0, 20 * 1000000L}};
    timerfd_settime(t, 0, &its, NULL);
    struct epoll_event out[4];
    int n = epoll_wait(outer, out, 4, 5000);
    printf("nested wait    %d %u\n", n, n > 0 ? out[0].data.u32 : 0);
    n = epoll_wait(inner, out, 4, 0);
    printf("inner          %d %u\n", n, n > 0 ? out[0].data.u32 : 0);
    struct epoll_event loop = {.events = EPOLLIN};
    r = epoll_ctl(inner, EPOLL_CTL_ADD, outer, &loop);
    printf("cycle          %d %s\n", r, r < 0 && errno == ELOOP ? "ELOOP" : "?");
    return 0;
}
