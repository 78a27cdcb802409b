"""Job control: stop signals that stop, SIGCONT that continues, and a terminal's
session and foreground process group (tcgetpgrp/tcsetpgrp, TIOCSCTTY, SIGTTIN/SIGTTOU).

A stop signal with the default action stops every task of its process (but pid 1's,
as a container's init is never stopped from inside): each parks
in `wait_while_stopped` (at its next signal-delivery point, so a blocking call is
restarted afterwards) until SIGCONT or SIGKILL; the parent gets SIGCHLD with
CLD_STOPPED (unless SA_NOCLDSTOP) and wait4(WUNTRACED) reports the stop once.

A `Terminal` is what job control needs of a tty: the session it controls and its
foreground group. umiak's own terminal (a host tty as the guest's stdio) is pid 1's
session's controlling terminal, as `docker run -t` gives; a pseudo-terminal made in
the VM can hold its own Terminal and call the same functions. All of this runs
with the kernel lock held.
"""

from umiak.kernel import abi
from umiak.kernel.errors import EINVAL, ENOTTY, EPERM, ERESTARTSYS, ESRCH, SyscallError, EIO

STOP_SIGNALS = frozenset({abi.SIGSTOP, abi.SIGTSTP, abi.SIGTTIN, abi.SIGTTOU})
_STOP_MASK = sum(1 << (s - 1) for s in STOP_SIGNALS)
_CONT_BIT = 1 << (abi.SIGCONT - 1)


class Terminal:
    """Job-control state of one terminal."""
    __slots__ = ("sid", "pgrp")

    def __init__(self, sid: int = 0, pgrp: int = 0):
        self.sid = sid      # the session it is the controlling terminal of (0: none)
        self.pgrp = pgrp    # its foreground process group


# -- stopping and continuing ----------------------------------------------------------------

def orphaned(kernel, pgid: int) -> bool:
    """POSIX's orphaned process group: no member has a parent in another group of the
    same session (pid 1's group is, its parent being outside the VM)."""
    for p in kernel.processes.values():
        if p.pgid == pgid and not p.zombie:
            q = p.parent
            if q is not None and q.pgid != pgid and q.sid == p.sid:
                return False
    return True


def stop(task, signo: int) -> None:
    """The default action of a stop signal, at task's delivery point."""
    proc = task.process
    kernel = task.kernel
    if proc.pid == 1:
        return   # as a container's init: nothing in the VM could continue it
    if signo != abi.SIGSTOP and orphaned(kernel, proc.pgid):
        return   # Linux discards terminal stop signals to an orphaned group
    if not proc.stopped:
        proc.stopped, proc.stop_signal, proc.stop_report, proc.cont_report = True, signo, True, False
        for t in proc.tasks.values():
            if t is not task:
                t.interrupt()
        _tell_parent(kernel, proc, abi.CLD_STOPPED, signo)
    wait_while_stopped(task)


def wait_while_stopped(task) -> None:
    proc = task.process
    kill = 1 << (abi.SIGKILL - 1)
    while proc.stopped and not (proc.exiting or task.killed or (task.pending | proc.pending) & kill):
        task.cond.wait()


def sent(kernel, proc, signo: int) -> None:
    """signals.send calls this first for SIGCONT and the stop signals: a stop signal
    cancels a pending SIGCONT; SIGCONT (whatever its action) cancels pending stops and
    continues a stopped process."""
    if signo == abi.SIGCONT:
        proc.pending &= ~_STOP_MASK
        for t in proc.tasks.values():
            t.pending &= ~_STOP_MASK
        if proc.stopped:
            proc.stopped, proc.stop_report, proc.cont_report = False, False, True
            for t in proc.tasks.values():
                t.recompute_pending()
                t.wake()
            _tell_parent(kernel, proc, abi.CLD_CONTINUED, abi.SIGCONT)
    else:
        proc.pending &= ~_CONT_BIT
        proc.siginfo.pop(abi.SIGCONT, None)


def _tell_parent(kernel, child, code: int, signo: int) -> None:
    from umiak.kernel.signals import make_siginfo, send
    parent = child.parent
    if parent is None or parent.zombie:
        return
    flags = parent.sigactions.get(abi.SIGCHLD, (abi.SIG_DFL, 0, 0, 0))[1]
    if not flags & abi.SA_NOCLDSTOP:
        extra = abi.SIGCHLD_INFO.pack(child.pid, child.creds.uid, signo, 0, 0)
        send(kernel, parent, abi.SIGCHLD, make_siginfo(abi.SIGCHLD, code, extra=extra))
    for t in parent.tasks.values():
        t.wake()


# -- terminals -------------------------------------------------------------------------------

