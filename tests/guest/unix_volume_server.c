/* Probes: an AF_UNIX stream socket bound to a path in a volume is reachable from
   the host (PostgreSQL's socket in -k DIR): poll sees the host client, accept
   gives a connection that reads, writes and sees the client's EOF; a second
   client in a forked child is accepted too; close and unlink remove the name.
   argv[1] is the socket's path; "ready" on stdout says it listens. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void serve(int c, int n) {
    char buf[256];
    size_t got = 0;
    ssize_t r;
    while ((r = read(c, buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)r;
    buf[got] = 0;
    char out[320];
    int len = snprintf(out, sizeof out, "client %d said %zu bytes: %s", n, got, buf);
    printf("%s", out);
    fflush(stdout);
    if (write(c, out, (size_t)len) != len) perror("write");
    close(c);
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
    if (bind(s, (void *)&a, sizeof a) < 0 || listen(s, 8) < 0) { perror("bind/listen"); return 1; }
    printf("ready\n");
    fflush(stdout);
    struct pollfd p = {s, POLLIN, 0};
    int r = poll(&p, 1, 30000);
    printf("poll = %d revents %s\n", r, p.revents & POLLIN ? "POLLIN" : "none");
    int c = accept(s, NULL, NULL);
    if (c < 0) { perror("accept"); return 1; }
    serve(c, 1);
    pid_t pid = fork();
    if (pid == 0) {                 /* the child accepts the second client, as a postmaster's backend */
        int c2 = accept(s, NULL, NULL);
        if (c2 < 0) { perror("accept 2"); _exit(1); }
        serve(c2, 2);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("child status %d\n", WEXITSTATUS(st));
    close(s);
    printf("unlink = %d\n", unlink(argv[1]));
    return 0;
}
