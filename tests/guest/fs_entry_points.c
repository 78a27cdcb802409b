/* fs_entry_points: the old and the *at entry points of the file syscalls reach the same
 * code with the same arguments. In a writable directory (argv[1]), by raw syscall(2) so
 * every libc variant makes the same calls:
 * Probes: mkdir, mknod (FIFO), symlink, readlink (bufsiz 0, truncation), link, rename,
 * renameat, unlink, rmdir (".", a file), chmod, fchmodat, chown, lchown, utime, utimes,
 * futimesat and utimensat with a NULL path (times read back with stat), dup2 (same fd, negative fd), dup3 (EINVAL),
 * preadv/pwritev and preadv2/pwritev2 (offset -1, offset -2, unknown flags), vmsplice
 * both ways, fcntl F_GETLK/F_SETLK with a struct flock. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

static char dir[512];

static const char *p(const char *name)
{
    static char buf[2][600];
    static int i;
    i ^= 1;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void show(const char *what, long r)
{
    if (r < 0)
        printf("%s = -1 errno %d\n", what, errno);
    else
        printf("%s = %ld\n", what, r);
}

static void times_of(const char *name)
{
    struct stat st;
    if (stat(p(name), &st) != 0) {
        printf("stat %s: errno %d\n", name, errno);
        return;
    }
    printf("%s: atime %lld mtime %lld mode %o\n", name, (long long)st.st_atime,
           (long long)st.st_mtime, st.st_mode & 07777);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    snprintf(dir, sizeof dir, "%s", argv[1]);
    umask(022);

    show("mkdir d", syscall(SYS_mkdir, p("d"), 0755));
    show("mkdir d again", syscall(SYS_mkdir, p("d"), 0755));
    show("mknod fifo", syscall(SYS_mknod, p("fifo"), S_IFIFO | 0644, 0));
    show("mknod dir type", syscall(SYS_mknod, p("x"), S_IFDIR | 0644, 0));
    int fd = open(p("f"), O_CREAT | O_RDWR, 0644);
    show("write f", write(fd, "0123456789", 10));
    show("symlink", syscall(SYS_symlink, "f", p("s")));
    show("symlink empty", syscall(SYS_symlink, "", p("s2")));
    char buf[64];
    show("readlink bufsiz 0", syscall(SYS_readlink, p("s"), buf, 0));
    memset(buf, 0, sizeof buf);
    long n = syscall(SYS_readlink, p("s"), buf, 1);
    printf("readlink bufsiz 1 = %ld '%.*s'\n", n, (int)(n > 0 ? n : 0), buf);
    show("readlinkat", syscall(SYS_readlinkat, AT_FDCWD, p("s"), buf, sizeof buf));
    show("link", syscall(SYS_link, p("f"), p("hard")));
    show("link dir", syscall(SYS_link, p("d"), p("d2")));
    show("rename", syscall(SYS_rename, p("hard"), p("hard2")));
    show("renameat", syscall(SYS_renameat, AT_FDCWD, p("hard2"), AT_FDCWD, p("hard3")));
    show("unlink", syscall(SYS_unlink, p("hard3")));
    show("unlink dir", syscall(SYS_unlink, p("d")));
    show("rmdir file", syscall(SYS_rmdir, p("f")));
    show("rmdir dot", syscall(SYS_rmdir, p("d/.")));
    show("chmod", syscall(SYS_chmod, p("f"), 0600));
    show("fchmodat", syscall(SYS_fchmodat, AT_FDCWD, p("d"), 0700));
    show("chown self", syscall(SYS_chown, p("f"), getuid(), getgid()));
    show("chown -1", syscall(SYS_chown, p("f"), -1L, -1L));
    show("lchown link", syscall(SYS_lchown, p("s"), getuid(), -1L));
    struct utimbuf ub = {1000000000, 1100000000};
    show("utime", syscall(SYS_utime, p("f"), &ub));
    times_of("f");
    struct timeval tv[2] = {{1200000000, 5}, {1300000000, 7}};
    show("utimes", syscall(SYS_utimes, p("f"), tv));
    times_of("f");
    tv[1].tv_usec = 1000000;
    show("utimes bad usec", syscall(SYS_utimes, p("f"), tv));
    tv[0].tv_sec = 1400000000; tv[1].tv_usec = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    show("futimesat", syscall(SYS_futimesat, dfd, "d", tv));
    times_of("d");
    show("futimesat NULL path", syscall(SYS_futimesat, dfd, NULL, tv));
    show("utime missing", syscall(SYS_utime, p("missing"), &ub));
    show("utimes NULL path", syscall(SYS_utimes, NULL, tv));
    tv[0].tv_usec = -1;
    show("utimes NULL path bad usec", syscall(SYS_utimes, NULL, tv));
    tv[0].tv_usec = 0;
    struct timespec ts[2] = {{1500000000, 0}, {1500000001, 0}};
    show("utimensat NULL path AT_FDCWD", syscall(SYS_utimensat, AT_FDCWD, NULL, ts, 0));
    show("utimensat NULL path flags", syscall(SYS_utimensat, dfd, NULL, ts, AT_SYMLINK_NOFOLLOW));
    show("utimensat NULL path", syscall(SYS_utimensat, dfd, NULL, ts, 0));
    times_of(".");

    show("dup2 same", syscall(SYS_dup2, fd, fd));
    show("dup2 negative", syscall(SYS_dup2, fd, -1L));
    show("dup2 bad old", syscall(SYS_dup2, 999, 50));
    show("dup3 same", syscall(SYS_dup3, fd, fd, 0));
    show("dup3 flags", syscall(SYS_dup3, fd, 51, 1));
    show("dup2 to 40", syscall(SYS_dup2, fd, 40));
    close(40);

    char a[4] = {0}, b[4] = {0};
    struct iovec iov[2] = {{a, 3}, {b, 3}};
    show("preadv 2", syscall(SYS_preadv, fd, iov, 2, 2L, 0L));
    printf("got %s %s\n", a, b);
    show("preadv2 -1", syscall(SYS_preadv2, fd, iov, 2, -1L, 0L, 0));
    show("preadv2 -2", syscall(SYS_preadv2, fd, iov, 2, -2L, 0L, 0));
    show("preadv2 flags", syscall(SYS_preadv2, fd, iov, 2, 0L, 0L, 0x40000000));
    show("preadv2 bad fd", syscall(SYS_preadv2, 999, iov, 2, 0L, 0L, 0x40000000));
    show("preadv iovcnt -1", syscall(SYS_preadv, fd, iov, -1, 0L, 0L));
    struct iovec w[2] = {{"ab", 2}, {"cd", 2}};
    show("pwritev 1", syscall(SYS_pwritev, fd, w, 2, 1L, 0L));
    show("pwritev2 -1", syscall(SYS_pwritev2, fd, w, 2, -1L, 0L, 0));
    show("pwritev2 flags", syscall(SYS_pwritev2, fd, w, 2, 0L, 0L, 0x40000000));
    memset(a, 0, 4); memset(b, 0, 4);
    show("pread back", pread(fd, buf, 20, 0));
    printf("file now %.14s\n", buf);

    int pp[2];
    if (pipe(pp) != 0)
        return 1;
    struct iovec v = {"spliced", 7};
    show("vmsplice in", syscall(SYS_vmsplice, pp[1], &v, 1, 0));
    char out[8] = {0};
    struct iovec r = {out, 7};
    show("vmsplice out", syscall(SYS_vmsplice, pp[0], &r, 1, 0));
    printf("vmsplice read '%s'\n", out);
    show("vmsplice file", syscall(SYS_vmsplice, fd, &v, 1, 0));

    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 2, .l_len = 3};
    show("F_SETLK", fcntl(fd, F_SETLK, &fl));
    fl.l_type = F_RDLCK;
    show("F_GETLK own", fcntl(fd, F_GETLK, &fl));
    printf("l_type %d (unlock %d) start %lld len %lld\n", fl.l_type, F_UNLCK,
           (long long)fl.l_start, (long long)fl.l_len);
    fl.l_type = 7;
    show("F_SETLK bad type", fcntl(fd, F_SETLK, &fl));

    unlink(p("s")); unlink(p("fifo")); unlink(p("f")); rmdir(p("d"));
    return 0;
}
