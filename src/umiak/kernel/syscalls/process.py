"""Process identity and limits: getpid(2), uname(2), prlimit64(2), arch_prctl(2), exit(2)..."""

import os
import time

from umiak.kernel import abi
from umiak.kernel.abi import s32
from umiak.kernel.errors import EINVAL, EPERM, ESRCH, ExitGroup, SyscallError, ThreadExit

LINUX_RELEASE = b"6.1.0-umiak"
LINUX_VERSION = b"#1 SMP PREEMPT_DYNAMIC umiak"


def sys_exit(task, status):
    """exit(2): ends the calling thread; the last thread ends the program."""
    raise ThreadExit(status & 0xFF)


def sys_exit_group(task, status):
    """exit_group(2)"""
    raise ExitGroup(status & 0xFF)


def sys_getpid(task):
    """getpid(2)"""
    return task.process.pid


def sys_gettid(task):
    """gettid(2)"""
    return task.tid


def sys_getppid(task):
    """getppid(2): 0 for pid 1, as for a container's init."""
    return task.process.ppid


def sys_getuid(task):
    """getuid(2)"""
    return task.process.creds.uid


def sys_geteuid(task):
    """geteuid(2)"""
    return task.process.creds.euid


def sys_getgid(task):
    """getgid(2)"""
    return task.process.creds.gid


def sys_getegid(task):
    """getegid(2)"""
    return task.process.creds.egid


def _process(task, pid: int):
    """The process a pid names (0: the caller's), zombies included; ESRCH if none."""
    if pid == 0:
        return task.process
    k = task.kernel
    t = k.tasks.get(pid)
    proc = t.process if t is not None else k.processes.get(pid)
    if proc is None or pid < 0:
        raise SyscallError(ESRCH)
    return proc


def sys_getpgrp(task):
    """getpgrp(2)"""
    return task.process.pgid


def sys_getpgid(task, pid):
    """getpgid(2)"""
    return _process(task, s32(pid)).pgid


def sys_getsid(task, pid):
    """getsid(2)"""
    return _process(task, s32(pid)).sid


def sys_setsid(task):
    """setsid(2): a new session and group led by the caller (no controlling terminal)."""
    p = task.process
    pid = p.pid
    if p.pgid == pid or any(q.pgid == pid for q in task.kernel.processes.values()):
        raise SyscallError(EPERM)
    p.sid = p.pgid = pid
    return pid


def sys_setpgid(task, pid, pgid):
    """setpgid(2)"""
    from umiak.kernel.errors import EACCES
    pid, pgid = s32(pid), s32(pgid)
    if pgid < 0:
        raise SyscallError(EINVAL)
    me = task.process
    target = me if pid == 0 else task.kernel.processes.get(pid)
    if target is None or pid < 0 or (target is not me and target.parent is not me):
        raise SyscallError(ESRCH)
    if target is not me:
        if target.sid != me.sid:
            raise SyscallError(EPERM)
        if target.did_exec:
            raise SyscallError(EACCES)
    if target.sid == target.pid:
        raise SyscallError(EPERM)   # a session leader
    pgid = pgid or target.pid
    if pgid != target.pid and not any(q.pgid == pgid and q.sid == me.sid and not q.zombie
                                       for q in task.kernel.processes.values()):
        raise SyscallError(EPERM)
    target.pgid = pgid
    return 0


def sys_set_tid_address(task, tidptr):
    """set_tid_address(2)"""
    task.clear_child_tid = tidptr
    return task.tid


def sys_set_robust_list(task, head, length):
    """set_robust_list(2)"""
    if length != 24:
        raise SyscallError(EINVAL)
    task.robust_list = (head, length)
    return 0


def sys_get_robust_list(task, pid, head_ptr, len_ptr):
    """get_robust_list(2)"""
    if s32(pid) not in (0, task.tid):
        raise SyscallError(ESRCH)
    task.mm.write_u64(head_ptr, task.robust_list[0])
    task.mm.write_u64(len_ptr, 24)
    return 0


def sys_arch_prctl(task, code, addr):
    """arch_prctl(2): FS/GS bases; CPUID faulting is not offered."""
    code = s32(code)
    v = task.vcpu
    if code == abi.ARCH_SET_FS:
        if addr >= 1 << 47:
            raise SyscallError(EPERM)
        v.set_fs_base(addr)
        return 0
    if code == abi.ARCH_SET_GS:
        if addr >= 1 << 47:
            raise SyscallError(EPERM)
        if addr and task.kernel.rewriter is not None:
            task.kernel.rewriter.gs_taken(task)   # its sites reach the stub through %gs
        v.set_gs_base(addr)
        return 0
    if code == abi.ARCH_GET_FS:
        task.mm.write_u64(addr, v.get_fs_base())
        return 0
    if code == abi.ARCH_GET_GS:
        task.mm.write_u64(addr, v.get_gs_base())
        return 0
    if code == abi.ARCH_GET_CPUID:
        return 1
    raise SyscallError(EINVAL)


