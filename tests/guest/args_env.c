/* args_env: print argc, every argv string and every environment string, in order,
 * with their lengths, and check the layout the ABI promises: argv[argc] == NULL,
 * envp directly after argv, environ == envp.
 * Probes: the initial stack built by the loader (argc/argv/envp). */
#include <stdio.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv, char **envp)
{
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++)  /* argv[0] is printed by the auxv test */
        printf("argv[%d]=[%s] len %zu\n", i, argv[i], strlen(argv[i]));
    printf("argv[argc] is NULL: %s\n", argv[argc] == NULL ? "yes" : "no");
    printf("envp follows argv: %s\n", envp == argv + argc + 1 ? "yes" : "no");
    printf("environ == envp: %s\n", environ == envp ? "yes" : "no");
    int n = 0;
    for (char **e = envp; *e; e++, n++)
        printf("env[%d]=[%s]\n", n, *e);
    printf("envc=%d\n", n);
    return argc;
}
