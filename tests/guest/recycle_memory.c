/* What a program must find, run after run in one VM (a Machine recycles its VM):
 * zero in its bss, a fresh mmap, brk and malloc memory and untouched stack, and a
 * fault at an address it did not map, though the run before mapped and wrote it.
 * argv[1]: "a" or "b", which of two fixed addresses it maps (the other it probes). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define LEN (32 * PAGE)

static unsigned char bss[64 * PAGE];
static sigjmp_buf back;

static void on_segv(int sig) { (void)sig; siglongjmp(back, 1); }

static size_t nonzero(const unsigned char *p, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += p[i] != 0;
    return c;
}

/* The low half of a deep frame: stack pages no call has reached yet. */
static __attribute__((noinline)) size_t deep_stack(int fill) {
    volatile unsigned char a[256 * 1024];
    size_t c = 0;
    for (size_t i = 0; i < sizeof a / 2; i++)
        c += a[i] != 0;
    if (fill)
        for (size_t i = 0; i < sizeof a; i++)
            a[i] = 0xa5;
    return c;
}

int main(int argc, char **argv) {
    int b = argc > 1 && argv[1][0] == 'b';
    unsigned char *at_a = (unsigned char *)0x200000000000UL, *at_b = (unsigned char *)0x210000000000UL;
    unsigned char *mine = b ? at_b : at_a, *other = b ? at_a : at_b;
    unsigned char *m = mmap(mine, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m != mine) {
        perror("mmap");
        return 1;
    }
    unsigned char *brk0 = sbrk(16 * PAGE);
    unsigned char *big = malloc(256 * 1024);   /* past the mmap threshold: its own mapping */
    unsigned char *small = malloc(8 * PAGE);   /* from the heap */
    if (brk0 == (void *)-1 || !big || !small)
        return 2;
    printf("%s: bss %zu mmap %zu brk %zu malloc %zu+%zu stack %zu\n", b ? "b" : "a",
           nonzero(bss, sizeof bss), nonzero(m, LEN), nonzero(brk0, 16 * PAGE),
           nonzero(big, 256 * 1024), nonzero(small, 8 * PAGE), deep_stack(0));
    signal(SIGSEGV, on_segv);
    if (sigsetjmp(back, 1) == 0)
        printf("read %d at the other address\n", *(volatile unsigned char *)other);
    else
        printf("fault at the other address\n");
    if (sigsetjmp(back, 1) == 0) {
        *(volatile unsigned char *)(other + PAGE) = 1;
        printf("wrote the other address\n");
    } else
        printf("fault writing the other address\n");
    memset(bss, 0xa5, sizeof bss);
    memset(m, 0xa5, LEN);
    memset(brk0, 0xa5, 16 * PAGE);
    memset(big, 0xa5, 256 * 1024);
    memset(small, 0xa5, 8 * PAGE);
    deep_stack(1);
    if (mprotect(m, LEN, PROT_READ) != 0)   /* a lowered permission left behind */
        return 3;
    return 0;
}
