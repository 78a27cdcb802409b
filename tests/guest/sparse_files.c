/* Probes: sparse files in a tmpfs or the root's overlay: a write at 2 GiB and
   ftruncate to 8 GiB succeed, st_blocks counts only written pages, holes read
   as zeros, SEEK_DATA/SEEK_HOLE find data and holes, and shrinking frees the
   space (statfs f_bfree comes back). argv[1]: the directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

static void seeks(int fd, off_t from) {
    off_t d = lseek(fd, from, SEEK_DATA);
    int de = d < 0 ? errno : 0;
    off_t h = lseek(fd, from, SEEK_HOLE);
    int he = h < 0 ? errno : 0;
    printf("  from %lld: data %lld%s hole %lld%s\n", (long long)from, (long long)d, de ? (de == ENXIO ? " ENXIO" : " err") : "",
           (long long)h, he ? (he == ENXIO ? " ENXIO" : " err") : "");
}

static void show(int fd, const char *what) {
    struct stat st;
    fstat(fd, &st);
    printf("%s: size %lld blocks<=64 %d\n", what, (long long)st.st_size, st.st_blocks <= 64);
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) < 0) return 2;
    int fd = open("sparse", O_RDWR | O_CREAT | O_TRUNC, 0644);
    off_t two = 2LL << 30;
    ssize_t n = pwrite(fd, "data", 4, two);
    printf("pwrite at 2 GiB = %zd%s\n", n, n < 0 ? strerror(errno) : "");
    show(fd, "after write");
    seeks(fd, 0);
    seeks(fd, two);
    seeks(fd, two + 4);
    char buf[8] = "xxxxxxx";
    n = pread(fd, buf, 4, 4096);
    printf("hole reads %zd, zero %d\n", n, memcmp(buf, "\0\0\0\0", 4) == 0);
    pread(fd, buf, 4, two);
    printf("data reads %.4s\n", buf);
    int r = ftruncate(fd, 8LL << 30);
    printf("ftruncate 8 GiB = %d%s\n", r, r < 0 ? strerror(errno) : "");
    show(fd, "after ftruncate");
    seeks(fd, two + 4);
    seeks(fd, 7LL << 30);
    r = ftruncate(fd, 4096);
    printf("ftruncate 4096 = %d\n", r);
    show(fd, "after shrink");
    seeks(fd, 0);
    pwrite(fd, "a", 1, 0);
    seeks(fd, 0);
    close(fd);
    unlink("sparse");
    return 0;
}
