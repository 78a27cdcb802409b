/* epoll with N descriptors (eventfds): the time per epoll_ctl ADD, MOD and DEL, and per
   epoll_wait that finds one ready fd among N, for N given on the command line.
   Prints one line: N add_us mod_us wait_us del_us (microseconds per operation). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int *fds = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) {
        fds[i] = eventfd(0, EFD_NONBLOCK);
        if (fds[i] < 0) { perror("eventfd"); return 1; }
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {EPOLLIN, {0}}, out[16];
    double t0 = now();
    for (int i = 0; i < n; i++) { ev.data.u32 = i; epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev); }
    double t1 = now();
    for (int i = 0; i < n; i++) { ev.events = EPOLLIN | EPOLLET; ev.data.u32 = i; epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &ev); }
    double t2 = now();
    int rounds = 2000;
    unsigned long long one = 1, got;
    for (int r = 0; r < rounds; r++) {
        int k = (r * 7919) % n;
        write(fds[k], &one, 8);
        if (epoll_wait(ep, out, 16, -1) != 1 || (int)out[0].data.u32 != k) { fprintf(stderr, "bad wake\n"); return 1; }
        read(fds[k], &got, 8);
    }
    double t3 = now();
    for (int i = 0; i < n; i++) epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
    double t4 = now();
    printf("%d %.2f %.2f %.2f %.2f\n", n, (t1 - t0) * 1e6 / n, (t2 - t1) * 1e6 / n, (t3 - t2) * 1e6 / rounds,
           (t4 - t3) * 1e6 / n);
    return 0;
}
