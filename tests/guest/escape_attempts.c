/* Attempts to reach outside the VM (tests/test_escape.py holds each one's expected
 * result). NEVER run natively: as root it would signal every process of the machine.
 * Probes: paths climbing out of / and volumes (.., symlinks, /proc/self/root and cwd,
 * openat2 RESOLVE_*), a symlink flipped between a directory and the outside while
 * another process opens through it, hard links and renames across mounts, terminal
 * ioctls that inject input, kill(-1) and kills of pids outside the VM, memory outside
 * the guest's mappings (kernel half, vsyscall, low pages, the vDSO written), host fds
 * by number, and what /proc shows. argv: attempt name, then its arguments. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <dirent.h>
#include <termios.h>
#include <unistd.h>

static const char *en(int e) {
    switch (e) {
    case 0: return "ok";
    case ENOENT: return "ENOENT";
    case EXDEV: return "EXDEV";
    case EROFS: return "EROFS";
    case ELOOP: return "ELOOP";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ESRCH: return "ESRCH";
    case ENOTTY: return "ENOTTY";
    case EIO: return "EIO";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case ENOTDIR: return "ENOTDIR";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENOSYS: return "ENOSYS";
    case ENOMEM: return "ENOMEM";
    case EBADF: return "EBADF";
    }
    static char buf[32];
    snprintf(buf, sizeof buf, "errno %d", e);
    return buf;
}

/* Open and read a file: "ok:<first line>" or the errno. */
static const char *try_read(int dirfd, const char *path) {
    static char buf[160];
    int fd = openat(dirfd, path, O_RDONLY);
    if (fd < 0)
        return en(errno);
    char data[100] = {0};
    ssize_t n = read(fd, data, sizeof data - 1);
    close(fd);
    if (n < 0)
        return en(errno);
    data[strcspn(data, "\n")] = 0;
    snprintf(buf, sizeof buf, "ok:%s", data);
    return buf;
}

