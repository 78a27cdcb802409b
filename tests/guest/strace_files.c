/* strace_files: the file calls whose strace lines umiak must print as Linux strace does.
 * argv[1] is a file the test created (its text is longer than 32 bytes, to see the cut).
 * Every call's result is the same natively and under umiak; nothing here prints a pid or a time. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char buf[4096];
    struct stat st;
    const char *path = argc > 1 ? argv[1] : "/etc/hostname";

    write(1, "hello\n", 6);
    int fd = open(path, O_RDONLY | O_CLOEXEC);           /* openat(AT_FDCWD, "...", O_RDONLY|O_CLOEXEC) = 3 */
    ssize_t n = read(fd, buf, sizeof buf);                 /* the buffer, cut at 32 bytes */
    lseek(fd, 2, SEEK_SET);
    pread(fd, buf, 5, 1);
    fstat(fd, &st);                                        /* newfstatat(3, "", {...}, AT_EMPTY_PATH) */
    close(fd);
    close(fd);                                             /* EBADF */
    open("/nonexistent/file", O_RDONLY);                   /* ENOENT */
    stat(path, &st);                                       /* newfstatat(AT_FDCWD, ...) */
    access(path, R_OK);
    write(1, "tab\there \"quoted\" \\ bell\a nul\0 end\n", 35);
    write(1, buf, n > 0 ? 0 : 0);
    syscall(SYS_write, 1, (void *)16, 4);                  /* EFAULT: the pointer prints in hex */
    return 3;
}
