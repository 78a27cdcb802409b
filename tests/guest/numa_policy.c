/* Probes: set_mempolicy/get_mempolicy/mbind on a machine with one memory node:
   the policy is kept and reported, node 0 is the only node, checks as Linux's. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *e(long r) { return r < 0 ? strerror(errno) : "ok"; }

static void show(const char *what, unsigned long flags, void *addr) {
    int mode = -1;
    unsigned long mask = 99;
    long r = syscall(SYS_get_mempolicy, &mode, &mask, 64, addr, flags);
    printf("%-26s %s mode %d mask %lx\n", what, e(r), r < 0 ? -1 : mode, r < 0 ? 0 : mask);
}

int main(void) {
    char *m = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    m[0] = 1;
    show("default", 0, 0);
    show("mems allowed", 4, 0);
    show("node of a page", 3, m);
    show("node of nothing", 3, (void *)8);
    show("F_NODE without interleave", 1, 0);
    show("bad flags", 64, 0);
    unsigned long node0 = 1, node5 = 1 << 5;
    printf("set BIND {0}: %s\n", e(syscall(SYS_set_mempolicy, 2, &node0, 64)));
    show("after BIND", 0, 0);
    printf("set INTERLEAVE {0}: %s\n", e(syscall(SYS_set_mempolicy, 3, &node0, 64)));
    show("F_NODE with interleave", 1, 0);
    printf("set BIND {5}: %s\n", e(syscall(SYS_set_mempolicy, 2, &node5, 64)));
    printf("set BIND {}: %s\n", e(syscall(SYS_set_mempolicy, 2, 0, 0)));
    printf("set PREFERRED {}: %s\n", e(syscall(SYS_set_mempolicy, 1, 0, 0)));
    show("after PREFERRED", 0, 0);
    printf("set mode 99: %s\n", e(syscall(SYS_set_mempolicy, 99, 0, 0)));
    printf("set DEFAULT: %s\n", e(syscall(SYS_set_mempolicy, 0, 0, 0)));
    show("after DEFAULT", 0, 0);
    printf("mbind BIND {0}: %s\n", e(syscall(SYS_mbind, m, 8192, 2, &node0, 64, 0)));
    printf("mbind unaligned: %s\n", e(syscall(SYS_mbind, m + 1, 100, 2, &node0, 64, 0)));
    printf("mbind node 5: %s\n", e(syscall(SYS_mbind, m, 8192, 2, &node5, 64, 0)));
    return 0;
}
