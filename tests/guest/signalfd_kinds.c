/* Probes: a blocked signal whose default action is to ignore it (SIGCHLD, SIGWINCH) is
   still queued (a signalfd or sigwaitinfo takes it); signalfd_siginfo fields by kind:
   SIGCHLD's pid/status/code, sigqueue's value, kill's pid. */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

static void take(int fd, const char *what) {
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 3000);
    struct signalfd_siginfo si;
    memset(&si, 0, sizeof si);
    ssize_t n = r > 0 ? read(fd, &si, sizeof si) : -1;
    printf("%s: poll=%d read=%zd signo=%u code=%d status=%d int=%d ptr=%llx pid_ok=%d addr=%llx\n", what, r, n,
           si.ssi_signo, si.ssi_code, si.ssi_status, si.ssi_int, (unsigned long long)si.ssi_ptr,
           si.ssi_pid == (unsigned)getpid() || si.ssi_pid > (unsigned)getpid(), (unsigned long long)si.ssi_addr);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGCHLD);
    sigaddset(&s, SIGWINCH);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, 0);
    int fd = signalfd(-1, &s, 0);
    pid_t pid = fork();
    if (pid == 0) _exit(3);
    take(fd, "SIGCHLD exit 3");
    waitpid(pid, 0, 0);
    kill(getpid(), SIGWINCH);
    take(fd, "SIGWINCH");
    union sigval v = {.sival_int = 4242};
    sigqueue(getpid(), SIGUSR1, v);
    take(fd, "sigqueue");
    kill(getpid(), SIGCHLD);
    sigset_t w;
    sigemptyset(&w);
    sigaddset(&w, SIGCHLD);
    siginfo_t info;
    struct timespec ts = {2, 0};
    int got = sigtimedwait(&w, &info, &ts);
    printf("sigtimedwait of a blocked SIGCHLD = %d code=%d\n", got, got > 0 ? info.si_code : 0);
    return 0;
}
