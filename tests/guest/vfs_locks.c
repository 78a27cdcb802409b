/* vfs_locks: file locks as Linux keeps them, memfd files and SIGPIPE. argv[1]: a writable dir.
 * - fcntl F_SETLK: a process never conflicts with itself; closing any fd of the file drops them
 * - F_OFD_SETLK: open file descriptions conflict, also within one thread; F_OFD_GETLK reports
 *   the holder (pid -1); F_OFD_SETLKW in a second thread waits until the first unlocks
 * - flock: LOCK_EX on one description makes LOCK_NB on another EWOULDBLOCK until closed
 * - memfd_create: write, mmap, seals, /proc/self/fd names
 * - write to a pipe without readers: SIGPIPE (SI_USER from the writer itself) and EPIPE
 * - close_range, chroot("/") */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* what musl's headers may lack, by Linux's numbers */
#ifndef F_OFD_GETLK
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#define F_OFD_SETLKW 38
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 1
#define F_SEAL_SHRINK 2
#define F_SEAL_GROW 4
#define F_SEAL_WRITE 8
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1
#define MFD_ALLOW_SEALING 2
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC 4
#endif
#define memfd_create(n, f) ((int)syscall(SYS_memfd_create, n, f))
#define close_range(a, b, f) ((int)syscall(SYS_close_range, a, b, f))

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

