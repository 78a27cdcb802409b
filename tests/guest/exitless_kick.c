/* Probes: signals sent to a thread that makes syscalls in a tight loop (on kvm its vCPU
 * spends most of its time in the exitless stub): every signal reaches its handler, the
 * interrupted RIP the handler sees is in the program's code (an executable mapping of
 * /proc/self/maps), and no call returns a wrong result. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define SIGNALS 40

static volatile sig_atomic_t hits;
static volatile int done;
static uintptr_t rips[SIGNALS];
static pid_t main_tid;

static void handler(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    (void)sig; (void)si;
    if (hits < SIGNALS)
        rips[hits] = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    hits++;
}

static void *killer(void *arg)
{
    (void)arg;
    for (int i = 0; i < SIGNALS; i++) {
        int before = hits;
        syscall(SYS_tgkill, getpid(), main_tid, SIGUSR1);
        for (int w = 0; w < 2000 && hits == before; w++) {   /* at most 2 s per signal */
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    done = 1;
    return NULL;
}

static int in_code(uintptr_t rip)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && perms[2] == 'x' && rip >= lo && rip < hi)
            found = 1;
    }
    if (f)
        fclose(f);
    return found;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    main_tid = syscall(SYS_gettid);
    long ppid = getppid(), wrong = 0, calls = 0;
    pthread_t t;
    pthread_create(&t, NULL, killer, NULL);
    while (!done) {
        if (syscall(SYS_getppid) != ppid || syscall(SYS_gettid) != main_tid)
            wrong++;
        calls++;
    }
    pthread_join(t, NULL);
    int outside = 0, n = hits < SIGNALS ? hits : SIGNALS;
    for (int i = 0; i < n; i++)
        outside += !in_code(rips[i]);
    printf("signals handled %d of %d\nwrong results %ld\nhandler rip outside code %d\nmade calls %d\n",
           (int)hits, SIGNALS, wrong, outside, calls > SIGNALS);
    return 0;
}
