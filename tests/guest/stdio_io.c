/* stdio_io: standard streams. argv[1] picks a mode:
 *   "cat"    copy stdin to stdout in odd-sized reads and count bytes on stderr;
 *   "mixed"  interleave unbuffered writes to stdout and stderr, writev, and
 *            stdio with setvbuf, then a large (1 MiB) stdout burst;
 *   "empty"  read stdin (expected empty) and report 0 bytes.
 * Probes: read/write on pipes, partial reads, writev/readv, stdio buffering,
 * ioctl(TCGETS) on a pipe (ENOTTY, which makes stdio fully buffered). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "mixed";
    if (!strcmp(mode, "cat") || !strcmp(mode, "empty")) {
        char buf[333];
        ssize_t n;
        long total = 0;
        while ((n = read(0, buf, sizeof buf)) > 0) {
            write(1, buf, n);
            total += n;
        }
        fprintf(stderr, "read %ld bytes, last read %zd\n", total, n);
        return 0;
    }
    write(1, "out 1\n", 6);
    write(2, "err 1\n", 6);
    struct iovec iov[3] = {{"wr", 2}, {"itev ", 5}, {"line\n", 5}};
    printf("writev returned %zd\n", writev(1, iov, 3));
    fflush(stdout);
    write(2, "err 2\n", 6);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("line buffered now\n");
    fprintf(stderr, "stderr is unbuffered: %d\n", 42);
    printf("floats: %.3f %g %e\n", 3.14159, 1e-300 * 1e-10, 12345.678);
    char *big = malloc(1 << 20);
    for (int i = 0; i < (1 << 20); i++)
        big[i] = 'a' + i % 26;
    for (int i = 63; i < (1 << 20); i += 64)
        big[i] = '\n';
    size_t done = 0;
    while (done < (1 << 20)) {
        ssize_t n = write(1, big + done, (1 << 20) - done);
        if (n <= 0)
            return 9;
        done += n;
    }
    printf("\nwrote %zu bytes\n", done);
    return 0;
}
