/* Waits for SIGINT or SIGTERM in a handler, or (argument "deadlock") blocks
 * forever in a self-deadlock; prints "ready" when it starts waiting. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static volatile sig_atomic_t got;
static void h(int s) { got = s; }
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "deadlock") == 0) {
        pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
        pthread_mutex_lock(&m);
        puts("ready"); fflush(stdout);
        pthread_mutex_lock(&m);   /* never returns */
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "default") == 0) {
        puts("ready"); fflush(stdout);
        for (;;) pause();
    }
    signal(SIGINT, h);
    signal(SIGTERM, h);
    puts("ready"); fflush(stdout);
    while (!got) pause();
    printf("got %s\n", got == SIGINT ? "SIGINT" : "SIGTERM");
    return 5;
}
