/* auxv: print the auxiliary-vector entries whose values Linux gives identically to
 * every run of the same binary on the same host; for the rest (addresses, random
 * bytes), print only what must hold.
 * Probes: the loader's auxv (AT_PAGESZ, AT_PHENT, AT_PHNUM, AT_PHDR, AT_ENTRY,
 * AT_BASE, AT_FLAGS, AT_UID/EUID/GID/EGID, AT_SECURE, AT_CLKTCK, AT_RANDOM,
 * AT_EXECFN, AT_PLATFORM, AT_HWCAP/AT_MINSIGSTKSZ presence), and stack alignment. */
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>

#ifndef AT_MINSIGSTKSZ
#define AT_MINSIGSTKSZ 51
#endif

extern char **environ;
extern void _start(void);

static const char *ptype(uint32_t t)
{
    switch (t) {
    case PT_NULL: return "NULL"; case PT_LOAD: return "LOAD"; case PT_DYNAMIC: return "DYNAMIC";
    case PT_INTERP: return "INTERP"; case PT_NOTE: return "NOTE"; case PT_PHDR: return "PHDR";
    case PT_TLS: return "TLS"; case PT_GNU_EH_FRAME: return "GNU_EH_FRAME";
    case PT_GNU_STACK: return "GNU_STACK"; case PT_GNU_RELRO: return "GNU_RELRO";
    case 0x6474e553: return "GNU_PROPERTY";
    default: return "other";
    }
}

int main(int argc, char **argv)
{
    /* Find the auxv by walking past envp (getauxval hides missing entries as 0). */
    char **p = environ;
    while (*p)
        p++;
    Elf64_auxv_t *av = (Elf64_auxv_t *)(p + 1);
    unsigned long seen[64] = {0};
    for (; av->a_type != AT_NULL; av++)
        if (av->a_type < 64)
            seen[av->a_type] = 1;

    printf("argv[0]=[%s]\n", argv[0]);
    printf("AT_PAGESZ=%lu\n", getauxval(AT_PAGESZ));
    printf("AT_PHENT=%lu\n", getauxval(AT_PHENT));
    printf("AT_PHNUM=%lu\n", getauxval(AT_PHNUM));
    printf("AT_BASE is %s\n", getauxval(AT_BASE) ? "set (an interpreter was loaded)" : "0");  /* an address when dynamic */
    printf("AT_FLAGS=%lu\n", getauxval(AT_FLAGS));
    printf("AT_UID=%lu AT_EUID=%lu AT_GID=%lu AT_EGID=%lu\n", getauxval(AT_UID),
           getauxval(AT_EUID), getauxval(AT_GID), getauxval(AT_EGID));
    printf("AT_SECURE=%lu\n", getauxval(AT_SECURE));
    printf("AT_CLKTCK=%lu\n", getauxval(AT_CLKTCK));
    printf("AT_ENTRY is _start: %s\n", getauxval(AT_ENTRY) == (unsigned long)&_start ? "yes" : "no");
    const char *plat = (const char *)getauxval(AT_PLATFORM);
    printf("AT_PLATFORM=%s\n", plat ? plat : "(none)");
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    printf("AT_EXECFN=%s\n", execfn ? execfn : "(none)");
    printf("AT_EXECFN equals argv[0]: %s\n", execfn && strcmp(execfn, argv[0]) == 0 ? "yes" : "no");
    unsigned char *rnd = (unsigned char *)getauxval(AT_RANDOM);
    printf("AT_RANDOM present: %s\n", rnd ? "yes" : "no");
    if (rnd) {
        unsigned sum = 0;  /* reads all 16 bytes; the value itself is random */
        for (int i = 0; i < 16; i++)
            sum |= rnd[i];
        printf("AT_RANDOM readable: %s\n", sum || !sum ? "yes" : "no");
    }
    printf("AT_HWCAP present: %s\n", seen[AT_HWCAP] ? "yes" : "no");
    printf("AT_HWCAP2 present: %s\n", seen[AT_HWCAP2] ? "yes" : "no");
    printf("AT_MINSIGSTKSZ present: %s\n", seen[AT_MINSIGSTKSZ] ? "yes" : "no");

    /* AT_PHDR must point at this binary's own program headers. */
    const Elf64_Phdr *ph = (const Elf64_Phdr *)getauxval(AT_PHDR);
    unsigned long n = getauxval(AT_PHNUM);
    printf("program headers:");
    for (unsigned long i = 0; ph && i < n; i++)
        printf(" %s", ptype(ph[i].p_type));
    printf("\n");

    /* The ABI: %rsp is 16-byte aligned at _start, so argv sits at an 8 mod 16 address. */
    printf("argv 8-byte aligned: %s\n", ((uintptr_t)argv & 7) == 0 ? "yes" : "no");
    return 0;
}
