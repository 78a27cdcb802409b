/* Probes: the inode numbers of pipes and sockets and the st_dev of in-memory file systems
 * a program sees. Not compared with Linux (the numbers are the host kernel's there): under
 * umiak the first run of every fresh VM must print the same, whatever ran before. */
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *what, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        perror(what);
        return;
    }
    printf("%s ino %lu\n", what, (unsigned long)st.st_ino);
}

int main(void)
{
    int p[2], s[2];
    struct stat st;
    if (pipe(p) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, s) != 0) {
        perror("pipe/socketpair");
        return 1;
    }
    show("pipe", p[0]);
    show("socket", s[0]);
    if (stat("/dev/shm", &st) == 0)
        printf("/dev/shm dev %lu\n", (unsigned long)st.st_dev);
    if (stat("/tmp", &st) == 0)
        printf("/tmp dev %lu\n", (unsigned long)st.st_dev);
    return 0;
}
