/* files: read real files given on the command line, in several ways.
 * argv[1] = a text file, argv[2] = a symlink to it, argv[3] = a directory.
 * Probes: open/openat, read in small chunks, lseek (SET/CUR/END), pread, fstat
 * and stat (size, type, mode, nlink), lstat of a symlink, readlink, fopen/fgets
 * (stdio buffering), dup/dup2 sharing the offset, close, fcntl(F_GETFD/F_SETFD),
 * O_CLOEXEC, access(R_OK), mmap of the file (shared view and private copy-on-write,
 * zero fill past EOF), and reading /proc/self/exe through readlink. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *ftype(mode_t m)
{
    return S_ISREG(m) ? "regular" : S_ISDIR(m) ? "directory" : S_ISLNK(m) ? "symlink" : "other";
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    const char *file = argv[1], *link = argv[2], *dir = argv[3];

    int fd = open(file, O_RDONLY | O_CLOEXEC);
    printf("open: %s\n", fd >= 0 ? "ok" : strerror(errno));
    char buf[7];
    ssize_t n, total = 0;
    unsigned long sum = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            sum = sum * 31 + (unsigned char)buf[i];
        total += n;
    }
    printf("read in 7-byte chunks: %zd bytes, hash %lu, last read %zd\n", total, sum, n);
    printf("read at EOF: %zd\n", read(fd, buf, sizeof buf));
    printf("lseek END: %ld\n", (long)lseek(fd, 0, SEEK_END));
    printf("lseek SET 5: %ld\n", (long)lseek(fd, 5, SEEK_SET));
    n = read(fd, buf, 6);
    printf("read after seek: [%.*s]\n", (int)n, buf);
    printf("lseek CUR -3: %ld\n", (long)lseek(fd, -3, SEEK_CUR));
    n = pread(fd, buf, 4, 1);
    printf("pread 4 at 1: [%.*s], offset still %ld\n", (int)n, buf, (long)lseek(fd, 0, SEEK_CUR));
    long off = (long)lseek(fd, 1000000, SEEK_SET);
    printf("lseek past EOF: %ld, read there %zd\n", off, read(fd, buf, 1));
    printf("FD_CLOEXEC set: %s\n", fcntl(fd, F_GETFD) & FD_CLOEXEC ? "yes" : "no");
    fcntl(fd, F_SETFD, 0);
    printf("FD_CLOEXEC cleared: %s\n", fcntl(fd, F_GETFD) & FD_CLOEXEC ? "no" : "yes");
    printf("O_RDONLY in F_GETFL: %s\n", (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDONLY ? "yes" : "no");

    int d = dup(fd);
    lseek(fd, 2, SEEK_SET);
    printf("dup shares offset: %s\n", lseek(d, 0, SEEK_CUR) == 2 ? "yes" : "no");
    printf("dup2 to 10: %d\n", dup2(fd, 10));
    int c1 = close(d), c2 = close(10), c3 = close(10);
    printf("close dup: %d, close 10: %d, close again: %d\n", c1, c2, c3);

    struct stat st, ls, ds;
    fstat(fd, &st);
    printf("fstat: size %ld, %s, mode %o, nlink %lu\n", (long)st.st_size, ftype(st.st_mode),
           st.st_mode & 07777, (unsigned long)st.st_nlink);
    struct stat st2;
    stat(file, &st2);
    printf("stat agrees with fstat: %s\n",
           st2.st_ino == st.st_ino && st2.st_dev == st.st_dev && st2.st_size == st.st_size ? "yes" : "no");
    stat(link, &ls);
    printf("stat through symlink: %s, same inode: %s\n", ftype(ls.st_mode), ls.st_ino == st.st_ino ? "yes" : "no");
    lstat(link, &ls);
    printf("lstat symlink: %s, size %ld\n", ftype(ls.st_mode), (long)ls.st_size);
    char target[4096];
    n = readlink(link, target, sizeof target);
    printf("readlink: [%.*s]\n", (int)(n > 0 ? n : 0), target);
    n = readlink(link, target, 3);
    printf("readlink truncated to 3: %zd [%.*s]\n", n, (int)(n > 0 ? n : 0), target);
    stat(dir, &ds);
    printf("stat dir: %s\n", ftype(ds.st_mode));
    printf("access R_OK: %d\n", access(file, R_OK));

    /* mmap: the file's bytes, zeros after EOF within the last page, private writes stay private */
    char *m = mmap(NULL, st.st_size + 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("mmap file: %s\n", m != MAP_FAILED ? "ok" : strerror(errno));
    if (m != MAP_FAILED) {
        char head[16];
        pread(fd, head, sizeof head, 0);
        printf("mmap matches read: %s\n", !memcmp(m, head, sizeof head) ? "yes" : "no");
        long tail = 4096 - st.st_size % 4096;
        int zero = 1;
        for (long i = 0; i < tail && st.st_size % 4096; i++)
            zero &= m[st.st_size + i] == 0;
        printf("zero past EOF: %s\n", zero ? "yes" : "no");
        munmap(m, st.st_size + 4096);
    }
    char *w = st.st_size > 4096 + 16 ? mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 4096)
                                     : NULL;  /* a page wholly past EOF would be SIGBUS */
    if (w == NULL) {
        printf("file too small for a mapping at offset 4096\n");
    } else if (w != MAP_FAILED) {
        char before = w[0];
        w[0] = before ^ 0x20;
        char now;
        pread(fd, &now, 1, 4096);
        printf("private write stays private: %s, offset 4096 mapped: [%.10s]\n",
               now == before ? "yes" : "no", w + 1);
        munmap(w, 4096);
    } else {
        printf("mmap at offset 4096: %s\n", strerror(errno));
    }
    errno = 0;
    printf("mmap unaligned offset: %s\n",
           mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 100) == MAP_FAILED && errno == EINVAL ? "EINVAL" : "other");
    errno = 0;
    printf("mmap O_RDONLY fd MAP_SHARED|PROT_WRITE: %s\n",
           mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EACCES ? "EACCES" : "other");
    close(fd);

    FILE *f = fopen(file, "r");
    char line[256];
    int lines = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (lines < 3)
            printf("line %d: %s", lines + 1, line);
        lines++;
    }
    printf("lines: %d\n", lines);
    if (f)
        fclose(f);

    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    int fd2 = openat(dfd, base, O_RDONLY);
    n = read(fd2, buf, 5);
    printf("openat relative to a dir fd: [%.*s]\n", (int)(n > 0 ? n : 0), buf);
    struct stat at;
    int r = fstatat(dfd, base, &at, 0);
    printf("fstatat: %d, size matches: %s\n", r, at.st_size == st.st_size ? "yes" : "no");

    /* /proc/self/exe names the program itself. */
    char exe[4096];
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char *real = realpath(argv[0], NULL);
    printf("/proc/self/exe is the program: %s\n", real && !strcmp(exe, real) ? "yes" : "no");
    return 0;
}
