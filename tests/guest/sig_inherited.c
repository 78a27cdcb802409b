/* sig_inherited [again]: which signals the program started with ignored (as `nohup` or a
 * shell's `&` leave them), whether they stay ignored across execve and fork, and what a
 * raised SIGHUP does. SIGPIPE and SIGXFSZ are not printed: a Python parent ignores them. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *when)
{
    printf("%s: ignored", when);
    for (int s = 1; s < 32; s++) {
        struct sigaction sa;
        if (s == SIGKILL || s == SIGSTOP || s == SIGPIPE || s == SIGXFSZ || sigaction(s, 0, &sa))
            continue;
        if (sa.sa_handler == SIG_IGN)
            printf(" %d", s);
    }
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "again") == 0) {
        show("after execve");
        pid_t pid = fork();
        if (pid == 0) {
            show("in a child");
            raise(SIGINT);
            _exit(4);
        }
        int status;
        waitpid(pid, &status, 0);
        if (WIFSIGNALED(status)) printf("child killed by signal %d\n", WTERMSIG(status));
        else printf("child exit %d\n", WEXITSTATUS(status));
        fflush(stdout);
        raise(SIGHUP);
        printf("SIGHUP ignored\n");
        return 0;
    }
    show("at start");
    signal(SIGUSR2, SIG_IGN);   /* set by the program: kept across execve too */
    execl("/proc/self/exe", argv[0], "again", (char *)0);
    perror("execl");
    return 1;
}
