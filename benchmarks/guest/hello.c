/* hello: the static hello world whose whole run (start to exit) is timed. */
#include <stdio.h>

int main(void)
{
    printf("hello, world\n");
    return 0;
}
