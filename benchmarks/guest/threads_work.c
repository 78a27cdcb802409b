/* threads_work T N: T threads each run N iterations of a CPU-bound integer loop
 * (xorshift, no memory traffic, no syscalls); prints the seconds from the first
 * pthread_create to the last pthread_join (timed inside) and a checksum. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static long iters;

static void *work(void *arg)
{
    uint64_t x = 88172645463325252ULL + (uintptr_t)arg, acc = 0;
    for (long i = 0; i < iters; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        acc += x;
    }
    return (void *)(uintptr_t)acc;
}

int main(int argc, char **argv)
{
    int t = argc > 1 ? atoi(argv[1]) : 2;
    if (t < 1 || t > 64) t = 2;
    iters = argc > 2 ? atol(argv[2]) : 100000000;
    pthread_t th[64];
    uint64_t sum = 0;
    double t0 = now();
    for (int i = 0; i < t; i++)
        if (pthread_create(&th[i], NULL, work, (void *)(uintptr_t)i) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < t; i++) {
        void *r;
        pthread_join(th[i], &r);
        sum += (uintptr_t)r;
    }
    printf("%.4f %llu\n", now() - t0, (unsigned long long)sum);
    return 0;
}
