/* Probes: a thread blocked in read(2) of an empty pipe, right after a burst of fast
 * syscalls, until another thread writes after SECONDS (argv[1]); the test measures the
 * CPU time the whole umiak process used meanwhile (a blocked thread must cost none). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int fds[2];
static double seconds;

static void *writer(void *arg)
{
    (void)arg;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    if (write(fds[1], "x", 1) != 1)
        return NULL;
    return NULL;
}

int main(int argc, char **argv)
{
    seconds = argc > 1 ? atof(argv[1]) : 1.0;
    long sum = 0;
    for (int i = 0; i < 5000; i++)
        sum += syscall(SYS_getppid) == getppid();
    if (pipe(fds) != 0)
        return 1;
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    char c;
    long n = read(fds[0], &c, 1);
    pthread_join(t, NULL);
    printf("calls %ld, read %ld byte '%c'\n", sum, n, c);
    return 0;
}
