/* Probes: main returns while a second thread spins in user code (no syscalls): the
 * exit_group must stop that thread's CPU (under umiak a kick of a running vCPU, from
 * whichever host thread the embedding program runs umiak on) and the status is main's. */
#include <pthread.h>
#include <stdio.h>

static volatile int started;

static void *spin(void *arg)
{
    started = 1;
    for (;;)
        __asm__ volatile("" ::: "memory");
    return arg;
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, spin, NULL) != 0)
        return 1;
    while (!started)
        __asm__ volatile("pause" ::: "memory");
    printf("main returns while a thread spins\n");
    return 7;
}