def sys_prlimit64(task, pid, resource, new_limit, old_limit):
    """prlimit64(2)"""
    if s32(pid) not in (0, task.process.pid):
        raise SyscallError(ESRCH)
    resource = s32(resource)
    if not 0 <= resource < abi.RLIM_NLIMITS:
        raise SyscallError(EINVAL)
    limits = task.process.rlimits
    cur = limits.get(resource, [abi.RLIM_INFINITY, abi.RLIM_INFINITY])
    new = None
    if new_limit:
        new = list(task.mm.read_struct(new_limit, abi.RLIMIT))
        if new[0] > new[1]:
            raise SyscallError(EINVAL)
        if new[1] > cur[1] and task.process.creds.euid != 0:
            raise SyscallError(EPERM)
    if old_limit:
        task.mm.write_struct(old_limit, abi.RLIMIT, *cur)
    if new is not None:
        limits[resource] = new
        if resource == abi.RLIMIT_NOFILE:
            task.fds.limit = min(new[0], 1 << 20)
    return 0


def sys_getrlimit(task, resource, rlim):
    """getrlimit(2)"""
    return sys_prlimit64(task, 0, resource, 0, rlim)


def sys_setrlimit(task, resource, rlim):
    """setrlimit(2)"""
    return sys_prlimit64(task, 0, resource, rlim, 0)


def _field(s: bytes) -> bytes:
    return s[:64].ljust(65, b"\0")


def sys_uname(task, buf):
    """uname(2): a Linux release glibc accepts; the VM's UTS names (--hostname, sethostname)."""
    k = task.kernel
    data = b"".join(_field(x) for x in (b"Linux", os.fsencode(k.hostname), LINUX_RELEASE,
                                         LINUX_VERSION, b"x86_64", os.fsencode(k.domainname)))
    task.mm.write(buf, data)
    return 0


def sys_sysinfo(task, info):
    """sysinfo(2): memory figures are the VM's."""
    k = task.kernel
    uptime = int(time.clock_gettime(time.CLOCK_BOOTTIME))   # the clocks are the host's, so is uptime
    total = k.frames.total_bytes
    free = k.frames.free_bytes
    loads = (int(x * 65536) for x in os.getloadavg())
    procs = len(k.tasks)   # every task of the VM, as Linux counts threads
    task.mm.write(info, abi.SYSINFO.pack(uptime, *loads, total, free, 0, 0, 0, 0, procs, 0, 0, 1))
    return 0


def sys_getrandom(task, buf, count, flags):
    """getrandom(2)"""
    if flags & ~(abi.GRND_NONBLOCK | abi.GRND_RANDOM | abi.GRND_INSECURE):
        raise SyscallError(EINVAL)
    n = min(count, 33554431)
    task.mm.write(buf, os.urandom(n))
    return n


def sys_umask(task, mask):
    """umask(2)"""
    old = task.process.umask
    task.process.set_fs(umask=mask & 0o777)
    return old


def sys_prctl(task, option, a2, a3, a4, a5):
    """prctl(2): names, dumpable, no_new_privs, VMA names; others EINVAL."""
    option = s32(option)
    PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE = 1, 2, 3, 4
    PR_SET_NAME, PR_GET_NAME = 15, 16
    PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, PR_SET_VMA = 38, 39, 0x53564D41
    PR_SET_THP_DISABLE, PR_GET_THP_DISABLE, PR_CAPBSET_READ = 41, 42, 23
    PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
    if option == PR_SET_NAME:
        task.comm = task.mm.read_cstr(a2, 4096)[:15]
        if task is task.process.leader:
            task.process.comm = task.comm
        return 0
    if option == PR_GET_NAME:
        task.mm.write(a2, task.comm[:15].ljust(16, b"\0"))
        return 0
    if option == PR_SET_PDEATHSIG:
        if a2 > abi.NSIG:
            raise SyscallError(EINVAL)
        task.process.pdeath_signal = a2
        return 0
    if option == PR_GET_PDEATHSIG:
        task.mm.write_u32(a2, task.process.pdeath_signal)
        return 0
    if option == PR_SET_CHILD_SUBREAPER:
        task.process.subreaper = bool(a2)
        return 0
    if option == PR_GET_CHILD_SUBREAPER:
        task.mm.write_u32(a2, int(task.process.subreaper))
        return 0
    if option in (PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_VMA, PR_SET_THP_DISABLE):
        return 0
    if option == PR_GET_DUMPABLE:
        return 1
    if option in (PR_GET_NO_NEW_PRIVS, PR_GET_THP_DISABLE):
        return 0
    if option == PR_CAPBSET_READ:
        return 1 if a2 < 41 else -EINVAL
    raise SyscallError(EINVAL)


def sys_personality(task, persona):
    """personality(2): only PER_LINUX; a query returns it."""
    return 0


def _rusage(task) -> bytes:
    import resource
    ru = resource.getrusage(resource.RUSAGE_THREAD if hasattr(resource, "RUSAGE_THREAD") else resource.RUSAGE_SELF)
    def tv(x):
        return int(x), int((x - int(x)) * 1_000_000)
    return abi.RUSAGE.pack(*tv(ru.ru_utime), *tv(ru.ru_stime), task.mm.resident_bytes() // 1024,
                           0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def sys_getrusage(task, who, usage):
    """getrusage(2): CPU time is the host thread's running this VM."""
    if s32(who) not in (abi.RUSAGE_SELF, abi.RUSAGE_CHILDREN, abi.RUSAGE_THREAD):
        raise SyscallError(EINVAL)
    task.mm.write(usage, _rusage(task))
    return 0


def sys_times(task, buf):
    """times(2)"""
    t = os.times()
    if buf:
        task.mm.write(buf, abi.TMS.pack(int(t.user * abi.CLK_TCK), int(t.system * abi.CLK_TCK), 0, 0))
    return int((time.monotonic() - task.kernel.boot_monotonic) * abi.CLK_TCK) + 1

