/* treewalk: print everything a program can learn about a tree, one line per entry, sorted.
 * Usage: treewalk DIR       names, d_type, mode, nlink, owner, size, mtime, hard-link groups,
 *                           contents (CRC by read(2), by pread(2) at odd offsets, by mmap(2)
 *                           MAP_PRIVATE and MAP_SHARED), SEEK_DATA/SEEK_HOLE maps, link
 *                           targets, extended attributes (contents not in directories of
 *                           more than 1000 entries)
 *        treewalk -i DIR    path, st_ino, st_blocks, st_blksize, st_size and the three times
 *                           in ns (the image's own numbers, checked against debugfs)
 * Probes: getdents64 (d_type) via readdir, lstat, open/read/pread/lseek(SEEK_DATA, SEEK_HOLE),
 * mmap MAP_PRIVATE and MAP_SHARED of read-only files, readlink, llistxattr/lgetxattr. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static int inode_mode;
static int light;            /* in a directory of more than 1000 entries: lstat and xattrs only */
static char root[4096];

static uint32_t crc_table[256];
static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}
static uint32_t crc(uint32_t c, const unsigned char *p, size_t n)
{
    c = ~c;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

/* hard-link groups: the first path seen for each inode with nlink > 1 */
struct seen { ino_t ino; char *path; };
static struct seen *seen;
static size_t nseen;
static const char *first_path(ino_t ino, const char *path)
{
    for (size_t i = 0; i < nseen; i++)
        if (seen[i].ino == ino)
            return seen[i].path;
    seen = realloc(seen, (nseen + 1) * sizeof *seen);
    seen[nseen].ino = ino;
    seen[nseen].path = strdup(path);
    nseen++;
    return path;
}

static char tchar(unsigned char t)
{
    switch (t) {
    case DT_REG: return 'f'; case DT_DIR: return 'd'; case DT_LNK: return 'l'; case DT_FIFO: return 'p';
    case DT_CHR: return 'c'; case DT_BLK: return 'b'; case DT_SOCK: return 's'; default: return '?';
    }
}

static void print_escaped(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            putchar(c);
        else
            printf("\\x%02x", c);
    }
}

#define BIG (64 << 20)

static void contents(const char *path, const struct stat *st)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf(" open:%s", strerror(errno));
        return;
    }
    /* the data map */
    off_t pos = 0;
    printf(" map:");
    while (pos < st->st_size) {
        off_t d = lseek(fd, pos, SEEK_DATA);
        if (d < 0) { printf("end"); break; }
        off_t h = lseek(fd, d, SEEK_HOLE);
        printf("%lld-%lld,", (long long)d, (long long)h);
        pos = h;
    }
    if (st->st_size > BIG) {    /* a huge sparse file: read what the map says holds data */
        pos = 0;
        uint32_t c = 0;
        static unsigned char buf[1 << 16];
        while (pos < st->st_size) {
            off_t d = lseek(fd, pos, SEEK_DATA);
            if (d < 0) break;
            off_t h = lseek(fd, d, SEEK_HOLE);
            for (off_t o = d; o < h; o += sizeof buf) {
                ssize_t n = pread(fd, buf, sizeof buf < (size_t)(h - o) ? sizeof buf : (size_t)(h - o), o);
                if (n <= 0) break;
                c = crc(c, buf, n);
            }
            pos = h;
        }
        ssize_t n = pread(fd, buf, 4096, st->st_size / 3);   /* a hole reads zeros */
        printf(" datacrc:%08x hole:%zd/%d", c, n, n > 0 && buf[0] == 0 && !memcmp(buf, buf + 1, n - 1));
        close(fd);
        return;
    }
    lseek(fd, 0, SEEK_SET);
    unsigned char *buf = malloc(st->st_size + 1);
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, st->st_size + 1 - got < 65536 ? st->st_size + 1 - got : 65536);
        if (n <= 0) break;
        got += n;
    }
    printf(" read:%zu/%08x", got, crc(0, buf, got));
    uint32_t c = 0;             /* pread in odd pieces */
    unsigned char piece[4099];
    size_t total = 0;
    for (off_t o = 0; o < st->st_size; o += sizeof piece) {
        ssize_t n = pread(fd, piece, sizeof piece, o);
        if (n <= 0) break;
        c = crc(c, piece, n);
        total += n;
    }
    printf(" pread:%zu/%08x", total, c);
    if (st->st_size > 0) {
        for (int shared = 0; shared < 2; shared++) {
            void *m = mmap(NULL, st->st_size, PROT_READ, shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
            if (m == MAP_FAILED) {
                printf(" mmap:%s", strerror(errno));
                continue;
            }
            printf(" %s:%08x", shared ? "shared" : "private", crc(0, m, st->st_size));
            munmap(m, st->st_size);
        }
    }
    free(buf);
    close(fd);
}

