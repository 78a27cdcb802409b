/* Probes: what a kernel configuration leaves of processes and record locks.
 * "procs": fork() (the child exits 7, the parent reaps it), vfork() and posix_spawn()
 * of /bin/true, each outcome printed as ok or the errno's name.
 * "locks": fcntl F_SETLK, F_GETLK, F_OFD_SETLK and F_OFD_GETLK on a temporary file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *ename(int e) {
    switch (e) {
    case EAGAIN: return "EAGAIN";
    case ENOSYS: return "ENOSYS";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    default: return strerror(e);
    }
}

static void procs(void) {
    pid_t pid = fork();
    if (pid == 0)
        _exit(7);
    if (pid < 0) {
        printf("fork: %s\n", ename(errno));
    } else {
        int st = 0;
        waitpid(pid, &st, 0);
        printf("fork: ok, child status %d\n", WEXITSTATUS(st));
    }
    pid = vfork();
    if (pid == 0)
        _exit(8);
    if (pid < 0) {
        printf("vfork: %s\n", ename(errno));
    } else {
        int st = 0;
        waitpid(pid, &st, 0);
        printf("vfork: ok, child status %d\n", WEXITSTATUS(st));
    }
    char *argv[] = {"true", NULL};
    int err = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
    if (err) {
        printf("posix_spawn: %s\n", ename(err));
    } else {
        int st = 0;
        waitpid(pid, &st, 0);
        printf("posix_spawn: ok, status %d\n", WEXITSTATUS(st));
    }
}

static void lock(int fd, int cmd, const char *name, short type) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_len = 10;
    int r = fcntl(fd, cmd, &fl);
    if (r < 0)
        printf("%s: %s\n", name, ename(errno));
    else if (cmd == F_GETLK || cmd == F_OFD_GETLK)
        printf("%s: ok, %s\n", name, fl.l_type == F_UNLCK ? "unlocked" : "locked");
    else
        printf("%s: ok\n", name);
}

static void locks(void) {
    char path[] = "/tmp/umiak-locks-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        exit(1);
    }
    unlink(path);
    lock(fd, F_SETLK, "F_SETLK", F_WRLCK);
    lock(fd, F_GETLK, "F_GETLK", F_WRLCK);
    lock(fd, F_OFD_SETLK, "F_OFD_SETLK", F_RDLCK);
    lock(fd, F_OFD_GETLK, "F_OFD_GETLK", F_WRLCK);
    close(fd);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "locks") == 0)
        locks();
    else
        procs();
    return 0;
}
