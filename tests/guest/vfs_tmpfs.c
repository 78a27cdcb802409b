/* vfs_tmpfs: what a program does to files in a writable directory (argv[1]): create,
 * write, hard links and their counts, symlinks, renames (over files, into itself),
 * rmdir of a non-empty directory, a file unlinked while open, O_TMPFILE named with
 * linkat, a FIFO, MAP_SHARED writes, ftruncate, chmod/utimensat, fallocate, listing.
 * Run natively on a host directory and under umiak on tmpfs (/tmp) and on the root's
 * overlay: the output must be the same. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif
/* renameat2 through syscall(2): musl has no wrapper */
#define renameat2(a, b, c, d, f) syscall(SYS_renameat2, a, b, c, d, f)

static const char *errname(int e)
{
    static char other[32];
    switch (e) {
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN"; case EACCES: return "EACCES"; case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST"; case EXDEV: return "EXDEV"; case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR"; case EINVAL: return "EINVAL"; case ENOSPC: return "ENOSPC";
    case ESPIPE: return "ESPIPE"; case EROFS: return "EROFS"; case EPIPE: return "EPIPE";
    case ENOTEMPTY: return "ENOTEMPTY"; case ENXIO: return "ENXIO"; case EDEADLK: return "EDEADLK";
    case ELOOP: return "ELOOP"; case EOPNOTSUPP: return "EOPNOTSUPP";
    default: snprintf(other, sizeof other, "errno%d", e); return other;
    }
}

#define SHOW(label, expr) do { errno = 0; long _r = (long)(expr); \
    if (_r < 0) printf("%s: -1 %s\n", label, errname(errno)); \
    else printf("%s: %ld\n", label, _r); } while (0)

static int cmp(const void *a, const void *b) { return strcmp(*(char **)a, *(char **)b); }

static void list(const char *dir)
{
    DIR *d = opendir(dir);
    char *names[64];
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 64)
        names[n++] = strdup(e->d_name);
    qsort(names, n, sizeof *names, cmp);
    printf("ls %s:", dir);
    for (int i = 0; i < n; i++)
        printf(" %s", names[i]);
    printf("\n");
    if (d) closedir(d);
}

static long nlink(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0 ? (long)st.st_nlink : -1;
}

