/* A blocking AF_UNIX connect beyond a full listen backlog waits until the listener
 * accepts (Linux semantics), instead of failing with EAGAIN. */
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
static struct sockaddr_un a = {AF_UNIX};
static int srv;
static void *acceptor(void *x) { usleep(100000); for (int i = 0; i < 4; i++) close(accept(srv, 0, 0)); return x; }
int main(void) {
  strcpy(a.sun_path + 1, "umiak-backlog"); socklen_t len = sizeof(sa_family_t) + 1 + strlen("umiak-backlog");
  srv = socket(AF_UNIX, SOCK_STREAM, 0); bind(srv, (void*)&a, len); listen(srv, 1);
  pthread_t t; pthread_create(&t, 0, acceptor, 0);
  int ok = 0;
  for (int i = 0; i < 4; i++) { int c = socket(AF_UNIX, SOCK_STREAM, 0); if (connect(c, (void*)&a, len) == 0) ok++; }
  pthread_join(t, 0);
  printf("blocking connects beyond the backlog succeeded: %d of 4\n", ok);
  return 0;
}
