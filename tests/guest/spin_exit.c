/* Probes: main returns while a second thread spins in user code (no syscalls): the
 * exit_group must stop that thread's CPU (under umiak a kick of a running vCPU, from
 * whichever host thread the embedding program runs umiak on) and the status is main's.
 * With an argument main joins the spinning thread instead: the program runs until killed. */
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

int main(int argc, char **argv)
{
    pthread_t t;
    if (pthread_create(&t, NULL, spin, NULL) != 0)
        return 1;
    while (!started)
        __asm__ volatile("pause" ::: "memory");
    (void)argv;
    if (argc > 1)
        pthread_join(t, NULL);
    printf("main returns while a thread spins\n");
    return 7;
}