static void xattrs(const char *path)
{
    char names[65536];
    ssize_t n = llistxattr(path, names, sizeof names);
    if (n < 0) {
        printf(" xattr:%s", strerror(errno));
        return;
    }
    /* sort the names */
    char *list[256];
    int k = 0;
    for (char *p = names; p < names + n && k < 256; p += strlen(p) + 1)
        list[k++] = p;
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && strcmp(list[j - 1], list[j]) > 0; j--) {
            char *t = list[j]; list[j] = list[j - 1]; list[j - 1] = t;
        }
    for (int i = 0; i < k; i++) {
        if (!strncmp(list[i], "security.selinux", 16))
            continue;
        static char value[65536];
        ssize_t size = lgetxattr(path, list[i], NULL, 0);
        ssize_t v = lgetxattr(path, list[i], value, sizeof value);
        printf(" %s=", list[i]);
        if (v < 0)
            printf("<%s>", strerror(errno));
        else if (v > 64)
            printf("%zd:%zd:%08x", size, v, crc(0, (unsigned char *)value, v));
        else
            print_escaped(value, v);
    }
    char small[2];
    if (k && lgetxattr(path, list[0], small, 0) >= 0 && lgetxattr(path, list[0], small, 1) < 0 && errno == ERANGE)
        printf(" erange");
    if (lgetxattr(path, "user.no.such.name", small, sizeof small) < 0)
        printf(" nodata:%s", errno == ENODATA ? "ENODATA" : strerror(errno));
}

static int cmp(const void *a, const void *b)
{
    return strcmp((*(struct dirent *const *)a)->d_name, (*(struct dirent *const *)b)->d_name);
}

static void entry(const char *path, unsigned char dtype)
{
    struct stat st;
    if (lstat(path, &st) < 0) {
        printf("%s lstat:%s\n", path + strlen(root), strerror(errno));
        return;
    }
    const char *rel = path + strlen(root);
    if (inode_mode) {
        printf("%s %lu %lld %ld %lld %lld.%09ld %lld.%09ld %lld.%09ld\n", *rel ? rel : "/", (unsigned long)st.st_ino,
               (long long)st.st_blocks, (long)st.st_blksize, (long long)st.st_size,
               (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long long)st.st_mtim.tv_sec,
               st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
        return;
    }
    printf("%s %c %o %lu %u:%u", *rel ? rel : "/", tchar(dtype), st.st_mode, (unsigned long)st.st_nlink,
           st.st_uid, st.st_gid);
    if (!S_ISDIR(st.st_mode))
        printf(" size:%lld mtime:%lld", (long long)st.st_size, (long long)st.st_mtim.tv_sec);
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
        printf(" rdev:%lx", (unsigned long)st.st_rdev);
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        const char *first = first_path(st.st_ino, rel);
        if (first != rel)
            printf(" same-as:%s", first);
    }
    if (S_ISREG(st.st_mode) && !light)
        contents(path, &st);
    if (S_ISLNK(st.st_mode)) {
        char target[8192];
        ssize_t n = readlink(path, target, sizeof target);
        printf(" -> ");
        if (n < 0)
            printf("<%s>", strerror(errno));
        else
            print_escaped(target, n);
    }
    xattrs(path);
    putchar('\n');
}

static void walk(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        printf("%s opendir:%s\n", dir + strlen(root), strerror(errno));
        return;
    }
    struct dirent **ents = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "lost+found"))
            continue;
        ents = realloc(ents, (n + 1) * sizeof *ents);
        ents[n] = malloc(sizeof *e);
        memcpy(ents[n], e, sizeof *e);
        n++;
    }
    closedir(d);
    qsort(ents, n, sizeof *ents, cmp);
    int was_light = light;
    light = n > 1000;
    for (size_t i = 0; i < n; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
        entry(path, ents[i]->d_type);
        if (ents[i]->d_type == DT_DIR)
            walk(path);
        light = n > 1000;
        free(ents[i]);
    }
    light = was_light;
    free(ents);
}

int main(int argc, char **argv)
{
    int i = 1;
    if (i < argc && !strcmp(argv[i], "-i")) {
        inode_mode = 1;
        i++;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: treewalk [-i] DIR\n");
        return 2;
    }
    crc_init();
    snprintf(root, sizeof root, "%s", argv[i]);
    size_t len = strlen(root);
    while (len > 1 && root[len - 1] == '/')
        root[--len] = 0;
    entry(root, DT_DIR);
    walk(root);
    return 0;
}
