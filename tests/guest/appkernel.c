/* appkernel: a small workload for app-specific kernels: writes a file in /tmp, reads it
 * back, lists /tmp's entry for it, prints a checksum. With "outside" it also calls
 * flock(2) and uname(2), which the workload never uses (so its traced kernel lacks them),
 * and prints what they returned; with "crash" it dies of SIGSEGV.
 * Probes: umiak config app / --record-config / --explore: the program's own kernel runs
 * the workload as Linux does; a call outside it gets CONFIG_ABSENT_SYSCALL's answer. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/utsname.h>
#include <unistd.h>

static const char *errname(int e)
{
    return e == ENOSYS ? "ENOSYS" : e == EPERM ? "EPERM" : strerror(e);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    char path[64];
    snprintf(path, sizeof path, "/tmp/appkernel-%d", (int)getpid());
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd < 0) { perror("open"); return 1; }
    for (int i = 0; i < 100; i++) dprintf(fd, "line %d\n", i);
    close(fd);
    fd = open(path, O_RDONLY);
    char buf[4096];
    unsigned sum = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++) sum = sum * 31 + (unsigned char)buf[i];
    close(fd);
    DIR *d = opendir("/tmp");
    int seen = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, path + 5) == 0) seen = 1;
    if (d) closedir(d);
    unlink(path);
    printf("sum %08x seen %d\n", sum, seen);
    if (strcmp(mode, "outside") == 0) {
        fflush(stdout);
        int r = flock(1, LOCK_SH);
        printf("flock: %s\n", r == 0 ? "ok" : errname(errno));
        struct utsname u;
        r = uname(&u);
        printf("uname: %s\n", r == 0 ? "ok" : errname(errno));
    }
    if (strcmp(mode, "crash") == 0) {
        fflush(stdout);
        *(volatile int *)8 = 1;
    }
    return 0;
}
