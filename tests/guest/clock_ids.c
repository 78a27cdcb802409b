/* Probes: clock_settime/settimeofday argument checks (EINVAL for CLOCK_MONOTONIC, bad
   clocks and bad timespecs, before any privilege check), and the CPU-time clock ids of
   pthread_getcpuclockid/clock_getcpuclockid in clock_gettime, clock_getres,
   timer_create and clock_nanosleep. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *err(int r) { return r == 0 ? "ok" : strerror(errno); }

static long long ns_of(clockid_t c) {
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0) return -1;
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void spin(void) { volatile unsigned long x = 0; for (unsigned long i = 0; i < 30000000UL; i++) x += i; }

static volatile int stop;
static void *worker(void *arg) { (void)arg; spin(); while (!stop) usleep(1000); return 0; }

int main(void) {
    struct timespec ts = {1, 0};
    printf("settime MONOTONIC: %s\n", err(clock_settime(CLOCK_MONOTONIC, &ts)));
    printf("settime BOOTTIME: %s\n", err(clock_settime(CLOCK_BOOTTIME, &ts)));
    printf("settime 12345: %s\n", err(clock_settime(12345, &ts)));
    struct timespec bad = {1, 2000000000};
    printf("settime REALTIME bad nsec: %s\n", err(clock_settime(CLOCK_REALTIME, &bad)));
    struct timeval badtv = {1, 2000000};
    printf("settimeofday bad usec: %s\n", err(settimeofday(&badtv, 0)));

    clockid_t self, proc, other;
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
    printf("pthread_getcpuclockid: %d\n", pthread_getcpuclockid(pthread_self(), &self));
    printf("clock_getcpuclockid: %d\n", clock_getcpuclockid(0, &proc));
    printf("clock_getcpuclockid(getpid): %d same %d\n", clock_getcpuclockid(getpid(), &other), other == proc);
    printf("ids negative: %d %d\n", self < 0, proc < 0);
    long long a = ns_of(self), p = ns_of(proc);
    spin();
    long long b = ns_of(self), q = ns_of(proc);
    printf("thread clock advances: %d, process clock advances: %d, process >= thread: %d\n",
           a >= 0 && b > a, p >= 0 && q > p, q >= b);
    usleep(100000);
    clockid_t wc;
    pthread_getcpuclockid(t, &wc);
    long long w = ns_of(wc);
    printf("other thread's clock: %d\n", w > 0);
    struct timespec res;
    printf("getres thread: %s\n", err(clock_getres(self, &res)));
    printf("getres process: %s\n", err(clock_getres(proc, &res)));
    printf("gettime dead pid clock: %s\n", err(clock_gettime((~(clockid_t)999999 << 3) | 2, &res)));
    printf("gettime dead tid clock: %s\n", err(clock_gettime((~(clockid_t)999999 << 3) | 6, &res)));
    printf("gettime which=3 clock: %s\n", err(clock_gettime((~(clockid_t)0 << 3) | 7, &res)));
    timer_t tm;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_NONE;
    printf("timer_create thread clock: %s\n", err(timer_create(self, &sev, &tm)));
    timer_delete(tm);
    printf("timer_create process clock: %s\n", err(timer_create(proc, &sev, &tm)));
    timer_delete(tm);
    struct timespec tiny = {0, 1000};
    printf("nanosleep own thread clock: %s\n", strerror(clock_nanosleep(self, 0, &tiny, 0)));
    printf("nanosleep process clock: %d\n", clock_nanosleep(proc, 0, &tiny, 0));
    stop = 1;
    pthread_join(t, 0);
    return 0;
}
