/* Probes: a fixed mix of calls the exitless path serves (getppid, getpid, gettid, fstat,
 * lseek, pwrite/pread of a regular file) and some it hands back (nanosleep), N rounds
 * (argv[1]); prints only what is stable, so strace and --syscall-summary of two runs agree.
 * The file is an O_TMPFILE, not mkstemp's: glibc's mkstemp calls getrandom a second time when
 * its clock-derived first guess is biased (~4% of runs, natively too), which made two runs'
 * traces differ by a getrandom line. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 1000;
    int fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    if (fd < 0) {   /* a /tmp without O_TMPFILE: a named file, removed at once */
        char path[] = "/tmp/umiak-exitless-calls-XXXXXX";
        fd = mkstemp(path);
        if (fd < 0)
            return 1;
        unlink(path);
    }
    long ok = 0;
    struct stat st;
    for (int i = 0; i < rounds; i++) {
        char c = (char)i, back = 0;
        ok += syscall(SYS_getppid) >= 0;
        ok += syscall(SYS_getpid) == syscall(SYS_gettid);
        ok += pwrite(fd, &c, 1, i % 64) == 1 && pread(fd, &back, 1, i % 64) == 1 && back == c;
        ok += fstat(fd, &st) == 0 && lseek(fd, 0, SEEK_CUR) == 0;
        if (i % 100 == 0) {
            struct timespec ts = {0, 1000};
            nanosleep(&ts, NULL);
        }
    }
    printf("%d rounds, %ld checks passed of %d\n", rounds, ok, 4 * rounds);
    return 0;
}
