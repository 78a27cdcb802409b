/* vfs_rofs: every change to a file system, and its errors. argv[1]: a directory holding
 * "file" and "sub/".
 * On a read-only mount (-v HOST:GUEST:ro) every change gives EROFS, after the errors Linux
 * checks first (EEXIST, ENOENT of the parent...): checked against fixed expectations.
 * On the root's in-memory overlay the results are Linux's on a writable directory:
 * checked against a native run on a copy of the directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *errname(int e)
{
    switch (e) {
    case 0: return "OK";
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EBADF: return "EBADF";
    case EACCES: return "EACCES"; case EBUSY: return "EBUSY"; case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV"; case ENOTDIR: return "ENOTDIR"; case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL"; case EROFS: return "EROFS"; case ENOTEMPTY: return "ENOTEMPTY";
    default: { static char buf[32]; snprintf(buf, sizeof buf, "errno%d", e); return buf; }
    }
}

#define SHOW(label, expr) do { errno = 0; long _r = (long)(expr); \
    if (_r < 0) printf("%s: -1 %s\n", label, errname(errno)); \
    else printf("%s: %ld\n", label, _r); } while (0)

int main(int argc, char **argv)
{
    if (argc < 2 || chdir(argv[1]) != 0) return 2;
    SHOW("open O_WRONLY", open("file", O_WRONLY));
    SHOW("open O_RDWR", open("file", O_RDWR));
    SHOW("open O_RDONLY|O_TRUNC", open("file", O_RDONLY | O_TRUNC));
    SHOW("open O_RDONLY", open("file", O_RDONLY) >= 0 ? 0 : -1);
    SHOW("open O_CREAT new", open("new", O_WRONLY | O_CREAT, 0644));
    SHOW("open O_CREAT existing O_RDONLY", open("file", O_RDONLY | O_CREAT, 0644) >= 0 ? 0 : -1);
    SHOW("open O_CREAT|O_EXCL existing", open("file", O_WRONLY | O_CREAT | O_EXCL, 0644));
    SHOW("open O_CREAT in missing dir", open("missing/new", O_WRONLY | O_CREAT, 0644));
    SHOW("open dir O_WRONLY", open("sub", O_WRONLY));
    SHOW("creat", creat("new", 0644));
    SHOW("mkdir new", mkdir("newdir", 0755));
    SHOW("mkdir existing", mkdir("sub", 0755));
    SHOW("mkdir in missing dir", mkdir("missing/x", 0755));
    SHOW("rmdir sub", rmdir("sub"));
    SHOW("rmdir ..", rmdir(".."));
    SHOW("unlink file", unlink("file"));
    SHOW("unlink missing", unlink("missing"));
    SHOW("unlink in missing dir", unlink("missing/x"));
    SHOW("rename", rename("file", "file2"));
    SHOW("link", link("file", "file2"));
    SHOW("link onto existing", link("file", "sub"));
    SHOW("symlink", symlink("file", "file2"));
    SHOW("symlink onto existing", symlink("file", "sub"));
    SHOW("mknod fifo", mknod("fifo", S_IFIFO | 0644, 0));
    SHOW("chmod", chmod("file", 0600));
    SHOW("chmod missing", chmod("missing", 0600));
    SHOW("chown", chown("file", 0, 0));
    SHOW("truncate", truncate("file", 0));
    SHOW("utimensat", utimensat(AT_FDCWD, "file", NULL, 0));
    SHOW("access W_OK", access("file", W_OK));
    SHOW("access dir W_OK", access("sub", W_OK));
    SHOW("access R_OK", access("file", R_OK));
    int fd = open("file", O_RDONLY);
    SHOW("fchmod", fchmod(fd, 0600));
    struct statfs sf;
    SHOW("statfs", statfs(".", &sf));
    printf("  read-only: %s\n", sf.f_flags & 1 /* ST_RDONLY */ ? "yes" : "no");
    SHOW("write /dev/null still works", write(open("/dev/null", O_WRONLY), "x", 1));
    return 0;
}
