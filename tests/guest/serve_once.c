/* serve_once: listen on TCP port argv[1] (all addresses), say so, answer one connection's
 * first line with "echo: LINE", then exit with status argv[2]. A server for the appliance
 * test (its port published through QEMU and umiak's private network).
 * Probes: socket, setsockopt(SO_REUSEADDR), bind, listen, accept, read, write, exit status. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 8080, status = argc > 2 ? atoi(argv[2]) : 0;
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4)) {
        perror("bind/listen");
        return 1;
    }
    printf("listening on %d\n", port);
    fflush(stdout);
    int c = accept(s, NULL, NULL);
    if (c < 0) {
        perror("accept");
        return 1;
    }
    char buf[256], out[300];
    ssize_t n = 0, r;
    while (n < (ssize_t)sizeof buf - 1 && (r = read(c, buf + n, 1)) == 1 && buf[n] != '\n')
        n++;
    buf[n] = 0;
    int len = snprintf(out, sizeof out, "echo: %s\n", buf);
    if (write(c, out, len) != len)
        perror("write");
    close(c);
    printf("answered '%s'\n", buf);
    fprintf(stderr, "exiting %d\n", status);
    return status;
}
