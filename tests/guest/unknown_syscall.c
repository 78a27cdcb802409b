/* unknown_syscall: numbers Linux does not implement return -ENOSYS, and the program
 * continues. umiak may warn on stderr, so the test compares stdout and status only.
 * Probes: the syscall table's fallback for numbers past the end and in holes. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    long nrs[] = {1000, 5000, 100000, -1};
    for (int i = 0; i < 4; i++) {
        errno = 0;
        long r = syscall(nrs[i], 1, 2, 3);
        printf("syscall %ld: %ld %s\n", nrs[i], r, errno == ENOSYS ? "ENOSYS" : "other");
    }
    return 3;
}
