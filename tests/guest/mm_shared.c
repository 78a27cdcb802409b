/* mm_shared: MAP_SHARED mappings of one file see one copy of its pages, and so do
 * read/write of it. argv[1] "check" DIR: a memfd, then a file in DIR (tmpfs, a volume);
 * argv[1] "crash" DIR: write through MAP_SHARED to DIR/crashed, then die of SIGSEGV
 * (the data must be in the file afterwards, as Linux writes it back).
 *
 * Probes: two MAP_SHARED mappings (RW and RO) of a memfd see each other's writes;
 * pread sees the mapping and pwrite/write change it; the same for a file in DIR opened
 * twice (a second descriptor's read/pread/pwrite), at a non-zero file offset; MAP_PRIVATE
 * sees the file at first touch and its own writes never reach the file or the shared
 * mappings; ftruncate shrinking under a mapping zeroes the last page's tail and makes the
 * page past the end SIGBUS on touch (caught with siglongjmp), growing again reads zeros;
 * msync + munmap keep the data; fstat sizes never change by mapping writes. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define memfd_create(n, f) ((int)syscall(SYS_memfd_create, n, f))
#define PG 4096

static sigjmp_buf jump;
static void on_bus(int sig) { siglongjmp(jump, sig); }

static void show(const char *what, const char *p, int n)
{
    printf("%-34s '", what);
    for (int i = 0; i < n && p[i]; i++)
        putchar(p[i]);
    printf("'\n");
}

static void two_views(const char *label, int fd, int fd2)
{
    char buf[64] = {0}, name[64];
    char *rw = mmap(0, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *ro = mmap(0, 2 * PG, PROT_READ, MAP_SHARED, fd2, 0);
    char *hi = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PG);
    if (rw == MAP_FAILED || ro == MAP_FAILED || hi == MAP_FAILED) {
        printf("%s: mmap failed\n", label);
        return;
    }
    strcpy(rw, "written through the RW view");
    snprintf(name, sizeof name, "%s: ro view", label);
    show(name, ro, 64);
    pread(fd2, buf, 27, 0);
    snprintf(name, sizeof name, "%s: pread", label);
    show(name, buf, 27);
    pwrite(fd, "FILE", 4, 0);
    snprintf(name, sizeof name, "%s: rw after pwrite", label);
    show(name, rw, 64);
    lseek(fd2, 5, SEEK_SET);
    memset(buf, 0, sizeof buf);
    read(fd2, buf, 10);
    snprintf(name, sizeof name, "%s: read at 5", label);
    show(name, buf, 10);
    lseek(fd, 8, SEEK_SET);
    write(fd, "WRITE", 5);
    snprintf(name, sizeof name, "%s: ro after write", label);
    show(name, ro, 64);
    strcpy(hi, "second page");
    snprintf(name, sizeof name, "%s: ro page 1", label);
    show(name, ro + PG, 64);
    memset(buf, 0, sizeof buf);
    pread(fd, buf, 11, PG);
    snprintf(name, sizeof name, "%s: pread page 1", label);
    show(name, buf, 11);
    pwrite(fd, "PAGE", 4, PG + 7);
    snprintf(name, sizeof name, "%s: hi after pwrite", label);
    show(name, hi, 64);

    /* MAP_PRIVATE: its own copy once written */
    char *priv = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    snprintf(name, sizeof name, "%s: private sees", label);
    show(name, priv, 64);
    strcpy(priv, "private scribble");
    snprintf(name, sizeof name, "%s: rw after private write", label);
    show(name, rw, 64);
    memset(buf, 0, sizeof buf);
    pread(fd, buf, 30, 0);
    snprintf(name, sizeof name, "%s: pread after private", label);
    show(name, buf, 30);
    snprintf(name, sizeof name, "%s: private keeps", label);
    show(name, priv, 64);
    munmap(priv, PG);

    struct stat st;
    fstat(fd, &st);
    printf("%s: size %lld\n", label, (long long)st.st_size);

    /* ftruncate shrinking under the mappings */
    ftruncate(fd, 100);
    struct sigaction sa = {0};
    sa.sa_handler = on_bus;
    sigaction(SIGBUS, &sa, 0);
    int sig = sigsetjmp(jump, 1);
    if (sig == 0) {
        volatile char c = ro[PG];
        printf("%s: page past the end read %d (no SIGBUS)\n", label, c);
    } else {
        printf("%s: touching past the end: signal %d\n", label, sig);
    }
    sig = sigsetjmp(jump, 1);
    if (sig == 0) {
        hi[0] = 'x';
        printf("%s: wrote past the end (no SIGBUS)\n", label);
    } else {
        printf("%s: writing past the end: signal %d\n", label, sig);
    }
    printf("%s: tail of page 0 after truncate: %d %d\n", label, ro[100], ro[PG - 1]);
    ftruncate(fd, 2 * PG);
    printf("%s: page 1 after growing again: %d\n", label, ro[PG]);
    strcpy(rw + 200, "after regrow");
    msync(rw, 2 * PG, MS_SYNC);
    munmap(rw, 2 * PG);
    munmap(ro, 2 * PG);
    munmap(hi, PG);
    memset(buf, 0, sizeof buf);
    pread(fd2, buf, 12, 200);
    snprintf(name, sizeof name, "%s: pread after munmap", label);
    show(name, buf, 12);
    fstat(fd, &st);
    printf("%s: size %lld\n", label, (long long)st.st_size);
    signal(SIGBUS, SIG_DFL);
}

int main(int argc, char **argv)
{
    char path[4096];
    if (argc < 3)
        return 2;
    setvbuf(stdout, 0, _IONBF, 0);
    if (!strcmp(argv[1], "crash")) {
        snprintf(path, sizeof path, "%s/crashed", argv[2]);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        ftruncate(fd, PG);
        char *p = mmap(0, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        strcpy(p, "written before the crash\n");
        *(volatile int *)8 = 1;
        return 0;
    }
    int m = memfd_create("jit", 0);
    ftruncate(m, 2 * PG);
    two_views("memfd", m, m);
    close(m);

    snprintf(path, sizeof path, "%s/shared", argv[2]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int fd2 = open(path, O_RDWR);
    ftruncate(fd, 2 * PG);
    two_views("file", fd, fd2);
    close(fd);
    close(fd2);
    unlink(path);
    return 0;
}
