/* Threads: 64 threads created and joined with return values; a mutex-protected
 * counter; condition variables (ping-pong); a barrier; thread-local storage per
 * thread; gettid differs between threads; pthread_exit from a thread. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>

#define N 64
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static __thread long mine;
static pid_t tids[N];

static void *worker(void *arg) {
    long id = (long)arg;
    mine = id * 10;
    tids[id] = (pid_t)syscall(SYS_gettid);
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        pthread_mutex_unlock(&mu);
    }
    if (id == 7)
        pthread_exit((void *)(mine + 1));
    return (void *)(mine + 2);
}

static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pc = PTHREAD_COND_INITIALIZER;
static int turn, rounds = 2000;

static void *ponger(void *arg) {
    for (int i = 0; i < rounds; i++) {
        pthread_mutex_lock(&pm);
        while (turn != 1) pthread_cond_wait(&pc, &pm);
        turn = 0;
        pthread_cond_signal(&pc);
        pthread_mutex_unlock(&pm);
    }
    return arg;
}

static pthread_barrier_t bar;
static int phase_seen[8][3];
static int phase;

static void *barrier_worker(void *arg) {
    long id = (long)arg;
    for (int p = 0; p < 3; p++) {
        phase_seen[id][p] = __atomic_load_n(&phase, __ATOMIC_SEQ_CST) == p;
        if (pthread_barrier_wait(&bar) == PTHREAD_BARRIER_SERIAL_THREAD)
            __atomic_add_fetch(&phase, 1, __ATOMIC_SEQ_CST);
        pthread_barrier_wait(&bar);
    }
    return NULL;
}

int main(void) {
    pthread_t t[N];
    mine = -1;
    for (long i = 0; i < N; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i)) { puts("create failed"); return 1; }
    long sum = 0;
    for (long i = 0; i < N; i++) {
        void *r;
        pthread_join(t[i], &r);
        sum += (long)r;
    }
    int distinct = 1;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (tids[i] == tids[j] || tids[i] == getpid()) distinct = 0;
    printf("counter %ld (expect %d)\nsum of results %ld\nmain tls %ld\ndistinct tids %d\n",
           counter, N * 2000, sum, mine, distinct);

    pthread_t p;
    pthread_create(&p, NULL, ponger, NULL);
    for (int i = 0; i < rounds; i++) {
        pthread_mutex_lock(&pm);
        turn = 1;
        pthread_cond_signal(&pc);
        while (turn != 0) pthread_cond_wait(&pc, &pm);
        pthread_mutex_unlock(&pm);
    }
    pthread_join(p, NULL);
    printf("condvar ping-pong %d rounds done\n", rounds);

    pthread_barrier_init(&bar, NULL, 8);
    pthread_t b[8];
    for (long i = 0; i < 8; i++) pthread_create(&b[i], NULL, barrier_worker, (void *)i);
    for (int i = 0; i < 8; i++) pthread_join(b[i], NULL);
    int ok = 1;
    for (int i = 0; i < 8; i++) for (int q = 0; q < 3; q++) ok &= phase_seen[i][q];
    printf("barrier phases consistent %d, final phase %d\n", ok, phase);
    return 0;
}
