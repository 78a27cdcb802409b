/* unknown_syscall: numbers Linux does not implement return -ENOSYS, and the program
 * continues. umiak may warn on stderr, so the test compares stdout and status only.
 * Probes: the syscall table's fallback for numbers past the end, in the hole Linux
 * never assigned on x86-64 (335-423; this host uses 335-336 for itself), for rows Linux leaves unimplemented
 * (afs_syscall, tuxcall, security), in the x32-only range (512-547, ENOSYS for a
 * 64-bit caller), -1, and a number with bits set above the low 32. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    long nrs[] = {337, 400, 423, 183, 184, 185, 512, 547, 1000, 5000, 100000, -1};
    for (unsigned i = 0; i < sizeof nrs / sizeof nrs[0]; i++) {
        errno = 0;
        long r = syscall(nrs[i], 1, 2, 3);
        printf("syscall %ld: %ld %s\n", nrs[i], r, errno == ENOSYS ? "ENOSYS" : "other");
    }
    /* Linux reads the number from eax only: high bits set still mean getpid. */
    printf("getpid with high bits: %s\n", syscall(0x100000000L | 39) == getpid() ? "same" : "differs");
    return 3;
}
