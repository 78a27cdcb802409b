/* Probes: setpriority/getpriority keep a nice value per thread (PRIO_PROCESS with a
   tid), nice(2) built on them, the raw syscall's 20-nice, clamping,
   errors (EINVAL, ESRCH), /proc/self/stat's nice, and an unprivileged process may raise
   its nice value but not lower it (EACCES). Run as root. Never PRIO_PGRP or PRIO_USER
   here: natively they would renice the test runner or every root process. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *e(int r) { return r < 0 ? strerror(errno) : "ok"; }
static pid_t main_tid;
static pthread_barrier_t bar;

static void *worker(void *arg) {
    (void)arg;
    errno = 0;
    printf("thread starts with nice %d\n", getpriority(PRIO_PROCESS, 0));
    setpriority(PRIO_PROCESS, 0, 7);
    int own = getpriority(PRIO_PROCESS, 0);
    printf("thread set 7: own %d, main thread's %d\n", own, getpriority(PRIO_PROCESS, main_tid));
    pthread_barrier_wait(&bar);
    pthread_barrier_wait(&bar);
    return 0;
}

static int stat_nice(void) {
    FILE *f = fopen("/proc/thread-self/stat", "r");
    char buf[1024];
    if (!f || !fgets(buf, sizeof buf, f)) return -99;
    fclose(f);
    char *p = strrchr(buf, ')');
    int prio = 0, nice = 0;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime priority nice */
    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %d %d", &prio, &nice);
    return prio * 100 + nice;
}

int main(void) {
    main_tid = gettid();
    int cur = getpriority(PRIO_PROCESS, 0);
    printf("start: %d raw %ld\n", cur, syscall(SYS_getpriority, PRIO_PROCESS, 0));
    const char *r = e(setpriority(PRIO_PROCESS, 0, 5));
    cur = getpriority(PRIO_PROCESS, 0);
    printf("set 5: %s -> %d raw %ld\n", r, cur, syscall(SYS_getpriority, PRIO_PROCESS, 0));
    printf("/proc stat prio*100+nice: %d\n", stat_nice());
    errno = 0;
    int n = nice(2);
    printf("nice(2) = %d -> %d\n", n, getpriority(PRIO_PROCESS, getpid()));
    r = e(setpriority(PRIO_PROCESS, 0, 100));
    printf("set 100 clamps: %s -> %d\n", r, getpriority(PRIO_PROCESS, 0));
    r = e(setpriority(PRIO_PROCESS, 0, -100));
    printf("set -100 clamps: %s -> %d\n", r, getpriority(PRIO_PROCESS, 0));
    setpriority(PRIO_PROCESS, 0, 3);
    pthread_barrier_init(&bar, 0, 2);
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
    pthread_barrier_wait(&bar);
    printf("main still %d\n", getpriority(PRIO_PROCESS, 0));
    pthread_barrier_wait(&bar);
    pthread_join(t, 0);
    printf("bad which: %s\n", e(setpriority(7, 0, 1)));
    errno = 0;
    printf("no such tid: %d %s\n", getpriority(PRIO_PROCESS, 999999), strerror(errno));
    setpriority(PRIO_PROCESS, 0, 6);
    setresuid(1000, 1000, 1000);
    r = e(setpriority(PRIO_PROCESS, 0, 10));
    printf("unprivileged raise to 10: %s -> %d\n", r, getpriority(PRIO_PROCESS, 0));
    r = e(setpriority(PRIO_PROCESS, 0, 9));
    printf("unprivileged lower to 9: %s -> %d\n", r, getpriority(PRIO_PROCESS, 0));
    errno = 0;
    n = nice(-1);
    printf("nice(-1) = %d %s\n", n, strerror(errno));
    return 0;
}
