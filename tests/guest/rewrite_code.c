/* Probes: a program reading its own code: the bytes of libc syscall wrappers it has called
 * (getppid, gettid: `mov $nr,%eax; syscall` in glibc and musl; the five bytes before the first
 * `syscall` in syscall(), glibc's `mov 0x8(%rsp),%r9`; the two before read()'s first `syscall`,
 * glibc's `xor %eax,%eax`, and the five at the next 16-byte boundary), which umiak's exitless path rewrites
 * unless --no-rewrite; and /proc/self/maps, which never shows umiak's trampolines (below 64 KiB
 * for a non-PIE executable's sites, above the mmap area for the shared libraries'). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
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
        syscall(SYS_getppid);
    }
    char buf[16];
    int fd = open("/proc/self/exe", O_RDONLY);
    for (int i = 0; i < 50; i++)
        if (read(fd, buf, sizeof buf) != sizeof buf)
            printf("short read\n");
    close(fd);
    show("getppid", (const void *)getppid);
    show("gettid", (const void *)gettid);
    const unsigned char *p = (const unsigned char *)syscall;
    int at = 5;
    while (at < 64 && !(p[at] == 0x0f && p[at + 1] == 0x05))
        at++;
    show("syscall", p + at - 5);
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int low = 0, anon_exec = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long start = 0;
        char perms[8] = "", path[256] = "";
        sscanf(line, "%lx-%*x %7s %*s %*s %*s %255s", &start, perms, path);
        low += start < 0x10000;
        anon_exec += strchr(perms, 'x') != NULL && path[0] == 0;
    }
    printf("maps below 64 KiB: %d\n", low);
    printf("anonymous executable maps: %d\n", anon_exec);
    p = (const unsigned char *)read;
    at = 2;
    while (at < 64 && !(p[at] == 0x0f && p[at + 1] == 0x05))
        at++;
    printf("read: %02x %02x %02x %02x\n", p[at - 2], p[at - 1], p[at], p[at + 1]);
    return 0;
}