def host_terminal(kernel, fd: int) -> Terminal:
    """The Terminal of a host tty (by device), pid 1's session's controlling terminal."""
    import os
    try:
        key = os.fstat(fd).st_rdev
    except OSError:
        key = -1
    term = kernel.terminals.get(key)
    if term is None:
        init = kernel.processes.get(1)
        sid, pgrp = (init.sid, init.pgid) if init is not None else (1, 1)
        term = kernel.terminals[key] = Terminal(sid, pgrp)
    return term


def foreground_group(kernel) -> int | None:
    """The foreground group of pid 1's controlling terminal, if it has one in the VM."""
    init = kernel.processes.get(1)
    for term in list(kernel.terminals.values()):
        if init is not None and term.sid == init.sid and term.pgrp:
            return term.pgrp
    return None


def _blocked_or_ignored(task, signo: int) -> bool:
    handler = task.process.sigactions.get(signo, (abi.SIG_DFL,))[0]
    return handler == abi.SIG_IGN or bool(task.sigmask & (1 << (signo - 1)))


def _background_check(task, term: Terminal, signo: int) -> None:
    """Linux's tty_check_change / job-control read check: a background process of the
    terminal's session gets signo sent to its group and the call restarts after it."""
    from umiak.kernel.signals import make_siginfo, send
    proc = task.process
    if term.sid != proc.sid or not term.pgrp or proc.pgid == term.pgrp:
        return
    if _blocked_or_ignored(task, signo):
        if signo == abi.SIGTTIN:
            raise SyscallError(EIO)
        return
    if orphaned(task.kernel, proc.pgid):
        raise SyscallError(EIO)
    info = make_siginfo(signo, abi.SI_KERNEL)
    for p in list(task.kernel.processes.values()):
        if p.pgid == proc.pgid and not p.zombie:
            send(task.kernel, p, signo, info)
    raise SyscallError(ERESTARTSYS)


def check_read(task, term: Terminal) -> None:
    """read(2) of a terminal: SIGTTIN for a background group (EIO if it cannot stop)."""
    _background_check(task, term, abi.SIGTTIN)


def check_change(task, term: Terminal) -> None:
    """A write with TOSTOP set, tcsetattr, tcflush or tcsetpgrp of a terminal: SIGTTOU for
    a background group; it goes through when SIGTTOU is ignored or blocked (Linux's
    tty_check_change)."""
    _background_check(task, term, abi.SIGTTOU)


def ioctl(task, term: Terminal, req: int, arg: int) -> bool:
    """The job-control ioctls of a terminal; False for any other request."""
    proc = task.process
    mine = term.sid == proc.sid and term.sid != 0
    if req == abi.TIOCGPGRP:
        if not mine:
            raise SyscallError(ENOTTY)
        task.mm.write_u32(arg, term.pgrp)
        return True
    if req == abi.TIOCGSID:
        if not mine:
            raise SyscallError(ENOTTY)
        task.mm.write_u32(arg, term.sid)
        return True
    if req == abi.TIOCSPGRP:
        if not mine:
            raise SyscallError(ENOTTY)
        pgrp = abi.s32(task.mm.read_u32(arg))
        _background_check(task, term, abi.SIGTTOU)
        if pgrp < 0:
            raise SyscallError(EINVAL)
        members = [p for p in task.kernel.processes.values() if p.pgid == pgrp and not p.zombie]
        if not members:
            raise SyscallError(ESRCH)
        if any(p.sid != proc.sid for p in members):
            raise SyscallError(EPERM)
        term.pgrp = pgrp
        return True
    if req == abi.TIOCSCTTY:
        if mine:
            return True
        owner_alive = term.sid and any(p.sid == term.sid and not p.zombie for p in task.kernel.processes.values())
        if proc.sid != proc.pid or (owner_alive and not (arg == 1 and proc.creds.capable(21))):
            raise SyscallError(EPERM)   # not a session leader, or the terminal is another's (CAP_SYS_ADMIN steals)
        term.sid, term.pgrp = proc.sid, proc.pgid
        return True
    if req == abi.TIOCNOTTY:
        if not mine:
            raise SyscallError(ENOTTY)
        if proc.sid == proc.pid:   # the session leader gives it up: its foreground group hears of it
            from umiak.kernel.signals import make_siginfo, send
            fg = term.pgrp
            term.sid = term.pgrp = 0
            for p in list(task.kernel.processes.values()):
                if p.pgid == fg and not p.zombie:
                    send(task.kernel, p, abi.SIGHUP, make_siginfo(abi.SIGHUP, abi.SI_KERNEL))
                    send(task.kernel, p, abi.SIGCONT, make_siginfo(abi.SIGCONT, abi.SI_KERNEL))
        return True
    return False
