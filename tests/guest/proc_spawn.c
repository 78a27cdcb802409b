/* Starting programs: vfork + execve, posix_spawn, system(), popen()/pclose().
 * Probes: a vfork child runs on the parent's memory until it execs (the parent
 * sees its store) and the parent sleeps until then; the exec'd program (this one
 * again, with an argument) finds O_CLOEXEC fds closed and others open, handled
 * signals back to SIG_DFL and ignored ones still ignored; exit statuses of exec'd
 * children, of system("exit 3"), of a shell killed by a signal, of popen's command
 * read through its pipe; posix_spawn with file actions (dup2 onto stdout). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void on_usr1(int sig) { (void)sig; }

static int exec_mode(int argc, char **argv) {
    int keep = atoi(argv[2]), gone = atoi(argv[3]);
    printf("exec'd: kept fd open %d, cloexec fd closed %d\n", fcntl(keep, F_GETFD) >= 0,
           fcntl(gone, F_GETFD) < 0 && errno == EBADF);
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    printf("exec'd: handled signal reset to default %d\n", sa.sa_handler == SIG_DFL);
    sigaction(SIGUSR2, NULL, &sa);
    printf("exec'd: ignored signal still ignored %d\n", sa.sa_handler == SIG_IGN);
    printf("exec'd: argc %d\n", argc);
    fflush(stdout);
    return 17;
}

static void show(const char *what, int st) {
    if (WIFEXITED(st))
        printf("%s: exited %d\n", what, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        printf("%s: killed by %d\n", what, WTERMSIG(st));
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exec") == 0)
        return exec_mode(argc, argv);
    if (argc > 1 && strcmp(argv[1], "spawned") == 0) {
        printf("spawned child says %s\n", argv[2]);
        return 4;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, SIG_IGN);
    int keep = open("/dev/null", O_RDONLY);
    int gone = open("/dev/null", O_RDONLY | O_CLOEXEC);
    char a1[16], a2[16];
    snprintf(a1, sizeof a1, "%d", keep);
    snprintf(a2, sizeof a2, "%d", gone);

    static volatile int stored;
    pid_t p = vfork();
    if (p == 0) {
        stored = 99;              /* on the parent's memory */
        char *args[] = {argv[0], "exec", a1, a2, NULL};
        execve(argv[0], args, environ);
        _exit(127);
    }
    int saw = stored == 99;
    int st;
    waitpid(p, &st, 0);
    printf("vfork parent resumed, sees the child's store: %d\n", saw);
    show("vfork+exec child", st);

    p = vfork();
    if (p == 0)
        _exit(3);
    waitpid(p, &st, 0);
    show("vfork+_exit child", st);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, 1, 1);
    char *sargs[] = {argv[0], "spawned", "hello", NULL};
    int r = posix_spawn(&p, argv[0], &fa, NULL, sargs, environ);
    waitpid(p, &st, 0);
    printf("posix_spawn: %d\n", r);
    show("posix_spawn child", st);
    char *missing[] = {"/nonexistent/program", NULL};
    r = posix_spawn(&p, missing[0], NULL, NULL, missing, environ);
    printf("posix_spawn of a missing program: %s\n", r ? strerror(r) : "started");
    if (r == 0) {
        waitpid(p, &st, 0);
        show("missing program", st);
    }
    r = posix_spawnp(&p, "true", NULL, NULL, (char *[]){"true", NULL}, environ);
    waitpid(p, &st, 0);
    show("posix_spawnp true", st);

    show("system(exit 3)", system("exit 3"));
    show("system(echo)", system("echo from system"));
    show("system(kill -TERM $$)", system("kill -TERM $$"));
    show("system(missing command)", system("/nonexistent/cmd 2>/dev/null"));

    FILE *f = popen("echo popen line; exit 2", "r");
    char line[64] = "";
    fgets(line, sizeof line, f);
    printf("popen read: %s", line);
    show("pclose", pclose(f));
    f = popen("tr a-z A-Z", "w");
    fputs("to the child\n", f);
    show("pclose(w)", pclose(f));
    return 0;
}
