/* Probes: /dev/mqueue lists the VM's POSIX message queues (mode from mq_open), each
   reading as Linux's status line; mq_unlink takes the name away. */
#include <mqueue.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    mqd_t q = mq_open("/demo", O_RDWR | O_CREAT, 0640, NULL);
    mq_send(q, "hello", 5, 1);
    fflush(stdout);
    system("ls -l /dev/mqueue | cut -c1-10; cat /dev/mqueue/demo");
    mq_unlink("/demo");
    system("ls /dev/mqueue | wc -l");
    return 0;
}
