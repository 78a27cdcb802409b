/* Loopback addresses and bound sockets, for the net_*.c guest programs. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static struct sockaddr_in lo(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    return a;
}

/* A socket of this type bound to 127.0.0.1 on a port the host chose, its address in *a. */
static int bound(int type, struct sockaddr_in *a) {
    int s = socket(AF_INET, type, 0);
    *a = lo(0);
    bind(s, (struct sockaddr *)a, sizeof *a);
    socklen_t len = sizeof *a;
    getsockname(s, (struct sockaddr *)a, &len);
    return s;
}
