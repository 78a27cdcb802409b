/* dirlist: list a directory with opendir/readdir, sorted, with entry types;
 * then the same directory with a tiny getdents64 buffer through fdopendir+rewinddir.
 * Probes: getdents64 (including "." and "..", d_type, resuming across calls),
 * O_DIRECTORY, fstat of a directory, chdir + getcwd, opening "." after chdir. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char type_char(unsigned char t)
{
    switch (t) {
    case DT_REG: return 'f'; case DT_DIR: return 'd'; case DT_LNK: return 'l';
    case DT_UNKNOWN: return '?'; default: return 'o';
    }
}

static int list(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        printf("opendir %s: %s\n", path, strerror(errno));
        return 0;
    }
    char *names[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        char *s = malloc(strlen(e->d_name) + 3);
        sprintf(s, "%s %c", e->d_name, type_char(e->d_type));
        names[n++] = s;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp);
    for (int i = 0; i < n; i++) {
        printf("  %s\n", names[i]);
        free(names[i]);
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    printf("listing:\n");
    int n = list(dir);
    printf("entries: %d\n", n);

    /* Raw getdents64 with a buffer that holds only a couple of entries at a time. */
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    char buf[96];
    int count = 0, calls = 0;
    long r;
    while ((r = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        calls++;
        for (long off = 0; off < r;) {
            unsigned short reclen = *(unsigned short *)(buf + off + 16);
            count++;
            off += reclen;
        }
    }
    printf("getdents64 small buffer: %d entries, ended with %ld, more than one call: %s\n",
           count, r, calls > 1 ? "yes" : "no");
    errno = 0;
    r = syscall(SYS_getdents64, fd, buf, 8);
    printf("getdents64 buffer too small at EOF: %ld\n", r);
    lseek(fd, 0, SEEK_SET);
    errno = 0;
    r = syscall(SYS_getdents64, fd, buf, 8);
    printf("getdents64 buffer too small: %ld %s\n", r, r < 0 && errno == EINVAL ? "EINVAL" : "");
    close(fd);

    if (chdir(dir) == 0) {
        char cwd[4096];
        printf("getcwd after chdir matches: %s\n",
               getcwd(cwd, sizeof cwd) && argc > 2 && !strcmp(cwd, argv[2]) ? "yes" : "no");
        printf("listing . after chdir:\n");
        list(".");
        printf("listing sub:\n");
        list("sub");
    }
    return 0;
}
