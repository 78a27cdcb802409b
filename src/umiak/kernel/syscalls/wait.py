"""Waiting for children: wait4(2) and waitid(2).

A child that has ended is a zombie until one of these reaps it. Stops and
continues are never reported: the VM has no job control (stop signals are
ignored), so WUNTRACED/WSTOPPED/WCONTINUED only widen what is waited for.
"""

from umiak.kernel import abi
from umiak.kernel.abi import (P_ALL, P_PGID, P_PID, P_PIDFD, WAITID_INFO, WCONTINUED, WEXITED, WNOHANG, WNOWAIT,
                              WSTOPPED, __WALL, __WCLONE, __WNOTHREAD, s32)
from umiak.kernel.errors import ECHILD, EINVAL, ESRCH, SyscallError


def _eligible(child, idtype: int, ident: int, options: int) -> bool:
    if idtype == P_PID and child.pid != ident:
        return False
    if idtype == P_PGID and child.pgid != ident:
        return False
    if options & __WALL:
        return True
    # Without __WALL: "clone" children (exit signal other than SIGCHLD) only with __WCLONE.
    return (child.child_signal != abi.SIGCHLD) == bool(options & __WCLONE)


def _wait(task, idtype: int, ident: int, options: int):
    """The zombie to report (None: WNOHANG and nothing yet); ECHILD when nothing matches."""
    proc = task.process
    found = []

    def ready() -> bool:
        any_child = False
        for c in proc.children:
            if _eligible(c, idtype, ident, options):
                any_child = True
                if c.zombie and options & WEXITED:
                    found.append(c)
                    return True
        if not any_child:
            raise SyscallError(ECHILD)
        return bool(options & WNOHANG)
    task.wait(ready)
    return found[0] if found else None


def _rusage_bytes(child) -> bytes:
    """The child's struct rusage: the CPU time of its own reaped children (its own is not kept)."""
    def tv(x: float) -> tuple[int, int]:
        return int(x), int((x - int(x)) * 1_000_000)
    return abi.RUSAGE.pack(*tv(child.cutime), *tv(child.cstime), *([0] * 14))


def sys_wait4(task, pid, wstatus, options, rusage):
    """wait4(2): stopped and continued children are never reported (no job control)."""
    pid, options = s32(pid), s32(options) & 0xFFFFFFFF
    if options & ~(WNOHANG | WSTOPPED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL):
        raise SyscallError(EINVAL)
    if pid == -0x80000000:
        raise SyscallError(ESRCH)
    if pid < -1:
        idtype, ident = P_PGID, -pid
    elif pid == -1:
        idtype, ident = P_ALL, 0
    elif pid == 0:
        idtype, ident = P_PGID, task.process.pgid
    else:
        idtype, ident = P_PID, pid
    child = _wait(task, idtype, ident, options | WEXITED)
    if child is None:
        return 0
    if wstatus:
        task.mm.write_u32(wstatus, child.wait_status())
    if rusage:
        task.mm.write(rusage, _rusage_bytes(child))
    task.kernel.reap(child)
    return child.pid


def sys_waitid(task, idtype, ident, infop, options, rusage):
    """waitid(2)"""
    from umiak.kernel.kernel import child_code
    idtype, ident, options = s32(idtype), s32(ident), s32(options) & 0xFFFFFFFF
    if options & ~(WNOHANG | WNOWAIT | WEXITED | WSTOPPED | WCONTINUED | __WNOTHREAD | __WCLONE | __WALL):
        raise SyscallError(EINVAL)
    if not options & (WEXITED | WSTOPPED | WCONTINUED):
        raise SyscallError(EINVAL)
    if idtype == P_ALL:
        ident = 0
    elif idtype == P_PID:
        if ident <= 0:
            raise SyscallError(EINVAL)
    elif idtype == P_PGID:
        if ident < 0:
            raise SyscallError(EINVAL)
        if ident == 0:
            ident = task.process.pgid
    elif idtype == P_PIDFD:
        from umiak.kernel.syscalls.pidfd import pidfd_process
        if ident < 0:
            raise SyscallError(EINVAL)
        target = pidfd_process(task, ident)
        if target.parent is not task.process:
            raise SyscallError(ECHILD)
        idtype, ident = P_PID, target.pid
    else:
        raise SyscallError(EINVAL)
    child = _wait(task, idtype, ident, options)
    if child is None:
        if infop:
            task.mm.write(infop, WAITID_INFO.pack(0, 0, 0, 0, 0, 0))
        return 0
    if infop:
        status = child.exit_signal or (child.exit_status & 0xFF)
        task.mm.write(infop, WAITID_INFO.pack(abi.SIGCHLD, 0, child_code(child), child.pid,
                                               child.creds.uid, status))
    if rusage:
        task.mm.write(rusage, _rusage_bytes(child))
    if not options & WNOWAIT:
        task.kernel.reap(child)
    return 0
