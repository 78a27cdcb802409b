/* Process benchmarks, timed inside the guest (CLOCK_MONOTONIC).
 *   fork_bench spawn N PROGRAM   fork + execve(PROGRAM) + waitpid, N times: prints spawns per second
 *   fork_bench big MIB           touch MIB MiB, fork: prints the fork's ms, then the ms a child
 *                                takes to write 1% of the pages (copy-on-write) and exit */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "spawn") == 0) {
        int n = atoi(argv[2]);
        char *args[] = {argv[3], NULL};
        double t = now();
        for (int i = 0; i < n; i++) {
            pid_t p = fork();
            if (p == 0) {
                execv(argv[3], args);
                _exit(127);
            }
            int st;
            if (waitpid(p, &st, 0) != p || st != 0)
                return 1;
        }
        printf("%.1f\n", n / (now() - t));
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "big") == 0) {
        size_t size = (size_t)atoi(argv[2]) << 20;
        char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        memset(m, 1, size);
        int fds[2];
        pipe(fds);
        double t = now();
        pid_t p = fork();
        if (p == 0) {
            double c = now();
            for (size_t i = 0; i < size; i += 100 * 4096)
                m[i] = 2;
            double took = now() - c;
            write(fds[1], &took, sizeof took);
            _exit(0);
        }
        double forked = now() - t;
        double child;
        read(fds[0], &child, sizeof child);
        waitpid(p, NULL, 0);
        printf("%.2f %.2f\n", forked * 1e3, child * 1e3);
        return 0;
    }
    fprintf(stderr, "usage: fork_bench spawn N PROGRAM | big MIB\n");
    return 2;
}
