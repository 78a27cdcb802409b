/* Memory a restored program must find as it was at the snapshot, restore after restore
 * (a Machine restores each run into the VM the last one left, whose frames held what
 * that run wrote): a zero buffer that was touched, a pattern, and the stack below.
 * The marker syscall is the snapshot point ("ready"); natively it fails with ENOSYS. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LEN (64 * 4096)

static size_t count(const unsigned char *p, size_t n, unsigned char v) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += p[i] == v;
    return c;
}

int main(void) {
    unsigned char *zero = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *pattern = malloc(LEN);
    if (zero == MAP_FAILED || !pattern)
        return 1;
    for (size_t i = 0; i < LEN; i += 4096)
        zero[i + 17] = zero[i];           /* touched, still zero: backed without data */
    memset(pattern, 0x3c, LEN / 2);       /* half with data, half zero (malloc gives zero: fresh) */
    memset(pattern + LEN / 2, 0, LEN / 2);
    printf("before the snapshot\n");
    fflush(stdout);
    syscall(0x554d0001);
    printf("zero %zu of %d, pattern %zu+%zu\n", count(zero, LEN, 0), LEN,
           count(pattern, LEN / 2, 0x3c), count(pattern + LEN / 2, LEN / 2, 0));
    memset(zero, 0xa5, LEN);              /* what the next restore must not see */
    memset(pattern, 0xa5, LEN);
    return 0;
}
