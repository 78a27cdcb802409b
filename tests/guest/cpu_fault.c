/* cpu_fault: die of the signal chosen by argv[1], after one line on stdout.
 * Probes: CPU exceptions mapped to Linux signals and the shell's wording of them:
 * divide error -> SIGFPE (136), ud2 -> SIGILL (132), int3 -> SIGTRAP (133),
 * hlt in user mode (#GP) -> SIGSEGV (139), abort() -> SIGABRT (134) through
 * rt_sigprocmask + tgkill, raise(SIGTERM) -> 143, raise(SIGKILL) -> 137. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "divide";
    volatile int zero = 0, n = 7;
    write(1, c, strlen(c));
    write(1, "\n", 1);
    if (!strcmp(c, "divide"))
        n = n / zero;
    else if (!strcmp(c, "divide-overflow")) {
        volatile long min = (long)(1UL << 63), m1 = -1;
        min = min / m1;          /* #DE too */
        n = (int)min;
    } else if (!strcmp(c, "ud2"))
        __asm__ volatile("ud2");
    else if (!strcmp(c, "int3"))
        __asm__ volatile("int3");
    else if (!strcmp(c, "hlt"))
        __asm__ volatile("hlt");
    else if (!strcmp(c, "abort"))
        abort();
    else if (!strcmp(c, "sigterm"))
        raise(SIGTERM);
    else if (!strcmp(c, "sigkill"))
        raise(SIGKILL);
    printf("still alive: WRONG %d\n", n);
    return 0;
}
