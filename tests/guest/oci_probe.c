/* oci_probe: what a container's program sees of its runtime (tests/test_oci.py).
 * Probes: exit status, a crash's status (SIGSEGV, 139), isatty/tcgetattr on a terminal
 * (the kernel's 36-byte struct termios), tcsetpgrp/tcgetpgrp (TIOC[SG]PGRP), memory up to a limit (MiB touched), the
 * environment, cwd and ids, and a process started into the running VM (exec).
 *   oci_probe hello | crash | tty | alloc MIB | ids | exit N
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "hello";
    if (!strcmp(mode, "hello")) {
        printf("hello from %s\n", argv[0]);
        return 0;
    }
    if (!strcmp(mode, "crash")) {
        fflush(stdout);
        volatile int *p = (int *)8;
        *p = 1;
        return 1;
    }
    if (!strcmp(mode, "tty")) {
        struct termios t;
        for (int fd = 0; fd < 3; fd++)
            printf("fd %d: isatty %d tcgetattr %d\n", fd, isatty(fd), tcgetattr(fd, &t));
        /* job control as a shell does it: make our group the terminal's foreground group */
        int set = tcsetpgrp(0, getpgrp());
        printf("tcsetpgrp %d, foreground is ours %d\n", set, tcgetpgrp(0) == getpgrp());
        return 0;
    }
    if (!strcmp(mode, "alloc") && argc > 2) {
        long mib = atol(argv[2]);
        for (long i = 0; i < mib; i++) {
            char *m = malloc(1 << 20);
            if (!m)
                return 2;
            memset(m, 1, 1 << 20);
        }
        printf("touched %ld MiB\n", mib);
        return 0;
    }
    if (!strcmp(mode, "ids")) {
        char cwd[256];
        printf("uid %d gid %d cwd %s FOO=%s\n", (int)getuid(), (int)getgid(),
               getcwd(cwd, sizeof cwd) ? cwd : "?", getenv("FOO") ? getenv("FOO") : "(unset)");
        return 0;
    }
    if (!strcmp(mode, "exit") && argc > 2)
        return atoi(argv[2]);
    fprintf(stderr, "oci_probe: unknown mode %s\n", mode);
    return 64;
}
