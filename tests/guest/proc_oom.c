/* Out of memory across processes (run with -m 64M; no native comparison: the host has
 * more). Probes: a child whose copy-on-write copies find no free frame gets the largest
 * process killed (here its parent, bigger by a private allocation made after the fork),
 * then goes on and finishes; pid 1 (small) sees the parent killed by SIGKILL and the
 * child exit 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1 << 20)

static char *touch(size_t n, int v) {
    char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    memset(m, v, n);
    return m;
}

int main(int argc, char **argv) {
    size_t shared = (size_t)(argc > 1 ? atoi(argv[1]) : 26) * MIB;
    size_t extra = (size_t)(argc > 2 ? atoi(argv[2]) : 8) * MIB;
    setvbuf(stdout, NULL, _IONBF, 0);
    int go[2];
    pipe(go);
    pid_t big = fork();
    if (big == 0) {
        char *m = touch(shared, 1);
        pid_t child = fork();
        if (child == 0) {
            char c;
            read(go[0], &c, 1);          /* until the parent has grown */
            for (size_t i = 0; i < shared; i += 4096)
                m[i] = 2;                /* copy-on-write: one new frame per page */
            long sum = 0;
            for (size_t i = 0; i < shared; i += 4096)
                sum += m[i];
            printf("child wrote every page: %d\n", sum == 2 * (long)(shared / 4096));
            _exit(0);
        }
        touch(extra, 3);
        write(go[1], "g", 1);
        waitpid(child, NULL, 0);
        printf("parent survived\n");
        _exit(0);
    }
    int st;
    pid_t p;
    while ((p = wait(&st)) > 0) {
        if (p == big)
            printf("big parent: %s %d\n", WIFSIGNALED(st) ? "killed by" : "exited", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        else
            printf("orphaned child: %s %d\n", WIFSIGNALED(st) ? "killed by" : "exited", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    }
    return 0;
}
