/* A fork bomb bounded by RLIMIT_NPROC. Probes: with RLIMIT_NPROC at 24 and a non-root
 * uid (the program drops to 65534 when started as root), every process of the bomb
 * forks until fork fails with EAGAIN; the supervisor (a subreaper, still root or the
 * same uid) then kills the bomb's process group with SIGKILL, reaps every process of
 * it (orphans come back to it), and can fork again: the system survives. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIMIT 24

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int report[2];
    if (pipe(report) != 0) return 1;
    pid_t bomb = fork();
    if (bomb == 0) {
        setpgid(0, 0);
        close(report[0]);
        struct rlimit rl = {LIMIT, LIMIT};
        if (setrlimit(RLIMIT_NPROC, &rl) != 0) _exit(2);
        if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
        for (;;) {
            pid_t p = fork();
            if (p < 0) {
                int e = errno;
                if (write(report[1], &e, sizeof e) != sizeof e) _exit(4);
                for (;;) pause();
            }
            if (p > 0) {
                char c = 'c';
                if (write(report[1], &c, 1) != 1) _exit(4);
            }
        }
    }
    close(report[1]);
    setpgid(bomb, bomb);
    /* The first errno report ends the bomb; count the forks that succeeded before it. */
    int children = 0, err = 0;
    for (;;) {
        char c;
        if (read(report[0], &c, 1) != 1) break;
        if (c == 'c') { children++; continue; }
        char rest[sizeof(int)];
        rest[0] = c;
        size_t got = 1;
        while (got < sizeof rest) {
            ssize_t n = read(report[0], rest + got, sizeof rest - got);
            if (n <= 0) break;
            got += (size_t)n;
        }
        memcpy(&err, rest, sizeof err);
        break;
    }
    printf("fork failed with EAGAIN: %d\n", err == EAGAIN);
    printf("forks before the limit, 1..%d: %d\n", LIMIT, children >= 1 && children < LIMIT);
    kill(-bomb, SIGKILL);
    int reaped = 0, killed = 1, st;
    pid_t w;
    while ((w = wait(&st)) > 0) {
        reaped++;
        if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) killed = 0;
    }
    printf("reaped every bomb process: %d (all by SIGKILL: %d, wait ends with ECHILD: %d)\n",
           reaped >= 1 && reaped <= LIMIT, killed, errno == ECHILD);
    pid_t again = fork();
    if (again == 0) _exit(7);
    waitpid(again, &st, 0);
    printf("fork works again: %d\n", WIFEXITED(st) && WEXITSTATUS(st) == 7);
    return 0;
}
