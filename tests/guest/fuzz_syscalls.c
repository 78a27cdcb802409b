/* The syscall fuzzer's guest side (tests/fuzz/): never run natively (it issues random
 * syscalls as whoever runs it). Probes: whatever a batch file (argv[1], written by
 * tests/fuzz/fuzzlib.py) describes — each record a syscall number, six raw arguments and
 * a payload copied into the scratch arena first. The arena is fixed (ARENA, 64 KiB, then
 * a PROT_NONE guard page, then nothing), so the host computes every pointer itself.
 * A SIGALRM every 20 ms while each call runs interrupts calls that would block; every
 * other catchable signal is ignored. The harness repairs what a call may have broken of
 * its own (the arena after memory calls, SIGALRM after signal calls) and a fork child
 * exits at once. Logs "@ index nr result errno" for each call, then "done N". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#define ARENA 0x10000000UL
#define ARENA_SIZE 0x10000UL
#define GUARD (ARENA + ARENA_SIZE)
#define MAX_INPUT (4 << 20)

static unsigned char input[MAX_INPUT];
static char line[256];

struct rec {
    uint32_t nr;
    uint16_t poff, plen;
    uint64_t a[6];
};

static void on_alarm(int sig) { (void)sig; }

static void put_num(char **p, long v) {
    char tmp[24];
    int n = 0;
    unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
    if (v < 0)
        *(*p)++ = '-';
    do tmp[n++] = '0' + u % 10; while (u /= 10);
    while (n)
        *(*p)++ = tmp[--n];
}

static void say(long i, long nr, long r, long e) {
    char *p = line;
    *p++ = '@'; *p++ = ' ';
    put_num(&p, i); *p++ = ' ';
    put_num(&p, nr); *p++ = ' ';
    put_num(&p, r); *p++ = ' ';
    put_num(&p, e); *p++ = '\n';
    write(1, line, p - line);
}

static void setup_arena(void) {
    syscall(SYS_mmap, ARENA, ARENA_SIZE, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    syscall(SYS_mmap, GUARD, 4096UL, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    syscall(SYS_munmap, GUARD + 4096, 4096UL);
}

static void setup_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;   /* no SA_RESTART: a blocking call returns EINTR */
    sigaction(SIGALRM, &sa, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGALRM);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
}

static int is_mm(long nr) {
    switch (nr) {
    case SYS_mmap: case SYS_mprotect: case SYS_munmap: case SYS_mremap: case SYS_madvise:
    case SYS_brk: case SYS_shmat: case SYS_remap_file_pages: case SYS_pkey_mprotect:
    case SYS_process_madvise:
        return 1;
    }
    return 0;
}

static int is_sig(long nr) {
    switch (nr) {
    case SYS_rt_sigaction: case SYS_rt_sigprocmask: case SYS_signalfd: case SYS_signalfd4:
    case SYS_sigaltstack: case SYS_rt_sigtimedwait:
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0)
        return 3;
    long len = 0, n;
    while ((n = read(fd, input + len, MAX_INPUT - len)) > 0)
        len += n;
    close(fd);
    if (len < 12 || memcmp(input, "UFZ1", 4) != 0)
        return 4;
    uint32_t count;
    memcpy(&count, input + 4, 4);

    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP && s != SIGALRM)
            signal(s, SIG_IGN);
    setup_signals();
    setup_arena();
    memset((void *)ARENA, 0x41, ARENA_SIZE);

    /* Fds of many kinds for the fuzzer's fd arguments (3.. in this order). */
    int p[2], sv[2];
    pipe(p);                                            /* 3, 4 */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);           /* 5, 6 */
    open("/dev/null", O_RDWR);                          /* 7 */
    eventfd(0, 0);                                      /* 8 */
    open("/tmp/fz", O_RDWR | O_CREAT, 0644);            /* 9 */
    open("/", O_RDONLY | O_DIRECTORY);                  /* 10 */
    syscall(SYS_epoll_create1, 0);                      /* 11 */
    syscall(SYS_memfd_create, "fz", 0);                 /* 12 */
    socket(AF_INET, SOCK_STREAM, 0);                    /* 13 */
    socket(AF_INET, SOCK_DGRAM, 0);                     /* 14 */
    open("/proc/self/status", O_RDONLY);                /* 15 */
    write(9, "some file content\n", 18);

    unsigned char *at = input + 12, *end = input + len;
    struct itimerval arm = {{0, 20000}, {0, 20000}}, off = {{0, 0}, {0, 0}};   /* every 20 ms: a signal that came before the call started waiting is not the last */
    uint32_t i;
    for (i = 0; i < count && at + sizeof(struct rec) <= end; i++) {
        struct rec r;
        memcpy(&r, at, sizeof r);
        at += sizeof r;
        if (at + r.plen > end || (unsigned long)r.poff + r.plen > ARENA_SIZE)
            break;
        memcpy((void *)(ARENA + r.poff), at, r.plen);
        at += r.plen;
        setitimer(ITIMER_REAL, &arm, NULL);
        long ret = syscall(r.nr, r.a[0], r.a[1], r.a[2], r.a[3], r.a[4], r.a[5]);
        long err = ret == -1 ? errno : 0;
        setitimer(ITIMER_REAL, &off, NULL);
        if (r.nr == SYS_fork && ret == 0)
            _exit(0);
        if (is_mm(r.nr))
            setup_arena();
        if (is_sig(r.nr))
            setup_signals();
        say(i, r.nr, ret, err);
    }
    char *q = line;
    memcpy(q, "done ", 5);
    q += 5;
    put_num(&q, i);
    *q++ = '\n';
    write(1, line, q - line);
    return 0;
}
