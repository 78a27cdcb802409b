/* Probes: inotify on files the program changes itself: IN_CREATE, IN_OPEN, IN_MODIFY
   (identical unread events merged), IN_CLOSE_WRITE/NOWRITE, IN_ATTRIB, IN_MOVED_FROM/TO
   with one cookie, IN_DELETE, IN_ISDIR, IN_DELETE_SELF + IN_IGNORED of a removed
   directory, IN_ONESHOT, IN_MASK_ADD, IN_ONLYDIR, inotify_rm_watch, poll and epoll on
   the descriptor, FIONREAD, EINVAL for a read buffer too small, EAGAIN with IN_NONBLOCK. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRY(label, expr) do { long r_ = (long)(expr); int e_ = errno; \
    printf("%s: %ld errno=%d\n", label, r_, r_ < 0 ? e_ : 0); } while (0)

static int wd_dir, wd_file, wd_sub;
static const char *wdname(int wd) {
    return wd == wd_dir ? "dir" : wd == wd_file ? "file" : wd == wd_sub ? "sub" : "?";
}

static void mask_names(unsigned m) {
    static const struct { unsigned bit; const char *n; } names[] = {
        {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"}, {IN_CLOSE_WRITE, "CLOSE_WRITE"},
        {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"}, {IN_MOVED_FROM, "MOVED_FROM"},
        {IN_MOVED_TO, "MOVED_TO"}, {IN_CREATE, "CREATE"}, {IN_DELETE, "DELETE"},
        {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"}, {IN_IGNORED, "IGNORED"},
        {IN_ISDIR, "ISDIR"}, {IN_Q_OVERFLOW, "Q_OVERFLOW"}};
    const char *sep = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (m & names[i].bit) { printf("%s%s", sep, names[i].n); sep = "|"; }
}

static unsigned last_cookie;
static void drain(int fd, const char *when) {
    char buf[4096] __attribute__((aligned(8)));
    printf("%s:\n", when);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) { if (errno != EAGAIN) printf("  read=%zd errno=%d\n", n, errno); break; }
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            printf("  %s ", wdname(e->wd));
            mask_names(e->mask);
            if (e->len) printf(" \"%s\" len=%u", e->name, e->len);
            if (e->cookie) {
                printf(" cookie %s", last_cookie == e->cookie ? "same" : "new");
                last_cookie = e->cookie;
            }
            printf("\n");
            p += sizeof *e + e->len;
        }
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *base = argc > 1 ? argv[1] : "/tmp";
    char dir[256], path[300], path2[300], sub[300];
    snprintf(dir, sizeof dir, "%s/inotify-%d", base, getpid());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/a.txt", dir);
    snprintf(path2, sizeof path2, "%s/b.txt", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    char small[8];
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    TRY("bad flags", inotify_init1(12345));
    wd_dir = inotify_add_watch(fd, dir, IN_ALL_EVENTS & ~(IN_ACCESS | IN_OPEN | IN_CLOSE_NOWRITE));
    printf("wd_dir=%d\n", wd_dir);
    TRY("no events", inotify_add_watch(fd, dir, 0));
    TRY("missing path", inotify_add_watch(fd, "/no/such/path", IN_ALL_EVENTS));
    TRY("onlydir on a file", inotify_add_watch(fd, "/proc/self/status", IN_MODIFY | IN_ONLYDIR));
    TRY("empty queue", read(fd, small, sizeof small));
    int f = open(path, O_WRONLY | O_CREAT, 0644);
    write(f, "one", 3);
    write(f, "two", 3);
    int avail = -1;
    ioctl(fd, FIONREAD, &avail);
    printf("FIONREAD=%d\n", avail);
    TRY("read into too small a buffer", read(fd, small, sizeof small));
    drain(fd, "create and two writes");
    close(f);
    drain(fd, "close");
    wd_file = inotify_add_watch(fd, path, IN_MODIFY | IN_ONESHOT);
    TRY("same inode again keeps its wd", inotify_add_watch(fd, path, IN_MODIFY | IN_ONESHOT) == wd_file);
    f = open(path, O_WRONLY | O_APPEND);
    write(f, "x", 1);
    write(f, "y", 1);
    close(f);
    drain(fd, "oneshot on the file");
    wd_file = inotify_add_watch(fd, path, IN_CLOSE_NOWRITE);
    inotify_add_watch(fd, path, IN_ATTRIB | IN_MASK_ADD);
    chmod(path, 0600);
    f = open(path, O_RDONLY);
    close(f);
    drain(fd, "mask add: chmod and a read-only open");
    TRY("rm_watch", inotify_rm_watch(fd, wd_file));
    TRY("rm_watch again", inotify_rm_watch(fd, wd_file));
    drain(fd, "after rm_watch");
    rename(path, path2);
    drain(fd, "rename");
    unlink(path2);
    drain(fd, "unlink");
    mkdir(sub, 0755);
    wd_sub = inotify_add_watch(fd, sub, IN_DELETE_SELF);
    struct pollfd p = {fd, POLLIN, 0};
    printf("poll before drain: %d\n", poll(&p, 1, 0));
    int ep = epoll_create1(0);
    struct epoll_event ev = {EPOLLIN, {0}}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    printf("epoll_wait: %d\n", epoll_wait(ep, &out, 1, 0));
    drain(fd, "mkdir");
    printf("poll after drain: %d\n", poll(&p, 1, 0));
    rmdir(sub);
    drain(fd, "rmdir of a watched directory");
    rmdir(dir);
    drain(fd, "rmdir of the watched directory");
    close(ep);
    close(fd);
    return 0;
}
