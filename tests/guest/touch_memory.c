/* touch_memory: more memory than the guest has. Run by umiak only (natively it fits).
 * Probes: a page fault no frame can back ends the program as Linux's OOM killer would
 * (SIGKILL, umiak's hint to raise -m); mmap with MAP_POPULATE that cannot be backed
 * fails with ENOMEM and the program goes on.
 * Usage: touch_memory touch|populate MiB */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    size_t size = (size_t)atol(argv[2]) << 20;
    int populate = strcmp(argv[1], "populate") == 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
    if (p == MAP_FAILED) {
        printf("mmap: %s\n", errno == ENOMEM ? "ENOMEM" : strerror(errno));
        return 3;
    }
    printf("mapped\n");
    for (size_t i = 0; i < size; i += 4096)
        p[i] = 1;
    printf("touched\n");
    return 0;
}
