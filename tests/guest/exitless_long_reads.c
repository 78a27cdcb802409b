/* exitless_long_reads FILE: reads that take the poller longer than the stub's spin
 * deadline (1 MiB a call, and 3 MiB through readv/preadv) must come back whole and in
 * order, whether the stub waited for them or took the exit. Prints what a native run
 * prints: sizes and FNV-1a hashes of what each kind of read returned. A burst of getppid
 * before each pass wakes the poller, so the long reads are served by it, not by exits. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

static void warm(void)
{
    for (int i = 0; i < 5000; i++)
        getppid();
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: exitless_long_reads FILE\n"); return 2; }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    size_t big = 1 << 20;
    unsigned char *buf = malloc(3 * big);
    if (!buf) return 1;
    long long total = 0;
    ssize_t n = 0;
    for (int pass = 0; pass < 3; pass++) {
        warm();
        if (lseek(fd, 0, SEEK_SET) != 0) { perror("lseek"); return 1; }
        uint64_t h = 1469598103934665603ULL;
        total = 0;
        while ((n = read(fd, buf, big)) > 0) {
            h = fnv(h, buf, (size_t)n);
            total += n;
        }
        if (n < 0) { perror("read"); return 1; }
        printf("read pass %d: %lld bytes, fnv %016llx\n", pass, total, (unsigned long long)h);
    }

    warm();
    struct iovec iov[3] = {{buf + 2 * big, big}, {buf, big}, {buf + big, big}};
    n = preadv(fd, iov, 3, 4096);
    if (n < 0) { perror("preadv"); return 1; }
    uint64_t hv = 1469598103934665603ULL;
    for (int i = 0; i < 3 && n > 0; i++) {
        size_t k = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;
        hv = fnv(hv, iov[i].iov_base, k);
        n -= (ssize_t)k;
    }
    printf("preadv at 4096: fnv %016llx\n", (unsigned long long)hv);

    if (lseek(fd, 123, SEEK_SET) != 123) { perror("lseek"); return 1; }
    n = readv(fd, iov, 3);
    printf("readv at 123: %zd bytes, offset now %lld\n", n, (long long)lseek(fd, 0, SEEK_CUR));
    n = pread(fd, buf, 3 * big, total - 1000);
    printf("pread near the end: %zd bytes\n", n);
    close(fd);
    return 0;
}
