/* TCP over loopback between two threads: socket, setsockopt(SO_REUSEADDR), bind to port 0,
 * getsockname, listen, blocking connect/accept, send/recv (MSG_WAITALL, MSG_PEEK),
 * getpeername, shutdown(SHUT_WR) giving EOF, TCP_NODELAY, SO_ERROR, SO_TYPE. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int port;
static int lfd;
static char srvlog[256];   /* the server thread's report, printed after join (deterministic order) */

static void *server(void *arg) {
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    int c = accept(lfd, (struct sockaddr *)&peer, &len);
    if (c < 0) { perror("accept"); return NULL; }
    int at = snprintf(srvlog, sizeof srvlog, "accepted from %s, len %d\n", inet_ntoa(peer.sin_addr), (int)len);
    char buf[65536];
    long total = 0;
    for (;;) {
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n < 0) { perror("server recv"); break; }
        if (n == 0) break;
        total += n;
        if (send(c, buf, n, 0) != n) { perror("server send"); break; }
    }
    snprintf(srvlog + at, sizeof srvlog - at, "server: echoed %ld bytes, then EOF\n", total);
    close(c);
    return NULL;
}

int main(void) {
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof a)) { perror("bind"); return 1; }
    socklen_t len = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin_port);
    printf("bound: len %d, port nonzero %d\n", (int)len, port != 0);
    if (listen(lfd, 8)) { perror("listen"); return 1; }
    int v = 0; len = sizeof v;
    getsockopt(lfd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len);
    printf("SO_ACCEPTCONN %d\n", v);
    pthread_t t;
    pthread_create(&t, NULL, server, NULL);

    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    len = sizeof v;
    getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &len);
    printf("TCP_NODELAY %d\n", v != 0);
    getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &len);
    printf("SO_TYPE %d\n", v);
    getsockopt(s, SOL_SOCKET, SO_ERROR, &v, &len);
    printf("SO_ERROR %d\n", v);
    struct sockaddr_in p;
    len = sizeof p;
    getpeername(s, (struct sockaddr *)&p, &len);
    printf("peer port matches %d\n", ntohs(p.sin_port) == port);

    static char out[300000], in[300000];
    for (int i = 0; i < (int)sizeof out; i++) out[i] = (char)(i * 7 + i / 251);
    ssize_t n = send(s, out, sizeof out, 0);
    printf("sent %zd\n", n);
    char peek[5];
    n = recv(s, peek, sizeof peek, MSG_PEEK | MSG_WAITALL);
    printf("peeked %zd\n", n);
    n = recv(s, in, sizeof in, MSG_WAITALL);
    printf("received %zd, same %d\n", n, memcmp(in, out, sizeof out) == 0);
    shutdown(s, SHUT_WR);
    n = recv(s, in, sizeof in, 0);
    printf("after shutdown: %zd\n", n);
    pthread_join(t, NULL);
    fputs(srvlog, stdout);
    close(s);
    close(lfd);
    errno = 0;
    n = send(s, "x", 1, MSG_NOSIGNAL);
    printf("send on closed fd: %zd %s\n", n, strerror(errno));
    return 0;
}
