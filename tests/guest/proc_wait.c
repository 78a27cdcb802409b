/* wait4 and waitid, as Linux encodes them. Probes: exit codes 0/1/255/256; death by
 * SIGTERM, SIGKILL and SIGUSR1 (WIFSIGNALED, WTERMSIG); WNOHANG with a running
 * child (0) and after it ended; waitid P_PID/P_ALL/P_PGID, WNOWAIT keeping the
 * zombie, a WNOHANG waitid that finds nothing (zeroed siginfo); ECHILD with no
 * children and EINVAL for bad options; a SIGCHLD handler's siginfo; SIG_IGN and
 * SA_NOCLDWAIT reaping automatically; setpgid/getpgid and kill(-pgid) reaching a
 * whole group; kill(0) checks; setsid; an orphan reparented away from its parent. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define TRY(label, expr) do { errno = 0; long r_ = (expr); \
        printf("%s: %ld %s\n", label, r_, r_ < 0 ? strerror(errno) : "ok"); } while (0)

static void show(const char *what, int st) {
    if (WIFEXITED(st))
        printf("%s: exited %d (raw %#x)\n", what, WEXITSTATUS(st), st);
    else if (WIFSIGNALED(st))
        printf("%s: killed by %d (raw %#x)\n", what, WTERMSIG(st), st);
    else
        printf("%s: other %#x\n", what, st);
}

static pid_t child_exit(int code) {
    pid_t p = fork();
    if (p == 0)
        _exit(code);
    return p;
}

static pid_t child_sleep(void) {
    pid_t p = fork();
    if (p == 0) {
        for (;;)
            pause();
    }
    return p;
}

static volatile int got_chld, chld_code, chld_status, chld_pid_ok;
static volatile pid_t want_pid;
static void on_chld(int sig, siginfo_t *si, void *uc) {
    (void)sig; (void)uc;
    got_chld++;
    chld_code = si->si_code;
    chld_status = si->si_status;
    chld_pid_ok = si->si_pid == want_pid;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    int st;
    TRY("wait with no children", wait(&st));
    int codes[] = {0, 1, 255, 256};
    for (int i = 0; i < 4; i++) {
        pid_t p = child_exit(codes[i]);
        char what[32];
        snprintf(what, sizeof what, "exit(%d)", codes[i]);
        printf("wait4 returned the child: %d\n", wait4(p, &st, 0, NULL) == p);
        show(what, st);
    }
    int sigs[] = {SIGTERM, SIGKILL, SIGUSR1};
    for (int i = 0; i < 3; i++) {
        pid_t p = child_sleep();
        printf("WNOHANG while running: %d\n", waitpid(p, &st, WNOHANG));
        kill(p, sigs[i]);
        waitpid(p, &st, 0);
        show(strsignal(sigs[i]), st);
    }
    pid_t p = child_exit(9);
    while (waitpid(p, &st, WNOHANG) == 0)
        usleep(1000);
    show("WNOHANG after the end", st);

    TRY("waitpid bad options", waitpid(-1, &st, 0x100));
    siginfo_t si;
    TRY("waitid no W* flag", waitid(P_ALL, 0, &si, 0));

    p = child_sleep();
    memset(&si, 0x55, sizeof si);
    int r = waitid(P_PID, p, &si, WEXITED | WNOHANG);
    printf("waitid WNOHANG nothing: %d signo %d pid %d\n", r, si.si_signo, si.si_pid);
    kill(p, SIGTERM);
    memset(&si, 0, sizeof si);
    waitid(P_PID, p, &si, WEXITED | WNOWAIT);
    printf("waitid WNOWAIT: signo %d code %d status %d pid ok %d\n", si.si_signo, si.si_code, si.si_status,
           si.si_pid == p);
    memset(&si, 0, sizeof si);
    waitid(P_ALL, 0, &si, WEXITED);
    printf("waitid P_ALL after WNOWAIT: code %d status %d pid ok %d\n", si.si_code, si.si_status, si.si_pid == p);

    /* process groups */
    pid_t a = child_sleep(), b = child_sleep(), c = child_sleep();
    setpgid(a, a);
    setpgid(b, a);
    printf("getpgid(a)==a %d getpgid(b)==a %d getpgid(c)==mine %d\n", getpgid(a) == a, getpgid(b) == a,
           getpgid(c) == getpgrp());
    TRY("setpgid to a missing group", setpgid(c, 999999));
    TRY("getpgid of no process", getpgid(999999));
    printf("kill(-pgid, 0): %d\n", kill(-a, 0));
    kill(-a, SIGUSR1);
    memset(&si, 0, sizeof si);
    waitid(P_PGID, a, &si, WEXITED);
    printf("waitid P_PGID: code %d status %d\n", si.si_code, si.si_status);
    waitid(P_PGID, a, &si, WEXITED);
    printf("waitid P_PGID: code %d status %d\n", si.si_code, si.si_status);
    TRY("waitid P_PGID, group empty", waitid(P_PGID, a, &si, WEXITED | WNOHANG));
    printf("c still alive: %d\n", kill(c, 0));
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    show("c", st);
    TRY("kill of a reaped child", kill(c, 0));

    /* SIGCHLD handler */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);
    want_pid = p = child_exit(5);
    while (!got_chld)
        sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("SIGCHLD: %d code %d status %d pid ok %d\n", got_chld, chld_code, chld_status, chld_pid_ok);
    waitpid(p, &st, 0);
    show("after SIGCHLD", st);

    /* SA_NOCLDWAIT and SIG_IGN: no zombies, wait gives ECHILD once all are gone */
    sa.sa_flags = SA_SIGINFO | SA_NOCLDWAIT;
    got_chld = 0;
    sigaction(SIGCHLD, &sa, NULL);
    want_pid = child_exit(1);
    TRY("SA_NOCLDWAIT wait", wait(&st));
    signal(SIGCHLD, SIG_IGN);
    child_exit(2);
    TRY("SIG_IGN wait", wait(&st));
    signal(SIGCHLD, SIG_DFL);

    /* setsid in a child; an orphan is reparented away from its dead parent */
    int fds[2];
    pipe(fds);
    p = fork();
    if (p == 0) {
        int led = setsid() == getpid();
        printf("child setsid is its pid: %d, getsid ok %d\n", led, getsid(0) == getpid());
        TRY("second setsid", setsid());
        TRY("setpgid of a session leader", setpgid(0, 0));
        pid_t mid = getpid();
        pid_t g = fork();
        if (g == 0) {
            char ch;
            read(fds[0], &ch, 1);           /* until the middle process is gone */
            usleep(20000);
            printf("orphan reparented away: %d\n", getppid() != mid);
            _exit(0);
        }
        _exit(0);
    }
    waitpid(p, &st, 0);
    show("middle", st);
    write(fds[1], "x", 1);
    usleep(300000);
    return 0;
}
