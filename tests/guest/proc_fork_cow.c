/* fork and copy-on-write. Probes: both sides write globals, heap, stack and a big
 * lazily backed mapping after fork and each sees only its own data; MAP_SHARED
 * anonymous memory (touched before and only after fork) is one memory for both;
 * a 16 MiB region touched whole (a fork's bulk write-protection) written by each
 * side after the other keeps each side's own pages, fork after fork;
 * an mprotect'ed read-only page made writable in the child stays private; the
 * child returns 0 with the parent's FPU state (rounding mode); fork in a
 * multi-threaded process leaves only the caller in the child; getppid is the
 * parent; the child's exit status reaches waitpid. */
#define _GNU_SOURCE
#include <fenv.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static int global = 1;
static volatile long spins;
static volatile int stop;

static void *spinner(void *arg) {
    while (!stop)
        spins++;
    return arg;
}

static size_t count(const char *p, size_t n, char c) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] == c;
    return k;
}

static int child_status(pid_t pid) {
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        perror("waitpid");
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    size_t big = 64 << 20;
    char *heap = malloc(1 << 20);
    memset(heap, 'h', 1 << 20);
    char *lazy = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < big; i += 1 << 20)
        lazy[i] = 'l';
    size_t dsz = 16 << 20;
    char *dense = mmap(NULL, dsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(dense, 'd', dsz);
    char *shared = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    shared[0] = 's';            /* touched before fork */
    char *ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(ro, "original");
    mprotect(ro, 4096, PROT_READ);
    char stack[8192];
    memset(stack, 'k', sizeof stack);
    fesetround(FE_UPWARD);
    pid_t me = getpid();
    int c2p[2], p2c[2];
    char ch;
    pipe(c2p);
    pipe(p2c);

    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        printf("child: fork returned 0, getppid is parent: %d\n", getppid() == me);
        printf("child: rounding mode inherited: %d\n", fegetround() == FE_UPWARD);
        global = 2; heap[12345] = 'H'; lazy[big - 1] = 'L'; lazy[3 << 20] = 'M'; stack[100] = 'K';
        shared[0] = 'S';          /* shared: the parent must see these */
        shared[(1 << 20) - 1] = 'T';  /* first touched here, after fork */
        mprotect(ro, 4096, PROT_READ | PROT_WRITE);
        strcpy(ro, "child's");
        for (size_t i = 0; i < dsz; i += 16 * 4096)
            dense[i] = 'c';
        printf("child: %d %c %c %c %c %s\n", global, heap[12345], lazy[big - 1], lazy[3 << 20], stack[100], ro);
        write(c2p[1], "w", 1);
        read(p2c[0], &ch, 1);     /* the parent has written meanwhile */
        printf("child after parent wrote: %d %c %c %c\n", global, heap[0], lazy[0], stack[0]);
        printf("child sees parent's shared write: %c\n", shared[1]);
        printf("child's dense region: %zu c, %zu p\n", count(dense, dsz, 'c'), count(dense, dsz, 'p'));
        _exit(42);
    }
    read(c2p[0], &ch, 1);
    global = 3; heap[0] = 'P'; lazy[0] = 'Q'; stack[0] = 'R';
    shared[1] = 'p';
    for (size_t i = 8 * 4096; i < dsz; i += 16 * 4096)
        dense[i] = 'p';
    printf("parent wrote\n");
    write(p2c[1], "w", 1);
    int code = child_status(pid);
    printf("parent: child exit %d\n", code);
    printf("parent: %d %c %c %d %c %c %c %s\n", global, heap[12345], heap[0], lazy[big - 1], lazy[0],
           lazy[3 << 20], stack[100], ro);
    printf("parent sees child's shared writes: %c %c\n", shared[0], shared[(1 << 20) - 1]);
    printf("parent's dense region: %zu c, %zu p, %zu d\n", count(dense, dsz, 'c'), count(dense, dsz, 'p'),
           count(dense, dsz, 'd'));

    /* fork from a multi-threaded process: only the caller exists in the child. */
    pthread_t t;
    pthread_create(&t, NULL, spinner, NULL);
    while (spins == 0)
        usleep(1000);
    pid = fork();
    if (pid == 0) {
        long a = spins;
        usleep(50000);
        printf("child of threaded parent: other thread gone: %d\n", spins == a);
        _exit(0);
    }
    printf("threaded fork: child exit %d\n", child_status(pid));
    stop = 1;
    pthread_join(t, NULL);

    /* Many forks in a row, each child exits with its number. Between forks the parent
     * writes the dense region (its pages writable again), and after each fork it writes
     * there once more while the child looks: the child must still see the old byte. */
    int sum = 0, stale = 0;
    for (int i = 0; i < 20; i++) {
        size_t at = (size_t)i * 7 * 8192;
        dense[at] = (char)('a' + i);
        pid = fork();
        if (pid == 0) {
            heap[i] = (char)i;
            read(p2c[0], &ch, 1);
            _exit(dense[at] == 'a' + i ? i : 99);
        }
        dense[at] = 'P';
        write(p2c[1], "w", 1);
        int code = child_status(pid);
        stale += code == 99;
        sum += code;
    }
    printf("20 children, exit codes sum %d, heap untouched %c, children that saw the parent's later write: %d\n",
           sum, heap[5], stale);
    return 0;
}
