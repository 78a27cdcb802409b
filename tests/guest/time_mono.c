/* time_mono: clocks and sleeping, printing only facts that hold on any correct Linux.
 * Probes: clock_gettime MONOTONIC non-decreasing over many reads, REALTIME vs
 * time() and gettimeofday agreeing, clock_getres, CPU-time clocks, nanosleep and
 * clock_nanosleep (relative and TIMER_ABSTIME) sleeping at least as asked,
 * EINVAL for bad clocks and bad timespecs. */
#include <errno.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

static double secs(struct timespec t) { return t.tv_sec + t.tv_nsec / 1e9; }
static double mono(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return secs(t); }

int main(void)
{
    struct timespec prev, now;
    int ok = 1;
    clock_gettime(CLOCK_MONOTONIC, &prev);
    for (int i = 0; i < 2000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec < prev.tv_sec || (now.tv_sec == prev.tv_sec && now.tv_nsec < prev.tv_nsec))
            ok = 0;
        if (now.tv_nsec < 0 || now.tv_nsec >= 1000000000)
            ok = 0;
        prev = now;
    }
    printf("monotonic never goes back: %s\n", ok ? "yes" : "no");
    printf("monotonic is positive: %s\n", secs(now) > 0 ? "yes" : "no");

    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    time_t t = time(NULL);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    printf("realtime after 2020: %s\n", rt.tv_sec > 1577836800 ? "yes" : "no");
    printf("time() agrees with realtime: %s\n", t - rt.tv_sec <= 1 && t >= rt.tv_sec - 1 ? "yes" : "no");
    /* time() reads the coarse clock on Linux: it may lag CLOCK_REALTIME by a tick at a second boundary. */
    printf("gettimeofday agrees: %s\n", tv.tv_sec - rt.tv_sec <= 1 && tv.tv_sec >= rt.tv_sec ? "yes" : "no");
    struct timespec res;
    int rr = clock_getres(CLOCK_MONOTONIC, &res);
    printf("clock_getres MONOTONIC: %d, %ld.%09ld\n", rr, (long)res.tv_sec, res.tv_nsec);
    rr = clock_getres(CLOCK_REALTIME, &res);
    printf("clock_getres REALTIME: %d, %ld.%09ld\n", rr, (long)res.tv_sec, res.tv_nsec);
    struct timespec cpu;
    printf("CLOCK_PROCESS_CPUTIME_ID works: %s\n",
           clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) == 0 && secs(cpu) >= 0 ? "yes" : "no");
    printf("CLOCK_BOOTTIME works: %s\n", clock_gettime(CLOCK_BOOTTIME, &cpu) == 0 ? "yes" : "no");
    errno = 0;
    printf("clock_gettime bad clock: %s\n", clock_gettime(12345, &cpu) == -1 && errno == EINVAL ? "EINVAL" : "other");

    double t0 = mono();
    struct timespec req = {0, 30 * 1000000};
    int r = nanosleep(&req, NULL);
    double slept = mono() - t0;
    printf("nanosleep 30ms: returned %d, slept at least 30ms: %s, under 2s: %s\n", r,
           slept >= 0.030 ? "yes" : "no", slept < 2 ? "yes" : "no");

    t0 = mono();
    req.tv_nsec = 20 * 1000000;
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL);
    slept = mono() - t0;
    printf("clock_nanosleep 20ms: returned %d, at least 20ms: %s\n", r, slept >= 0.020 ? "yes" : "no");

    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += 25 * 1000000;
    if (until.tv_nsec >= 1000000000)
        until.tv_sec++, until.tv_nsec -= 1000000000;
    r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL);
    printf("clock_nanosleep absolute: returned %d, woke after the deadline: %s\n", r,
           mono() >= secs(until) ? "yes" : "no");
    struct timespec past = {0, 1};
    printf("clock_nanosleep absolute in the past: %d\n",
           clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL));

    struct timespec bad = {0, 1000000000};
    errno = 0;
    printf("nanosleep tv_nsec 1e9: %s\n", nanosleep(&bad, NULL) == -1 && errno == EINVAL ? "EINVAL" : "other");
    bad.tv_sec = -1; bad.tv_nsec = 0;
    errno = 0;
    printf("nanosleep negative: %s\n", nanosleep(&bad, NULL) == -1 && errno == EINVAL ? "EINVAL" : "other");
    struct timespec zero = {0, 0};
    printf("nanosleep 0: %d\n", nanosleep(&zero, NULL));
    return 0;
}
