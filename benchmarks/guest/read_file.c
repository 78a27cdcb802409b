/* read_file PATH: read the whole file through read() in 64 KiB chunks;
 * prints MB/s (10^6 bytes per second, timed inside, so start-up is excluded) and the byte count. */
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static char buf[64 << 10];

int main(int argc, char **argv)
{
    int fd = open(argc > 1 ? argv[1] : "/tmp/umiak-bench-read", O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    long long total = 0;
    ssize_t n;
    double t0 = now();
    while ((n = read(fd, buf, sizeof buf)) > 0)
        total += n;
    double dt = now() - t0;
    if (n < 0) { perror("read"); return 1; }
    printf("%.1f %lld\n", total / dt / 1e6, total);
    return 0;
}
