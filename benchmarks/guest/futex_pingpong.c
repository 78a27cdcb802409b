/* futex_pingpong N: two threads pass a token back and forth N times through one
 * futex word (raw FUTEX_WAIT/FUTEX_WAKE, private); prints round trips per second
 * (timed inside). Each round trip is at least one wake and one wait per side. */
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static _Atomic int turn;   /* 0: main's turn, 1: the partner's */
static long rounds;

static void wait_for(int want)
{
    int v;
    while ((v = atomic_load(&turn)) != want)
        syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

static void pass_to(int who)
{
    atomic_store(&turn, who);
    syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *partner(void *arg)
{
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        wait_for(1);
        pass_to(0);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atol(argv[1]) : 100000;
    pthread_t th;
    if (pthread_create(&th, NULL, partner, NULL) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        return 1;
    }
    double t0 = now();
    for (long i = 0; i < rounds; i++) {
        pass_to(1);
        wait_for(0);
    }
    double dt = now() - t0;
    pthread_join(th, NULL);
    printf("%.0f\n", rounds / dt);
    return 0;
}
