/* Probes: files a non-root process makes on a volume belong to it (a directory,
   a file, a FIFO, a symlink: stat shows its uid/gid), so it can work inside the
   0700 directory it made, as initdb does with its data directory. Run as root,
   it first becomes uid/gid 65534 (setgid, setuid); argv[1] is a directory that
   uid 65534 owns. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *p) {
    struct stat st;
    if (lstat(p, &st) < 0) { printf("%s: lstat %s\n", p, strerror(errno)); return; }
    printf("%s: uid %u gid %u mode %o\n", p, st.st_uid, st.st_gid, st.st_mode & 07777);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (getuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0)) { perror("setuid"); return 1; }
    if (chdir(argv[1]) < 0) { perror("chdir"); return 1; }
    umask(022);
    printf("mkdir = %d\n", mkdir("d", 0700));
    int fd = open("d/f", O_CREAT | O_WRONLY | O_EXCL, 0600);
    printf("open in 0700 dir: %s\n", fd >= 0 ? "ok" : strerror(errno));
    if (fd >= 0) printf("write = %zd\n", write(fd, "x\n", 2)), close(fd);
    printf("mkfifo = %d\n", mkfifo("d/p", 0640));
    printf("symlink = %d\n", symlink("f", "d/l"));
    printf("mkdir nested = %d\n", mkdir("d/sub", 0700));
    show("d"); show("d/f"); show("d/p"); show("d/l"); show("d/sub");
    printf("unlink = %d %d %d\n", unlink("d/f"), unlink("d/p"), unlink("d/l"));
    printf("rmdir = %d %d\n", rmdir("d/sub"), rmdir("d"));
    return 0;
}
