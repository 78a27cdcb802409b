/* Probes: POSIX message queues: mq_open (O_CREAT/O_EXCL, attributes and their limits,
   names), priorities and FIFO order, EMSGSIZE, O_NONBLOCK EAGAIN, mq_timedreceive's
   ETIMEDOUT, mq_getsetattr, poll on the descriptor, a receiver in a forked child woken
   by a send, mq_notify with SIGEV_SIGNAL (si_code SI_MESGQ, the value) and EBUSY,
   mq_unlink while open. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TRY(label, expr) do { long r_ = (long)(expr); int e_ = errno; \
    printf("%s: %ld errno=%d\n", label, r_, r_ < 0 ? e_ : 0); } while (0)

static volatile int got_sig, got_code, got_val;
static void on_usr1(int s, siginfo_t *si, void *c) {
    (void)c; got_sig = s; got_code = si->si_code; got_val = si->si_value.sival_int;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char name[64];
    snprintf(name, sizeof name, "/umiak-test-%d", getpid());
    mq_unlink(name);
    struct mq_attr attr = {0, 4, 64, 0, {0}};
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
    printf("mq_open: %s\n", q >= 0 ? "ok" : strerror(errno));
    TRY("again with O_EXCL", mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr));
    TRY("missing", mq_open("/umiak-no-such-queue", O_RDWR));
    struct mq_attr bad = {0, 0, 64, 0, {0}};
    TRY("maxmsg 0", mq_open("/umiak-bad", O_RDWR | O_CREAT, 0600, &bad));
    TRY("a slash inside", mq_open("/a/b", O_RDWR | O_CREAT, 0600, NULL));
    struct mq_attr a;
    mq_getattr(q, &a);
    printf("attr flags=%ld maxmsg=%ld msgsize=%ld curmsgs=%ld\n", a.mq_flags, a.mq_maxmsg, a.mq_msgsize, a.mq_curmsgs);
    mq_send(q, "low", 3, 1);
    mq_send(q, "high", 4, 9);
    mq_send(q, "low2", 4, 1);
    mq_send(q, "mid", 3, 5);
    struct pollfd p = {q, POLLIN | POLLOUT, 0};
    poll(&p, 1, 0);
    printf("full: revents in=%d out=%d\n", !!(p.revents & POLLIN), !!(p.revents & POLLOUT));
    mq_getattr(q, &a);
    printf("curmsgs=%ld\n", a.mq_curmsgs);
    struct mq_attr nb = {O_NONBLOCK, 0, 0, 0, {0}}, old;
    mq_setattr(q, &nb, &old);
    printf("old flags=%ld\n", old.mq_flags);
    TRY("send to a full queue, O_NONBLOCK", mq_send(q, "x", 1, 0));
    mq_setattr(q, &old, 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    TRY("timed send to a full queue", mq_timedsend(q, "x", 1, 0, &ts));
    TRY("too long", mq_send(q, "0123456789012345678901234567890123456789012345678901234567890123456789", 70, 0));
    TRY("prio too big", mq_send(q, "x", 1, 40000));
    char buf[64];
    unsigned prio;
    TRY("receive buffer too small", mq_receive(q, buf, 10, &prio));
    for (int i = 0; i < 4; i++) {
        ssize_t n = mq_receive(q, buf, sizeof buf, &prio);
        printf("got %.*s prio %u\n", (int)n, buf, prio);
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50000000;
    if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
    TRY("timed receive of nothing", mq_timedreceive(q, buf, sizeof buf, &prio, &ts));
    ts.tv_nsec = 2000000000;
    TRY("bad timeout", mq_timedreceive(q, buf, sizeof buf, &prio, &ts));

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGUSR1;
    ev.sigev_value.sival_int = 77;
    TRY("mq_notify", mq_notify(q, &ev));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        TRY("child mq_notify while the parent is registered", mq_notify(q, &ev));
        mq_send(q, "from child", 10, 3);
        _exit(0);
    }
    waitpid(pid, 0, 0);
    for (int i = 0; i < 100 && !got_sig; i++) usleep(10000);
    printf("notified: sig=%d code_is_mesgq=%d value=%d\n", got_sig, got_code == SI_MESGQ, got_val);
    ssize_t n = mq_receive(q, buf, sizeof buf, &prio);
    printf("got %.*s prio %u\n", (int)n, buf, prio);
    got_sig = 0;
    mq_send(q, "again", 5, 0);
    usleep(50000);
    printf("a second message notifies: %d\n", got_sig);
    mq_receive(q, buf, sizeof buf, &prio);

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        mqd_t c = mq_open(name, O_RDONLY);
        ssize_t k = mq_receive(c, buf, sizeof buf, &prio);
        printf("child waited for %.*s prio %u\n", (int)k, buf, prio);
        fflush(stdout);
        _exit(0);
    }
    usleep(100000);
    mq_send(q, "wake up", 7, 2);
    waitpid(pid, 0, 0);
    TRY("mq_unlink", mq_unlink(name));
    TRY("mq_unlink again", mq_unlink(name));
    mq_send(q, "still open", 10, 0);
    n = mq_receive(q, buf, sizeof buf, &prio);
    printf("after unlink: %.*s\n", (int)n, buf);
    mq_close(q);
    return 0;
}
