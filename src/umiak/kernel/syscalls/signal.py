"""Signal syscalls. Actions and masks are recorded; delivery of asynchronous signals
comes with threads (issue 4). A fault with no handler ends the program as Linux would."""

from umiak.kernel import abi
from umiak.kernel.abi import s32
from umiak.kernel.errors import EINVAL, ESRCH, ExitGroup, SyscallError

_UNBLOCKABLE = (1 << (abi.SIGKILL - 1)) | (1 << (abi.SIGSTOP - 1))


def sys_rt_sigaction(task, signo, act, oldact, sigsetsize):
    """rt_sigaction(2)"""
    signo = s32(signo)
    if sigsetsize != 8:
        raise SyscallError(EINVAL)
    if not 1 <= signo <= abi.NSIG or (act and signo in (abi.SIGKILL, abi.SIGSTOP)):
        raise SyscallError(EINVAL)
    actions = task.process.sigactions
    new = task.mm.read_struct(act, abi.SIGACTION) if act else None
    if oldact:
        task.mm.write_struct(oldact, abi.SIGACTION, *actions.get(signo, (0, 0, 0, 0)))
    if new is not None:
        handler, flags, restorer, mask = new
        actions[signo] = (handler, flags, restorer, mask & ~_UNBLOCKABLE)
    return 0


def sys_rt_sigprocmask(task, how, nset, oset, sigsetsize):
    """rt_sigprocmask(2)"""
    if sigsetsize != 8:
        raise SyscallError(EINVAL)
    how = s32(how)
    old = task.sigmask
    if nset:
        s = task.mm.read_u64(nset)
        if how == abi.SIG_BLOCK:
            mask = old | s
        elif how == abi.SIG_UNBLOCK:
            mask = old & ~s
        elif how == abi.SIG_SETMASK:
            mask = s
        else:
            raise SyscallError(EINVAL)
        task.sigmask = mask & ~_UNBLOCKABLE
    if oset:
        task.mm.write_u64(oset, old)
    return 0


def sys_rt_sigpending(task, set_ptr, sigsetsize):
    """rt_sigpending(2): nothing is ever pending before delivery exists."""
    if sigsetsize > 8:
        raise SyscallError(EINVAL)
    task.mm.write(set_ptr, bytes(sigsetsize))
    return 0


def sys_sigaltstack(task, ss, old_ss):
    """sigaltstack(2)"""
    import struct
    st = struct.Struct("<QiiQ")
    if old_ss:
        sp, flags, size = task.sigaltstack
        task.mm.write(old_ss, st.pack(sp, flags, 0, size))
    if ss:
        sp, flags, _pad, size = task.mm.read_struct(ss, st)
        SS_DISABLE, SS_AUTODISARM = 2, 1 << 31
        if flags & ~(SS_DISABLE | SS_AUTODISARM):
            raise SyscallError(EINVAL)
        if not flags & SS_DISABLE and size < 2048:
            from umiak.kernel.errors import ENOMEM
            raise SyscallError(ENOMEM)
        task.sigaltstack = (sp, flags, size)
    return 0


def _send(task, signo: int) -> int:
    if signo == 0:
        return 0
    if not 1 <= signo <= abi.NSIG:
        raise SyscallError(EINVAL)
    handler = task.process.sigactions.get(signo, (0,))[0]
    if handler == abi.SIG_IGN or (handler == abi.SIG_DFL and signo in abi.IGNORED_BY_DEFAULT):
        return 0
    if handler == abi.SIG_DFL or signo in (abi.SIGKILL, abi.SIGSTOP):
        if signo in (abi.SIGSTOP, abi.SIGTSTP, abi.SIGTTIN, abi.SIGTTOU):
            return 0  # stopping is treated as ignoring: nothing can continue the VM
        if task.kernel.tracer is not None:
            task.kernel.tracer.signal(task, signo, 0, 0)
        raise ExitGroup(128 + signo, signo)
    task.kernel.warn(f"signal {signo} to a handler is not delivered yet")
    return 0


def sys_kill(task, pid, signo):
    """kill(2): only the program itself exists in the VM."""
    pid = s32(pid)
    if pid not in (0, -1, task.process.pid, -task.process.pid):
        raise SyscallError(ESRCH)
    return _send(task, s32(signo))


def sys_tgkill(task, tgid, tid, signo):
    """tgkill(2)"""
    if s32(tgid) != task.process.pid or s32(tid) not in task.process.tasks:
        raise SyscallError(ESRCH if s32(tgid) > 0 and s32(tid) > 0 else EINVAL)
    return _send(task, s32(signo))


def sys_tkill(task, tid, signo):
    """tkill(2)"""
    if s32(tid) not in task.process.tasks:
        raise SyscallError(ESRCH if s32(tid) > 0 else EINVAL)
    return _send(task, s32(signo))


def sys_rt_sigreturn(task):
    """rt_sigreturn(2): without delivered signals there is no frame to return from."""
    task.kernel.fatal_signal(task, abi.SIGSEGV, 0x80, 0, task.vcpu.get_regs()[16])
