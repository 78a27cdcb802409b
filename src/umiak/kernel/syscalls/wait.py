"""Waiting for children: wait4(2) and waitid(2).

A child that has ended is a zombie until one of these reaps it. A child that a
stop signal stopped is reported once with WUNTRACED/WSTOPPED, one that SIGCONT
continued once with WCONTINUED (kernel/jobctl.py); neither is reaped.
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


EXITED, STOPPED, CONTINUED = 0, 1, 2   # what _wait found


def _wait(task, idtype: int, ident: int, options: int):
    """(child, EXITED|STOPPED|CONTINUED) to report, or None (WNOHANG and nothing yet);
    ECHILD when nothing matches. A stop or continue is consumed unless WNOWAIT."""
    proc = task.process
    found: list = []

    def ready() -> bool:
        any_child = False
        for c in proc.children:
            if _eligible(c, idtype, ident, options):
                any_child = True
                if c.zombie:
                    if options & WEXITED:
                        found.append((c, EXITED))
                        return True
                elif c.stop_report and c.stopped and options & WSTOPPED:
                    found.append((c, STOPPED))
                    return True
                elif c.cont_report and options & WCONTINUED:
                    found.append((c, CONTINUED))
                    return True
        if not any_child:
            raise SyscallError(ECHILD)
        return bool(options & WNOHANG)
    task.wait(ready)
    if not found:
        return None
    child, kind = found[0]
    if not options & WNOWAIT:
        if kind == STOPPED:
            child.stop_report = False
        elif kind == CONTINUED:
            child.cont_report = False
    return found[0]


def _rusage_bytes(child) -> bytes:
    """The child's struct rusage: the CPU time of its own reaped children (its own is not kept)."""
    def tv(x: float) -> tuple[int, int]:
        return int(x), int((x - int(x)) * 1_000_000)
    return abi.RUSAGE.pack(*tv(child.cutime), *tv(child.cstime), *([0] * 14))


def sys_wait4(task, pid, wstatus, options, rusage):
    """wait4(2)"""
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
    got = _wait(task, idtype, ident, options | WEXITED)
    if got is None:
        return 0
    child, kind = got
    if wstatus:
        status = child.wait_status() if kind == EXITED else \
            (child.stop_signal << 8 | 0x7F) if kind == STOPPED else 0xFFFF
        task.mm.write_u32(wstatus, status)
    if rusage:
        task.mm.write(rusage, _rusage_bytes(child))
    if kind == EXITED:
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
    got = _wait(task, idtype, ident, options)
    if got is None:
        if infop:
            task.mm.write(infop, WAITID_INFO.pack(0, 0, 0, 0, 0, 0))
        return 0
    child, kind = got
    if infop:
        if kind == EXITED:
            code, status = child_code(child), child.exit_signal or (child.exit_status & 0xFF)
        elif kind == STOPPED:
            code, status = abi.CLD_STOPPED, child.stop_signal
        else:
            code, status = abi.CLD_CONTINUED, abi.SIGCONT
        task.mm.write(infop, WAITID_INFO.pack(abi.SIGCHLD, 0, code, child.pid, child.creds.uid, status))
    if rusage:
        task.mm.write(rusage, _rusage_bytes(child))
    if kind == EXITED and not options & WNOWAIT:
        task.kernel.reap(child)
    return 0
