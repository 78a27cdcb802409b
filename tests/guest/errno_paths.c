/* errno_paths: the errno Linux gives for bad paths, bad fds and bad pointers.
 * argv[1] = a scratch directory prepared by the test, containing: "file" (0644),
 * "dir/", "link" -> file, "dangling" -> missing, "loop1" <-> "loop2" (a cycle).
 * Probes: path walk errors (ENOENT, ENOTDIR, ENAMETOOLONG, ELOOP, EISDIR),
 * EACCES from access(X_OK) on a non-executable file (holds for root too),
 * EFAULT for a bad pointer passed straight to the kernel with syscall(),
 * EBADF, EINVAL, ERANGE; also the validation order of openat. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <unistd.h>

static void *volatile bad_pointer = (void *)0x10;  /* volatile: keep gcc from warning */
#define BAD bad_pointer

static const char *ename(long r)
{
    if (r >= 0)
        return "success";
    switch (errno) {
#define E(x) case x: return #x;
    E(ENOENT) E(ENOTDIR) E(EACCES) E(ENAMETOOLONG) E(EFAULT) E(EBADF) E(EINVAL)
    E(EISDIR) E(ELOOP) E(ERANGE) E(EEXIST) E(EROFS) E(ENOTEMPTY) E(EPERM) E(ESPIPE)
    E(ENOTTY) E(EXDEV) E(ENOSYS) E(EMFILE)
#undef E
    default: return "other";
    }
}

static char path[8192];
static const char *in(const char *base, const char *name)
{
    snprintf(path, sizeof path, "%s/%s", base, name);
    return path;
}

#define TRY(label, call) do { errno = 0; long r_ = (long)(call); \
    printf("%-44s %s\n", label, ename(r_)); } while (0)

int main(int argc, char **argv)
{
    const char *d = argc > 1 ? argv[1] : ".";
    char buf[64];
    struct stat st;

    TRY("open missing", open(in(d, "missing"), O_RDONLY));
    TRY("open missing/x", open(in(d, "missing/x"), O_RDONLY));
    TRY("open file/x (file as dir)", open(in(d, "file/x"), O_RDONLY));
    TRY("open file/ (trailing slash)", open(in(d, "file/"), O_RDONLY));
    TRY("open \"\"", open("", O_RDONLY));
    TRY("open dir O_DIRECTORY", open(in(d, "dir"), O_RDONLY | O_DIRECTORY));
    TRY("open file O_DIRECTORY", open(in(d, "file"), O_RDONLY | O_DIRECTORY));
    TRY("open dangling symlink", open(in(d, "dangling"), O_RDONLY));
    TRY("open symlink loop", open(in(d, "loop1"), O_RDONLY));
    TRY("open link O_NOFOLLOW", open(in(d, "link"), O_RDONLY | O_NOFOLLOW));
    TRY("open dir for writing", open(in(d, "dir"), O_WRONLY));
    TRY("openat bad dirfd, relative", openat(12345, "file", O_RDONLY));
    TRY("openat bad dirfd, absolute", openat(12345, in(d, "file"), O_RDONLY));
    int filefd = open(in(d, "file"), O_RDONLY);
    TRY("openat file fd as dirfd", openat(filefd, "x", O_RDONLY));
    TRY("open bad pointer (syscall)", syscall(SYS_openat, AT_FDCWD, BAD, O_RDONLY));
    TRY("stat bad pointer (syscall)", syscall(SYS_newfstatat, AT_FDCWD, BAD, &st, 0));
    TRY("stat to bad buffer (syscall)", syscall(SYS_newfstatat, AT_FDCWD, in(d, "file"), BAD, 0));

    char longname[NAME_MAX + 2];
    memset(longname, 'a', NAME_MAX + 1);
    longname[NAME_MAX + 1] = 0;
    TRY("open component > NAME_MAX", open(in(d, longname), O_RDONLY));
    static char longpath[PATH_MAX + 16];
    for (int i = 0; i < PATH_MAX + 10; i += 2)
        longpath[i] = '/', longpath[i + 1] = 'x';
    longpath[PATH_MAX + 10] = 0;
    TRY("open path > PATH_MAX", open(longpath, O_RDONLY));

    TRY("stat missing", stat(in(d, "missing"), &st));
    TRY("lstat dangling", lstat(in(d, "dangling"), &st));
    TRY("stat dangling", stat(in(d, "dangling"), &st));
    TRY("access file X_OK", access(in(d, "file"), X_OK));
    TRY("access file R_OK", access(in(d, "file"), R_OK));
    TRY("access missing F_OK", access(in(d, "missing"), F_OK));
    TRY("access bad mode", access(in(d, "file"), 0x100));
    TRY("readlink on a file", readlink(in(d, "file"), buf, sizeof buf));
    TRY("readlink missing", readlink(in(d, "missing"), buf, sizeof buf));
    TRY("readlink bufsiz 0", readlink(in(d, "link"), buf, 0));
    TRY("chdir to a file", chdir(in(d, "file")));
    TRY("chdir missing", chdir(in(d, "missing")));
    TRY("getcwd size 1", getcwd(buf, 1) ? 0 : -1);
    TRY("getcwd bad pointer (syscall)", syscall(SYS_getcwd, BAD, 4096));

    int fd = open(in(d, "file"), O_RDONLY);
    TRY("read bad buffer", read(fd, BAD, 10));
    TRY("read bad fd", read(12345, buf, 10));
    TRY("write bad fd", write(12345, buf, 10));
    TRY("write to O_RDONLY fd", write(fd, "x", 1));
    TRY("write bad buffer", write(1, BAD, 10));
    TRY("close bad fd", close(-1));
    TRY("lseek bad whence", lseek(fd, 0, 17));
    TRY("lseek negative", lseek(fd, -5, SEEK_SET));
    TRY("fstat bad fd", fstat(12345, &st));
    TRY("dup bad fd", dup(12345));
    TRY("dup2 bad fd", dup2(12345, 20));
    TRY("fcntl bad cmd", fcntl(fd, 12345));
    TRY("ioctl TCGETS on a file", ioctl(fd, 0x5401, buf));
    int dfd = open(in(d, "dir"), O_RDONLY | O_DIRECTORY);
    TRY("read a directory", read(dfd, buf, sizeof buf));
    TRY("getdents on a file", syscall(SYS_getdents64, fd, buf, sizeof buf));
    return 0;
}
