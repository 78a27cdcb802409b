/* snapshot_ready: sets up state, calls umiak's snapshot marker (syscall 0x554d0001, ENOSYS
 * on Linux, a no-op under umiak), then prints what it set up. With "maps" it prints its
 * /proc/self/maps and auxv instead; with "pipe" or "socket" it keeps one open at the marker;
 * with "spin" it computes for two seconds (for umiak snapshot --at signal) and says done.
 * Probes: umiak snapshot --at ready|entry and umiak run --restore: heap, stack, TLS (FS
 * base), an open regular file's offset, a signal handler, the signal mask, MXCSR rounding
 * (FPU state), umask, cwd and rlimits are those of the snapshot; a pipe or socket is refused. */
#include <fcntl.h>
#include <fenv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static __thread int tls_value = 1;
static volatile sig_atomic_t got;

static void on_usr1(int sig) { got = sig; }

static void print_file(const char *path)
{
    char buf[8192];
    int fd = open(path, O_RDONLY);
    ssize_t n;
    while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0)
        fwrite(buf, 1, n, stdout);
    if (fd >= 0)
        close(fd);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "maps")) {
        print_file("/proc/self/maps");
        FILE *f = fopen("/proc/self/auxv", "rb");
        unsigned long kv[2];
        while (f && fread(kv, sizeof kv, 1, f) == 1 && kv[0])
            printf("auxv %lu %#lx\n", kv[0], kv[1]);
        return 0;
    }
    if (!strcmp(mode, "spin")) {
        struct timespec t0, t;
        clock_gettime(CLOCK_REALTIME, &t0);
        printf("spinning\n");
        fflush(stdout);
        volatile unsigned long x = 1;
        do {
            for (int i = 0; i < 100000; i++)
                x = x * 6364136223846793005UL + 1;
            clock_gettime(CLOCK_REALTIME, &t);
        } while (t.tv_sec - t0.tv_sec < 2);
        printf("done\n");
        return 5;
    }
    int p[2] = {-1, -1};
    if (!strcmp(mode, "pipe") && pipe(p) != 0)
        return 1;
    if (!strcmp(mode, "socket") && socket(AF_INET, SOCK_STREAM, 0) != 3)
        return 1;
    char *heap = malloc(64);
    strcpy(heap, "heap survives");
    char stack_text[32] = "stack survives";
    tls_value = 42;
    int fd = open(argv[0], O_RDONLY);   /* a regular host file: the program itself */
    char magic[4];
    if (fd < 0 || read(fd, magic, 1) != 1)
        return 2;
    signal(SIGUSR1, on_usr1);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigprocmask(SIG_BLOCK, &set, NULL);
    fesetround(FE_UPWARD);
    umask(027);
    struct rlimit rl = {1000, 2000};
    setrlimit(RLIMIT_NOFILE, &rl);
    if (chdir("/usr") != 0)
        return 3;
    printf("before the marker\n");
    fflush(stdout);
    syscall(0x554d0001);
    /* What follows runs in the restored VM. */
    printf("%s, %s, tls %d\n", heap, stack_text, tls_value);
    int r = read(fd, magic + 1, 3);
    printf("file offset kept: %d %.3s\n", r, magic + 1);
    raise(SIGUSR1);
    printf("handler kept: %d\n", got == SIGUSR1);
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("mask kept: %d\n", sigismember(&now, SIGUSR2));
    volatile double one = 1.0, three = 3.0;
    volatile double third = one / three;
    int upward = fegetround() == FE_UPWARD;
    fesetround(FE_TONEAREST);
    volatile double nearest = one / three;
    printf("rounding kept: %d %d\n", upward, third != nearest);
    mode_t old = umask(0);
    printf("umask %03o\n", old);
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("nofile %lu %lu\n", (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max);
    char cwd[256];
    printf("cwd %s\n", getcwd(cwd, sizeof cwd));
    return 7;
}
