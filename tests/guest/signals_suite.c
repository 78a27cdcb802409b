/* Signals: handlers with siginfo, masks and pending sets, sigaltstack, SIGSEGV
 * and SIGFPE recovery with siglongjmp, SA_RESETHAND, SA_NODEFER, sigsuspend,
 * sigtimedwait, signals to another thread with pthread_kill, alarm, a POSIX
 * timer, and the FPU state surviving a handler that clobbers it. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got, code, on_alt;
static volatile uintptr_t fault_addr;
static sigjmp_buf jb;
static char altstack[65536];

static void h_info(int s, siginfo_t *si, void *uc) { got = s; code = si->si_code; (void)uc; }
static void h_alt(int s) {
    char here;
    on_alt = (&here >= altstack && &here < altstack + sizeof altstack);
    got = s;
}
static void h_fault(int s, siginfo_t *si, void *uc) {
    got = s; code = si->si_code; fault_addr = (uintptr_t)si->si_addr; (void)uc;
    siglongjmp(jb, 1);
}
static void h_fpu(int s) {
    volatile double x = 1e300; for (int i = 0; i < 10; i++) x *= 3.7; got = s;
}
static volatile int worker_got;
static void h_thread(int s) { worker_got = s; }
static void *worker(void *arg) {
    sigset_t m; sigemptyset(&m); sigaddset(&m, SIGUSR2);
    int sig; sigwait(&m, &sig);
    return (void *)(long)sig;
}
static volatile int ticks;
static void h_tick(int s) { (void)s; ticks++; }
static void h_count(int s) { (void)s; got++; }

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h_info; sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    printf("raise: got %d code %s\n", got, code == SI_TKILL ? "SI_TKILL" : "other");
    kill(getpid(), SIGUSR1);
    printf("kill: got %d code %s\n", got, code == SI_USER ? "SI_USER" : "other");

    /* masks and pending */
    sigset_t set, old, pend;
    sigemptyset(&set); sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    got = 0; raise(SIGUSR1);
    sigpending(&pend);
    printf("blocked: got %d pending %d\n", got, sigismember(&pend, SIGUSR1));
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("unblocked: got %d\n", got);

    /* sigaltstack */
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
    sigaltstack(&ss, NULL);
    memset(&sa, 0, sizeof sa); sa.sa_handler = h_alt; sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR2, &sa, NULL);
    raise(SIGUSR2);
    printf("altstack: got %d on alt stack %d\n", got, on_alt);

    /* synchronous faults recovered with siglongjmp */
    memset(&sa, 0, sizeof sa); sa.sa_sigaction = h_fault; sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    for (int i = 0; i < 3; i++) {
        if (!sigsetjmp(jb, 1)) { *(volatile int *)(uintptr_t)(0x1000 * (i + 1)) = 1; puts("no fault?"); }
        else printf("SIGSEGV %d recovered: code %s addr %#lx\n", i, code == SEGV_MAPERR ? "SEGV_MAPERR" : "other",
                    (unsigned long)fault_addr);
    }
    if (!sigsetjmp(jb, 1)) { volatile int z = 0; volatile int r = 10 / z; (void)r; puts("no fault?"); }
    else printf("SIGFPE recovered: got %d code %s\n", got, code == FPE_INTDIV ? "FPE_INTDIV" : "other");

    /* SA_RESETHAND: second raise takes the default action (ignored for SIGWINCH) */
    memset(&sa, 0, sizeof sa); sa.sa_handler = h_count; sa.sa_flags = SA_RESETHAND;
    sigaction(SIGWINCH, &sa, NULL);
    got = 0; raise(SIGWINCH); raise(SIGWINCH);
    struct sigaction now; sigaction(SIGWINCH, NULL, &now);
    printf("resethand: handler ran %d time(s), reset to default %d\n", got, now.sa_handler == SIG_DFL);

    /* FPU state is restored after a handler that uses it */
    signal(SIGUSR1, h_fpu);
    volatile double keep = 1.25; double before = keep * 3;
    raise(SIGUSR1);
    printf("fpu preserved %d\n", keep * 3 == before);

    /* sigsuspend waits with a temporary mask */
    signal(SIGALRM, h_count);
    sigprocmask(SIG_BLOCK, &set, NULL);  /* SIGUSR1 blocked */
    sigset_t none; sigemptyset(&none);
    got = 0;
    alarm(1);
    int r = sigsuspend(&none);
    printf("sigsuspend: ret %d errno EINTR %d got %d\n", r, errno == EINTR, got);
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* sigtimedwait */
    sigset_t w; sigemptyset(&w); sigaddset(&w, SIGUSR2);
    sigprocmask(SIG_BLOCK, &w, NULL);
    struct timespec ts = { 0, 20 * 1000 * 1000 };
    r = sigtimedwait(&w, NULL, &ts);
    printf("sigtimedwait timeout: %d EAGAIN %d\n", r, errno == EAGAIN);
    raise(SIGUSR2);
    siginfo_t si;
    r = sigtimedwait(&w, &si, &ts);
    printf("sigtimedwait: %d si_signo %d\n", r, si.si_signo);

    /* a signal to another thread, taken by sigwait there */
    pthread_t t; void *res;
    pthread_create(&t, NULL, worker, NULL);
    usleep(20000);
    pthread_kill(t, SIGUSR2);
    pthread_join(t, &res);
    printf("thread sigwait got %ld\n", (long)res);
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* a POSIX timer delivering SIGRTMIN periodically */
    signal(SIGRTMIN, h_tick);
    timer_t id; struct sigevent ev; memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL; ev.sigev_signo = SIGRTMIN;
    timer_create(CLOCK_MONOTONIC, &ev, &id);
    struct itimerspec its = { { 0, 10 * 1000 * 1000 }, { 0, 10 * 1000 * 1000 } };
    timer_settime(id, 0, &its, NULL);
    while (ticks < 5) pause();
    timer_delete(id);
    printf("timer ticked at least 5 times %d\n", ticks >= 5);
    (void)h_thread; (void)worker_got;
    return 0;
}
