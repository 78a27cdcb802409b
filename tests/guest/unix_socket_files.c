/* Probes: bind(2) of an AF_UNIX socket to a path makes an S_IFSOCK inode:
   stat and the directory listing show it, open gives ENXIO, a second bind
   gives EADDRINUSE, connect works through a symlink, gives ECONNREFUSED for
   a regular file and ENOENT for nothing; unlink frees the name for a new bind;
   close leaves the file (ECONNREFUSED), and a datagram sendto reaches a path. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_un addr(const char *p) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, p, sizeof a.sun_path - 1);
    return a;
}
static int do_bind(int s, const char *p) { struct sockaddr_un a = addr(p); return bind(s, (void *)&a, sizeof a); }
static int do_connect(int s, const char *p) { struct sockaddr_un a = addr(p); return connect(s, (void *)&a, sizeof a); }
#define SHOW(what, r) printf("%s = %d%s%s\n", what, (r) < 0 ? -1 : 0, (r) < 0 ? " " : "", (r) < 0 ? strerror(errno) : "")

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    if (chdir(argv[1]) < 0) { perror("chdir"); return 1; }
    umask(022);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("bind sock", do_bind(s, "sock"));
    struct stat st;
    int r = stat("sock", &st);
    SHOW("stat sock", r);
    if (r == 0) printf("  socket=%d mode=%o size=%lld nlink=%d\n", S_ISSOCK(st.st_mode), st.st_mode & 07777,
                       (long long)st.st_size, (int)st.st_nlink);
    DIR *d = opendir(".");
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, "sock") == 0) printf("  listed: %s type=%s\n", e->d_name, e->d_type == DT_SOCK ? "DT_SOCK" : "other");
    closedir(d);
    SHOW("open sock", open("sock", O_RDONLY));
    int s2 = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("bind again", do_bind(s2, "sock"));
    SHOW("listen", listen(s, 4));
    SHOW("symlink", symlink("sock", "via"));
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("connect via symlink", do_connect(c, "via"));
    int a = accept(s, 0, 0);
    SHOW("accept", a);
    write(c, "ping", 4);
    char buf[8] = {0};
    read(a, buf, sizeof buf - 1);
    printf("  got %s\n", buf);
    close(open("plain", O_CREAT | O_WRONLY, 0644));
    int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("connect regular file", do_connect(c2, "plain"));
    SHOW("connect missing", do_connect(c2, "missing"));
    SHOW("unlink sock", unlink("sock"));
    SHOW("stat after unlink", stat("sock", &st));
    SHOW("connect after unlink", do_connect(c2, "sock"));
    SHOW("rebind after unlink", do_bind(s2, "sock"));
    SHOW("listen new", listen(s2, 4));
    SHOW("connect new", do_connect(c2, "sock"));
    close(s2);
    int c3 = socket(AF_UNIX, SOCK_STREAM, 0);
    SHOW("stat after close", stat("sock", &st));
    SHOW("connect after close", do_connect(c3, "sock"));
    int dg = socket(AF_UNIX, SOCK_DGRAM, 0), dc = socket(AF_UNIX, SOCK_DGRAM, 0);
    SHOW("bind dgram", do_bind(dg, "dgram"));
    struct sockaddr_un da = addr("dgram");
    SHOW("sendto dgram", (int)sendto(dc, "hey", 3, 0, (void *)&da, sizeof da) - 3);
    memset(buf, 0, sizeof buf);
    recv(dg, buf, sizeof buf - 1, 0);
    printf("  got %s\n", buf);
    unlink("sock"); unlink("via"); unlink("plain");
    if (argc < 3) unlink("dgram");   /* "keep": leave one socket file for the caller to look at */
    return 0;
}
