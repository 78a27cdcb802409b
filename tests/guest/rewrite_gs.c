/* Probes: a program that takes %gs for itself (arch_prctl ARCH_SET_GS) after its libc wrappers
 * were rewritten (getppid's `mov`, syscall()'s, read()'s `xor` and its padding): its code is
 * its own again, byte for byte (the first 96 bytes of each function), and the calls still work
 * with %gs its own (reading it back). */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static void show(const char *name, const void *fn)
{
    const unsigned char *p = fn;
    printf("%s:", name);
    for (int i = 0; i < 96; i++)
        printf(" %02x", p[i]);
    printf("\n");
}

int main(void)
{
    char buf[16];
    int fd = open("/proc/self/exe", O_RDONLY);
    pid_t ppid = getppid();
    for (int i = 0; i < 50; i++) {
        getppid();
        syscall(SYS_getppid);
        if (read(fd, buf, sizeof buf) != sizeof buf)
            printf("short read\n");
    }
    static unsigned long mine[4] = {0x1234};
    unsigned long back = 0;
    if (syscall(SYS_arch_prctl, ARCH_SET_GS, mine) != 0)
        perror("ARCH_SET_GS");
    show("getppid", (const void *)getppid);
    show("syscall", (const void *)syscall);
    show("read", (const void *)read);
    long wrong = 0;
    for (int i = 0; i < 50; i++) {
        wrong += getppid() != ppid || syscall(SYS_getppid) != ppid;
        wrong += lseek(fd, 1, SEEK_SET) != 1 || read(fd, buf, 3) != 3 || buf[0] != 'E';
    }
    syscall(SYS_arch_prctl, ARCH_GET_GS, &back);
    printf("gs %s, wrong answers %ld\n", back == (unsigned long)mine ? "mine" : "lost", wrong);
    return 0;
}
