/* stack_growth: use 6 MiB of stack (under the default 8 MiB RLIMIT_STACK), in one big
 * frame touched from its far end, then by deep recursion; argv[1]="overflow" instead
 * recurses without end and must die of SIGSEGV like Linux's stack guard gives.
 * Probes: the initial stack's size and growth on demand, and the guard below it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static unsigned long deep(unsigned long n)
{
    volatile char pad[1024];
    pad[0] = (char)n;
    if (n == 0)
        return pad[0];
    return deep(n - 1) + pad[0];
}

static unsigned long endless(unsigned long n)
{
    volatile char pad[4096];
    pad[0] = (char)n;
    return endless(n + 1) + pad[0];
}

static unsigned long big_frame(void)
{
    volatile char buf[6 << 20];
    for (long i = sizeof buf - 1; i >= 0; i -= 4096)  /* far end first */
        buf[i] = (char)i;
    unsigned long s = 0;
    for (long i = 0; i < (long)sizeof buf; i += 4096)
        s += (unsigned char)buf[i];
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "overflow")) {
        write(1, "recursing\n", 10);
        return (int)endless(0);
    }
    printf("6 MiB frame: %lu\n", big_frame());
    printf("5000 frames of 1 KiB: %lu\n", deep(5000));
    return 0;
}
