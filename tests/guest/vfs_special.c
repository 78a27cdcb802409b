/* vfs_special: /dev devices, /proc/self, pipes, getcwd of a symlinked working directory.
 * argv[1]: the program's own resolved path (what /proc/self/exe must say). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
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

static void show_dev(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) { printf("stat %s: -1 %s\n", path, errname(errno)); return; }
    printf("stat %s: mode=%o rdev=%u,%u\n", path, (unsigned)st.st_mode, major(st.st_rdev), minor(st.st_rdev));
}

int main(int argc, char **argv)
{
    char buf[4096], cwd[4096];
    if (getcwd(cwd, sizeof cwd)) printf("getcwd: %s\n", cwd);
    fflush(stdout);

    /* -- /proc/self ---------------------------------------------------------- */
    ssize_t r = readlink("/proc/self/exe", buf, sizeof buf - 1);
    buf[r > 0 ? r : 0] = 0;
    printf("/proc/self/exe is argv[1]: %s\n", argc > 1 && strcmp(buf, argv[1]) == 0 ? "yes" : buf);
    int exe = open("/proc/self/exe", O_RDONLY);
    SHOW("read /proc/self/exe", read(exe, buf, 4)); printf("  magic %s\n", memcmp(buf, "\177ELF", 4) == 0 ? "ELF" : "?");
    struct stat a, b;
    stat("/proc/self/exe", &a);
    stat(argv[1], &b);
    printf("stat /proc/self/exe is the program: %s\n", a.st_ino == b.st_ino ? "yes" : "no");
    lstat("/proc/self/exe", &a);
    printf("lstat /proc/self/exe: mode=%o\n", (unsigned)a.st_mode);
    r = readlink("/proc/self/fd/1", buf, sizeof buf - 1);
    buf[r > 0 ? r : 0] = 0;
    printf("/proc/self/fd/1 is a pipe: %s\n", strncmp(buf, "pipe:[", 6) == 0 ? "yes" : buf);
    r = readlink("/proc/self/fd/3", buf, sizeof buf - 1);
    buf[r > 0 ? r : 0] = 0;
    printf("/proc/self/fd/3 is argv[1]: %s\n", strcmp(buf, argv[1]) == 0 ? "yes" : buf);
    SHOW("readlink /proc/self/fd/99", readlink("/proc/self/fd/99", buf, sizeof buf));
    int same = open("/proc/self/fd/3", O_RDONLY);
    fstat(same, &a);
    printf("open /proc/self/fd/3 is the program: %s, new description: %s\n",
           a.st_ino == b.st_ino ? "yes" : "no", lseek(same, 0, SEEK_CUR) == 0 ? "yes" : "no");
    printf("/proc/self/cwd resolves to cwd: %s\n", stat("/proc/self/cwd", &a) == 0 && stat(".", &b) == 0
           && a.st_ino == b.st_ino ? "yes" : "no");
    int cl = open("/proc/self/cmdline", O_RDONLY);
    r = read(cl, buf, sizeof buf);
    printf("cmdline: %zd bytes, argv[0] first: %s\n", r, r > 0 && strcmp(buf, argv[0]) == 0 ? "yes" : "no");
    fstat(cl, &a);
    printf("fstat cmdline: mode=%o size=%lld\n", (unsigned)a.st_mode, (long long)a.st_size);
    printf("/proc/self/fd lists fd 3: %s\n", access("/proc/self/fd/3", F_OK) == 0 ? "yes" : "no");
    lstat("/proc/self/fd/0", &a);
    printf("lstat /proc/self/fd/0: mode=%o\n", (unsigned)a.st_mode);
    close(same);
    close(cl);

    /* -- /dev ----------------------------------------------------------------- */
    show_dev("/dev/null");
    show_dev("/dev/zero");
    show_dev("/dev/full");
    show_dev("/dev/random");
    show_dev("/dev/urandom");
    show_dev("/dev/tty");
    int fd = open("/dev/null", O_RDWR);
    SHOW("read /dev/null", read(fd, buf, 100));
    SHOW("write /dev/null", write(fd, "abc", 3));
    SHOW("lseek /dev/null", lseek(fd, 100, SEEK_SET));
    struct termios;
    SHOW("TCGETS /dev/null", ioctl(fd, 0x5401, buf));
    close(fd);
    fd = open("/dev/zero", O_RDONLY);
    memset(buf, 1, 64);
    SHOW("read /dev/zero", read(fd, buf, 64));
    int zeros = 1;
    for (int i = 0; i < 64; i++) zeros &= buf[i] == 0;
    printf("  all zero: %s\n", zeros ? "yes" : "no");
    close(fd);
    fd = open("/dev/full", O_WRONLY);
    SHOW("write /dev/full", write(fd, "x", 1));
    close(fd);
    fd = open("/dev/urandom", O_RDONLY);
    SHOW("read /dev/urandom", read(fd, buf, 32));
    close(fd);
    fd = open("/dev/stdout", O_WRONLY);
    SHOW("open /dev/stdout", fd >= 0 ? 0 : -1);
    SHOW("write /dev/stdout", write(fd, "via /dev/stdout\n", 16));
    close(fd);
    SHOW("open /dev/fd/1", (fd = open("/dev/fd/1", O_WRONLY)) >= 0 ? 0 : -1);
    close(fd);
    SHOW("open /dev/nonexistent", open("/dev/nonexistent", O_RDONLY));

    /* -- pipes ---------------------------------------------------------------- */
    signal(SIGPIPE, SIG_IGN);
    int p[2];
    SHOW("pipe", pipe(p));
    SHOW("F_GETFL read end", fcntl(p[0], F_GETFL));
    SHOW("F_GETFL write end", fcntl(p[1], F_GETFL));
    SHOW("write pipe", write(p[1], "hello pipe", 10));
    int n = -1;
    SHOW("FIONREAD pipe", ioctl(p[0], FIONREAD, &n)); printf("  available %d\n", n);
    SHOW("read pipe 5", read(p[0], buf, 5)); printf("  data %.5s\n", buf);
    SHOW("lseek pipe", lseek(p[0], 0, SEEK_SET));
    SHOW("pread pipe", pread(p[0], buf, 1, 0));
    SHOW("read write end", read(p[1], buf, 1));
    SHOW("write read end", write(p[0], "x", 1));
    SHOW("F_GETPIPE_SZ", fcntl(p[0], F_GETPIPE_SZ));
    SHOW("F_GETPIPE_SZ on a file", fcntl(3, F_GETPIPE_SZ));
    fstat(p[0], &a);
    printf("fstat pipe: mode=%o size=%lld\n", (unsigned)a.st_mode, (long long)a.st_size);
    SHOW("fsync pipe", fsync(p[0]));
    SHOW("read rest", read(p[0], buf, 100)); printf("  data %.5s\n", buf);
    SHOW("F_SETFL O_NONBLOCK", fcntl(p[0], F_SETFL, O_NONBLOCK));
    SHOW("read empty nonblocking", read(p[0], buf, 100));
    SHOW("close write end", close(p[1]));
    SHOW("read at eof", read(p[0], buf, 100));
    SHOW("close read end", close(p[0]));
    SHOW("pipe2 O_NONBLOCK|O_CLOEXEC", pipe2(p, O_NONBLOCK | O_CLOEXEC));
    SHOW("F_GETFD", fcntl(p[0], F_GETFD));
    SHOW("F_GETFL", fcntl(p[1], F_GETFL));
    SHOW("pipe2 bad flags", pipe2(p, 0x10));
    int filled = 0;
    memset(buf, 'x', sizeof buf);
    for (;;) {
        long w = write(p[1], buf, sizeof buf);
        if (w < 0) { printf("fill: %d bytes then %s\n", filled, errname(errno)); break; }
        filled += w;
    }
    SHOW("close read end", close(p[0]));
    SHOW("write without readers", write(p[1], "x", 1));
    SHOW("dup2 pipe onto 0", dup2(p[1], 0));
    r = readlink("/proc/self/fd/0", buf, sizeof buf - 1);
    buf[r > 0 ? r : 0] = 0;
    printf("fd 0 is now a pipe: %s\n", strncmp(buf, "pipe:[", 6) == 0 ? "yes" : buf);
    return 0;
}
