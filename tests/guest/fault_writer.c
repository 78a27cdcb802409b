/* Faults while writing (tests/test_faults.py). Probes, by argv[1]:
 *   sync PATH  write 64 KiB chunks (chunk i: bytes i % 251) and fsync every 4 chunks,
 *              printing "synced BYTES" after each fsync, until killed
 *   fill PATH  write 4 KiB chunks until an error: print it, the bytes written, then
 *              fsync, read everything back, remove one chunk's worth of a second file
 *              and write again: all must work after ENOSPC
 *   oom WHAT   take guest memory where the kernel allocates on the program's behalf
 *              (fault: touched anonymous pages; tmpfs: a /tmp file; pipes: full pipes;
 *              unix: full AF_UNIX socket queues; pagecache: a shared file mapping
 *              larger than RAM) until an error or death */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static char chunk[65536];

static int sync_writer(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return perror("open"), 1;
    for (long i = 0;; i++) {
        memset(chunk, (int)(i % 251), sizeof chunk);
        if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk)
            return perror("write"), 1;
        if (i % 4 == 3) {
            if (fsync(fd))
                return perror("fsync"), 1;
            printf("synced %ld\n", (i + 1) * (long)sizeof chunk);
        }
    }
}

static int filler(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    long total = 0;
    ssize_t n;
    for (long i = 0;; i++) {
        memset(chunk, (int)(i % 251), 4096);
        n = write(fd, chunk, 4096);
        if (n <= 0)
            break;
        total += n;
        if (n < 4096)
            break;
    }
    if (n >= 0)   /* a short write: the next one says why */
        n = write(fd, chunk, 4096);
    printf("write: %s after %ld bytes\n", n < 0 ? strerror(errno) : "no error", total);
    printf("fsync: %s\n", fsync(fd) ? strerror(errno) : "ok");
    lseek(fd, 0, SEEK_SET);
    long good = 0;
    for (long i = 0; i * 4096 < total; i++) {
        n = read(fd, chunk, 4096);
        for (ssize_t k = 0; k < n; k++)
            good += (unsigned char)chunk[k] == i % 251;
    }
    printf("read back: %s\n", good == total ? "intact" : "CORRUPT");
    close(fd);
    char other[512];
    snprintf(other, sizeof other, "%s.keep", path);
    printf("remove another file: %s\n", unlink(other) ? strerror(errno) : "ok");
    fd = open(path, O_WRONLY | O_APPEND);
    n = write(fd, chunk, 4096);
    printf("write after freeing: %s\n", n == 4096 ? "ok" : strerror(errno));
    close(fd);
    return 0;
}

static int oom(const char *what) {
    long mib = 0;
    if (!strcmp(what, "fault")) {
        for (;; mib++) {
            char *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED)
                break;
            memset(m, 1, 1 << 20);
        }
    } else if (!strcmp(what, "pagecache")) {
        /* A shared mapping of a file four times the guest's RAM, every page dirtied: the
         * page cache must write back and reuse frames (Linux does), or the OOM killer. */
        int fd = open("/vol/big", O_RDWR | O_CREAT | O_TRUNC, 0600);
        long size = 256L << 20;
        ftruncate(fd, size);
        char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
            return perror("mmap"), 1;
        for (long off = 0; off < size; off += 4096)
            m[off] = (char)(off >> 12);
        msync(m, size, MS_SYNC);
        printf("pagecache: %ld MiB dirtied and synced\n", size >> 20);
        return 0;
    } else if (!strcmp(what, "tmpfs")) {
        int fd = open("/tmp/big", O_WRONLY | O_CREAT, 0600);
        memset(chunk, 7, sizeof chunk);
        while (write(fd, chunk, sizeof chunk) == (ssize_t)sizeof chunk)
            mib++;
        mib /= 16;
    } else if (!strcmp(what, "pipes") || !strcmp(what, "unix")) {
        int is_unix = !strcmp(what, "unix");
        long bytes = 0;
        for (;;) {
            int p[2];
            if (is_unix ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p)
                     : pipe2(p, O_NONBLOCK))
                break;
            if (!is_unix)
                fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
            ssize_t n;
            while ((n = write(p[1], chunk, sizeof chunk)) > 0)
                bytes += n;
            if (n < 0 && errno != EAGAIN)
                break;
        }
        mib = bytes >> 20;
    } else {
        return 2;
    }
    /* Not reached for "fault" when the OOM killer took the program. */
    printf("%s: stopped by %s after %s MiB\n", what, strerror(errno), mib > 8 ? "more than 8" : "at most 8");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 3)
        return 2;
    if (!strcmp(argv[1], "sync"))
        return sync_writer(argv[2]);
    if (!strcmp(argv[1], "fill"))
        return filler(argv[2]);
    if (!strcmp(argv[1], "oom"))
        return oom(argv[2]);
    return 2;
}
