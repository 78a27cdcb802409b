/* read_into FILE: read(2), pread(2), readv(2) and preadv(2) of a regular file into every
 * kind of buffer, for FILE (a host file) and a memfd holding the same bytes.
 *
 * Probes: whole-file reads in 64 KiB chunks (checksum, the count of short reads); a buffer
 * whose tail page is PROT_READ or unmapped gives the bytes up to the bad page and moves the
 * offset by that much, a buffer starting on a bad page EFAULT with the offset unmoved, but 0
 * at the end of the file; the same for pread at offsets; readv of 300 iovecs of odd sizes
 * (some empty), readv whose third buffer is bad (the first two's bytes), preadv at an
 * offset; a read into a page shared copy-on-write with a forked child (in the child, then in
 * the parent while the child lives) leaves the other's copy as it was; a read into a large
 * untouched mapping (backed on demand), into a MAP_PRIVATE writable mapping of the file
 * (copied, the file unchanged), into a MAP_SHARED mapping of a memfd (pread of the memfd sees
 * it), across two mappings; a read of FILE while it is mapped MAP_SHARED. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define memfd_create(n, f) ((int)syscall(SYS_memfd_create, n, f))
#define PG 4096

char *nowhere;   /* NULL, unknown to the compiler */

static unsigned long hash(const unsigned char *p, size_t n)
{
    unsigned long h = 1469598103934665603UL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211UL;
    return h;
}

static void res(const char *what, long r, int fd)
{
    if (r < 0)
        printf("  %-40s -1 %s", what, strerror(errno));
    else
        printf("  %-40s %ld", what, r);
    printf(" (offset %ld)\n", (long)lseek(fd, 0, SEEK_CUR));
}

static char *map(size_t n, int prot)
{
    char *p = mmap(NULL, n, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    return p;
}

static void whole(int fd)
{
    static unsigned char buf[64 << 10];
    unsigned long h = 0;
    long total = 0, shorts = 0, n;
    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        h = h * 31 + hash(buf, n);
        total += n;
        shorts += n < (long)sizeof buf;
    }
    printf("  whole file: %ld bytes, last %ld, %ld short, hash %lx\n", total, n, shorts, h);
}

static void bad_tails(int fd, long size)
{
    char *p = map(4 * PG, PROT_READ | PROT_WRITE);
    mprotect(p + 2 * PG, PG, PROT_READ);
    munmap(p + 3 * PG, PG);
    lseek(fd, 0, SEEK_SET);
    res("read, tail page read-only", read(fd, p + 100, 3 * PG), fd);
    printf("  bytes read %lx\n", hash((unsigned char *)p + 100, 2 * PG - 100));
    res("read into a read-only page", read(fd, p + 2 * PG, 10), fd);
    res("read into an unmapped page", read(fd, p + 3 * PG, 10), fd);
    res("read into NULL", read(fd, nowhere, 10), fd);
    lseek(fd, 0, SEEK_END);
    res("read into NULL at the end", read(fd, nowhere, 10), fd);
    lseek(fd, size - 5000, SEEK_SET);
    res("read, bad tail past the end", read(fd, p + 2 * PG - 6000, 8000), fd);
    lseek(fd, 0, SEEK_SET);
    mprotect(p + 2 * PG, PG, PROT_READ | PROT_WRITE);
    res("read, tail page unmapped", read(fd, p + 5, 4 * PG), fd);
    res("pread, tail page unmapped", pread(fd, p + PG + 7, 3 * PG, 12345), fd);
    printf("  bytes read %lx\n", hash((unsigned char *)p + PG + 7, 3 * PG - PG - 7));
    res("pread into an unmapped page", pread(fd, p + 3 * PG, 10, 1), fd);
    res("pread into NULL past the end", pread(fd, nowhere, 10, size + 10), fd);
    res("pread at the end", pread(fd, p, 10, size), fd);
    munmap(p, 3 * PG);
}

static void vectors(int fd)
{
    enum { N = 300 };
    struct iovec iov[N];
    char *p = map(1 << 20, PROT_READ | PROT_WRITE);
    size_t off = 0;
    for (int i = 0; i < N; i++) {
        size_t ln = (i % 7 == 3) ? 0 : (size_t)(i * 37 % 1500 + 1);
        iov[i].iov_base = p + off;
        iov[i].iov_len = ln;
        off += ln + (i % 5);
    }
    lseek(fd, 3, SEEK_SET);
    res("readv of 300 iovecs", readv(fd, iov, N), fd);
    printf("  bytes read %lx\n", hash((unsigned char *)p, off));
    memset(p, 0, off);
    res("preadv of 300 iovecs at 70000", preadv(fd, iov, N, 70000), fd);
    printf("  bytes read %lx\n", hash((unsigned char *)p, off));
    char *q = map(3 * PG, PROT_READ | PROT_WRITE);
    mprotect(q + 2 * PG, PG, PROT_READ);
    struct iovec bad[4] = {{q, 100}, {q + PG, 200}, {q + 2 * PG, 300}, {q + 50, 10}};
    lseek(fd, 0, SEEK_SET);
    res("readv, third buffer read-only", readv(fd, bad, 4), fd);
    res("readv, first buffer read-only", readv(fd, bad + 2, 2), fd);
    res("preadv, third buffer read-only", preadv(fd, bad, 4, 999), fd);
    munmap(p, 1 << 20);
    munmap(q, 3 * PG);
}

