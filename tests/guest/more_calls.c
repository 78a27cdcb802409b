/* Probes: calls real programs use that were ENOSYS: sigqueue (rt_sigqueueinfo) and
   rt_tgsigqueueinfo with their data, ioprio_get/ioprio_set, sched_getattr/sched_setattr,
   adjtimex read-only (and EPERM to adjust without CAP_SYS_TIME), process_vm_readv/writev
   on itself, kcmp, tee(2), pkey_mprotect with key -1. Run as root; only reads and
   changes of this process itself, nothing that would change the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <unistd.h>

static const char *e(long r) { return r < 0 ? strerror(errno) : "ok"; }
static volatile int got_val, got_code, got_sig;
static void on_sig(int s, siginfo_t *si, void *u) { (void)u; got_sig = s; got_val = si->si_value.sival_int; got_code = si->si_code; }

struct sched_attr_ { uint32_t size, policy; uint64_t flags; int32_t nice; uint32_t prio; uint64_t rt, dl, per; uint32_t umin, umax; };

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sig;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    sigaction(SIGRTMIN, &sa, 0);
    union sigval v = {.sival_int = 42};
    const char *res = e(sigqueue(getpid(), SIGUSR1, v));
    printf("sigqueue: %s sig %d value %d code %d\n", res, got_sig == SIGUSR1, got_val, got_code);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = 0; si.si_code = SI_QUEUE; si.si_value.sival_int = 7; si.si_pid = getpid();
    long r = syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGRTMIN, &si);
    printf("rt_tgsigqueueinfo: %s value %d code %d\n", e(r), got_val, got_code);
    printf("sigqueue bad signal: %s\n", e(sigqueue(getpid(), 999, v)));

    printf("ioprio_get: %ld\n", syscall(SYS_ioprio_get, 1, 0));
    printf("ioprio_set BE 5: %s\n", e(syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 5)));
    printf("ioprio_get: %ld\n", syscall(SYS_ioprio_get, 1, gettid()));
    res = e(syscall(SYS_ioprio_set, 1, 0, 3 << 13));
    printf("ioprio_set IDLE: %s -> %ld\n", res, syscall(SYS_ioprio_get, 1, 0));
    printf("ioprio_set class 5: %s\n", e(syscall(SYS_ioprio_set, 1, 0, 5 << 13)));
    res = e(syscall(SYS_ioprio_set, 1, 0, 0));
    printf("ioprio_set NONE: %s -> %ld\n", res, syscall(SYS_ioprio_get, 1, 0));
    printf("ioprio_get bad which: %s\n", e(syscall(SYS_ioprio_get, 9, 0)));
    printf("ioprio_get no such thread: %s\n", e(syscall(SYS_ioprio_get, 1, 999999)));

    struct sched_attr_ at;
    memset(&at, 0, sizeof at);
    r = syscall(SYS_sched_getattr, 0, &at, sizeof at, 0);
    printf("sched_getattr: %s size %u policy %u nice %d\n", e(r), at.size, at.policy, at.nice);
    memset(&at, 0, sizeof at);
    at.size = 48; at.policy = 0; at.nice = 3;
    res = e(syscall(SYS_sched_setattr, 0, &at, 0));
    printf("sched_setattr nice 3: %s -> nice %ld\n", res, 20 - syscall(SYS_getpriority, 0, 0));
    memset(&at, 0, sizeof at);
    syscall(SYS_sched_getattr, 0, &at, 48, 0);
    printf("sched_getattr again: size %u nice %d\n", at.size, at.nice);
    printf("sched_getattr small: %s\n", e(syscall(SYS_sched_getattr, 0, &at, 20, 0)));
    printf("sched_getattr flags: %s\n", e(syscall(SYS_sched_getattr, 0, &at, 48, 1)));

    struct timex tx;
    memset(&tx, 0, sizeof tx);
    int st = adjtimex(&tx);
    struct timeval now;
    gettimeofday(&now, 0);
    long diff = now.tv_sec - tx.time.tv_sec;
    printf("adjtimex read: state ok %d, time close %d, tick %ld\n", st >= 0, diff >= -2 && diff <= 2, tx.tick);

    char src[32] = "remote bytes", dst[32] = {0};
    struct iovec l = {dst, 12}, rm = {src, 12};
    printf("process_vm_readv: %ld '%s'\n", (long)process_vm_readv(getpid(), &l, 1, &rm, 1, 0), dst);
    char w[] = "WRITTEN";
    struct iovec l2 = {w, 7}, r2 = {src, 7};
    printf("process_vm_writev: %ld '%s'\n", (long)process_vm_writev(getpid(), &l2, 1, &r2, 1, 0), src);
    struct iovec bad = {(void *)8, 4};
    printf("process_vm_readv bad remote: %s\n", e(process_vm_readv(getpid(), &l, 1, &bad, 1, 0)));
    printf("process_vm_readv flags: %s\n", e(process_vm_readv(getpid(), &l, 1, &rm, 1, 1)));

    int fd = open("/dev/null", O_RDONLY), fd2 = dup(fd), fd3 = open("/dev/null", O_RDONLY);
    pid_t me = getpid();
    long k1 = syscall(SYS_kcmp, me, me, 0, fd, fd2), k2 = syscall(SYS_kcmp, me, me, 0, fd, fd3);
    long k3 = syscall(SYS_kcmp, me, me, 1, 0, 0);
    printf("kcmp dup %ld, other open %d, vm %ld\n", k1, k2 == 1 || k2 == 2, k3);
    printf("kcmp bad fd: %s\n", e(syscall(SYS_kcmp, me, me, 0, fd, 999)));

    int a[2], b[2];
    pipe(a); pipe(b);
    write(a[1], "teedata", 7);
    long t = tee(a[0], b[1], 100, 0);
    char buf[16] = {0}, buf2[16] = {0};
    read(b[0], buf, sizeof buf);
    read(a[0], buf2, sizeof buf2);
    printf("tee: %ld copy '%s' original still '%s'\n", t, buf, buf2);
    printf("tee non-pipe: %s\n", e(tee(fd, b[1], 10, 0)));
    close(a[1]);
    printf("tee at EOF: %ld\n", (long)tee(a[0], b[1], 10, 0));

    char *m = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("pkey_mprotect -1: %s\n", e(syscall(SYS_pkey_mprotect, m, 4096, PROT_READ, -1)));
    printf("pkey_free 15: %s\n", e(syscall(SYS_pkey_free, 15)));

    setresuid(1000, 1000, 1000);
    memset(&tx, 0, sizeof tx);
    tx.modes = ADJ_FREQUENCY;
    printf("adjtimex adjust unprivileged: %s\n", e(adjtimex(&tx)));
    printf("ioprio_set RT unprivileged: %s\n", e(syscall(SYS_ioprio_set, 1, 0, (1 << 13) | 4)));
    return 0;
}
