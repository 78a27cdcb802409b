/* Stop and continue (job control without a terminal). Probes: SIGSTOP stops a child,
 * wait4(WUNTRACED) reports it once (WIFSTOPPED, WSTOPSIG), /proc/<pid>/stat says T,
 * SIGCHLD carries CLD_STOPPED then CLD_CONTINUED, waitid(WSTOPPED|WNOWAIT) leaves the
 * report for the next wait, SIGCONT continues it and WCONTINUED reports that; SIGTSTP
 * stops a child in its own (not orphaned) group; a SIGTERM sent while stopped waits
 * for SIGCONT and then kills; SIGKILL ends a stopped child; a child stopped inside
 * nanosleep finishes its sleep once continued; SA_NOCLDSTOP silences stops. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t codes[16];
static volatile sig_atomic_t ncodes;

static void on_chld(int sig, siginfo_t *si, void *ctx) {
    (void)sig; (void)ctx;
    if (ncodes < 16) codes[ncodes++] = si->si_code;
}

static char state_of(pid_t p) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
    FILE *f = fopen(path, "r");
    if (!f) return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *r = strrchr(buf, ')');
    return r && r[1] ? r[2] : '?';
}

static void wait_codes(int n) {
    for (int i = 0; i < 2000 && ncodes < n; i++) usleep(1000);
}

static void show_codes(const char *what) {
    printf("%s: SIGCHLD codes", what);
    for (int i = 0; i < ncodes; i++)
        printf(" %s", codes[i] == CLD_STOPPED ? "CLD_STOPPED" : codes[i] == CLD_CONTINUED ? "CLD_CONTINUED" :
               codes[i] == CLD_EXITED ? "CLD_EXITED" : codes[i] == CLD_KILLED ? "CLD_KILLED" : "other");
    printf("\n");
    ncodes = 0;
}

static pid_t spawn_pauser(int own_group) {
    pid_t p = fork();
    if (p == 0) {
        if (own_group) setpgid(0, 0);
        for (;;) pause();
    }
    if (own_group) setpgid(p, p);
    return p;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    int st;

    pid_t p = spawn_pauser(0);
    kill(p, SIGSTOP);
    pid_t w = waitpid(p, &st, WUNTRACED);
    printf("stopped: %d WIFSTOPPED %d WSTOPSIG %d state %c\n", w == p, WIFSTOPPED(st), WSTOPSIG(st), state_of(p));
    printf("reported once: waitpid WNOHANG|WUNTRACED = %d\n", (int)waitpid(p, &st, WNOHANG | WUNTRACED));
    kill(p, SIGCONT);
    w = waitpid(p, &st, WCONTINUED);
    printf("continued: %d WIFCONTINUED %d status %#x\n", w == p, WIFCONTINUED(st), st);
    wait_codes(2);
    show_codes("stop/continue");

    kill(p, SIGSTOP);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_PID, p, &si, WSTOPPED | WNOWAIT);
    printf("waitid WNOWAIT: %d code %s status %d\n", r, si.si_code == CLD_STOPPED ? "CLD_STOPPED" : "?", si.si_status);
    memset(&si, 0, sizeof si);
    r = waitid(P_PID, p, &si, WSTOPPED);
    printf("waitid again: %d code %s status %d\n", r, si.si_code == CLD_STOPPED ? "CLD_STOPPED" : "?", si.si_status);
    kill(p, SIGTERM);
    usleep(50000);
    printf("SIGTERM while stopped: still there %d state %c\n", waitpid(p, &st, WNOHANG) == 0, state_of(p));
    kill(p, SIGCONT);
    waitpid(p, &st, 0);
    printf("after SIGCONT: WIFSIGNALED %d WTERMSIG %d\n", WIFSIGNALED(st), WTERMSIG(st));
    ncodes = 0;   /* CLD_CONTINUED and CLD_KILLED come together: Linux may merge the two SIGCHLDs */

    p = spawn_pauser(1);
    kill(p, SIGTSTP);
    waitpid(p, &st, WUNTRACED);
    printf("SIGTSTP in its own group: WIFSTOPPED %d WSTOPSIG %d\n", WIFSTOPPED(st), WSTOPSIG(st));
    kill(p, SIGKILL);
    waitpid(p, &st, 0);
    printf("SIGKILL while stopped: WTERMSIG %d\n", WTERMSIG(st));
    wait_codes(2);
    show_codes("tstp/kill");

    p = fork();
    if (p == 0) {
        struct timespec ts = {0, 300 * 1000 * 1000};
        int rr = nanosleep(&ts, NULL);
        _exit(rr == 0 ? 5 : 6);
    }
    usleep(50000);
    kill(p, SIGSTOP);
    waitpid(p, &st, WUNTRACED);
    usleep(50000);
    kill(p, SIGCONT);
    waitpid(p, &st, 0);
    printf("nanosleep across a stop: exit %d\n", WEXITSTATUS(st));
    wait_codes(3);
    show_codes("nanosleep");

    sa.sa_flags |= SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    p = spawn_pauser(0);
    kill(p, SIGSTOP);
    waitpid(p, &st, WUNTRACED);
    kill(p, SIGCONT);
    waitpid(p, &st, WCONTINUED);
    kill(p, SIGKILL);
    waitpid(p, &st, 0);
    wait_codes(1);
    show_codes("SA_NOCLDSTOP");
    return 0;
}
