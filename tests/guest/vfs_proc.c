/* vfs_proc: what programs read from /proc and /sys, printed as facts that hold on any Linux:
 * thread names (prctl PR_SET_NAME, /proc/self/comm, task/<tid>/comm, thread-self),
 * /proc/self/stat and status fields against getpid() and the thread count, limits against
 * getrlimit, maps naming [stack] and [vdso], auxv's AT_PAGESZ, CPU counts from cpuinfo,
 * /sys and sysconf agreeing, meminfo/uptime/loadavg/stat formats, /proc/sys/kernel values,
 * statfs magic numbers of /proc, /sys and /dev/shm. */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <unistd.h>

static char *slurp(const char *path)
{
    static char buf[1 << 16];
    int fd = open(path, O_RDONLY);
    if (fd < 0) { snprintf(buf, sizeof buf, "(open failed)"); return buf; }
    long n = 0, r;
    while ((r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += r;
    buf[n] = 0;
    close(fd);
    return buf;
}

static long field(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++) n++;
    return n;
}

static pthread_barrier_t bar;

static void *worker(void *arg)
{
    (void)arg;
    prctl(PR_SET_NAME, "worker-thread");
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/comm", (long)syscall(SYS_gettid));
    printf("worker comm: %s", slurp(path));
    printf("worker thread-self comm: %s", slurp("/proc/thread-self/comm"));
    pthread_barrier_wait(&bar);
    pthread_barrier_wait(&bar);
    return NULL;
}

int main(void)
{
    prctl(PR_SET_NAME, "main-name");
    printf("comm: %s", slurp("/proc/self/comm"));
    int fd = open("/proc/self/comm", O_WRONLY);
    write(fd, "renamed\n", 8);
    close(fd);
    char name[16] = "";
    prctl(PR_GET_NAME, name);
    printf("after write: %s / %s", name, slurp("/proc/self/comm"));

    pthread_barrier_init(&bar, NULL, 2);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    pthread_barrier_wait(&bar);
    char *st = slurp("/proc/self/stat");
    printf("stat pid ok: %d\n", atol(st) == getpid());
    printf("stat comm: %.*s\n", (int)(strchr(st, ')') - strchr(st, '(') + 1), strchr(st, '('));
    char *q = strchr(st, ')') + 2;
    printf("stat state: %c\n", *q);
    int nf = 0;
    long threads = 0;
    for (char *t = strtok(q, " "); t; t = strtok(NULL, " ")) {
        nf++;
        if (nf == 18) threads = atol(t);
    }
    printf("stat fields after comm: %d threads: %ld\n", nf, threads);
    char *status = slurp("/proc/self/status");
    printf("status Tgid ok: %d Pid ok: %d Threads: %ld\n", field(status, "Tgid:\t") == getpid(),
           field(status, "\nPid:\t") == getpid(), field(status, "Threads:\t"));
    printf("status has VmRSS: %d State: %d Uid: %ld\n", count(status, "VmRSS:") == 1,
           count(status, "State:\tR") + count(status, "State:\tS"), field(status, "Uid:\t"));
    pthread_barrier_wait(&bar);
    pthread_join(th, NULL);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    char want[128];
    snprintf(want, sizeof want, "Max open files            %-20ld %-20ld files", (long)rl.rlim_cur, (long)rl.rlim_max);
    printf("limits nofile line: %d\n", strstr(slurp("/proc/self/limits"), want) != NULL);
    char *maps = slurp("/proc/self/maps");
    printf("maps: stack %d vdso %d vvar %d\n", count(maps, "[stack]") == 1, count(maps, "[vdso]") == 1,
           count(maps, "[vvar]") == 1);
    int afd = open("/proc/self/auxv", O_RDONLY);
    Elf64_auxv_t av[64];
    long n = read(afd, av, sizeof av);
    long pagesz = 0;
    for (long i = 0; i < n / (long)sizeof av[0]; i++)
        if (av[i].a_type == AT_PAGESZ) pagesz = av[i].a_un.a_val;
    printf("auxv pagesz: %ld\n", pagesz);

    long online = sysconf(_SC_NPROCESSORS_ONLN);
    printf("cpuinfo processors == online: %d\n", count(slurp("/proc/cpuinfo"), "processor\t:") == online);
    printf("get_nprocs == online: %d conf: %d\n", get_nprocs() == online, get_nprocs_conf() >= online);
    char range[32];
    if (online == 1) snprintf(range, sizeof range, "0\n"); else snprintf(range, sizeof range, "0-%ld\n", online - 1);
    printf("sys cpu online: %d\n", strcmp(slurp("/sys/devices/system/cpu/online"), range) == 0);
    char *mem = slurp("/proc/meminfo");
    printf("meminfo MemTotal>0 %d MemFree %d MemAvailable %d\n", field(mem, "MemTotal:") > 0,
           count(mem, "MemFree:") == 1, count(mem, "MemAvailable:") == 1);
    double up, idle;
    printf("uptime fields: %d\n", sscanf(slurp("/proc/uptime"), "%lf %lf", &up, &idle));
    double l1, l5, l15;
    int run, tot, last;
    printf("loadavg fields: %d\n", sscanf(slurp("/proc/loadavg"), "%lf %lf %lf %d/%d %d", &l1, &l5, &l15, &run, &tot, &last));
    char *pst = slurp("/proc/stat");
    printf("stat cpu line: %d btime: %d\n", strncmp(pst, "cpu ", 4) == 0, count(pst, "\nbtime ") == 1);
    printf("ostype: %s", slurp("/proc/sys/kernel/ostype"));
    printf("pid_max > 0: %d\n", atol(slurp("/proc/sys/kernel/pid_max")) > 0);
    printf("boot_id length: %zu\n", strlen(slurp("/proc/sys/kernel/random/boot_id")));
    char u1[64], u2[64];
    snprintf(u1, sizeof u1, "%s", slurp("/proc/sys/kernel/random/uuid"));
    snprintf(u2, sizeof u2, "%s", slurp("/proc/sys/kernel/random/uuid"));
    printf("uuid length %zu, differs %d\n", strlen(u1), strcmp(u1, u2) != 0);
    printf("overcommit_memory digit: %d\n", slurp("/proc/sys/vm/overcommit_memory")[0] >= '0');
    printf("filesystems has proc: %d tmpfs: %d\n", count(slurp("/proc/filesystems"), "\tproc\n") == 1,
           count(slurp("/proc/filesystems"), "\ttmpfs\n") == 1);
    struct statfs sf;
    statfs("/proc", &sf);
    printf("statfs /proc magic %lx\n", (long)sf.f_type);
    statfs("/sys", &sf);
    printf("statfs /sys magic %lx\n", (long)sf.f_type);
    statfs("/dev/shm", &sf);
    printf("statfs /dev/shm magic %lx\n", (long)sf.f_type);
    return 0;
}
