/* canary: prints its stack protector canary (fs:0x28) and AT_RANDOM's 16 bytes, then
 * whether the canary is made from AT_RANDOM's first 8 bytes as the C library makes it
 * (glibc: the low byte zeroed; musl: the second byte zeroed).
 * Probes: every start draws its own AT_RANDOM and canary (a program started from a cached
 * prelinked snapshot too); the canary is derived from AT_RANDOM as at a normal start. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>

int main(void)
{
    uint64_t canary, head;
    __asm__ volatile("mov %%fs:0x28, %0" : "=r"(canary));
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    memcpy(&head, r, 8);
    printf("canary %016llx random ", (unsigned long long)canary);
    for (int i = 0; i < 16; i++)
        printf("%02x", r[i]);
    int glibc = canary == (head & ~(uint64_t)0xff), musl = canary == (head & ~(uint64_t)0xff00);
    printf("\nderived %s\n", glibc || musl ? "yes" : "no");
    return 0;
}
