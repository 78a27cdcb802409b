/* Probes futex(2) where umiak's exitless stubs answer it in the guest (a wait whose word
 * differs, a wait that spins before it blocks, a private wake with nobody queued) beside
 * the calls the host serves: errors for bad addresses and arguments, a wait on a page
 * never touched, waiters blocked on the host woken and requeued, a ping-pong, glibc's
 * mutexes and condition variables, and signals that land while a thread waits. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* linux/futex.h's values (musl has no kernel headers). */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_CMP_REQUEUE 4
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_CLOCK_REALTIME 256
#define FUTEX_WAIT_PRIVATE (FUTEX_WAIT | FUTEX_PRIVATE_FLAG)
#define FUTEX_WAKE_PRIVATE (FUTEX_WAKE | FUTEX_PRIVATE_FLAG)
#define FUTEX_CMP_REQUEUE_PRIVATE (FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG)

static long fx(void *addr, int op, unsigned val, const struct timespec *t, void *addr2, unsigned val3)
{
    long r = syscall(SYS_futex, addr, op, val, t, addr2, val3);
    return r < 0 ? -errno : r;
}

static const char *name(long r)
{
    static char buf[32];
    switch (-r) {
    case EAGAIN: return "EAGAIN";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EINTR: return "EINTR";
    case ENOSYS: return "ENOSYS";
    }
    snprintf(buf, sizeof buf, "%ld", r);
    return buf;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&t, NULL);
}

static void errors(void)
{
    static _Alignas(8) unsigned word[2] = {5, 0};
    struct timespec ms = {0, 1000000}, bad = {0, 2000000000};
    printf("wait, word differs: %s\n", name(fx(word, FUTEX_WAIT_PRIVATE, 4, NULL, NULL, 0)));
    printf("wait shared, word differs: %s\n", name(fx(word, FUTEX_WAIT, 4, NULL, NULL, 0)));
    printf("wait, 1 ms: %s\n", name(fx(word, FUTEX_WAIT_PRIVATE, 5, &ms, NULL, 0)));
    printf("wait, bad timeout: %s\n", name(fx(word, FUTEX_WAIT_PRIVATE, 4, &bad, NULL, 0)));
    printf("wait, misaligned: %s\n", name(fx((char *)word + 1, FUTEX_WAIT_PRIVATE, 5, NULL, NULL, 0)));
    printf("wake, misaligned: %s\n", name(fx((char *)word + 2, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0)));
    printf("wait, NULL: %s\n", name(fx(NULL, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0)));
    printf("wake, NULL: %s\n", name(fx(NULL, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0)));
    printf("wake, nobody waits: %s\n", name(fx(word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0)));
    printf("wake 0: %s\n", name(fx(word, FUTEX_WAKE_PRIVATE, 0, NULL, NULL, 0)));
    printf("wake shared, nobody waits: %s\n", name(fx(word, FUTEX_WAKE, 1, NULL, NULL, 0)));
    printf("wait, clock realtime: %s\n", name(fx(word, FUTEX_WAIT_PRIVATE | FUTEX_CLOCK_REALTIME, 5, NULL, NULL, 0)));
    /* Addresses no program maps: umiak's own kernel area (2^46) and past user space. */
    void *k = (void *)0x400000001000UL, *high = (void *)0x800000000000UL;
    printf("wait, 2^46: %s\n", name(fx(k, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0)));
    printf("wake, 2^46: %s\n", name(fx(k, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0)));
    printf("wait, 2^47: %s\n", name(fx(high, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0)));
    printf("wake, 2^47: %s\n", name(fx(high, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0)));
    unsigned *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("wait, PROT_NONE: %s\n", name(fx(none, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0)));
    unsigned *fresh = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("wait, page never touched, word differs: %s\n", name(fx(fresh, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0)));
    printf("wait, page never touched, 1 ms: %s\n", name(fx(fresh + 1024, FUTEX_WAIT_PRIVATE, 0, &ms, NULL, 0)));
    munmap(fresh + 2048, 4096);
    printf("wait, page unmapped: %s\n", name(fx(fresh + 2048, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0)));
}

static _Atomic unsigned a_word, b_word;
static long waited[4];

