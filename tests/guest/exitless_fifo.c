/* Probes: a FIFO whose open waits for the other end, while the exitless path is awake (a
 * getppid burst and opens of /dev/null at the same site first): a thread's open(O_RDONLY) of a FIFO nobody writes waits until the
 * main thread opens it for writing 100 ms later; the words written arrive; a second open,
 * O_RDONLY|O_NONBLOCK, returns at once. Under umiak the poller starts the first open, finds
 * it would wait and hands it back (kernel/fastcalls.py): the vCPU's thread makes it again. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static char path[64];
static volatile int writer_open;
static char result[160];   /* the reader's findings, printed by main after the join */

static void *reader(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++)
        syscall(SYS_getppid);
    for (int i = 0; i < 3; i++)   /* the same open site as the FIFO's: known to the poller */
        close(open("/dev/null", O_RDONLY));
    int fd = open(path, O_RDONLY);
    int opened_after = writer_open;
    char buf[64] = "";
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    snprintf(result, sizeof result, "reader: open %s, after the writer %d; read %zd \"%s\"",
             fd >= 0 ? "ok" : strerror(errno), opened_after, n, n > 0 ? buf : "");
    close(fd);
    return NULL;
}

int main(void)
{
    char dir[] = "/tmp/umiak-fifo-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/fifo", dir);
    if (mkfifo(path, 0600) != 0)
        return 1;
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
    writer_open = 1;
    int w = open(path, O_WRONLY);
    ssize_t n = write(w, "through the fifo", 16);
    close(w);
    pthread_join(t, NULL);
    printf("writer: open %s, wrote %zd\n%s\n", w >= 0 ? "ok" : "failed", n, result);
    int nb = open(path, O_RDONLY | O_NONBLOCK);
    printf("nonblocking open %s\n", nb >= 0 ? "ok" : "failed");
    close(nb);
    unlink(path);
    rmdir(dir);
    return 0;
}
