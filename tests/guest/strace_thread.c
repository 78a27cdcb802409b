/* strace_thread: one thread writes while main waits in pthread_join (a futex wait);
 * strace -f prefixes lines with [pid N] while there are two threads. */
#include <pthread.h>
#include <unistd.h>

static void *worker(void *arg)
{
    (void)arg;
    write(1, "t\n", 2);
    return 0;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
    pthread_join(t, 0);
    write(1, "m\n", 2);
    return 0;
}