static void *wait_a(void *arg)
{
    waited[(long)arg] = fx(&a_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}

static void blocked_waiters(void)
{
    pthread_t t[2];
    pthread_create(&t[0], NULL, wait_a, (void *)0);
    sleep_ms(100);   /* long past any spin: queued on the host */
    a_word = 1;
    printf("wake of a queued waiter: %s\n", name(fx(&a_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0)));
    pthread_join(t[0], NULL);
    printf("  its wait: %s\n", name(waited[0]));

    a_word = 0;
    pthread_create(&t[0], NULL, wait_a, (void *)0);
    pthread_create(&t[1], NULL, wait_a, (void *)1);
    sleep_ms(100);
    printf("requeue of 2 to another word: %s\n",
           name(fx(&a_word, FUTEX_CMP_REQUEUE_PRIVATE, 0, (void *)2L, &b_word, 0)));
    printf("wake of the first word: %s\n", name(fx(&a_word, FUTEX_WAKE_PRIVATE, 2, NULL, NULL, 0)));
    printf("wake of the second word: %s\n", name(fx(&b_word, FUTEX_WAKE_PRIVATE, 2, NULL, NULL, 0)));
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    printf("  their waits: %s", name(waited[0]));
    printf(" %s\n", name(waited[1]));
}

#define ROUNDS 20000
static _Atomic int turn;
static long out_of_turn;

static void *partner(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        int v;
        while ((v = turn) != 1)
            fx(&turn, FUTEX_WAIT_PRIVATE, (unsigned)v, NULL, NULL, 0);
        turn = 0;
        fx(&turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
    return NULL;
}

static void ping_pong(void)
{
    pthread_t t;
    pthread_create(&t, NULL, partner, NULL);
    for (int i = 0; i < ROUNDS; i++) {
        turn = 1;
        fx(&turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        int v;
        while ((v = turn) != 0)
            fx(&turn, FUTEX_WAIT_PRIVATE, (unsigned)v, NULL, NULL, 0);
        if (turn != 0)
            out_of_turn++;
    }
    pthread_join(t, NULL);
    printf("ping-pong: %d rounds, out of turn %ld\n", ROUNDS, out_of_turn);
}

#define WORKERS 4
#define ADDS 20000
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t more = PTHREAD_COND_INITIALIZER, room = PTHREAD_COND_INITIALIZER;
static long counter, queued, produced, consumed;

static void *adder(void *arg)
{
    (void)arg;
    for (int i = 0; i < ADDS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (queued == 0 && produced < ADDS)
            pthread_cond_wait(&more, &lock);
        if (queued == 0) {
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        queued--;
        consumed++;
        pthread_cond_signal(&room);
        pthread_mutex_unlock(&lock);
    }
}

static void glibc_locks(void)
{
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&t[i], NULL, adder, NULL);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);
    printf("mutex: %ld of %d\n", counter, WORKERS * ADDS);
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, consumer, NULL);
    for (int i = 0; i < ADDS; i++) {
        pthread_mutex_lock(&lock);
        while (queued >= 4)
            pthread_cond_wait(&room, &lock);
        queued++;
        produced++;
        pthread_cond_signal(&more);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_lock(&lock);
    pthread_cond_broadcast(&more);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("condvar: %ld produced, %ld consumed\n", produced, consumed);
}

#define KICKS 300
static _Atomic unsigned quiet, stop;
static _Atomic long handled;
static long bad_returns;
static pthread_t sleeper_thread;

static void on_usr1(int sig) { (void)sig; handled++; }

static void *sleeper(void *arg)
{
    (void)arg;
    while (!stop) {
        long r = fx(&quiet, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
        if (r != -EINTR && !(stop && (r == 0 || r == -EAGAIN)))
            bad_returns++;
    }
    return NULL;
}

static void signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;   /* no SA_RESTART: each interrupted wait returns EINTR */
    sigaction(SIGUSR1, &sa, NULL);
    pthread_create(&sleeper_thread, NULL, sleeper, NULL);
    for (long i = 0; i < KICKS; i++) {
        pthread_kill(sleeper_thread, SIGUSR1);
        while (handled <= i)
            ;
    }
    stop = 1;
    quiet = 1;
    fx(&quiet, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    pthread_join(sleeper_thread, NULL);
    printf("signals: %ld handled, wrong returns %ld\n", (long)handled, bad_returns);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    errors();
    blocked_waiters();
    ping_pong();
    glibc_locks();
    signals();
    return 0;
}
