/* tls: thread-local variables of the main thread.
 * Probes: the PT_TLS image (initialised .tdata and zeroed .tbss) set up by libc
 * through arch_prctl(ARCH_SET_FS), %fs-relative access, alignment of a TLS
 * variable, a large TLS block, the stack protector's canary (read via %fs:0x28),
 * and arch_prctl(ARCH_GET_FS) agreeing with the TCB's self pointer. */
#define _GNU_SOURCE
#define ARCH_GET_FS 0x1003  /* <asm/prctl.h>, which musl does not ship */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static __thread int counter = 41;
static __thread char greeting[32] = "tls says hi";
static __thread long zeroed[1024];                         /* .tbss */
static __thread double aligned_val __attribute__((aligned(64))) = 2.5;
static __thread unsigned char big[65536];                  /* a 64 KiB TLS block */
__thread int exported_tls = 7;

static int *counter_addr(void) { return &counter; }

int main(void)
{
    counter++;
    printf("counter=%d via pointer=%d\n", counter, *counter_addr());
    printf("greeting=%s\n", greeting);
    strcat(greeting, "!");
    printf("greeting=%s\n", greeting);
    long s = 0;
    for (int i = 0; i < 1024; i++)
        s += zeroed[i];
    printf("tbss sum=%ld\n", s);
    zeroed[1023] = 5;
    printf("tbss write=%ld\n", zeroed[1023]);
    printf("aligned=%.1f aligned to 64: %s\n", aligned_val,
           ((uintptr_t)&aligned_val & 63) == 0 ? "yes" : "no");
    memset(big, 3, sizeof big);
    unsigned long t = 0;
    for (size_t i = 0; i < sizeof big; i++)
        t += big[i];
    printf("big=%lu exported=%d\n", t, exported_tls);

    uintptr_t self;
    __asm__("mov %%fs:0, %0" : "=r"(self));
    unsigned long fs = 0;
    long r = syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
    printf("ARCH_GET_FS works: %s, equals %%fs:0: %s\n", r == 0 ? "yes" : "no",
           fs == self ? "yes" : "no");
    printf("tls var below the thread pointer: %s\n", (uintptr_t)&counter < self ? "yes" : "no");
    return 0;
}
