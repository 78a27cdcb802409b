/* Soak: creates and closes kernel objects in loops (argv[1] rounds, default 1000).
 * Probes: open/close, pipe, socketpair, TCP/UDP/unix sockets bound and closed, eventfd,
 * timerfd, epoll, POSIX timers (timer_create/settime/delete), anonymous and file
 * mappings touched and unmapped, threads created and joined (argv[2] of them), and at
 * the end every fd is gone (the lowest free fd is 3 again). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static void *work(void *arg) { return arg; }

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 1000;
    long threads = argc > 2 ? atol(argv[2]) : 100;
    long fails = 0;
    int file = open("/tmp/churn", O_RDWR | O_CREAT | O_TRUNC, 0600);
    ftruncate(file, 65536);
    for (long i = 0; i < rounds; i++) {
        int fd = open("/dev/null", O_RDONLY);
        int p[2], sv[2];
        fails += fd < 0 || pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        write(p[1], "x", 1);
        write(sv[0], "y", 1);
        int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
        fails += t < 0 || u < 0 || bind(u, (struct sockaddr *)&a, sizeof a);
        int e = eventfd(1, 0), tf = timerfd_create(CLOCK_MONOTONIC, 0), ep = epoll_create1(0);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = e};
        fails += e < 0 || tf < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev);
        struct itimerspec its = {.it_value = {100, 0}};
        timerfd_settime(tf, 0, &its, NULL);
        timer_t timer;
        struct sigevent sev = {.sigev_notify = SIGEV_NONE};
        fails += timer_create(CLOCK_MONOTONIC, &sev, &timer) || timer_settime(timer, 0, &its, NULL)
                 || timer_delete(timer);
        char *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        char *f = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_SHARED, file, 0);
        fails += m == MAP_FAILED || f == MAP_FAILED;
        m[0] = m[40000] = f[(i * 4096) & 0xffff] = 1;
        munmap(m, 1 << 16);
        munmap(f, 1 << 16);
        int fds[] = {fd, p[0], p[1], sv[0], sv[1], t, u, e, tf, ep};
        for (unsigned k = 0; k < sizeof fds / sizeof fds[0]; k++)
            fails += close(fds[k]) != 0;
    }
    for (long i = 0; i < threads; i++) {
        pthread_t th;
        void *r;
        fails += pthread_create(&th, NULL, work, (void *)i) || pthread_join(th, &r) || r != (void *)i;
    }
    close(file);
    unlink("/tmp/churn");
    int next = open("/dev/null", O_RDONLY);
    printf("%ld rounds, %ld threads, %ld failures, next fd %d\n", rounds, threads, fails, next);
    return fails != 0;
}
