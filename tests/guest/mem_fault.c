/* mem_fault: make exactly one bad memory access, chosen by argv[1]; the program
 * must die of SIGSEGV (status 139, "Segmentation fault") after its first line.
 * One program per expected crash, no signal handler, no fork.
 * Probes: page faults and #GP for unmapped, PROT_NONE, read-only, munmap'd and
 * mprotect-lowered memory (the permission-lowering paths need a TLB/shadow-MMU
 * flush under KVM), NX data, read-only code, non-canonical addresses.
 * "past-eof" (argv[2] = a file shorter than a page) touches a mapped page that lies
 * wholly beyond the end of the file: SIGBUS (status 135, "Bus error"), not SIGSEGV. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL

static void say(const char *s) { write(1, s, strlen(s)); write(1, "\n", 1); }

static volatile unsigned char *map(int prot)
{
    return mmap(NULL, 4 * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "null";
    volatile unsigned char *p;
    volatile unsigned char x = 0;
    say(c);
    if (!strcmp(c, "null")) {
        p = (volatile unsigned char *)0;
        x = *p;
    } else if (!strcmp(c, "unmapped-write")) {
        p = (volatile unsigned char *)0x3f0000000000UL;
        *p = 1;
    } else if (!strcmp(c, "after-munmap")) {
        p = map(PROT_READ | PROT_WRITE);
        p[PAGE] = 1;           /* touched, so it was really mapped */
        munmap((void *)p, 4 * PAGE);
        x = p[PAGE];
    } else if (!strcmp(c, "munmap-middle")) {
        p = map(PROT_READ | PROT_WRITE);
        p[0] = p[PAGE] = p[2 * PAGE] = 1;
        munmap((void *)(p + PAGE), PAGE);
        p[0] = p[2 * PAGE] = 2;  /* neighbours still work */
        say("neighbours ok");
        p[PAGE] = 3;
    } else if (!strcmp(c, "prot-none-read")) {
        p = map(PROT_NONE);
        x = p[0];
    } else if (!strcmp(c, "readonly-write")) {
        p = map(PROT_READ);
        x = p[0];
        say("read ok");
        p[0] = 1;
    } else if (!strcmp(c, "mprotect-none")) {
        p = map(PROT_READ | PROT_WRITE);
        p[0] = 1;
        mprotect((void *)p, 4 * PAGE, PROT_NONE);
        x = p[0];
    } else if (!strcmp(c, "mprotect-readonly")) {
        p = map(PROT_READ | PROT_WRITE);
        p[0] = 1;
        mprotect((void *)p, 4 * PAGE, PROT_READ);
        x = p[0];
        say("read ok");
        p[0] = 2;
    } else if (!strcmp(c, "write-code")) {
        p = (volatile unsigned char *)(void *)main;
        p[0] = 0xc3;
    } else if (!strcmp(c, "exec-data")) {
        p = map(PROT_READ | PROT_WRITE);
        p[0] = 0xc3;            /* ret, but the page is not executable */
        ((void (*)(void))(void *)p)();
    } else if (!strcmp(c, "noncanonical")) {
        p = (volatile unsigned char *)0x8000000000000000UL;  /* #GP, not #PF */
        x = *p;
    } else if (!strcmp(c, "past-eof") && argc > 2) {
        int fd = open(argv[2], O_RDONLY);
        p = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
        x = p[0];
        say("first page ok");
        x = p[PAGE];
    } else if (!strcmp(c, "kernel-half")) {
        p = (volatile unsigned char *)0xffffffffff600400UL;  /* not the vsyscall page */
        *p = 1;
    }
    say("still alive: WRONG");
    return x;
}
