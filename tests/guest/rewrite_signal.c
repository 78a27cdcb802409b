/* Probes: SIGALRM (setitimer, every 500 us) while the program loops in rewritten getppid calls
 * (the wrapper's and syscall()'s sites) and read()s of its own executable:
 * the handler's ucontext RIP is always in the program's own text, never in an umiak trampoline
 * or stub, and the loop's results stay right. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

extern char __executable_start[], etext[];
static volatile long signals, outside;

static void on_alarm(int sig, siginfo_t *si, void *ctx)
{
    (void)sig; (void)si;
    uintptr_t rip = (uintptr_t)((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP];
    signals++;
    outside += rip < (uintptr_t)__executable_start || rip >= (uintptr_t)etext;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_alarm;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 500}, {0, 500}};
    setitimer(ITIMER_REAL, &it, NULL);
    pid_t ppid = getppid();
    long wrong = 0;
    int fd = open("/proc/self/exe", O_RDONLY);
    char elf[4];
    for (long i = 0; signals < 30; i++) {
        wrong += getppid() != ppid || syscall(SYS_getppid) != ppid;
        wrong += lseek(fd, 1, SEEK_SET) != 1 || read(fd, elf, 3) != 3 || elf[0] != 'E';
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    printf("at least 30 signals, RIP outside the text %ld, wrong results %ld\n", outside, wrong);
    return 0;
}
