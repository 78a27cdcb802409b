/* A sleep across a stop. Probes: a child stopped (SIGSTOP) in the middle of a relative
 * nanosleep(2) or clock_nanosleep(2) and continued (SIGCONT) before the sleep is due
 * wakes at its first deadline (Linux continues it through restart_syscall with the time
 * left), not a whole sleep after SIGCONT; an absolute clock_nanosleep stopped the same
 * way ends at its deadline too. Sleeps of 0.6 s, stopped at 0.2 s, continued at 0.4 s;
 * the three sleep at once, and each child's exit status says whether it slept about
 * 0.6 s or about 1.0 s. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_until(double t) {
    double d = t - now();
    if (d > 0) {
        struct timespec ts = {(time_t)d, (long)((d - (time_t)d) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* how: 0 nanosleep, 1 clock_nanosleep relative, 2 clock_nanosleep TIMER_ABSTIME */
static pid_t sleeper(int how, int ready) {
    pid_t p = fork();
    if (p != 0)
        return p;
    struct timespec ts = {0, 600000000};
    double t0 = now();
    if (write(ready, "r", 1) != 1)
        _exit(3);
    long r;
    if (how == 0) {
        r = syscall(SYS_nanosleep, &ts, NULL);
    } else if (how == 1) {
        r = syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, NULL);
    } else {
        struct timespec end;
        clock_gettime(CLOCK_MONOTONIC, &end);
        end.tv_nsec += 600000000;
        if (end.tv_nsec >= 1000000000) {
            end.tv_sec++;
            end.tv_nsec -= 1000000000;
        }
        r = syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL);
    }
    double took = now() - t0;
    if (r != 0)
        _exit(9);
    _exit(took < 0.55 ? 1 : took < 0.85 ? 0 : 2);   /* 0: woke at its deadline */
}

int main(void) {
    static const char *what[] = {"nanosleep", "clock_nanosleep", "clock_nanosleep TIMER_ABSTIME"};
    static const char *slept[] = {"until its deadline", "too little", "a whole sleep after SIGCONT"};
    int fds[2];
    if (pipe(fds))
        return 1;
    pid_t p[3];
    for (int how = 0; how < 3; how++)
        p[how] = sleeper(how, fds[1]);
    char c[3];
    for (int got = 0; got < 3;) {   /* all three are about to sleep */
        ssize_t n = read(fds[0], c, sizeof c - got);
        if (n <= 0)
            return 1;
        got += n;
    }
    double t0 = now();
    int st;
    sleep_until(t0 + 0.2);
    for (int how = 0; how < 3; how++) {
        kill(p[how], SIGSTOP);
        if (waitpid(p[how], &st, WUNTRACED) != p[how] || !WIFSTOPPED(st))
            return 1;
    }
    sleep_until(t0 + 0.4);
    for (int how = 0; how < 3; how++)
        kill(p[how], SIGCONT);
    for (int how = 0; how < 3; how++) {
        if (waitpid(p[how], &st, 0) != p[how] || !WIFEXITED(st))
            return 1;
        int code = WEXITSTATUS(st);
        if (code < 3)
            printf("%s across a stop: slept %s\n", what[how], slept[code]);
        else
            printf("%s across a stop: exit %d\n", what[how], code);
    }
    return 0;
}
