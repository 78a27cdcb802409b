/* Probes: many threads running libc syscall wrappers (gettid, getppid, getpid) that the main
 * thread's first calls made umiak rewrite, and sites each thread reaches first (uname,
 * getuid, ...) and read() of the executable from the threads, glibc's multi-threaded path: every
 * call answers for its own thread (gettid is the tid the raw syscall gives). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#define THREADS 8
#define ROUNDS 500

static void *worker(void *arg)
{
    long bad = 0;
    pid_t tid = (pid_t)syscall(SYS_gettid), pid = getpid(), ppid = getppid();
    struct utsname u;
    int fd = open("/proc/self/exe", O_RDONLY);
    char elf[4];
    for (int i = 0; i < ROUNDS; i++) {
        bad += lseek(fd, 1, SEEK_SET) != 1 || read(fd, elf, 3) != 3 || elf[0] != 'E';
        bad += gettid() != tid;
        bad += getppid() != ppid;
        bad += (pid_t)syscall(SYS_getpid) != pid;
        if (i % 100 == 0) {
            bad += uname(&u) != 0;
            bad += getuid() != geteuid();
        }
    }
    close(fd);
    *(long *)arg = bad;
    return NULL;
}

int main(void)
{
    for (int i = 0; i < 20; i++) {
        gettid();
        getppid();
    }
    pthread_t t[THREADS];
    long bad[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, &bad[i]);
    long total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        total += bad[i];
    }
    printf("%d threads x %d rounds, wrong answers %ld\n", THREADS, ROUNDS, total);
    return 0;
}
