"""Signal syscalls: actions, masks, sending, waiting; delivery lives in kernel/signals.py."""

from umiak.kernel import abi
from umiak.kernel.abi import MINSIGSTKSZ, SI_TKILL, SI_USER, SS_AUTODISARM, SS_DISABLE, STACK_T, s32
from umiak.kernel.errors import EAGAIN, EINTR, EINVAL, ENOMEM, EPERM, ERESTARTNOHAND, ESRCH, SyscallError

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
        if handler not in (abi.SIG_DFL, abi.SIG_IGN):
            task.kernel.platform.precise_interrupts()   # a handler may resume the program after a kick
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
        task.set_sigmask(mask & ~_UNBLOCKABLE)
    if oset:
        task.mm.write_u64(oset, old)
    return 0


def sys_rt_sigpending(task, set_ptr, sigsetsize):
    """rt_sigpending(2)"""
    if sigsetsize > 8:
        raise SyscallError(EINVAL)
    pend = (task.pending | task.process.pending) & task.sigmask
    task.mm.write(set_ptr, pend.to_bytes(8, "little")[:sigsetsize])
    return 0


def sys_sigaltstack(task, ss, old_ss):
    """sigaltstack(2)"""
    if old_ss:
        sp, flags, size = task.sigaltstack
        task.mm.write(old_ss, STACK_T.pack(sp, flags, size))
    if ss:
        sp, flags, size = task.mm.read_struct(ss, STACK_T)
        if flags & ~(SS_DISABLE | SS_AUTODISARM):
            raise SyscallError(EINVAL)
        if not flags & SS_DISABLE and size < MINSIGSTKSZ:
            raise SyscallError(ENOMEM)
        task.sigaltstack = (sp, flags, size)
    return 0


def _send(task, signo: int, target=None, process=None) -> int:
    from umiak.kernel.signals import make_siginfo, send
    if not 0 <= signo <= abi.NSIG:
        raise SyscallError(EINVAL)
    if signo == 0:
        return 0
    code = SI_USER if target is None else SI_TKILL
    info = make_siginfo(signo, code, pid=task.process.pid, uid=task.process.creds.uid)
    proc = target.process if target is not None else (process or task.process)
    if not proc.zombie:
        send(task.kernel, proc, signo, info, target)
    return 0


def _may_signal(task, proc) -> bool:
    """Linux's kill_ok_by_cred (no saved ids here: the saved uid is the effective one)."""
    c, t = task.process.creds, proc.creds
    return c.euid == 0 or bool({c.uid, c.euid} & {t.uid, t.euid})


def _send_each(task, signo: int, procs) -> int:
    """kill(2) to many: success when any was signalled, else EPERM (or ESRCH for none)."""
    sent = denied = False
    for p in procs:
        if _may_signal(task, p):
            _send(task, signo, process=p)
            sent = True
        else:
            denied = True
    if sent:
        return 0
    raise SyscallError(EPERM if denied else ESRCH)


def sys_kill(task, pid, signo):
    """kill(2): within the VM's processes only; kill(-1) spares pid 1 and the caller, as in
    a PID namespace. pid 1 is not protected from its own default actions (as a program
    that is not a namespace's init)."""
    pid, signo = s32(pid), s32(signo)
    if not 0 <= signo <= abi.NSIG:
        raise SyscallError(EINVAL)
    kernel = task.kernel
    if pid > 0:
        t = kernel.tasks.get(pid)
        proc = t.process if t is not None else kernel.processes.get(pid)
        if proc is None:
            raise SyscallError(ESRCH)
        return _send_each(task, signo, [proc])
    if pid == -1:
        return _send_each(task, signo, [p for p in list(kernel.processes.values())
                                        if p.pid > 1 and p is not task.process and not p.zombie])
    if pid == -0x80000000:
        raise SyscallError(ESRCH)
    pgid = task.process.pgid if pid == 0 else -pid
    return _send_each(task, signo, [p for p in list(kernel.processes.values()) if p.pgid == pgid])


def _thread(task, tid: int):
    t = task.kernel.tasks.get(tid)
    if t is None:
        raise SyscallError(ESRCH if tid > 0 else EINVAL)
    return t


def sys_tgkill(task, tgid, tid, signo):
    """tgkill(2)"""
    if s32(tgid) <= 0 or s32(tid) <= 0:
        raise SyscallError(EINVAL)
    t = _thread(task, s32(tid))
    if t.process.pid != s32(tgid):
        raise SyscallError(ESRCH)
    if not _may_signal(task, t.process):
        raise SyscallError(EPERM)
    return _send(task, s32(signo), t)


