/* splice(2) between a file and a pipe in both directions, with and without
 * offsets, and vmsplice(2) into a pipe: the bytes arrive intact. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/etc/passwd";
    int fd = open(path, O_RDONLY);
    int p[2];
    pipe(p);
    loff_t off = 5;
    ssize_t n = splice(fd, &off, p[1], NULL, 20, 0);
    char buf[64] = {0};
    ssize_t r = read(p[0], buf, sizeof buf);
    printf("file->pipe %zd, offset now %lld, read back %zd: same as pread %d\n", n, (long long)off, r,
           ({ char want[64] = {0}; pread(fd, want, 20, 5); memcmp(want, buf, 20) == 0; }));
    n = splice(fd, NULL, p[1], NULL, 10, 0);
    r = read(p[0], buf, sizeof buf);
    printf("file->pipe at file offset %zd/%zd, lseek now %lld\n", n, r, (long long)lseek(fd, 0, SEEK_CUR));
    struct iovec iov[2] = {{"hello ", 6}, {"vmsplice\n", 9}};
    n = vmsplice(p[1], iov, 2, 0);
    r = read(p[0], buf, sizeof buf);
    printf("vmsplice %zd read %zd: %.*s", n, r, (int)r, buf);
    write(p[1], "to stdout\n", 10);
    n = splice(p[0], NULL, 1, NULL, 10, 0);
    fflush(stdout);
    printf("pipe->stdout %zd\n", n);
    errno = 0;
    n = splice(fd, NULL, fd, NULL, 10, 0);
    printf("no pipe: %zd EINVAL %d\n", n, errno == EINVAL);
    errno = 0;
    n = splice(p[0], &off, 1, NULL, 10, SPLICE_F_NONBLOCK);
    printf("offset on a pipe: %zd ESPIPE %d\n", n, errno == ESPIPE);
    return 0;
}
