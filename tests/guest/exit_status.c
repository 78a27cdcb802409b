/* exit_status: exit with the status given in argv[1], after writing to stdout and stderr.
 * argv[2] picks the way out: "return" from main, "exit" (flushes stdio),
 * "_exit" (does not flush: the unflushed stdio text must be lost, as on Linux).
 * Probes: exit/exit_group status truncation to 8 bits, stdio flushing at exit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int status = argc > 1 ? atoi(argv[1]) : 0;
    const char *how = argc > 2 ? argv[2] : "return";
    fprintf(stderr, "to stderr before exiting %d by %s\n", status, how);
    printf("to stdout (buffered) %d\n", status);
    if (strcmp(how, "exit") == 0)
        exit(status);
    if (strcmp(how, "_exit") == 0)
        _exit(status);
    return status;
}
