/* identity: who and where the process is, printing only what is stable.
 * Probes: uname (sysname, machine; release/version/nodename exist), getpid/
 * gettid/getppid, uid/gid family, sysinfo (uptime = CLOCK_BOOTTIME), sched_getaffinity, getrandom,
 * prlimit/getrlimit (stack), sched_yield, umask, getpgrp/getsid exist. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    struct utsname u;
    printf("uname: %d\n", uname(&u));
    printf("sysname=%s machine=%s\n", u.sysname, u.machine);
    printf("release non-empty: %s, version non-empty: %s, nodename non-empty: %s\n",
           u.release[0] ? "yes" : "no", u.version[0] ? "yes" : "no", u.nodename[0] ? "yes" : "no");
    int r;
    pid_t pid = getpid();
    printf("getpid > 0: %s\n", pid > 0 ? "yes" : "no");
    printf("gettid == getpid: %s\n", syscall(SYS_gettid) == pid ? "yes" : "no");
    printf("getppid >= 0 and != pid: %s\n", getppid() >= 0 && getppid() != pid ? "yes" : "no");
    printf("uid=%d euid=%d gid=%d egid=%d\n", getuid(), geteuid(), getgid(), getegid());

    struct sysinfo si;
    struct timespec boot;
    r = sysinfo(&si);
    clock_gettime(CLOCK_BOOTTIME, &boot);  /* Linux: uptime is CLOCK_BOOTTIME in whole seconds */
    long skew = (long)si.uptime - (long)boot.tv_sec;
    printf("sysinfo: %d, uptime agrees with CLOCK_BOOTTIME: %s, totalram > 0: %s, mem_unit >= 1: %s\n", r,
           skew >= -1 && skew <= 1 ? "yes" : "no", si.totalram > 0 ? "yes" : "no", si.mem_unit >= 1 ? "yes" : "no");

    cpu_set_t set;
    CPU_ZERO(&set);
    r = sched_getaffinity(0, sizeof set, &set);
    printf("sched_getaffinity: %d, at least one cpu: %s\n", r, CPU_COUNT(&set) >= 1 ? "yes" : "no");
    printf("sched_yield: %d\n", sched_yield());

    unsigned char rnd[32];
    printf("getrandom 32: %zd\n", getrandom(rnd, sizeof rnd, 0));
    printf("getrandom GRND_NONBLOCK 16: %zd\n", getrandom(rnd, 16, GRND_NONBLOCK));

    struct rlimit rl;
    r = getrlimit(RLIMIT_STACK, &rl);
    printf("getrlimit STACK: %d, soft > 0: %s\n", r, rl.rlim_cur > 0 ? "yes" : "no");
    r = getrlimit(RLIMIT_NOFILE, &rl);
    printf("getrlimit NOFILE: %d, soft >= 3: %s\n", r, rl.rlim_cur >= 3 ? "yes" : "no");
    char cwd[4096];
    printf("getcwd works: %s\n", getcwd(cwd, sizeof cwd) && cwd[0] == '/' ? "yes" : "no");
    printf("isatty(1): %d\n", isatty(1));
    return 0;
}
