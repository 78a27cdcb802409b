/* clone(CLONE_FS) shares the working directory and umask between processes. Probes: a
 * child cloned with CLONE_FS that calls chdir and umask changes its parent's cwd and
 * umask; a plain fork's child changes only its own; a file the parent then creates with
 * a relative name lands in the shared directory with the shared umask. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *when) {
    char cwd[256];
    mode_t m = umask(0);
    umask(m);
    printf("%s: cwd %s umask %03o\n", when, getcwd(cwd, sizeof cwd) ? cwd : "?", (unsigned)m);
}

static pid_t clone_fs(int share) {
    return (pid_t)syscall(SYS_clone, (share ? CLONE_FS : 0) | SIGCHLD, 0, 0, 0, 0);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (chdir("/") != 0) return 1;
    umask(022);
    show("start");
    int st;
    pid_t p = clone_fs(0);
    if (p == 0) {
        if (chdir("/tmp") != 0) _exit(1);
        umask(077);
        _exit(0);
    }
    waitpid(p, &st, 0);
    show("after a fork child's chdir");
    p = clone_fs(1);
    if (p == 0) {
        if (chdir("/tmp") != 0) _exit(1);
        umask(027);
        _exit(0);
    }
    waitpid(p, &st, 0);
    show("after a CLONE_FS child's chdir");
    int fd = open("clone_fs_probe", O_CREAT | O_WRONLY | O_TRUNC, 0666);
    struct stat sb = {0};
    int there = fd >= 0 && stat("/tmp/clone_fs_probe", &sb) == 0;
    printf("created in /tmp: %d mode %03o\n", there, (unsigned)(sb.st_mode & 0777));
    unlink("/tmp/clone_fs_probe");
    return 0;
}
