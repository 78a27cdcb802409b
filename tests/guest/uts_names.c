/* Probes: the checks of sethostname/setdomainname that change nothing (EINVAL for a
   length over 64 or negative, EFAULT for a bad name, EPERM without CAP_SYS_ADMIN), so it
   can run natively as root without renaming the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *e(long r) { return r < 0 ? strerror(errno) : "ok (unexpected)"; }

int main(void) {
    char big[100];
    memset(big, 'x', sizeof big);
    printf("sethostname len 65: %s\n", e(syscall(SYS_sethostname, big, 65)));
    printf("sethostname len -1: %s\n", e(syscall(SYS_sethostname, big, -1)));
    printf("sethostname bad pointer: %s\n", e(syscall(SYS_sethostname, (void *)8, 5)));
    printf("setdomainname len 65: %s\n", e(syscall(SYS_setdomainname, big, 65)));
    printf("setdomainname bad pointer: %s\n", e(syscall(SYS_setdomainname, (void *)8, 5)));
    if (setresuid(1000, 1000, 1000) != 0) return 1;
    printf("unprivileged sethostname: %s\n", e(syscall(SYS_sethostname, "x", 1)));
    printf("unprivileged setdomainname: %s\n", e(syscall(SYS_setdomainname, "x", 1)));
    return 0;
}
