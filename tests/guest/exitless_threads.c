/* Probes: many threads making syscalls at the same time (on kvm each through its own
 * exitless slot): gettid, getpid and getppid answer for the calling thread, and pwrite/
 * pread of a regular file at each thread's own offset keep every thread's bytes. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define THREADS 8
#define ROUNDS 400

static int fd;
static long pid, ppid;
static long wrong[THREADS];

static void *work(void *arg)
{
    long me = (long)arg, tid = syscall(SYS_gettid);
    char buf[16], back[16];
    for (int r = 0; r < ROUNDS; r++) {
        if (syscall(SYS_gettid) != tid || syscall(SYS_getpid) != pid || syscall(SYS_getppid) != ppid)
            wrong[me]++;
        memset(buf, 'a' + (int)me, sizeof buf);
        buf[0] = (char)r;
        if (pwrite(fd, buf, sizeof buf, me * 16) != sizeof buf || pread(fd, back, sizeof back, me * 16) != sizeof back
            || memcmp(buf, back, sizeof buf) != 0)
            wrong[me]++;
    }
    return NULL;
}

int main(void)
{
    char path[] = "/tmp/umiak-exitless-XXXXXX";
    fd = mkstemp(path);
    if (fd < 0)
        return 1;
    unlink(path);
    pid = getpid();
    ppid = getppid();
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, work, (void *)i);
    long bad = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        bad += wrong[i];
    }
    printf("%d threads x %d rounds, wrong answers %ld\n", THREADS, ROUNDS, bad);
    return 0;
}
