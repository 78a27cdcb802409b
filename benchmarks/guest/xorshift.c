/* xorshift N: a CPU-bound integer loop (no memory traffic, no syscalls);
 * prints nanoseconds per iteration (timed inside) and the checksum. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000000;
    uint64_t x = 88172645463325252ULL, acc = 0;
    double t0 = now();
    for (long i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        acc += x;
    }
    printf("%.3f %llu\n", (now() - t0) / n, (unsigned long long)acc);
    return 0;
}
