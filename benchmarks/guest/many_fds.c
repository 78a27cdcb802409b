/* many_fds N: raise RLIMIT_NOFILE, open N fds (eventfds, each dup'ed once: N/2 distinct
 * open files), then close them all in the order they were opened; prints the milliseconds for the N dups and for the N closes, timed inside the program.
 * Exits 1 if the hard limit is too low for N fds (umiak's is 1048576). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 16000;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)n + 16) {
        fprintf(stderr, "many_fds: hard RLIMIT_NOFILE %lu is below %ld fds\n", (unsigned long)rl.rlim_max, n + 16);
        return 1;
    }
    rl.rlim_cur = n + 16;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("many_fds: setrlimit");
        return 1;
    }
    int *fds = malloc(n * sizeof *fds);
    double t0 = now_ms();
    for (long i = 0; i < n; i++) {
        fds[i] = i % 2 ? dup(fds[i - 1]) : eventfd(0, 0);
        if (fds[i] < 0) {
            perror("many_fds: eventfd/dup");
            return 1;
        }
    }
    double t1 = now_ms();
    for (long i = 0; i < n; i++)
        close(fds[i]);
    double t2 = now_ms();
    printf("%.2f %.2f\n", t1 - t0, t2 - t1);
    return 0;
}