static void cow(int fd)
{
    char *p = map(16 * PG, PROT_READ | PROT_WRITE);
    memset(p, 'P', 16 * PG);
    unsigned long before = hash((unsigned char *)p, 16 * PG);
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        pread(fd, p + 10, 15 * PG, 0);
        printf("  child's copy after its read %lx\n", hash((unsigned char *)p, 16 * PG));
        fflush(stdout);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    printf("  parent's copy unchanged: %d\n", hash((unsigned char *)p, 16 * PG) == before);
    int go[2], done[2];
    if (pipe(go) || pipe(done)) { perror("pipe"); exit(1); }
    fflush(stdout);
    c = fork();
    if (c == 0) {
        char x;
        read(go[0], &x, 1);
        x = hash((unsigned char *)p, 16 * PG) == before;
        write(done[1], &x, 1);
        _exit(0);
    }
    lseek(fd, 0, SEEK_SET);
    res("parent reads into the shared pages", read(fd, p + 4000, 8 * PG), fd);
    printf("  parent's copy %lx\n", hash((unsigned char *)p, 16 * PG));
    char x = 0;
    write(go[1], &x, 1);
    read(done[0], &x, 1);
    printf("  child's copy unchanged: %d\n", x);
    waitpid(c, NULL, 0);
    munmap(p, 16 * PG);
}

static void mappings(int fd, int is_memfd)
{
    char *big = map(64 << 20, PROT_READ | PROT_WRITE);
    res("pread into an untouched 64 MiB mapping", pread(fd, big + (20 << 20) + 33, 1 << 20, 0), fd);
    printf("  bytes read %lx\n", hash((unsigned char *)big + (20 << 20) + 33, 1 << 20));
    munmap(big, 64 << 20);

    char *priv = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (priv == MAP_FAILED) { perror("mmap private"); exit(1); }
    unsigned long fh = hash((unsigned char *)priv, 8 * PG);
    res("pread into a MAP_PRIVATE file mapping", pread(fd, priv + 2 * PG, 4 * PG, 50000), fd);
    printf("  mapping %lx\n", hash((unsigned char *)priv, 8 * PG));
    char chk[8 * PG];
    pread(fd, chk, sizeof chk, 0);
    printf("  file unchanged: %d\n", hash((unsigned char *)chk, sizeof chk) == fh);
    munmap(priv, 8 * PG);

    int m = memfd_create("target", 0);
    ftruncate(m, 6 * PG);
    char *sh = mmap(NULL, 6 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
    if (sh == MAP_FAILED) { perror("mmap shared"); exit(1); }
    res("pread into a MAP_SHARED memfd mapping", pread(fd, sh + 100, 5 * PG, 7), fd);
    pread(m, chk, 6 * PG, 0);
    printf("  memfd sees it: %d %lx\n", memcmp(chk, sh, 6 * PG) == 0, hash((unsigned char *)chk, 6 * PG));
    munmap(sh, 6 * PG);
    close(m);

    char *two = map(8 * PG, PROT_READ | PROT_WRITE);
    munmap(two + 4 * PG, 4 * PG);
    char *second = mmap(two + 4 * PG, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    second[PG] = 1;     /* touched out of order: other frames */
    two[0] = 1;
    res("pread across two mappings", pread(fd, two + 3 * PG, 3 * PG, 3), fd);
    printf("  bytes read %lx\n", hash((unsigned char *)two + 3 * PG, 3 * PG));
    munmap(two, 8 * PG);

    if (!is_memfd) {
        char *ro = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, fd, 0);
        if (ro == MAP_FAILED) { perror("mmap shared file"); exit(1); }
        volatile char touch = ro[PG];
        (void)touch;
        char *b = map(4 * PG, PROT_READ | PROT_WRITE);
        lseek(fd, 1000, SEEK_SET);
        res("read while mapped MAP_SHARED", read(fd, b, 4 * PG), fd);
        printf("  bytes read %lx\n", hash((unsigned char *)b, 4 * PG));
        res("read into the MAP_SHARED PROT_READ map", read(fd, ro, 10), fd);
        munmap(b, 4 * PG);
        munmap(ro, 4 * PG);
    }
}

static void all(const char *label, int fd, long size, int is_memfd)
{
    printf("%s\n", label);
    whole(fd);
    bad_tails(fd, size);
    vectors(fd);
    cow(fd);
    mappings(fd, is_memfd);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: read_into FILE\n"); return 2; }
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    long size = lseek(fd, 0, SEEK_END);
    all("host file", fd, size, 0);

    int m = memfd_create("copy", 0);
    static char buf[64 << 10];
    long n;
    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, buf, sizeof buf)) > 0)
        write(m, buf, n);
    all("memfd", m, size, 1);
    return 0;
}
