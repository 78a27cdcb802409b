/* pidfds. Probes: pidfd_open of a running child polls not ready, pidfd_send_signal
 * kills it, the pidfd then polls readable and waitid(P_PIDFD) reports the signal;
 * clone3(CLONE_PIDFD) returns a pidfd for a child that exits; pidfd_getfd copies a
 * pipe end out of a child; errors: pidfd_open(-1) EINVAL, a non-pidfd EBADF, a bad
 * target fd EBADF, waitid(P_PIDFD) of a reaped child's pidfd ECHILD. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_send_signal 424
#define SYS_pidfd_open 434
#define SYS_clone3 435
#define SYS_pidfd_getfd 438
#endif
#define PIDFD_FLAG 0x1000   /* CLONE_PIDFD */

struct clone3_args {        /* struct clone_args of linux/sched.h (musl has no kernel headers) */
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static int ready(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int pipefd[2];
    pipe(pipefd);
    pid_t p = fork();
    if (p == 0) {
        for (;;)
            pause();
    }
    int pfd = syscall(SYS_pidfd_open, p, 0);
    printf("pidfd_open: %d, ready while running: %d\n", pfd >= 0, ready(pfd));
    close(pipefd[1]);
    int w = syscall(SYS_pidfd_getfd, pfd, pipefd[1], 0);
    printf("pidfd_getfd: %d, cloexec %d\n", w >= 0, (fcntl(w, F_GETFD) & FD_CLOEXEC) != 0);
    write(w, "hi", 2);
    close(w);
    char buf[4] = "";
    read(pipefd[0], buf, 2);
    printf("read through the child's pipe end: %s\n", buf);
    errno = 0;
    long bt = syscall(SYS_pidfd_getfd, pfd, 999, 0);
    printf("pidfd_getfd bad target: %ld %s\n", bt, strerror(errno));
    printf("pidfd_send_signal: %ld\n", syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0));
    struct pollfd pl = {.fd = pfd, .events = POLLIN};
    printf("poll until it ends: %d\n", poll(&pl, 1, 5000));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_PIDFD, pfd, &si, WEXITED);
    printf("waitid(P_PIDFD): %d code %d status %d pid ok %d\n", r, si.si_code, si.si_status, si.si_pid == p);
    errno = 0;
    r = waitid(P_PIDFD, pfd, &si, WEXITED);
    printf("again after reaping: %d %s\n", r, strerror(errno));
    errno = 0;
    long sr = syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0);
    printf("signal to a reaped process: %ld %s\n", sr, strerror(errno));
    close(pfd);

    int cpfd = -1;
    struct clone3_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = PIDFD_FLAG;
    ca.pidfd = (uint64_t)(uintptr_t)&cpfd;
    ca.exit_signal = SIGCHLD;
    long c = syscall(SYS_clone3, &ca, sizeof ca);
    if (c == 0)
        _exit(5);
    printf("clone3(CLONE_PIDFD): pidfd %d\n", cpfd >= 0);
    pl.fd = cpfd;
    poll(&pl, 1, 5000);
    memset(&si, 0, sizeof si);
    waitid(P_PIDFD, cpfd, &si, WEXITED);
    printf("its exit: code %d status %d\n", si.si_code, si.si_status);

    errno = 0;
    long e1 = syscall(SYS_pidfd_open, -1, 0);
    printf("pidfd_open(-1): %ld %s\n", e1, strerror(errno));
    errno = 0;
    long e2 = syscall(SYS_pidfd_send_signal, 0, SIGTERM, NULL, 0);
    printf("pidfd_send_signal on stdin: %ld %s\n", e2, strerror(errno));
    return 0;
}
