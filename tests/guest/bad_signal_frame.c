/* bad_signal_frame: a signal frame the kernel cannot write or read back is SIGSEGV.
 * Probes: delivery to a handler while rsp points to unmapped memory (Linux's
 * force_sigsegv: "Segmentation fault", status 139; if SIGSEGV has a handler on an
 * alternate stack, that handler runs with si_code SI_KERNEL; if its handler has no
 * usable stack either, the program dies of SIGSEGV), and rt_sigreturn with an
 * unreadable frame (SIGSEGV, not an error return).
 * Usage: bad_signal_frame stack|stack-segv-handler|stack-altstack|sigreturn|sigreturn-altstack */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_usr1(int sig) { (void)sig; write(1, "usr1 handler ran\n", 17); }

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    char line[96];
    int n = snprintf(line, sizeof line, "SIGSEGV handler: signo %d, si_code %#x, si_addr %p\n",
                     sig, si->si_code, si->si_addr);
    write(1, line, n);
    _exit(7);
}

static void handle(int sig, int altstack)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    if (sig == SIGSEGV) {
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | (altstack ? SA_ONSTACK : 0);
    } else {
        sa.sa_handler = on_usr1;
    }
    sigaction(sig, &sa, NULL);
}

static void use_altstack(void)
{
    static char stack[64 * 1024];
    stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack};
    sigaltstack(&ss, NULL);
}

/* kill(getpid(), SIGUSR1) by raw syscall with rsp on an unmapped page. */
static long kill_self_on_bad_stack(void)
{
    long ret, pid = getpid();
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "mov $0x1000, %%rsp\n\t"
                     "syscall\n\t"
                     "mov %%r12, %%rsp"
                     : "=a"(ret) : "a"(62L), "D"(pid), "S"((long)SIGUSR1)
                     : "rcx", "r11", "r12", "memory");
    return ret;
}

/* rt_sigreturn with rsp (the frame) on an unmapped page. */
static long sigreturn_bad_frame(void)
{
    long ret;
    __asm__ volatile("mov %%rsp, %%r12\n\t"
                     "mov $0x1000, %%rsp\n\t"
                     "syscall\n\t"
                     "mov %%r12, %%rsp"
                     : "=a"(ret) : "a"(15L) : "rcx", "r11", "r12", "memory");
    return ret;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "stack";
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("mode %s\n", mode);
    long r;
    if (strncmp(mode, "stack", 5) == 0) {
        handle(SIGUSR1, 0);
        if (strcmp(mode, "stack-segv-handler") == 0)
            handle(SIGSEGV, 0);
        if (strcmp(mode, "stack-altstack") == 0) {
            use_altstack();
            handle(SIGSEGV, 1);
        }
        r = kill_self_on_bad_stack();
        printf("kill returned %ld and the program lives on\n", r);
    } else if (strncmp(mode, "sigreturn", 9) == 0) {
        if (strcmp(mode, "sigreturn-altstack") == 0) {
            use_altstack();
            handle(SIGSEGV, 1);
        }
        r = sigreturn_bad_frame();
        printf("rt_sigreturn returned %ld and the program lives on\n", r);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