int main(int argc, char **argv)
{
    char buf[256];
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    umask(022);
    SHOW("mkdir t", mkdir("t", 0755));
    if (chdir("t") != 0) return 3;

    int fd = open("a", O_CREAT | O_RDWR | O_EXCL, 0640);
    SHOW("write a", write(fd, "hello, tmpfs\n", 13));
    SHOW("pread a", pread(fd, buf, sizeof buf, 7));
    SHOW("lseek end", lseek(fd, 0, SEEK_END));
    SHOW("pwrite past end", pwrite(fd, "Z", 1, 20));
    struct stat st;
    fstat(fd, &st);
    printf("size %ld mode %o nlink %ld\n", (long)st.st_size, st.st_mode & 07777, (long)st.st_nlink);
    SHOW("pread hole", pread(fd, buf, 8, 13));
    printf("hole bytes zero: %d\n", buf[0] == 0 && buf[6] == 0 && buf[7] == 'Z');

    SHOW("link a b", link("a", "b"));
    printf("nlink a %ld b %ld\n", nlink("a"), nlink("b"));
    SHOW("link onto existing", link("a", "b"));
    SHOW("symlink", symlink("a", "s"));
    SHOW("readlink", readlink("s", buf, sizeof buf));
    SHOW("dangling symlink", symlink("nothere", "d"));
    SHOW("open O_CREAT through dangling", open("d", O_CREAT | O_WRONLY, 0600) >= 0);
    SHOW("stat nothere", stat("nothere", &st));
    SHOW("unlink b", unlink("b"));
    printf("nlink a %ld\n", nlink("a"));

    SHOW("rename a c", rename("a", "c"));
    SHOW("stat a", stat("a", &st));
    int w = open("w", O_CREAT | O_WRONLY, 0600);
    close(w);
    SHOW("rename c over w", rename("c", "w"));
    SHOW("read via old fd", pread(fd, buf, 5, 0));
    printf("content %.5s\n", buf);

    SHOW("mkdir dir", mkdir("dir", 0700));
    SHOW("mkdir dir/sub", mkdir("dir/sub", 0700));
    SHOW("rename dir into itself", rename("dir", "dir/sub/x"));
    SHOW("rmdir non-empty", rmdir("dir"));
    SHOW("rename file over dir", rename("w", "dir"));
    SHOW("rename dir over file", rename("dir", "w"));
    SHOW("rename dir over empty dir", rename("dir/sub", "dir2") == 0 && mkdir("dir3", 0700) == 0 ?
         rename("dir2", "dir3") : -1);
    printf("nlink dir %ld\n", nlink("dir"));
    SHOW("rmdir dir", rmdir("dir"));
    SHOW("rename noreplace", renameat2(AT_FDCWD, "w", AT_FDCWD, "s", RENAME_NOREPLACE));
    SHOW("rename exchange", renameat2(AT_FDCWD, "w", AT_FDCWD, "s", RENAME_EXCHANGE));
    SHOW("readlink w", readlink("w", buf, sizeof buf));

    /* unlinked while open: still readable and writable */
    int u = open("gone", O_CREAT | O_RDWR, 0600);
    write(u, "still here", 10);
    SHOW("unlink gone", unlink("gone"));
    fstat(u, &st);
    printf("gone nlink %ld size %ld\n", (long)st.st_nlink, (long)st.st_size);
    SHOW("pread gone", pread(u, buf, 10, 0));
    close(u);

    /* O_TMPFILE, then a name for it */
    int t = open(".", O_TMPFILE | O_RDWR, 0600);
    if (t >= 0) {
        write(t, "tmp", 3);
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", t);
        SHOW("linkat tmpfile", linkat(AT_FDCWD, p, AT_FDCWD, "named", AT_SYMLINK_FOLLOW));
        printf("named size %ld\n", (stat("named", &st), (long)st.st_size));
        close(t);
    }

    /* a FIFO */
    SHOW("mkfifo", mkfifo("fifo", 0600));
    SHOW("open fifo wronly nonblock", open("fifo", O_WRONLY | O_NONBLOCK));
    int ff = open("fifo", O_RDWR);
    SHOW("fifo write", write(ff, "pipe", 4));
    SHOW("fifo read", read(ff, buf, sizeof buf));
    lstat("fifo", &st);
    printf("fifo is fifo %d\n", S_ISFIFO(st.st_mode));
    close(ff);

    /* MAP_SHARED writes reach the file */
    int m = open("map", O_CREAT | O_RDWR, 0600);
    SHOW("ftruncate map", ftruncate(m, 8192));
    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
    if (p != MAP_FAILED) {
        memcpy(p + 4096, "mapped", 6);
        msync(p, 8192, MS_SYNC);
        munmap(p, 8192);
    }
    SHOW("pread map", pread(m, buf, 6, 4096));
    printf("map content %.6s\n", buf);
    SHOW("ftruncate shrink", ftruncate(m, 10));
    SHOW("fallocate", fallocate(m, 0, 0, 100000));
    fstat(m, &st);
    printf("map size %ld\n", (long)st.st_size);
    close(m);

    SHOW("chmod", chmod("map", 0604));
    struct timespec ts[2] = {{1000000000, 5}, {1200000000, 7}};
    SHOW("utimensat", utimensat(AT_FDCWD, "map", ts, 0));
    stat("map", &st);
    printf("map mode %o atime %ld.%ld mtime %ld.%ld\n", st.st_mode & 07777, (long)st.st_atim.tv_sec,
           st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    SHOW("truncate path", truncate("map", 3));
    stat("map", &st);
    printf("map size %ld blocks>0 %d\n", (long)st.st_size, st.st_blocks > 0);

    list(".");
    SHOW("rmdir .", rmdir("."));
    SHOW("unlink dir3", unlink("dir3"));
    close(fd);
    return 0;
}
