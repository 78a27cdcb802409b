/* Probes: epoll of a file whose readiness lives on the host (stdin, a pipe from the test):
   a blocking epoll_wait wakes when data comes, level-triggered stays ready, a dup of the fd
   registered with EPOLLONESHOT reports once until EPOLL_CTL_MOD re-arms it, EPOLLHUP once
   the writer is gone, and nothing after EPOLL_CTL_DEL. stdin: a pipe with a few bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
    return (int)((const struct epoll_event *)a)->data.u32 - (int)((const struct epoll_event *)b)->data.u32;
}

static void show(const char *what, int ep, int timeout, unsigned keep) {
    struct epoll_event out[8];
    int n = epoll_wait(ep, out, 8, timeout);
    qsort(out, n < 0 ? 0 : n, sizeof out[0], cmp);
    printf("%-12s %d:", what, n);
    for (int i = 0; i < n; i++) printf(" %u/%x", out[i].data.u32, out[i].events & keep);
    printf("\n");
}

int main(void) {
    int ep = epoll_create1(0), d = dup(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    show("first data", ep, -1, EPOLLIN);
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u32 = 2;
    epoll_ctl(ep, EPOLL_CTL_ADD, d, &ev);
    show("with dup", ep, 0, EPOLLIN);
    show("oneshot off", ep, 0, EPOLLIN);
    epoll_ctl(ep, EPOLL_CTL_MOD, d, &ev);
    show("rearmed", ep, 0, EPOLLIN);
    char buf[256];
    while (read(0, buf, sizeof buf) > 0) {}
    show("eof", ep, 0, ~0u);
    epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
    epoll_ctl(ep, EPOLL_CTL_MOD, d, &ev);
    show("deleted 0", ep, 0, ~0u);
    epoll_ctl(ep, EPOLL_CTL_DEL, d, NULL);
    show("deleted", ep, 0, ~0u);
    return 0;
}
