/* Probes: epoll_ctl(EPOLL_CTL_ADD) of what cannot be polled is EPERM: regular files (made
   in the VM's /tmp or overlay, a host file, a memfd), directories and /dev/null; a pipe
   and an eventfd are accepted. argv[1]: a writable directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

static void add(int ep, const char *what, int fd) {
    struct epoll_event ev = {.events = EPOLLIN};
    int r = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    printf("%-22s %s\n", what, r < 0 ? strerror(errno) : "added");
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) < 0) return 2;
    int ep = epoll_create1(0);
    add(ep, "new regular file", open("made", O_CREAT | O_RDWR, 0644));
    add(ep, "host regular file", open("/etc/passwd", O_RDONLY));
    add(ep, "memfd", memfd_create("m", 0));
    add(ep, "directory", open(".", O_RDONLY | O_DIRECTORY));
    add(ep, "/ directory", open("/", O_RDONLY | O_DIRECTORY));
    add(ep, "/dev/null", open("/dev/null", O_RDONLY));
    int p[2];
    pipe(p);
    add(ep, "pipe", p[0]);
    add(ep, "eventfd", eventfd(0, 0));
    unlink("made");
    return 0;
}
