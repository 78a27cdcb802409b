/* A counting loop interrupted every 2 ms by SIGALRM must still count exactly:
 * a signal delivered to a running CPU may never re-run or skip an instruction. */
#include <stdio.h>
#include <signal.h>
#include <sys/time.h>
static volatile long hits;
static void h(int s){ hits++; }
int main(){
  signal(SIGALRM, h);
  struct itimerval it = {{0, 2000}, {0, 2000}}; setitimer(ITIMER_REAL, &it, 0);
  volatile long counter = 0;
  for (long i = 0; i < 60000000L; i++) counter++;
  it.it_value.tv_usec = 0; it.it_interval.tv_usec = 0; setitimer(ITIMER_REAL, &it, 0);
  printf("counter %ld interrupted %d\n", counter, hits > 0);
  return 0;
}
