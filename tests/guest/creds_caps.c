/* Probes: setreuid/setregid/setresuid/setresgid/setfsuid/setfsgid (-1 leaves an id,
   saved set-user-ID rules), capget/capset (versions, dropping a capability is real),
   and capabilities following the uids: a non-root process cannot chown or read a 0600
   file; an effective uid of 0 regains the permitted capabilities. Run as root;
   argv[1] is a writable directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* <linux/capability.h>, which musl's headers lack */
#define _LINUX_CAPABILITY_VERSION_1 0x19980330
#define _LINUX_CAPABILITY_VERSION_3 0x20080522
#define CAP_CHOWN 0
struct cap_header { unsigned version; int pid; };
struct cap_data { unsigned effective, permitted, inheritable; };
static struct cap_header hdr;
static struct cap_data data[2];

static int capget3(void) { hdr.version = _LINUX_CAPABILITY_VERSION_3; hdr.pid = 0; return syscall(SYS_capget, &hdr, data); }
static int capset3(void) { hdr.version = _LINUX_CAPABILITY_VERSION_3; hdr.pid = 0; return syscall(SYS_capset, &hdr, data); }
static int has(int cap) { capget3(); return (data[cap / 32].effective >> (cap % 32)) & 1; }
static const char *e(int r) { return r < 0 ? strerror(errno) : "ok"; }

static void ids(const char *what) {
    uid_t r, ef, s; gid_t gr, ge, gs;
    getresuid(&r, &ef, &s);
    getresgid(&gr, &ge, &gs);
    capget3();
    printf("%-28s uid %u %u %u gid %u %u %u caps eff==perm %d eff0 %d perm0 %d chown %d\n", what, r, ef, s, gr, ge, gs,
           data[0].effective == data[0].permitted && data[1].effective == data[1].permitted,
           data[0].effective == 0 && data[1].effective == 0, data[0].permitted == 0 && data[1].permitted == 0,
           has(CAP_CHOWN));
}

int main(int argc, char **argv) {
    if (argc < 2 || chdir(argv[1]) < 0) return 2;
    close(open("f", O_CREAT | O_WRONLY, 0600));
    ids("start");
    hdr.version = 0x12345678; hdr.pid = 0;
    int r = syscall(SYS_capget, &hdr, data);
    printf("capget bad version: %s, version now %#x\n", e(r), hdr.version);
    hdr.version = 0x12345678;
    printf("capget bad version, no data: %d version now %#x\n", (int)syscall(SYS_capget, &hdr, 0), hdr.version);
    hdr.version = _LINUX_CAPABILITY_VERSION_1; hdr.pid = 0;
    printf("capget v1: %s\n", e(syscall(SYS_capget, &hdr, data)));
    hdr.version = _LINUX_CAPABILITY_VERSION_3; hdr.pid = 999999;
    printf("capget other pid: %s\n", e(syscall(SYS_capget, &hdr, data)));

    capget3();
    data[0].effective &= ~(1u << CAP_CHOWN);
    printf("capset drop CAP_CHOWN from effective: %s\n", e(capset3()));
    printf("  chown: %s\n", e(chown("f", 1, 1)));
    capget3();
    data[0].effective |= 1u << CAP_CHOWN;
    printf("capset raise it again: %s\n", e(capset3()));
    printf("  chown: %s\n", e(chown("f", 1, 1)));
    chown("f", 0, 0);
    capget3();
    data[0].effective |= 1u << 31; data[0].permitted &= ~(1u << 31);
    printf("capset effective beyond permitted: %s\n", e(capset3()));

    printf("setreuid(-1,-1): %s\n", e(setreuid(-1, -1)));
    printf("setresuid(-1,1000,-1): %s\n", e(setresuid(-1, 1000, -1)));
    ids("euid 1000");
    printf("  chown: %s\n", e(chown("f", 1000, 1000)));
    printf("  open 0600 root file: %s\n", e(open("f", O_RDONLY)));
    printf("  access(R_OK) as real root: %s\n", e(access("f", R_OK)));
    printf("  setfsuid(2000) = %d\n", setfsuid(2000));
    printf("  setfsuid(-1) = %d\n", setfsuid(-1));
    printf("  setfsuid(1000) = %d\n", setfsuid(1000));
    printf("seteuid(0): %s\n", e(seteuid(0)));
    ids("back to root");
    printf("setreuid(1000,-1): %s\n", e(setreuid(1000, -1)));
    ids("ruid 1000");
    printf("setreuid(-1,1000): %s\n", e(setreuid(-1, 1000)));
    ids("euid 1000 again");
    printf("setreuid(-1,0): %s\n", e(setreuid(-1, 0)));
    ids("saved 0 lets it back");
    printf("setresgid(-1,100,-1): %s\n", e(setresgid(-1, 100, -1)));
    printf("setregid(200,-1): %s\n", e(setregid(200, -1)));
    printf("setfsgid(300) = %d, then %d\n", setfsgid(300), setfsgid(-1));
    ids("gids");
    printf("setresuid(1000,1000,1000): %s\n", e(setresuid(1000, 1000, 1000)));
    ids("all 1000");
    printf("  setuid(0): %s\n", e(setuid(0)));
    printf("  setresuid(-1,0,-1): %s\n", e(setresuid(-1, 0, -1)));
    printf("  setreuid(1000,1000): %s\n", e(setreuid(1000, 1000)));
    printf("  setresuid(2000,-1,-1): %s\n", e(setresuid(2000, -1, -1)));
    printf("  setgid(0): %s\n", e(setgid(0)));
    printf("  setgroups: %s\n", e(setgroups(0, 0)));
    printf("  chown own file: %s\n", e(chown("g", 1000, 1000)));
    capget3();
    data[0].permitted = data[0].effective = 1u << CAP_CHOWN;
    printf("  capset raise CAP_CHOWN: %s\n", e(capset3()));
    printf("  unlink in root's directory: %s\n", e(unlink("f")));
    return 0;
}
