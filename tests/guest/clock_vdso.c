/* Clocks through the vDSO: 200000 CLOCK_MONOTONIC reads never go backwards,
 * CLOCK_REALTIME, gettimeofday and time agree to the second, and the vDSO is
 * in the auxiliary vector (AT_SYSINFO_EHDR) as on Linux. */
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/time.h>
#include <time.h>

int main(void) {
    struct timespec p, b, r;
    long back = 0;
    clock_gettime(CLOCK_MONOTONIC, &p);
    for (int i = 0; i < 200000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (b.tv_sec < p.tv_sec || (b.tv_sec == p.tv_sec && b.tv_nsec < p.tv_nsec)) back++;
        p = b;
    }
    clock_gettime(CLOCK_REALTIME, &r);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    time_t t = time(NULL);
    long d1 = (long)(r.tv_sec - t), d2 = (long)(tv.tv_sec - t);
    printf("monotonic went backwards %ld times\n", back);
    printf("realtime, gettimeofday and time agree: %d\n", d1 >= -1 && d1 <= 1 && d2 >= -1 && d2 <= 1);
    printf("vDSO in auxv: %d\n", getauxval(AT_SYSINFO_EHDR) != 0);
    return 0;
}
