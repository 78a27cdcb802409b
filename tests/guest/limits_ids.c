/* Probes: the RLIMIT_NOFILE a program starts with is the one it would get natively
   (umiak's own), and descriptors can be opened up to the soft limit (EMFILE past it). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int main(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("nofile soft %llu hard %llu\n", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
    rl.rlim_cur = 64;
    setrlimit(RLIMIT_NOFILE, &rl);
    int last = -1, fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) last = fd;
    printf("highest fd %d then %s\n", last, strerror(errno));
    rl.rlim_cur = rl.rlim_max + 1;
    printf("soft above hard: %d %s\n", setrlimit(RLIMIT_NOFILE, &rl), strerror(errno));
    return 0;
}
