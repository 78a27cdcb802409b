/* compute: CPU work whose results are printed: integer, floating point and the
 * libc string functions that use SSE/AVX (glibc picks them from CPUID).
 * Probes: user-mode instruction execution, XSAVE state (AVX registers) being
 * enabled, libm, qsort, memcpy/memmove/strlen/strchr/memcmp on big buffers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    uint64_t x = 88172645463325252ULL, acc = 0;
    for (int i = 0; i < 5000000; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        acc += x;
    }
    printf("xorshift: %llu\n", (unsigned long long)acc);

    double s = 0;
    for (int i = 1; i < 100000; i++)
        s += sin(i) * sqrt(i) / log(i + 1.0);
    printf("float sum: %.6f pow %.6f exp %.6f\n", s, pow(2.5, 3.7), exp(1.0));
    printf("strtod: %.17g\n", strtod("0.1e-5", NULL));

    enum { N = 200000 };
    uint32_t *v = malloc(N * sizeof *v);
    for (int i = 0; i < N; i++)
        v[i] = (uint32_t)(x = x * 6364136223846793005ULL + 1442695040888963407ULL) >> 1;
    qsort(v, N, sizeof *v, cmp);
    int sorted = 1;
    for (int i = 1; i < N; i++)
        sorted &= v[i - 1] <= v[i];
    printf("qsort sorted: %d, median %u\n", sorted, v[N / 2]);

    size_t L = 3 << 20;
    char *a = malloc(L + 64), *b = malloc(L + 64);
    for (size_t i = 0; i < L; i++)
        a[i] = 'A' + i % 23;
    a[L] = 0;
    memcpy(b + 3, a, L + 1);
    printf("strlen: %zu, memcmp: %d\n", strlen(b + 3), memcmp(a, b + 3, L));
    memmove(b + 10, b + 3, L);
    printf("memmove ok: %d\n", memcmp(b + 10, a, L) == 0);
    a[L - 5] = '#';
    printf("strchr at: %ld, memchr at: %ld\n", (long)(strchr(a, '#') - a), (long)((char *)memchr(a, '#', L) - a));
    printf("strrchr A at: %ld\n", (long)(strrchr(a, 'A') - a));
    return 0;
}
