/* strace_signal: a handled signal; strace shows its siginfo, the handler's write and rt_sigreturn. */
#include <signal.h>
#include <unistd.h>

static void handler(int sig)
{
    (void)sig;
    write(1, "sig\n", 4);
}

int main(void)
{
    signal(SIGUSR1, handler);
    raise(SIGUSR1);
    return 0;
}
