/* config_absent: calls flock(2), which a test kernel config leaves out, then eventfd(2),
 * which it keeps; prints what each returned (natively both succeed). stdout is
 * unbuffered so that what was printed before a SIGSYS death is seen.
 * Probes: CONFIG_ABSENT_SYSCALL: ENOSYS, EPERM, or death by SIGSYS (status 159) for a
 * syscall that is not in the kernel; the other syscalls still work. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <unistd.h>

static const char *errname(int e)
{
    return e == ENOSYS ? "ENOSYS" : e == EPERM ? "EPERM" : strerror(e);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    int fd = open("/dev/null", O_RDONLY);
    printf("open: %s\n", fd >= 0 ? "ok" : errname(errno));
    int r = flock(fd, LOCK_SH);
    printf("flock: %d %s\n", r, r == 0 ? "ok" : errname(errno));
    int e = eventfd(0, 0);
    printf("eventfd: %s\n", e >= 0 ? "ok" : errname(errno));
    return 0;
}
