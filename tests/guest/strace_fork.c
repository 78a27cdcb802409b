/* strace across processes. Probes: a forked child's calls carry `[pid N]` (N the pid
 * fork returned) while two tasks exist, its end is `[pid N] +++ exited with 3 +++`,
 * and the parent's lines lose the prefix again once it is alone. */
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    pid_t p = fork();
    if (p == 0) {
        if (write(1, "child\n", 6) != 6) _exit(1);
        _exit(3);
    }
    int st;
    waitpid(p, &st, 0);
    if (write(1, "parent\n", 7) != 7) return 1;
    return 0;
}
