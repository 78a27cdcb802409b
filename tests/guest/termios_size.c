/* termios_size: ioctl(0, TCGETS) on a terminal writes the kernel's struct termios (36 bytes
 * on x86-64), not glibc's 60-byte one: a 64-byte buffer keeps its pattern past byte 36.
 * tcgetattr (which converts) and a TCSETS round trip work too. Run with a terminal on stdin.
 * Probes: ioctl TCGETS/TCSETS sizes (a serial console is a terminal: the appliance's). */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

int main(void)
{
    unsigned char buf[64];
    memset(buf, 0xa5, sizeof buf);
    if (ioctl(0, TCGETS, buf) != 0) {
        perror("TCGETS");
        return 1;
    }
    int last = -1;
    for (int i = 0; i < (int)sizeof buf; i++)
        if (buf[i] != 0xa5)
            last = i;
    printf("TCGETS wrote no byte past 36: %s\n", last < 36 ? "yes" : "no");
    struct termios t;
    printf("tcgetattr: %d\n", tcgetattr(0, &t));
    printf("TCSETS back: %d\n", ioctl(0, TCSETS, buf));
    printf("isatty: %d\n", isatty(0));
    return 0;
}