static int lk(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

static void getlk(const char *label, int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    int r = fcntl(fd, cmd, &fl);
    printf("%s: %d type %s start %ld len %ld pid %s\n", label, r,
           fl.l_type == F_UNLCK ? "UNLCK" : fl.l_type == F_WRLCK ? "WRLCK" : "RDLCK",
           (long)fl.l_start, (long)fl.l_len, fl.l_pid == getpid() ? "self" : fl.l_pid == -1 ? "-1" : "other");
}

static int shared_fd;
static volatile int order;

static void *waiter(void *arg)
{
    (void)arg;
    int r = lk(shared_fd, F_OFD_SETLKW, F_WRLCK, 0, 10);   /* waits for main to unlock */
    order = order * 10 + 2;
    printf("thread got the lock: %d after unlock: %d\n", r, order == 12);
    lk(shared_fd, F_OFD_SETLK, F_UNLCK, 0, 10);
    return NULL;
}

static volatile int got_sig, got_code, got_pid;
static void on_pipe(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    got_sig = sig;
    got_code = si->si_code;
    got_pid = si->si_pid == getpid();
}

int main(int argc, char **argv)
{
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    int a = open("lockfile", O_CREAT | O_RDWR | O_TRUNC, 0644);
    int b = open("lockfile", O_RDWR);
    write(a, "0123456789abcdef", 16);

    SHOW("posix wrlck a", lk(a, F_SETLK, F_WRLCK, 0, 10));
    SHOW("posix wrlck b (same process)", lk(b, F_SETLK, F_WRLCK, 5, 10));
    getlk("posix getlk b", b, F_GETLK, F_WRLCK, 0, 0);
    SHOW("ofd wrlck b vs posix", lk(b, F_OFD_SETLK, F_WRLCK, 0, 4));
    getlk("ofd getlk b", b, F_OFD_GETLK, F_WRLCK, 0, 0);
    int c = open("lockfile", O_RDONLY);
    close(c);                                   /* closing any fd drops the process's locks */
    SHOW("ofd wrlck b after close(c)", lk(b, F_OFD_SETLK, F_WRLCK, 0, 4));
    getlk("posix getlk a", a, F_GETLK, F_RDLCK, 2, 1);
    SHOW("ofd rdlck a vs ofd wrlck b", lk(a, F_OFD_SETLK, F_RDLCK, 0, 1));
    SHOW("ofd unlock b", lk(b, F_OFD_SETLK, F_UNLCK, 0, 0));
    SHOW("ofd rdlck a", lk(a, F_OFD_SETLK, F_RDLCK, 0, 1));
    SHOW("ofd rdlck b shares", lk(b, F_OFD_SETLK, F_RDLCK, 0, 1));
    SHOW("ofd wrlck b upgrade blocked", lk(b, F_OFD_SETLK, F_WRLCK, 0, 1));
    SHOW("ofd pid must be 0", ({ struct flock fl = {.l_type = F_RDLCK, .l_pid = 1}; fcntl(a, F_OFD_SETLK, &fl); }));
    SHOW("wrlck on O_RDONLY", ({ int r = open("lockfile", O_RDONLY); lk(r, F_SETLK, F_WRLCK, 0, 1); }));
    lk(a, F_OFD_SETLK, F_UNLCK, 0, 0);
    lk(b, F_OFD_SETLK, F_UNLCK, 0, 0);

    /* a second thread waits for an OFD lock */
    int d = open("lockfile", O_RDWR);
    SHOW("ofd wrlck d", lk(d, F_OFD_SETLK, F_WRLCK, 0, 10));
    shared_fd = b;
    pthread_t th;
    pthread_create(&th, NULL, waiter, NULL);
    usleep(100000);
    order = 1;
    lk(d, F_OFD_SETLK, F_UNLCK, 0, 10);
    pthread_join(th, NULL);

    /* flock */
    SHOW("flock ex a", flock(a, LOCK_EX));
    SHOW("flock ex|nb b", flock(b, LOCK_EX | LOCK_NB));
    SHOW("flock sh|nb b", flock(b, LOCK_SH | LOCK_NB));
    int a2 = dup(a);
    close(a);
    SHOW("flock ex|nb b (a's dup still open)", flock(b, LOCK_EX | LOCK_NB));
    close(a2);
    SHOW("flock ex|nb b (all closed)", flock(b, LOCK_EX | LOCK_NB));
    SHOW("flock bad op", flock(b, 0));
    SHOW("flock un", flock(b, LOCK_UN));

    /* memfd */
    int m = memfd_create("umiak-test", MFD_ALLOW_SEALING | MFD_CLOEXEC);
    char path[64], link[128] = "";
    snprintf(path, sizeof path, "/proc/self/fd/%d", m);
    readlink(path, link, sizeof link - 1);
    printf("memfd link %s\n", link);
    SHOW("memfd write", write(m, "memory file", 11));
    SHOW("memfd ftruncate", ftruncate(m, 4096));
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
    memcpy(p, "MEMORY", 6);
    munmap(p, 4096);
    char buf[32] = "";
    SHOW("memfd pread", pread(m, buf, 11, 0));
    printf("memfd content %.11s\n", buf);
    SHOW("memfd reopen", ({ int r = open(path, O_RDONLY); r >= 0 ? (int)read(r, buf, 6) : r; }));
    SHOW("seals", fcntl(m, F_GET_SEALS));
    SHOW("add seal shrink|grow", fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW));
    SHOW("ftruncate sealed", ftruncate(m, 10));
    SHOW("write past end sealed", pwrite(m, "x", 1, 5000));
    SHOW("write inside sealed", pwrite(m, "x", 1, 10));
    SHOW("add seal seal", fcntl(m, F_ADD_SEALS, F_SEAL_SEAL));
    SHOW("add seal after seal", fcntl(m, F_ADD_SEALS, F_SEAL_WRITE));
    SHOW("seals now", fcntl(m, F_GET_SEALS));
    int m2 = memfd_create("nosealing", 0);
    SHOW("seals without ALLOW_SEALING", fcntl(m2, F_GET_SEALS));
    SHOW("memfd bad flags", memfd_create("x", 0x100));

    /* SIGPIPE */
    int pfd[2];
    pipe(pfd);
    close(pfd[0]);
    struct sigaction sa = {.sa_sigaction = on_pipe, .sa_flags = SA_SIGINFO};
    sigaction(SIGPIPE, &sa, NULL);
    SHOW("write to widowed pipe", write(pfd[1], "x", 1));
    printf("got signal %d code %s from self %d\n", got_sig,
           got_code == SI_USER ? "SI_USER" : got_code == SI_KERNEL ? "SI_KERNEL" : "other", got_pid);
    signal(SIGPIPE, SIG_IGN);
    got_sig = 0;
    SHOW("write with SIGPIPE ignored", write(pfd[1], "x", 1));
    printf("got signal %d\n", got_sig);

    SHOW("close_range", close_range(3, ~0U, CLOSE_RANGE_CLOEXEC));
    SHOW("F_GETFD after", fcntl(b, F_GETFD));
    SHOW("close_range bad", close_range(10, 3, 0));
    SHOW("chroot /", chroot("/"));
    SHOW("chroot missing", chroot("/nonexistent-dir"));
    signal(SIGPIPE, SIG_DFL);
    fflush(stdout);
    write(pfd[1], "x", 1);                      /* killed by SIGPIPE */
    printf("not reached\n");
    return 0;
}
