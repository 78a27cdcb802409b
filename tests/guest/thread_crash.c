/* A thread that dereferences NULL ends the whole program with SIGSEGV. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static void *crash(void *a) { usleep(10000); *(volatile int *)a = 1; return NULL; }
int main(void) {
    pthread_t t;
    puts("before"); fflush(stdout);
    pthread_create(&t, NULL, crash, NULL);
    for (;;) pause();
}
