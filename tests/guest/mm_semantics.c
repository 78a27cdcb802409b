/* mm_semantics: brk, mmap, munmap and mprotect as Linux defines them, without crashing.
 * Each check prints one line "name: result"; results are booleans or errno names,
 * never addresses (they differ between runs).
 * Probes: brk growth/shrink/refusal and zero fill, anonymous mmap zero fill, hints,
 * MAP_FIXED replacing a mapping, MAP_FIXED_NOREPLACE -> EEXIST, munmap of a page
 * in the middle, mprotect down and back up, EINVAL/ENOMEM cases, a 512 MiB
 * mapping touched sparsely, an impossible size -> ENOMEM, mremap-free realloc. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define PAGE 4096UL

static const char *ename(int e)
{
    switch (e) {
    case 0: return "0"; case EINVAL: return "EINVAL"; case ENOMEM: return "ENOMEM";
    case EEXIST: return "EEXIST"; case EACCES: return "EACCES"; case EPERM: return "EPERM";
    case EBADF: return "EBADF"; case EFAULT: return "EFAULT"; case ENODEV: return "ENODEV";
    case EOVERFLOW: return "EOVERFLOW";
    default: return "other";
    }
}

static void check(const char *what, int ok) { printf("%s: %s\n", what, ok ? "ok" : "WRONG"); }

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void *map(void *hint, size_t len, int prot, int flags)
{
    return mmap(hint, len, prot, flags | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(void)
{
    /* brk, through the raw system call (musl's sbrk only supports sbrk(0)):
     * brk(addr) returns the new break, or the old one when it refuses. */
    char *b0 = (char *)syscall(SYS_brk, 0);
    check("brk(0) is not NULL", b0 != NULL);
    char *b1 = (char *)syscall(SYS_brk, b0 + 3 * PAGE + 100);
    check("brk grows", b1 == b0 + 3 * PAGE + 100);
    check("new brk memory is zero", all_zero((unsigned char *)b0, 3 * PAGE + 100));
    memset(b0, 0x5a, 3 * PAGE + 100);
    check("brk memory is writable", b0[3 * PAGE + 99] == 0x5a);
    check("brk(0) reports it", (char *)syscall(SYS_brk, 0) == b1);
    check("brk shrinks", (char *)syscall(SYS_brk, b0) == b0);
    check("brk regrows", (char *)syscall(SYS_brk, b0 + 2 * PAGE) == b0 + 2 * PAGE);
    check("regrown brk is zero again", all_zero((unsigned char *)b0, 2 * PAGE));
    check("brk(huge) refused, break unchanged",
          (char *)syscall(SYS_brk, 0x7ffffffff000UL) == b0 + 2 * PAGE);
    check("brk below its start refused", (char *)syscall(SYS_brk, b0 - (64 << 20)) == b0 + 2 * PAGE);
    syscall(SYS_brk, b0);

    /* anonymous mmap */
    unsigned char *a = map(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, 0);
    check("mmap anonymous", a != MAP_FAILED);
    check("mmap page aligned", ((uintptr_t)a & (PAGE - 1)) == 0);
    check("mmap memory is zero", all_zero(a, 16 * PAGE));
    memset(a, 1, 16 * PAGE);
    check("mmap memory is writable", a[16 * PAGE - 1] == 1);

    /* a hint at a free address is honoured */
    void *hint = (void *)0x3a0000000000UL;
    void *h = map(hint, 4 * PAGE, PROT_READ | PROT_WRITE, 0);
    check("mmap hint honoured when free", h == hint);
    /* a hint at a taken address is not an error: the kernel picks elsewhere */
    void *h2 = map(hint, PAGE, PROT_READ | PROT_WRITE, 0);
    check("mmap hint at a taken address moves", h2 != MAP_FAILED && h2 != hint);
    munmap(h2, PAGE);
    /* an unaligned hint is rounded, not refused */
    void *h3 = map((char *)hint + 0x10000123, PAGE, PROT_READ, 0);
    check("mmap unaligned hint accepted", h3 != MAP_FAILED && ((uintptr_t)h3 & (PAGE - 1)) == 0);
    munmap(h3, PAGE);

    /* MAP_FIXED replaces what is there, and the new pages are zero */
    memset(h, 7, 4 * PAGE);
    void *f = map((char *)h + PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_FIXED);
    check("MAP_FIXED over a mapping", f == (char *)h + PAGE);
    check("MAP_FIXED pages are zero", all_zero(f, PAGE));
    check("neighbours keep contents", ((char *)h)[0] == 7 && ((char *)h)[2 * PAGE] == 7);

    /* MAP_FIXED_NOREPLACE */
    errno = 0;
    void *nr = map(h, PAGE, PROT_READ, MAP_FIXED_NOREPLACE);
    printf("MAP_FIXED_NOREPLACE on a mapping: %s\n", nr == MAP_FAILED ? ename(errno) : "mapped");
    void *free_spot = (void *)0x3b0000000000UL;
    nr = map(free_spot, PAGE, PROT_READ | PROT_WRITE, MAP_FIXED_NOREPLACE);
    check("MAP_FIXED_NOREPLACE on free space", nr == free_spot);
    munmap(nr, PAGE);

    /* munmap one page in the middle, then it is free for NOREPLACE */
    check("munmap middle page", munmap((char *)h + 2 * PAGE, PAGE) == 0);
    nr = map((char *)h + 2 * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_FIXED_NOREPLACE);
    check("hole can be mapped again", nr == (char *)h + 2 * PAGE);
    check("remapped hole is zero", all_zero(nr, PAGE));
    check("munmap of an unmapped range is fine", munmap((void *)0x3c0000000000UL, PAGE) == 0);

    /* mprotect down and back up keeps the contents */
    unsigned char *m = map(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, 0);
    memset(m, 0x33, 4 * PAGE);
    check("mprotect PROT_READ", mprotect(m, 4 * PAGE, PROT_READ) == 0);
    check("readable after PROT_READ", m[PAGE] == 0x33);
    check("mprotect PROT_NONE", mprotect(m, 4 * PAGE, PROT_NONE) == 0);
    check("mprotect back to RW", mprotect(m, 4 * PAGE, PROT_READ | PROT_WRITE) == 0);
    m[3 * PAGE] = 0x44;
    check("contents kept through mprotect", m[0] == 0x33 && m[3 * PAGE] == 0x44);
    check("mprotect part of a mapping", mprotect(m + PAGE, PAGE, PROT_READ) == 0);
    m[0] = 1; m[2 * PAGE] = 2;
    check("other pages still writable", m[0] == 1 && m[2 * PAGE] == 2);

    /* error cases */
    errno = 0; printf("mmap length 0: %s\n", map(NULL, 0, PROT_READ, 0) == MAP_FAILED ? ename(errno) : "mapped");
    errno = 0; printf("MAP_FIXED unaligned: %s\n",
                      map((void *)0x3d0000000123UL, PAGE, PROT_READ, MAP_FIXED) == MAP_FAILED ? ename(errno) : "mapped");
    errno = 0; printf("mmap without MAP_PRIVATE/SHARED: %s\n",
                      mmap(NULL, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? ename(errno) : "mapped");
    errno = 0; printf("mmap bad fd: %s\n",
                      mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, 12345, 0) == MAP_FAILED ? ename(errno) : "mapped");
    errno = 0; printf("munmap unaligned: %s\n", munmap((char *)m + 1, PAGE) ? ename(errno) : "0");
    errno = 0; printf("munmap length 0: %s\n", munmap(m, 0) ? ename(errno) : "0");
    errno = 0; printf("mprotect unaligned: %s\n", mprotect(m + 1, PAGE, PROT_READ) ? ename(errno) : "0");
    errno = 0; printf("mprotect unmapped: %s\n",
                      mprotect((void *)0x3e0000000000UL, PAGE, PROT_READ) ? ename(errno) : "0");
    errno = 0; printf("mmap 2^47 bytes: %s\n",
                      map(NULL, 1UL << 47, PROT_READ | PROT_WRITE, 0) == MAP_FAILED ? ename(errno) : "mapped");
    errno = 0; printf("MAP_FIXED above user space: %s\n",
                      map((void *)0x800000000000UL, PAGE, PROT_READ, MAP_FIXED) == MAP_FAILED ? ename(errno) : "mapped");

    /* 512 MiB, touched every MiB: fine with lazily backed memory */
    size_t big = 512UL << 20;
    unsigned char *g = map(NULL, big, PROT_READ | PROT_WRITE, MAP_NORESERVE);
    check("mmap 512 MiB", g != MAP_FAILED);
    unsigned long sum = 0;
    for (size_t off = 0; off < big; off += 1 << 20)
        g[off] = (unsigned char)(off >> 20);
    for (size_t off = 0; off < big; off += 1 << 20)
        sum += g[off] + g[off + 4096];
    printf("512 MiB sparse sum: %lu\n", sum);
    check("munmap 512 MiB", munmap(g, big) == 0);

    /* malloc: small, large (mmap threshold), realloc growth */
    char *s = malloc(100), *l = malloc(8 << 20);
    check("malloc", s && l);
    memset(l, 9, 8 << 20);
    l = realloc(l, 32 << 20);
    check("realloc keeps contents", l && l[(8 << 20) - 1] == 9);
    free(l); free(s);
    return 0;
}
