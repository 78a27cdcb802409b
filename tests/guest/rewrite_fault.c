/* Probes: a fault at a syscall site umiak has rewritten: getppid's page made PROT_READ after
 * 50 calls, the next call faults; si_addr, the RIP in the ucontext and si_code are those of a
 * native run (the start of getppid), and the call works once the handler restores the page. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static volatile uintptr_t fault_addr, fault_rip;
static volatile int fault_code, faults;
static uintptr_t page;

static long raw_mprotect(uintptr_t addr, long len, long prot)
{
    long ret;
    __asm__ volatile ("syscall" : "=a"(ret) : "a"((long)SYS_mprotect), "D"(addr), "S"(len), "d"(prot)
                      : "rcx", "r11", "memory");
    return ret;
}

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    ucontext_t *uc = ctx;
    fault_addr = (uintptr_t)si->si_addr;
    fault_rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    fault_code = si->si_code;
    faults++;
    raw_mprotect(page, 8192, PROT_READ | PROT_EXEC);   /* our handler's code is not on it */
}

int main(void)
{
    uintptr_t fn = (uintptr_t)getppid;
    page = fn & ~(uintptr_t)4095;
    if ((uintptr_t)on_segv - page < 8192 || (uintptr_t)raw_mprotect - page < 8192) {
        printf("handler shares getppid's pages: not probed\n");
        return 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    pid_t want = getppid();
    for (int i = 0; i < 50; i++)
        getppid();
    raw_mprotect(page, 8192, PROT_READ);
    pid_t got = getppid();
    printf("faults %d, si_addr at getppid %d, rip at getppid %d, si_code %d, result same %d\n",
           faults, fault_addr == fn, fault_rip == fn, fault_code, got == want);
    return 0;
}
