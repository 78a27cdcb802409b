/* sort_ints N: fill N 32-bit integers pseudo-randomly and qsort them (memory-heavy);
 * prints the seconds the sort took (timed inside) and a check value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static int cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    uint32_t *v = malloc(n * sizeof *v);
    uint64_t x = 1;
    for (long i = 0; i < n; i++)
        v[i] = (uint32_t)((x = x * 6364136223846793005ULL + 1442695040888963407ULL) >> 33);
    double t0 = now();
    qsort(v, n, sizeof *v, cmp);
    printf("%.4f %u\n", now() - t0, v[n / 2]);
    return 0;
}
