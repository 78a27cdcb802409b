/* vfs_files: files, stat, symlinks, `..`, directory listing, descriptors.
 * argv[1]: a directory the test filled (see tests/test_vfs.py make_tree).
 * Prints only what is the same natively and under umiak (no times, no device numbers). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

static const char *errname(int e)
{
    switch (e) {
    case 0: return "OK";
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case ENXIO: return "ENXIO";
    case EBADF: return "EBADF"; case EAGAIN: return "EAGAIN"; case EACCES: return "EACCES";
    case EFAULT: return "EFAULT"; case EBUSY: return "EBUSY"; case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV"; case ENOTDIR: return "ENOTDIR"; case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL"; case EMFILE: return "EMFILE"; case ENOTTY: return "ENOTTY";
    case ENOSPC: return "ENOSPC"; case ESPIPE: return "ESPIPE"; case EROFS: return "EROFS";
    case EPIPE: return "EPIPE"; case ERANGE: return "ERANGE"; case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS"; case ENOTEMPTY: return "ENOTEMPTY"; case ELOOP: return "ELOOP";
    case E2BIG: return "E2BIG";
    default: { static char buf[32]; snprintf(buf, sizeof buf, "errno%d", e); return buf; }
    }
}

#define SHOW(label, expr) do { errno = 0; long _r = (long)(expr); \
    if (_r < 0) printf("%s: -1 %s\n", label, errname(errno)); \
    else printf("%s: %ld\n", label, _r); } while (0)

/* our own layouts: musl's headers lack statx and dirent64 */
struct kstatx {
    unsigned int mask, blksize; unsigned long long attributes;
    unsigned int nlink, uid, gid; unsigned short mode, pad0;
    unsigned long long ino, size, blocks, attributes_mask;
    struct { long long sec; unsigned int nsec; int pad; } atime, btime, ctime, mtime;
    unsigned int rdev_major, rdev_minor, dev_major, dev_minor;
    unsigned long long spare[14];
};
struct kdirent64 { unsigned long long d_ino; long long d_off; unsigned short d_reclen; unsigned char d_type; char d_name[]; };
#define MY_STATX_BASIC_STATS 0x7ff
#define my_statx(d, p, f, m, b) syscall(SYS_statx, d, p, f, m, b)
#define my_close_range(a, b, c) syscall(SYS_close_range, a, b, c)
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC 4
#endif

static ino_t ino_of(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? st.st_ino : 0;
}

static void show_stat(const char *label, int r, struct stat *st)
{
    if (r < 0) { printf("%s: -1 %s\n", label, errname(errno)); return; }
    printf("%s: mode=%o size=%lld nlink=%ld same-ino-as-file=%s\n", label, (unsigned)st->st_mode,
           (long long)st->st_size, (long)st->st_nlink, st->st_ino == ino_of("file") ? "yes" : "no");
}

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

static void list_dir(const char *path, int bufsize)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) { printf("list %s: -1 %s\n", path, errname(errno)); return; }
    char buf[4096], *names[512];
    int n = 0, calls = 0;
    for (;;) {
        long got = syscall(SYS_getdents64, fd, buf, bufsize);
        if (got < 0) { printf("getdents64: -1 %s\n", errname(errno)); break; }
        if (got == 0) break;
        calls++;
        for (long off = 0; off < got;) {
            struct kdirent64 *d = (struct kdirent64 *)(buf + off);
            char *s = malloc(300);
            snprintf(s, 300, "%s(%d)", d->d_name, d->d_type);
            if (n < 512) names[n++] = s;
            off += d->d_reclen;
        }
    }
    qsort(names, n, sizeof names[0], cmp);
    printf("list %s (%d entries, several calls: %s):", path, n, calls > 1 ? "yes" : "no");
    for (int i = 0; i < n; i++) printf(" %s", names[i]);
    printf("\n");
    /* rewind and read again: the same count */
    lseek(fd, 0, SEEK_SET);
    long again = syscall(SYS_getdents64, fd, buf, sizeof buf);
    printf("after rewind: %s\n", again > 0 ? "entries" : "none");
    close(fd);
}

