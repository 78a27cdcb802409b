/* Creates threads until pthread_create fails; reports the error (EAGAIN). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void *sleeper(void *a) { pause(); return a; }
int main(int argc, char **argv) {
    int want = argc > 1 ? atoi(argv[1]) : 100;
    pthread_attr_t at; pthread_attr_init(&at); pthread_attr_setstacksize(&at, 65536);
    int n = 0, err = 0;
    for (; n < want; n++) {
        pthread_t t;
        if ((err = pthread_create(&t, &at, sleeper, NULL)) != 0) break;
    }
    printf("created %d, then %s\n", n, err ? strerror(err) : "no error");
    fflush(stdout);
    _exit(0);
}