def sys_tkill(task, tid, signo):
    """tkill(2)"""
    t = _thread(task, s32(tid))
    if not _may_signal(task, t.process):
        raise SyscallError(EPERM)
    return _send(task, s32(signo), t)


def sys_rt_sigreturn(task):
    """rt_sigreturn(2): a frame that cannot be read is SIGSEGV (the call returns 0, as Linux's)."""
    from umiak.kernel.kernel import REGS_SET
    from umiak.kernel.signals import sigreturn
    return REGS_SET if sigreturn(task) else 0


def sys_rt_sigsuspend(task, mask, sigsetsize):
    """rt_sigsuspend(2): wait for a signal with a temporary mask; always EINTR."""
    if sigsetsize != 8:
        raise SyscallError(EINVAL)
    new = task.mm.read_u64(mask)
    old = task.sigmask
    task.set_sigmask(new)
    try:
        task.wait(lambda: False)
    except SyscallError:
        pass
    # The handler runs with the temporary mask; its frame holds the old one.
    task.saved_sigmask = old
    raise SyscallError(EINTR)


def sys_pause(task):
    """pause(2): returns only when a handler runs (a stop and SIGCONT restart it)."""
    try:
        task.wait(lambda: False)
    except SyscallError:
        pass
    raise SyscallError(ERESTARTNOHAND)


def sys_rt_sigtimedwait(task, uthese, uinfo, uts, sigsetsize):
    """rt_sigtimedwait(2)"""
    from umiak.kernel.signals import bit
    if sigsetsize != 8:
        raise SyscallError(EINVAL)
    want = task.mm.read_u64(uthese) & ~(bit(abi.SIGKILL) | bit(abi.SIGSTOP))
    timeout = None
    if uts:
        sec, nsec = task.mm.read_struct(uts, abi.TIMESPEC)
        if abi.s64(sec) < 0 or not 0 <= nsec < 1_000_000_000:
            raise SyscallError(EINVAL)
        timeout = sec + nsec / 1e9
    proc = task.process

    def ready():
        return bool((task.pending | proc.pending) & want)
    # Signals being waited for are not "deliverable interruptions" of this wait.
    old = task.sigmask
    task.set_sigmask(old | want)
    try:
        if not task.wait(ready, timeout):
            raise SyscallError(EAGAIN)
    finally:
        task.set_sigmask(old)
    pend = (task.pending | proc.pending) & want
    signo = (pend & -pend).bit_length()
    owner = task if task.pending & bit(signo) else proc
    infos = owner.siginfo.get(signo, [])
    info = infos.pop(0) if infos else bytes(abi.SIGINFO_SIZE)
    if not infos:
        owner.siginfo.pop(signo, None)
        owner.pending &= ~bit(signo)
    task.recompute_pending()
    if uinfo:
        task.mm.write(uinfo, info)
    return signo


def _queue(task, signo: int, uinfo, target) -> int:
    """rt_sigqueueinfo/rt_tgsigqueueinfo: the caller's own siginfo (si_signo set to signo); a
    positive si_code or SI_TKILL would impersonate the kernel: EPERM unless sent to itself."""
    from umiak.kernel.signals import send
    if not 1 <= signo <= abi.NSIG:
        raise SyscallError(EINVAL)
    raw = bytearray(task.mm.read(uinfo, abi.SIGINFO_SIZE))
    code = int.from_bytes(raw[8:12], "little", signed=True)
    if (code >= 0 or code == SI_TKILL) and (target or task).process is not task.process:
        raise SyscallError(EPERM)
    raw[0:4] = signo.to_bytes(4, "little")
    send(task.kernel, task.process, signo, bytes(raw), target)
    return 0


def sys_rt_sigqueueinfo(task, pid, sig, uinfo):
    """rt_sigqueueinfo(2) (sigqueue(3)): a signal with data to the process."""
    if s32(pid) not in (task.process.pid,):
        raise SyscallError(ESRCH)
    signo = s32(sig)
    if signo == 0:
        return 0
    return _queue(task, signo, uinfo, None)


def sys_rt_tgsigqueueinfo(task, tgid, tid, sig, uinfo):
    """rt_tgsigqueueinfo(2): the same, to one thread."""
    if s32(tgid) <= 0 or s32(tid) <= 0:
        raise SyscallError(EINVAL)
    if s32(tgid) != task.process.pid:
        raise SyscallError(ESRCH)
    t = _thread(task, s32(tid))
    signo = s32(sig)
    if signo == 0:
        return 0
    return _queue(task, signo, uinfo, t)