static void paths(const char *host_secret) {
    printf("dotdot: %s\n", try_read(AT_FDCWD, "/../../../../secret"));
    printf("host path: %s\n", try_read(AT_FDCWD, host_secret));
    struct stat a, b;
    stat("/", &a);
    stat("/../..", &b);
    printf("/.. is /: %s\n", a.st_ino == b.st_ino && a.st_dev == b.st_dev ? "yes" : "no");
    printf("volume dotdot: %s\n", try_read(AT_FDCWD, "/vol/../../secret"));
    printf("volume symlink relative: %s\n", try_read(AT_FDCWD, "/vol/out"));
    printf("volume symlink deep: %s\n", try_read(AT_FDCWD, "/vol/deep"));
    printf("volume symlink host absolute: %s\n", try_read(AT_FDCWD, "/vol/hostabs"));
    printf("volume dir symlink: %s\n", try_read(AT_FDCWD, "/vol/updir/secret"));
    symlink("../secret", "/vol/planted");
    printf("planted symlink: %s\n", try_read(AT_FDCWD, "/vol/planted"));
    char target[256];
    ssize_t n = readlink("/proc/self/root", target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    printf("/proc/self/root: %s\n", target);
    printf("via /proc/self/root: %s\n", try_read(AT_FDCWD, "/proc/self/root/../secret"));
    chdir("/vol");
    n = readlink("/proc/self/cwd", target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    printf("/proc/self/cwd: %s\n", target);
    printf("via /proc/self/cwd: %s\n", try_read(AT_FDCWD, "/proc/self/cwd/../../secret"));
    printf("relative from a volume: %s\n", try_read(AT_FDCWD, "../../../secret"));
    int fd = open("/proc/self/cwd", O_RDONLY | O_DIRECTORY);
    printf("via an fd of /proc/self/cwd: %s\n", try_read(fd, "../../../secret"));
    close(fd);
}

static void race(void) {
    mkdir("/vol/d", 0755);
    int f = open("/vol/d/secret", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(f, "GUEST\n", 6);
    close(f);
    symlink("d", "/vol/race");
    pid_t child = fork();
    if (child == 0) {
        for (;;) {   /* flip /vol/race between d and the outside, atomically */
            symlink("..", "/vol/race.tmp");
            rename("/vol/race.tmp", "/vol/race");
            symlink("d", "/vol/race.tmp");
            rename("/vol/race.tmp", "/vol/race");
        }
    }
    int host = 0, guest = 0, other = 0;
    for (int i = 0; i < 1000; i++) {
        const char *r = try_read(AT_FDCWD, "/vol/race/secret");
        if (strcmp(r, "ok:GUEST") == 0)
            guest++;
        else if (strncmp(r, "ok:", 3) == 0)
            host++;
        else
            other++;
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    printf("race: host %d, guest %s\n", host, guest > 0 ? "seen" : "never");
    (void)other;
}

static long o2(int dirfd, const char *path, unsigned long long resolve) {
    struct open_how how = {.flags = O_RDONLY, .resolve = resolve};
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    return errno;
}

static void openat2_flags(void) {
    int vol = open("/vol", O_RDONLY | O_DIRECTORY);
    printf("BENEATH ..: %s\n", en(o2(vol, "../secret", RESOLVE_BENEATH)));
    printf("BENEATH symlink out: %s\n", en(o2(vol, "out", RESOLVE_BENEATH)));
    printf("BENEATH absolute: %s\n", en(o2(vol, "/secret", RESOLVE_BENEATH)));
    printf("IN_ROOT ..: %s\n", en(o2(vol, "../../secret", RESOLVE_IN_ROOT)));
    printf("IN_ROOT ../f: %s\n", en(o2(vol, "../../f", RESOLVE_IN_ROOT)));
    printf("IN_ROOT symlink deep: %s\n", en(o2(vol, "deep", RESOLVE_IN_ROOT)));
    printf("NO_SYMLINKS: %s\n", en(o2(AT_FDCWD, "/vol/out", RESOLVE_NO_SYMLINKS)));
    printf("NO_MAGICLINKS: %s\n", en(o2(AT_FDCWD, "/proc/self/root", RESOLVE_NO_MAGICLINKS)));
    printf("NO_XDEV: %s\n", en(o2(AT_FDCWD, "/vol/f", RESOLVE_NO_XDEV)));
}

static void links(void) {
    printf("link ro->rw: %s\n", en(link("/ro/file", "/vol/linked") ? errno : 0));
    printf("link in ro: %s\n", en(link("/ro/file", "/ro/linked") ? errno : 0));
    printf("link rw->tmp: %s\n", en(link("/vol/f", "/tmp/linked") ? errno : 0));
    printf("rename vol->tmp: %s\n", en(rename("/vol/f", "/tmp/moved") ? errno : 0));
    printf("rename ro->vol: %s\n", en(rename("/ro/file", "/vol/moved") ? errno : 0));
    printf("renameat2 exchange vol/tmp: %s\n",
           en(syscall(SYS_renameat2, AT_FDCWD, "/vol/f", AT_FDCWD, "/tmp", 2 /* RENAME_EXCHANGE */) ? errno : 0));
    int fd = open("/ro/file", O_WRONLY);
    printf("write ro: %s\n", en(fd < 0 ? errno : 0));
}

static void tty(void) {
    char c = 'X';
    const struct { const char *name; unsigned long req; void *arg; } reqs[] = {
        {"TIOCSTI", TIOCSTI, &c}, {"TIOCCONS", TIOCCONS, NULL}, {"TIOCSCTTY", TIOCSCTTY, (void *)1},
        {"TIOCLINUX", TIOCLINUX, &c}, {"TIOCVHANGUP", 0x5437, NULL}, {"KDSETMODE", 0x4B3A, (void *)1},
        {"TIOCSETD", TIOCSETD, &(int){2}}, {"VT_ACTIVATE", 0x5606, (void *)1},
    };
    for (unsigned i = 0; i < sizeof reqs / sizeof reqs[0]; i++)
        printf("%s: %s\n", reqs[i].name, ioctl(0, reqs[i].req, reqs[i].arg) == 0 ? "ok" : "failed");
    int fd = open("/dev/tty", O_RDWR);
    printf("TIOCSTI /dev/tty: %s\n", fd >= 0 && ioctl(fd, TIOCSTI, &c) == 0 ? "ok" : "failed");
}

static void kills(pid_t victim) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)victim);
    printf("/proc/victim/fd: %s\n", en(opendir(path) ? 0 : errno));
    snprintf(path, sizeof path, "/proc/%d/environ", (int)victim);
    printf("/proc/victim/environ: %s\n", en(open(path, O_RDONLY) >= 0 ? 0 : errno));
    printf("kill victim: %s\n", en(kill(victim, SIGKILL) ? errno : 0));
    printf("kill -victim: %s\n", en(kill(-victim, SIGKILL) ? errno : 0));
    printf("kill -1 alone: %s\n", en(kill(-1, SIGKILL) ? errno : 0));
    int far = 0;
    for (pid_t p = 2; p < 1024; p++)
        if (kill(p, 0) == 0)
            far++;
    printf("pids 2..1023 that exist: %d\n", far);
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    printf("kill -1 with a child: %s\n", en(kill(-1, SIGTERM) ? errno : 0));
    int st;
    waitpid(child, &st, 0);
    printf("child: %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM ? "killed by SIGTERM" : "other");
    printf("kill -1 SIGKILL with none left: %s\n", en(kill(-1, SIGKILL) ? errno : 0));
    printf("caller: alive\n");
}

static sigjmp_buf jb;
static void on_fault(int sig) { siglongjmp(jb, sig); }

static const char *probe(volatile unsigned char *p, int write) {
    int sig = sigsetjmp(jb, 1);
    if (sig == 0) {
        if (write)
            *p = 0xcc;
        else
            (void)*p;
        return "accessible";
    }
    return sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : "other signal";
}

static void memory(void) {
    struct sigaction sa = {.sa_handler = on_fault};
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    const unsigned long addrs[] = {0x0, 0x1000, 0x100000, 0x200000, 0x800000000000UL,
                                   0xffff800000000000UL, 0xffff888000000000UL, 0xfffffe0000000000UL,
                                   0xffffffff80000000UL, 0xffffffffff600000UL, 0xfffffffffffff000UL};
    for (unsigned i = 0; i < sizeof addrs / sizeof addrs[0]; i++)
        printf("read %#lx: %s, write: %s\n", addrs[i], probe((void *)addrs[i], 0), probe((void *)addrs[i], 1));
    unsigned char *vdso = (unsigned char *)getauxval(AT_SYSINFO_EHDR);
    if (vdso)
        printf("vdso read: %s, write: %s\n", probe(vdso, 0), probe(vdso, 1));
    char buf[16];
    struct iovec local = {buf, sizeof buf}, remote = {(void *)0xffff800000000000UL, sizeof buf};
    printf("process_vm_readv kernel half: %s\n",
           en(syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0) < 0 ? errno : 0));
    int fd = open("/proc/self/mem", O_RDONLY);
    printf("/proc/self/mem unmapped: %s\n", fd < 0 ? en(errno) :
           en(pread(fd, buf, sizeof buf, (off_t)0x7fff800000000000L) < 0 ? errno : 0));
    printf("/dev/mem: %s\n", en(open("/dev/mem", O_RDONLY) < 0 ? errno : 0));
    printf("/dev/kmem: %s\n", en(open("/dev/kmem", O_RDONLY) < 0 ? errno : 0));
    void *m = mmap((void *)0xffff800000000000UL, 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("mmap kernel half: %s\n", m == MAP_FAILED ? en(errno) : "mapped");
}

/* The vDSO made writable and written (a byte of its ELF header padding): the next VM
 * (or process) must not see it. */
static void vdso_write(void) {
    struct sigaction sa = {.sa_handler = on_fault};
    sigaction(SIGSEGV, &sa, NULL);
    unsigned char *vdso = (unsigned char *)getauxval(AT_SYSINFO_EHDR);
    if (!vdso) {
        printf("no vdso\n");
        return;
    }
    printf("vdso marker: %s\n", vdso[9] == 0xcc ? "PRESENT" : "absent");
    int r = mprotect(vdso, 4096, PROT_READ | PROT_WRITE);
    printf("mprotect vdso writable: %s\n", r ? en(errno) : "ok");
    if (r == 0)
        printf("write: %s\n", probe(vdso + 9, 1) == NULL ? "?" : vdso[9] == 0xcc ? "written" : "not written");
    pid_t child = fork();
    if (child == 0) {
        printf("child sees: %s\n", vdso[9] == 0xcc ? "the write (a copy of the page)" : "the original");
        _exit(0);
    }
    waitpid(child, NULL, 0);
}

static void net(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    printf("connect host loopback: %s\n", r == 0 ? "connected" : "failed");
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    r = sendto(u, "x", 1, 0, (struct sockaddr *)&a, sizeof a);
    printf("udp to host loopback: %s\n", r == 1 ? "sent" : "failed");
}

static void fds(void) {
    printf("open fds:");
    for (int fd = 0; fd < 65536; fd = fd < 1024 ? fd + 1 : fd * 2 + 1)   /* all low ones, then spots */
        if (fcntl(fd, F_GETFD) != -1)
            printf(" %d", fd);
    printf("\n/proc/self/fd:");
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    printf(" %d entries (one is the listing's own)\n", n);
    printf("fd 1000: %s\n", en(write(1000, "x", 1) < 0 ? errno : 0));
}

static void proc(const char *secret) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    printf("/proc pids:");
    while ((e = readdir(d)))
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9')
            printf(" %s", e->d_name);
    closedir(d);
    printf("\n");
    char buf[8192];
    const char *files[] = {"/proc/1/cmdline", "/proc/1/environ", "/proc/self/environ", "/proc/1/status",
                           "/proc/self/maps", "/proc/self/mountinfo", "/proc/mounts", "/proc/self/cgroup"};
    for (unsigned i = 0; i < sizeof files / sizeof files[0]; i++) {
        int fd = open(files[i], O_RDONLY), found = 0, py = 0;
        ssize_t n = fd < 0 ? 0 : read(fd, buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = 0;
            for (ssize_t j = 0; j < n; j++)
                if (!buf[j])
                    buf[j] = ' ';
            found = strstr(buf, secret) != NULL;
            py = strstr(buf, "python") != NULL;
        }
        printf("%s: secret %s, python %s\n", files[i], found ? "SEEN" : "absent", py ? "SEEN" : "absent");
        if (fd >= 0)
            close(fd);
    }
    printf("getenv secret: %s\n", getenv("UMIAK_ESCAPE_SECRET") ? "SEEN" : "absent");
    char exe[256];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    printf("/proc/self/exe: %s\n", strstr(exe, "python") ? "python" : "the guest program");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "paths")) paths(argv[2]);
    else if (!strcmp(what, "race")) race();
    else if (!strcmp(what, "openat2")) openat2_flags();
    else if (!strcmp(what, "links")) links();
    else if (!strcmp(what, "tty")) tty();
    else if (!strcmp(what, "kill")) kills(atoi(argv[2]));
    else if (!strcmp(what, "memory")) memory();
    else if (!strcmp(what, "net")) net(atoi(argv[2]));
    else if (!strcmp(what, "vdso")) vdso_write();
    else if (!strcmp(what, "fds")) fds();
    else if (!strcmp(what, "proc")) proc("h0st-s3cr3t-value");
    else return 2;
    return 0;
}