int main(int argc, char **argv)
{
    char buf[256];
    struct stat st;
    if (argc < 2 || chdir(argv[1]) != 0) { perror("chdir"); return 2; }

    /* -- reading ------------------------------------------------------- */
    int fd = open("file", O_RDONLY);
    SHOW("open file", fd);
    SHOW("read 5", read(fd, buf, 5)); printf("  data %.5s\n", buf);
    SHOW("lseek cur", lseek(fd, 0, SEEK_CUR));
    SHOW("pread 4 at 10", pread(fd, buf, 4, 10)); printf("  data %.4s\n", buf);
    SHOW("lseek cur after pread", lseek(fd, 0, SEEK_CUR));
    char a[3], b[4];
    struct iovec iov[2] = {{a, 3}, {b, 4}};
    SHOW("readv 3+4", readv(fd, iov, 2)); printf("  data %.3s|%.4s\n", a, b);
    SHOW("preadv at 1", preadv(fd, iov, 2, 1)); printf("  data %.3s|%.4s\n", a, b);
    SHOW("lseek end", lseek(fd, 0, SEEK_END));
    SHOW("read at eof", read(fd, buf, 10));
    SHOW("lseek -1 set", lseek(fd, -1, SEEK_SET));
    SHOW("lseek whence 9", lseek(fd, 0, 9));
    SHOW("pread negative", pread(fd, buf, 1, -1));
    SHOW("write to O_RDONLY", write(fd, "x", 1));
    int n = 0;
    lseek(fd, 100, SEEK_SET);
    SHOW("FIONREAD", ioctl(fd, FIONREAD, &n)); printf("  available %d\n", n);
    struct termios t;
    SHOW("TCGETS on a file", ioctl(fd, TCGETS, &t));
    struct winsize ws;
    SHOW("TIOCGWINSZ on a file", ioctl(fd, TIOCGWINSZ, &ws));
    {
        char *volatile bad = (char *)8;
        SHOW("read bad buffer", read(fd, bad, 4));
    }

    /* a file larger than a read chunk is read whole */
    int big = open("big", O_RDONLY);
    char *bb = malloc(3 << 20);
    SHOW("read big whole", read(big, bb, 3 << 20));
    long sum = 0;
    for (int i = 0; i < (3 << 20) - 100; i += 4093) sum += (unsigned char)bb[i];
    printf("  checksum %ld\n", sum);
    close(big);

    /* -- stat --------------------------------------------------------- */
    show_stat("stat file", stat("file", &st), &st);
    show_stat("fstat fd", fstat(fd, &st), &st);
    show_stat("stat rel", stat("rel", &st), &st);
    show_stat("lstat rel", lstat("rel", &st), &st);
    show_stat("stat abs", stat("abs", &st), &st);
    show_stat("stat chain", stat("chain", &st), &st);
    show_stat("stat up", stat("up", &st), &st);
    show_stat("stat sub/../file", stat("sub/../file", &st), &st);
    show_stat("stat ./sub/./../file", stat("./sub/./../file", &st), &st);
    show_stat("stat empty", stat("empty", &st), &st);
    show_stat("stat sub", stat("sub", &st), &st);
    show_stat("fstatat AT_EMPTY_PATH", fstatat(fd, "", &st, AT_EMPTY_PATH), &st);
    show_stat("fstatat empty no flag", fstatat(fd, "", &st, 0), &st);
    show_stat("fstatat bad flag", fstatat(AT_FDCWD, "file", &st, 0x8000), &st);
    show_stat("lstat dangling", lstat("dangling", &st), &st);
    show_stat("stat dangling", stat("dangling", &st), &st);
    show_stat("stat loop1", stat("loop1", &st), &st);
    show_stat("stat file/", stat("file/", &st), &st);
    show_stat("stat rel/", stat("rel/", &st), &st);
    show_stat("stat file/.", stat("file/.", &st), &st);
    {
        struct kstatx sx;
        errno = 0;
        int r = my_statx(AT_FDCWD, "rel", 0, MY_STATX_BASIC_STATS, &sx);
        if (r < 0) printf("statx: -1 %s\n", errname(errno));
        else printf("statx rel: mode=%o size=%llu nlink=%u same-ino=%s\n", sx.mode,
                    (unsigned long long)sx.size, sx.nlink, sx.ino == ino_of("file") ? "yes" : "no");
        r = my_statx(fd, "", AT_EMPTY_PATH, MY_STATX_BASIC_STATS, &sx);
        printf("statx AT_EMPTY_PATH: %d size=%llu\n", r, (unsigned long long)sx.size);
        SHOW("statx bad sync type", my_statx(AT_FDCWD, "file", 0x6000, MY_STATX_BASIC_STATS, &sx));
    }
    printf("dot-dot at root: %s\n", ino_of("/..") == ino_of("/") && ino_of("/../../..") == ino_of("/") ? "stays" : "climbs");
    printf("subl/.. is the directory: %s\n", ino_of("subl/..") == ino_of(".") ? "yes" : "no");
    printf("abs dir symlink to /: %s\n", ino_of("rootlink/etc") == ino_of("/etc") ? "yes" : "no");
    printf("subl/inner via dir symlink: %s\n", ino_of("subl/inner") == ino_of("sub/inner") ? "yes" : "no");

    /* -- readlink ----------------------------------------------------- */
    ssize_t r = readlink("rel", buf, sizeof buf);
    printf("readlink rel: %zd %.*s\n", r, (int)(r > 0 ? r : 0), buf);
    r = readlink("chain", buf, 2);
    printf("readlink chain short buffer: %zd %.*s\n", r, (int)(r > 0 ? r : 0), buf);
    SHOW("readlink file", readlink("file", buf, sizeof buf));
    SHOW("readlink missing", readlink("missing", buf, sizeof buf));
    SHOW("readlink size 0", readlink("rel", buf, 0));
    SHOW("readlink empty path", readlink("", buf, sizeof buf));
    int lfd = open("rel", O_PATH | O_NOFOLLOW);
    SHOW("open O_PATH|O_NOFOLLOW symlink", lfd >= 0 ? 0 : -1);
    r = readlinkat(lfd, "", buf, sizeof buf);
    printf("readlinkat O_PATH fd: %zd %.*s\n", r, (int)(r > 0 ? r : 0), buf);
    show_stat("fstat O_PATH symlink", fstat(lfd, &st), &st);
    SHOW("read O_PATH", read(lfd, buf, 1));
    SHOW("F_GETFL O_PATH", fcntl(lfd, F_GETFL));
    close(lfd);

    /* -- errors ------------------------------------------------------- */
    SHOW("open missing", open("missing", O_RDONLY));
    SHOW("open file/x", open("file/x", O_RDONLY));
    SHOW("open file/", open("file/", O_RDONLY));
    SHOW("open sub O_WRONLY", open("sub", O_WRONLY));
    SHOW("open sub O_RDWR", open("sub", O_RDWR));
    SHOW("open loop1", open("loop1", O_RDONLY));
    SHOW("open self", open("self", O_RDONLY));
    SHOW("open rel O_NOFOLLOW", open("rel", O_RDONLY | O_NOFOLLOW));
    SHOW("open dangling", open("dangling", O_RDONLY));
    SHOW("open file O_DIRECTORY", open("file", O_RDONLY | O_DIRECTORY));
    SHOW("open empty path", open("", O_RDONLY));
    SHOW("open O_CREAT|O_DIRECTORY", open("newdir", O_RDONLY | O_CREAT | O_DIRECTORY, 0700));
    SHOW("open sub/ O_CREAT", open("sub/", O_RDONLY | O_CREAT, 0600));
    SHOW("open file O_CREAT|O_EXCL", open("file", O_RDWR | O_CREAT | O_EXCL, 0600));
    SHOW("open missing/x O_CREAT", open("missing/x", O_RDWR | O_CREAT, 0600));
    SHOW("mkdir sub", mkdir("sub", 0700));
    SHOW("mkdir missing/x", mkdir("missing/x", 0700));
    SHOW("mkdir file/x", mkdir("file/x", 0700));
    SHOW("symlink onto file", symlink("x", "file"));
    SHOW("link missing", link("missing", "x"));
    SHOW("rmdir .", rmdir("."));
    {
        char name[300];
        memset(name, 'n', 256); name[256] = 0;
        SHOW("component of 256", open(name, O_RDONLY));
        name[255] = 0;
        SHOW("component of 255", open(name, O_RDONLY));
        char *longp = malloc(5000);
        memset(longp, 0, 5000);
        for (int i = 0; i < 4100; i += 2) memcpy(longp + i, "./", 2);
        SHOW("path of 4100", open(longp, O_RDONLY));
        longp[4095] = 0;
        SHOW("path of 4095", open(longp, O_RDONLY | O_DIRECTORY) >= 0 ? 0 : -1);
    }
    int dfd = open("sub", O_RDONLY | O_DIRECTORY);
    SHOW("read a directory", read(dfd, buf, 10));
    SHOW("openat dirfd inner", openat(dfd, "inner", O_RDONLY) >= 0 ? 0 : -1);
    SHOW("openat dirfd ../file", openat(dfd, "../file", O_RDONLY) >= 0 ? 0 : -1);
    SHOW("openat file as dirfd", openat(fd, "x", O_RDONLY));
    SHOW("openat bad dirfd", openat(99, "x", O_RDONLY));
    SHOW("openat bad dirfd abs", openat(99, "/etc", O_RDONLY) >= 0 ? 0 : -1);

    /* -- access ---------------------------------------------------------- */
    SHOW("access file R_OK", access("file", R_OK));
    SHOW("access file X_OK", access("file", X_OK));
    SHOW("access sub X_OK", access("sub", X_OK));
    SHOW("access missing", access("missing", F_OK));
    SHOW("access mode 8", access("file", 8));
    SHOW("faccessat2 nofollow dangling", syscall(439, AT_FDCWD, "dangling", F_OK, AT_SYMLINK_NOFOLLOW));
    SHOW("faccessat2 bad flag", syscall(439, AT_FDCWD, "file", F_OK, 0x1));

    /* -- directories ------------------------------------------------------ */
    list_dir(".", 96);
    list_dir("subl", 4096);
    list_dir("sub/", 4096);
    SHOW("getdents64 tiny buffer", syscall(SYS_getdents64, dfd, buf, 8));
    SHOW("getdents64 on a file", syscall(SYS_getdents64, fd, buf, sizeof buf));
    char cwd[4096];
    SHOW("getcwd size 1", getcwd(cwd, 1) ? 0 : -1);
    getcwd(cwd, sizeof cwd);
    printf("getcwd is argv[1]: %s\n", strcmp(cwd, argv[1]) == 0 ? "yes" : cwd);
    SHOW("chdir subl", chdir("subl"));
    getcwd(cwd, sizeof cwd);
    printf("cwd after chdir through symlink ends with /sub: %s\n",
           strlen(cwd) > 4 && strcmp(cwd + strlen(cwd) - 4, "/sub") == 0 ? "yes" : cwd);
    SHOW("open inner relative", open("inner", O_RDONLY) >= 0 ? 0 : -1);
    SHOW("chdir ..", chdir(".."));
    SHOW("chdir file", chdir("file"));
    SHOW("chdir missing", chdir("missing"));
    SHOW("fchdir dirfd", fchdir(dfd));
    SHOW("open inner after fchdir", open("inner", O_RDONLY) >= 0 ? 0 : -1);
    SHOW("fchdir file", fchdir(fd));
    chdir(argv[1]);

    /* -- descriptors ------------------------------------------------------ */
    my_close_range(3, ~0U, 0);
    fd = open("file", O_RDONLY);
    SHOW("open after close_range", fd);
    SHOW("dup", dup(fd));
    SHOW("dup2 same", dup2(fd, fd));
    SHOW("dup2 to 10", dup2(fd, 10));
    SHOW("dup2 bad old", dup2(77, 11));
    SHOW("dup3 same", dup3(fd, fd, 0));
    SHOW("dup3 cloexec", dup3(fd, 12, O_CLOEXEC));
    SHOW("F_GETFD 12", fcntl(12, F_GETFD));
    SHOW("F_GETFD 10", fcntl(10, F_GETFD));
    SHOW("dup3 bad flags", dup3(fd, 13, 0x1234));
    SHOW("F_DUPFD 20", fcntl(fd, F_DUPFD, 20));
    SHOW("F_DUPFD_CLOEXEC 20", fcntl(fd, F_DUPFD_CLOEXEC, 20));
    SHOW("F_GETFD 21", fcntl(21, F_GETFD));
    SHOW("F_SETFD 21 0", fcntl(21, F_SETFD, 0));
    SHOW("F_GETFD 21", fcntl(21, F_GETFD));
    SHOW("F_GETFL", fcntl(fd, F_GETFL));
    SHOW("F_SETFL O_NONBLOCK|O_APPEND", fcntl(fd, F_SETFL, O_NONBLOCK | O_APPEND));
    SHOW("F_GETFL", fcntl(fd, F_GETFL));
    SHOW("F_GETFL dup shares", fcntl(10, F_GETFL));
    SHOW("F_GETFL dir", fcntl(dfd = open(".", O_RDONLY | O_DIRECTORY), F_GETFL));
    SHOW("fcntl bad cmd", fcntl(fd, 9999));
    SHOW("fcntl bad fd", fcntl(99, F_GETFD));
    read(fd, buf, 7);
    SHOW("offset shared with dup", lseek(10, 0, SEEK_CUR));
    struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    SHOW("F_SETLK read lock", fcntl(fd, F_SETLK, &fl));
    fl.l_type = F_WRLCK;
    SHOW("F_SETLK write lock on O_RDONLY", fcntl(fd, F_SETLK, &fl));
    SHOW("F_GETLK", fcntl(fd, F_GETLK, &fl)); printf("  l_type unlocked: %s\n", fl.l_type == F_UNLCK ? "yes" : "no");
    SHOW("close 10", close(10));
    SHOW("close 10 again", close(10));
    SHOW("close_range bad", my_close_range(5, 4, 0));
    SHOW("close_range cloexec", my_close_range(20, 30, CLOSE_RANGE_CLOEXEC));
    SHOW("F_GETFD 20", fcntl(20, F_GETFD));
    SHOW("close_range", my_close_range(11, 30, 0));
    SHOW("F_GETFD 20 closed", fcntl(20, F_GETFD));
    SHOW("fsync file", fsync(fd));
    SHOW("fdatasync dir", fdatasync(dfd));
    SHOW("ftruncate O_RDONLY", ftruncate(fd, 0));
    SHOW("truncate negative", truncate("file", -1));
    SHOW("truncate dir", truncate("sub", 0));
    return 0;
}
