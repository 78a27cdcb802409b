/* Probes: a blocking read of an empty pipe and a write into a full pipe nobody
   reads, in a one-thread program with alarm(1) armed and no SA_RESTART: Linux
   blocks and the signal interrupts (EINTR, or a partial write); a handler that
   fills the pipe lets a SA_RESTART read return the data. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static int fds[2];
static volatile int fired;
static void on_alrm(int s) { (void)s; fired++; }
static void fill(int s) { (void)s; fired++; write(fds[1], "hi", 2); }

int main(void) {
    char buf[8];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alrm;
    sigaction(SIGALRM, &sa, 0);
    pipe(fds);
    alarm(1);
    ssize_t n = read(fds[0], buf, sizeof buf);
    printf("read = %zd errno=%d fired=%d\n", n, n < 0 ? errno : 0, fired);

    static char big[1 << 20];
    alarm(1);
    n = write(fds[1], big, sizeof big);
    printf("write = %zd fired=%d\n", n, fired);
    size_t drained = 0;
    for (;;) {   /* drain what was written, then the pipe is empty again */
        struct timeval tv = {0, 0};
        fd_set r; FD_ZERO(&r); FD_SET(fds[0], &r);
        if (select(fds[0] + 1, &r, 0, 0, &tv) <= 0) break;
        ssize_t k = read(fds[0], big, sizeof big);
        if (k <= 0) break;
        drained += k;
    }
    printf("drained %zu\n", drained);

    sa.sa_handler = fill;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, 0);
    struct itimerval it = {{0, 0}, {0, 200000}};
    setitimer(ITIMER_REAL, &it, 0);
    n = read(fds[0], buf, sizeof buf);
    printf("restarted read = %zd '%.*s' fired=%d\n", n, (int)(n > 0 ? n : 0), buf, fired);
    return 0;
}
