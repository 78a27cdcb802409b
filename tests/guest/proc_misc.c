/* fork-related process attributes. Probes: MADV_WIPEONFORK gives the child zeros
 * and the parent its data; a MADV_DONTFORK mapping is absent in the child (SIGSEGV)
 * and MADV_DOFORK brings it back; PR_SET_CHILD_SUBREAPER makes orphans below come
 * to this process (getppid, waitpid); PR_SET_PDEATHSIG kills a child when its
 * parent ends; PR_GET_* read back what was set. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_segv(int sig) { (void)sig; _exit(77); }

static int status_of(pid_t p) {
    int st = 0;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    char *wipe = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    strcpy(wipe, "keep me");
    strcpy(wipe + 8192, "me too");
    printf("MADV_WIPEONFORK: %d\n", madvise(wipe, 3 * 4096, MADV_WIPEONFORK));
    pid_t p = fork();
    if (p == 0) {
        printf("child sees zeros: %d %d\n", wipe[0] == 0, wipe[8192] == 0);
        strcpy(wipe, "child");
        _exit(0);
    }
    status_of(p);
    printf("parent keeps: %s, %s\n", wipe, wipe + 8192);
    char *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    errno = 0;
    int r = madvise(shared, 4096, MADV_WIPEONFORK);
    printf("MADV_WIPEONFORK on shared memory: %d %s\n", r, strerror(errno));

    char *gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    gone[0] = 'g';
    madvise(gone, 4096, MADV_DONTFORK);
    p = fork();
    if (p == 0) {
        signal(SIGSEGV, on_segv);
        printf("child reads a DONTFORK page: %c\n", *(volatile char *)gone);
        _exit(0);
    }
    printf("DONTFORK child: %d\n", status_of(p));
    madvise(gone, 4096, MADV_DOFORK);
    p = fork();
    if (p == 0)
        _exit(*(volatile char *)gone);
    printf("DOFORK child: %d\n", status_of(p));

    int v = -1;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    prctl(PR_GET_CHILD_SUBREAPER, &v);
    printf("subreaper: %d\n", v);
    int fds[2], back[2];
    pipe(fds);
    pipe(back);
    pid_t me = getpid(), grand = 0;
    p = fork();
    if (p == 0) {
        pid_t g = fork();
        if (g == 0) {
            char ch;
            read(fds[0], &ch, 1);
            _exit(getppid() == me ? 11 : 12);
        }
        write(back[1], &g, sizeof g);
        _exit(0);
    }
    status_of(p);
    read(back[0], &grand, sizeof grand);
    write(fds[1], "x", 1);
    printf("orphan came to the subreaper and exits with %d\n", status_of(grand));

    p = fork();
    if (p == 0) {
        pid_t g = fork();
        if (g == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            int s = 0;
            prctl(PR_GET_PDEATHSIG, &s);
            write(back[1], &s, sizeof s);
            for (;;)
                pause();
        }
        int s;
        read(back[0], &s, sizeof s);
        printf("grandchild's PDEATHSIG: %d\n", s);
        _exit(0);
    }
    status_of(p);
    pid_t any;
    int st;
    while ((any = waitpid(-1, &st, 0)) > 0)
        printf("reaped %s: %s %d\n", any == p ? "child" : "grandchild",
               WIFSIGNALED(st) ? "killed by" : "exited", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    printf("done: %s\n", strerror(errno));
    return 0;
}
