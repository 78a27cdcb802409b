/* hello: the smallest program: one line through stdio on stdout, status 0.
 * Probes: process start (stack, auxv use by libc start-up), write, exit_group. */
#include <stdio.h>

int main(void)
{
    printf("hello, world\n");
    return 0;
}
