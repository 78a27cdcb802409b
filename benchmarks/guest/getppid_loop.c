/* getppid_loop N: N getppid system calls (through syscall(), never cached by libc);
 * prints the mean nanoseconds per call, timed inside the program. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    double t0 = now();
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    printf("%.1f\n", (now() - t0) / n);
    return 0;
}
