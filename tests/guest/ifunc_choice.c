/* ifunc_choice: prints CPUID's vendor, leaf 1 EAX (family/model) and OSXSAVE
 * bit, then (unless given "cpuid") for each libc function glibc picks by CPU (an IFUNC) its
 * name and the offset in libc.so of the variant the dynamic linker chose (dlsym resolves it).
 * Probes: umiak run --cpu=baseline presents one CPU model on kvm and emu, so glibc's choices
 * (and the CPUID leaves the model fixes) are equal on both platforms. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *names[] = {
    "memcpy", "memmove", "memset", "memchr", "memrchr", "memcmp", "rawmemchr", "strlen", "strnlen",
    "strchr", "strrchr", "strcmp", "strncmp", "strcpy", "stpcpy", "strcat", "strstr", "strspn",
    "strcspn", "strpbrk", "strcasecmp", "wcslen", "wcschr", "wmemset", "wcscmp", "wmemchr", 0,
};

int main(int argc, char **argv)
{
    unsigned a, b, c, d;
    __cpuid(0, a, b, c, d);
    printf("vendor %.4s%.4s%.4s\n", (char *)&b, (char *)&d, (char *)&c);
    __cpuid(1, a, b, c, d);
    printf("leaf1 eax %#x osxsave %u\n", a, (c >> 27) & 1);
    if (argc > 1 && strcmp(argv[1], "cpuid") == 0)
        return 0;
    for (int i = 0; names[i]; i++) {
        void *p = dlsym(RTLD_DEFAULT, names[i]);
        Dl_info info;
        if (!p || !dladdr(p, &info)) {
            printf("%s ?\n", names[i]);
            continue;
        }
        printf("%s %#lx\n", names[i], (unsigned long)((uintptr_t)p - (uintptr_t)info.dli_fbase));
    }
    return 0;
}
