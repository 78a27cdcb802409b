/* Probes: a program reading its own code: the bytes of libc syscall wrappers it has called
 * (getppid, gettid: `mov $nr,%eax; syscall` in glibc and musl), which umiak's exitless path
 * rewrites unless --no-rewrite; and /proc/self/maps, which never shows umiak's trampolines. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void show(const char *name, const void *fn)
{
    const unsigned char *p = fn;
    printf("%s:", name);
    for (int i = 0; i < 7; i++)
        printf(" %02x", p[i]);
    printf("\n");
}

int main(void)
{
    for (int i = 0; i < 50; i++) {
        getppid();
        gettid();
    }
    show("getppid", (const void *)getppid);
    show("gettid", (const void *)gettid);
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int low = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long start = 0;
        sscanf(line, "%lx", &start);
        low += start < 0x10000;
    }
    printf("maps below 64 KiB: %d\n", low);
    return 0;
}
