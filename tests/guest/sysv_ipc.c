/* Probes: System V IPC in one VM: shmget/shmat/shmdt/shmctl (a segment shared with a
   forked child, IPC_STAT's size and nattch, IPC_RMID while attached, SHM_RDONLY,
   keys and IPC_EXCL), semget/semop/semctl (a child blocks on a semaphore the parent
   posts, IPC_NOWAIT, SETALL/GETALL, GETNCNT, semtimedop's timeout, EIDRM on removal),
   msgget/msgsnd/msgrcv/msgctl (types, MSG_EXCEPT, negative types, E2BIG/MSG_NOERROR,
   ENOMSG, a blocked receiver woken by a sender, IPC_STAT counts). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TRY(label, expr) do { long r_ = (long)(expr); int e_ = errno; \
    printf("%s: %ld errno=%d\n", label, r_, r_ < 0 ? e_ : 0); } while (0)

union semun { int val; struct semid_ds *buf; unsigned short *array; };

static void shm_part(key_t key) {
    printf("-- shm\n");
    int id = shmget(key, 10000, IPC_CREAT | IPC_EXCL | 0600);
    printf("shmget create: %s\n", id >= 0 ? "ok" : strerror(errno));
    TRY("again with IPC_EXCL", shmget(key, 10000, IPC_CREAT | IPC_EXCL | 0600));
    printf("same key gives same id: %d\n", shmget(key, 0, 0) == id);
    TRY("bigger than the segment", shmget(key, 20000, 0));
    TRY("missing key", shmget(key + 1, 100, 0));
    char *p = shmat(id, NULL, 0);
    strcpy(p, "parent wrote");
    struct shmid_ds ds;
    shmctl(id, IPC_STAT, &ds);
    printf("segsz=%zu nattch=%lu mode=%o cpid is me: %d\n", ds.shm_segsz, (unsigned long)ds.shm_nattch,
           ds.shm_perm.mode & 0777, ds.shm_cpid == getpid());
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        shmctl(id, IPC_STAT, &ds);
        printf("child sees \"%s\", nattch=%lu\n", p, (unsigned long)ds.shm_nattch);
        strcpy(p + 100, "child wrote");
        char *q = shmat(id, NULL, SHM_RDONLY);
        printf("second attach, read-only, sees \"%s\"\n", q);
        shmdt(q);
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, 0, 0);
    printf("parent sees \"%s\"\n", p + 100);
    shmctl(id, IPC_STAT, &ds);
    printf("nattch after the child exit=%lu\n", (unsigned long)ds.shm_nattch);
    TRY("shmdt of a wrong address", shmdt(p + 4096));
    printf("IPC_RMID while attached: %d\n", shmctl(id, IPC_RMID, 0));
    shmctl(id, IPC_STAT, &ds);
    printf("still there: \"%s\", key now %d, dest=%d\n", p, ds.shm_perm.__key, !!(ds.shm_perm.mode & 01000));
    TRY("key is free", shmget(key, 100, 0));
    printf("shmdt = %d\n", shmdt(p));
    TRY("after the last detach IPC_STAT", shmctl(id, IPC_STAT, &ds));
    int priv = shmget(IPC_PRIVATE, 4096, 0600);
    int priv2 = shmget(IPC_PRIVATE, 4096, 0600);
    printf("IPC_PRIVATE gives new ids: %d\n", priv != priv2);
    TRY("bad size", shmget(IPC_PRIVATE, 0, 0600));
    char *at = shmat(priv, (void *)0x7e0000001000UL, 0);
    printf("shmat at a chosen address: %d\n", at == (void *)0x7e0000001000UL);
    TRY("unaligned without SHM_RND", (long)shmat(priv2, (void *)0x7e0000002001UL, 0));
    TRY("over the first without SHM_REMAP", (long)shmat(priv2, at, 0));
    shmdt(at);
    shmctl(priv, IPC_RMID, 0);
    shmctl(priv2, IPC_RMID, 0);
    TRY("removed id", shmctl(priv2, IPC_STAT, &ds));
}

static void sem_part(key_t key) {
    printf("-- sem\n");
    int id = semget(key, 3, IPC_CREAT | IPC_EXCL | 0600);
    printf("semget: %s\n", id >= 0 ? "ok" : strerror(errno));
    TRY("more sems than the set", semget(key, 5, 0));
    unsigned short init[3] = {1, 0, 5}, got[3];
    union semun u = {.array = init};
    semctl(id, 0, SETALL, u);
    u.array = got;
    semctl(id, 0, GETALL, u);
    printf("GETALL %u %u %u\n", got[0], got[1], got[2]);
    struct sembuf take1 = {1, -1, 0}, give1 = {1, 1, 0}, nowait = {1, -1, IPC_NOWAIT};
    TRY("IPC_NOWAIT on zero", semop(id, &nowait, 1));
    struct sembuf both[2] = {{0, -1, 0}, {2, -6, IPC_NOWAIT}};
    TRY("all or nothing", semop(id, both, 2));
    printf("sem0 still %d\n", semctl(id, 0, GETVAL));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int r = semop(id, &take1, 1);
        printf("child: semop returned %d, sem1=%d, pid of last op is me: %d\n", r, semctl(id, 1, GETVAL),
               semctl(id, 1, GETPID) == getpid());
        fflush(stdout);
        _exit(0);
    }
    while (semctl(id, 1, GETNCNT) == 0) usleep(1000);
    printf("GETNCNT=%d\n", semctl(id, 1, GETNCNT));
    semop(id, &give1, 1);
    waitpid(pid, 0, 0);
    struct timespec ts = {0, 50000000};
    TRY("semtimedop timeout", semtimedop(id, &take1, 1, &ts));
    u.val = 40000;
    TRY("SETVAL out of range", semctl(id, 0, SETVAL, u));
    struct sembuf zero = {0, 0, 0};
    u.val = 1;
    semctl(id, 0, SETVAL, u);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int r = semop(id, &zero, 1);
        TRY("child waiting for zero", r);
        fflush(stdout);
        _exit(0);
    }
    while (semctl(id, 0, GETZCNT) == 0) usleep(1000);
    printf("GETZCNT=%d\n", semctl(id, 0, GETZCNT));
    semctl(id, 0, IPC_RMID);
    waitpid(pid, 0, 0);
    struct semid_ds ds;
    u.buf = &ds;
    TRY("after IPC_RMID", semctl(id, 0, IPC_STAT, u));
}

struct msg { long mtype; char text[64]; };

static void msg_part(key_t key) {
    printf("-- msg\n");
    int id = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
    printf("msgget: %s\n", id >= 0 ? "ok" : strerror(errno));
    struct msg m;
    const char *texts[] = {"one", "two", "three", "four"};
    long types[] = {5, 2, 7, 2};
    for (int i = 0; i < 4; i++) {
        m.mtype = types[i];
        strcpy(m.text, texts[i]);
        msgsnd(id, &m, strlen(texts[i]) + 1, 0);
    }
    struct msqid_ds ds;
    msgctl(id, IPC_STAT, &ds);
    printf("qnum=%lu cbytes=%lu qbytes=%lu\n", (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes,
           (unsigned long)ds.msg_qbytes);
    ssize_t n = msgrcv(id, &m, sizeof m.text, 2, 0);
    printf("type 2: %zd %s\n", n, m.text);
    n = msgrcv(id, &m, sizeof m.text, 5, MSG_EXCEPT);
    printf("not type 5: %zd %ld %s\n", n, m.mtype, m.text);
    n = msgrcv(id, &m, 2, -10, 0);
    TRY("lowest type, too short", n);
    n = msgrcv(id, &m, 2, -10, MSG_NOERROR);
    printf("lowest type, truncated: %zd %ld %.2s\n", n, m.mtype, m.text);
    n = msgrcv(id, &m, sizeof m.text, 0, 0);
    printf("first: %zd %ld %s\n", n, m.mtype, m.text);
    TRY("empty, IPC_NOWAIT", msgrcv(id, &m, sizeof m.text, 0, IPC_NOWAIT));
    m.mtype = 0;
    TRY("mtype 0", msgsnd(id, &m, 1, 0));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct msg r;
        ssize_t k = msgrcv(id, &r, sizeof r.text, 9, 0);
        printf("child got %zd %ld %s\n", k, r.mtype, r.text);
        fflush(stdout);
        _exit(0);
    }
    usleep(100000);
    m.mtype = 9;
    strcpy(m.text, "for the child");
    msgsnd(id, &m, 14, 0);
    waitpid(pid, 0, 0);
    msgctl(id, IPC_STAT, &ds);
    printf("lrpid is the child: %d, lspid is me: %d\n", ds.msg_lrpid == pid, ds.msg_lspid == getpid());
    ds.msg_qbytes = 100;
    msgctl(id, IPC_SET, &ds);
    char big[200];
    memset(big, 'x', sizeof big);
    memcpy(big, &(long){1}, sizeof(long));
    TRY("larger than qbytes, IPC_NOWAIT", msgsnd(id, big, 150, IPC_NOWAIT));
    msgctl(id, IPC_RMID, 0);
    TRY("after IPC_RMID", msgsnd(id, &m, 1, 0));
}

static void on_alrm(int s) { (void)s; }

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    key_t base = 0x55000000 + (getpid() & 0xffff) * 4;
    shm_part(base);
    sem_part(base + 1);
    msg_part(base + 2);
    /* a semop or msgrcv interrupted by a handled signal is EINTR even with SA_RESTART */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alrm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, 0);
    int sid = semget(IPC_PRIVATE, 1, 0600);
    struct sembuf down = {0, -1, 0};
    alarm(1);
    TRY("semop interrupted", semop(sid, &down, 1));
    semctl(sid, 0, IPC_RMID);
    int qid = msgget(IPC_PRIVATE, 0600);
    struct msg m;
    alarm(1);
    TRY("msgrcv interrupted", msgrcv(qid, &m, sizeof m.text, 0, 0));
    msgctl(qid, IPC_RMID, 0);
    return 0;
}
