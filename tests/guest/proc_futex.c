/* Futexes between processes. Probes: a shared futex in a MAP_SHARED anonymous page
 * wakes a waiter in the forked child; a memfd page mapped at another address in the
 * child is the same futex (keyed by the page, not the address); a private futex, and
 * a shared one in a private page, at the same address in parent and child are two
 * different futexes (wake returns 0, the child's wait times out); a process-shared
 * POSIX semaphore (sem_init pshared=1) hands over between processes. */
#define _GNU_SOURCE
#include <errno.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* <linux/futex.h>'s values (musl has no kernel headers). */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_WAIT_PRIVATE (FUTEX_WAIT | 128)
#define FUTEX_WAKE_PRIVATE (FUTEX_WAKE | 128)

static long futex(uint32_t *w, int op, uint32_t val, const struct timespec *ts) {
    return syscall(SYS_futex, w, op, val, ts, NULL, 0);
}

/* Wake waiters on w until one is woken (the child got to its wait) or ~3 s pass. */
static long wake_one(uint32_t *w, int op) {
    for (int i = 0; i < 3000; i++) {
        long n = futex(w, op, 1, NULL);
        if (n != 0) return n;
        usleep(1000);
    }
    return 0;
}

static int child_status(pid_t p) {
    int st;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    uint32_t *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t p = fork();
    if (p == 0) _exit(futex(shared, FUTEX_WAIT, 0, NULL) == 0 ? 0 : 1);
    printf("shared anonymous: wake returns %ld\n", wake_one(shared, FUTEX_WAKE));
    printf("child's wait returned 0: %d\n", child_status(p) == 0);

    int fd = memfd_create("futex", 0);
    if (ftruncate(fd, 8192) != 0) return 1;
    uint32_t *mine = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    p = fork();
    if (p == 0) {
        uint32_t *other = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (other == mine) _exit(2);
        _exit(futex(other + 1024 + 3, FUTEX_WAIT, 0, NULL) == 0 ? 0 : 1);
    }
    printf("memfd at another address: wake returns %ld\n", wake_one(mine + 1024 + 3, FUTEX_WAKE));
    printf("child's wait returned 0: %d\n", child_status(p) == 0);

    static uint32_t private_word;
    p = fork();
    if (p == 0) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        long r1 = futex(&private_word, FUTEX_WAIT_PRIVATE, 0, &ts);
        int e1 = errno;
        long r2 = futex(&private_word, FUTEX_WAIT, 0, &ts);
        int e2 = errno;
        _exit(r1 == -1 && e1 == ETIMEDOUT && r2 == -1 && e2 == ETIMEDOUT ? 0 : 1);
    }
    long woke = 0;
    for (int i = 0; i < 60; i++) {
        woke += futex(&private_word, FUTEX_WAKE_PRIVATE, 1, NULL);
        woke += futex(&private_word, FUTEX_WAKE, 1, NULL);
        usleep(4000);
    }
    printf("private page, same address: woke %ld\n", woke);
    printf("child's waits timed out: %d\n", child_status(p) == 0);

    sem_t *sem = mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sem_init(sem, 1, 0);
    p = fork();
    if (p == 0) {
        if (sem_wait(sem) != 0) _exit(1);
        printf("child: got the semaphore\n");
        _exit(0);
    }
    usleep(100 * 1000);
    printf("parent: posting\n");
    sem_post(sem);
    printf("child exited 0: %d\n", child_status(p) == 0);
    return 0;
}
