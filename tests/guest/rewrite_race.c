/* Probes: sixteen threads reach 64 syscall sites that nobody called before, all at once and in
 * different orders, so sites are rewritten while other threads run the same bytes (umiak holds
 * them out of the guest for the write). Each site is its own `mov $nr,%eax; syscall`: getpid,
 * getppid, gettid or getuid; every answer must be the calling thread's. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define THREADS 16
#define ROUNDS 200

#define SITE(n, nr)                                                                  \
    static __attribute__((noinline)) long site##n(void)                             \
    {                                                                                \
        long ret;                                                                    \
        __asm__ volatile("nop\n\tmov $" #nr ", %%eax\n\tsyscall"                     \
                         : "=a"(ret) : : "rcx", "r11", "memory");                    \
        return ret;                                                                  \
    }
#define FOUR(n) SITE(n##0, 39) SITE(n##1, 110) SITE(n##2, 186) SITE(n##3, 102)
FOUR(0) FOUR(1) FOUR(2) FOUR(3) FOUR(4) FOUR(5) FOUR(6) FOUR(7)
FOUR(8) FOUR(9) FOUR(10) FOUR(11) FOUR(12) FOUR(13) FOUR(14) FOUR(15)

#define ROW(n) site##n##0, site##n##1, site##n##2, site##n##3,
static long (*const sites[])(void) = {
    ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
    ROW(8) ROW(9) ROW(10) ROW(11) ROW(12) ROW(13) ROW(14) ROW(15)
};
#define NSITES (int)(sizeof sites / sizeof sites[0])

static pthread_barrier_t start;

static void *worker(void *arg)
{
    long k = (long)arg, bad = 0;
    long want[4] = {getpid(), getppid(), syscall(SYS_gettid), getuid()};
    pthread_barrier_wait(&start);
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < NSITES; i++) {
            int s = (int)((i * (2 * k + 1) + k * 5) % NSITES);   /* each thread its own order */
            bad += sites[s]() != want[s % 4];
        }
    return (void *)bad;
}

int main(void)
{
    pthread_t t[THREADS];
    pthread_barrier_init(&start, NULL, THREADS);
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    long total = 0;
    for (int i = 0; i < THREADS; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        total += (long)bad;
    }
    printf("%d threads x %d sites x %d rounds, wrong answers %ld\n", THREADS, NSITES, ROUNDS, total);
    return 0;
}
