"""Signal delivery: pending sets, the x86-64 rt_sigframe, sigreturn, default actions.

A signal is made pending on a task (thread-directed) or on the process, the
chosen task is woken (its wait is interrupted, its vCPU kicked out of the
guest), and it is delivered at the task's next safe point: after a syscall,
after a fault, or after a kick. Stop signals are treated as ignore: nothing
outside the VM could continue it.
"""

import struct

from umiak.kernel import abi
from umiak.kernel.abi import SI_KERNEL, SIGINFO_SIZE, SS_AUTODISARM, SS_DISABLE, SS_ONSTACK
from umiak.kernel.errors import ExitGroup, SyscallError
from umiak.platform.base import R8, R9, R10, R11, R12, R13, R14, R15, RAX, RBP, RBX, RCX, RDI, RDX, RFLAGS, RIP, RSI, RSP

FIX_EFLAGS = 0x50DD5   # AC OF DF TF SF ZF AF PF CF RF
UC_FP_XSTATE, UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS = 1, 2, 4
FP_XSTATE_MAGIC1, FP_XSTATE_MAGIC2 = 0x46505853, 0x46505845
_STOP = frozenset({abi.SIGSTOP, abi.SIGTSTP, abi.SIGTTIN, abi.SIGTTOU})

# struct sigcontext order of the general registers
_SC_ORDER = (R8, R9, R10, R11, R12, R13, R14, R15, RDI, RSI, RBP, RBX, RDX, RAX, RCX, RSP, RIP, RFLAGS)
_SIGCONTEXT = struct.Struct("<18QHHHHQQQQQ64x")   # ... cs gs fs ss err trapno oldmask cr2 fpstate reserved
_UC_HEAD = struct.Struct("<QQQi4xQ")               # uc_flags, uc_link, ss_sp, ss_flags, ss_size


def bit(signo: int) -> int:
    return 1 << (signo - 1)


def make_siginfo(signo: int, code: int, pid: int = 0, uid: int = 0, addr: int | None = None,
                 extra: bytes = b"") -> bytes:
    """struct siginfo: kill-style (pid, uid), fault-style (addr) or raw extra union bytes."""
    head = struct.pack("<iii4x", signo, 0, code)
    if addr is not None:
        body = struct.pack("<Q", addr)
    elif extra:
        body = extra
    else:
        body = struct.pack("<iI", pid, uid)
    return (head + body).ljust(SIGINFO_SIZE, b"\0")


def action(process, signo: int) -> tuple[int, int, int, int]:
    return process.sigactions.get(signo, (abi.SIG_DFL, 0, 0, 0))


def is_ignored(process, signo: int) -> bool:
    handler = action(process, signo)[0]
    if handler == abi.SIG_IGN:
        return signo not in (abi.SIGKILL, abi.SIGSTOP)
    return handler == abi.SIG_DFL and signo in abi.IGNORED_BY_DEFAULT


def send(kernel, process, signo: int, info: bytes, task=None) -> None:
    """Make signo pending (on task, or on the process) and wake whoever can take it.

    Caller holds kernel.lock."""
    if signo == abi.SIGCONT or signo in _STOP:
        from umiak.kernel.jobctl import sent
        sent(kernel, process, signo)
    if signo == 0:
        return
    b = bit(signo)
    if is_ignored(process, signo):
        # Blocked signals are never ignored (Linux's sig_ignored): the action may change
        # before they are unblocked, and a signalfd or sigwait may take them (SIGCHLD).
        blockers = [task] if task is not None else process.tasks.values()
        if not any(t.sigmask & b for t in blockers):
            return
    if task is not None:
        if not (task.pending & b and signo < 32):
            task.pending |= b
            task.siginfo.setdefault(signo, []).append(info)
        targets = [task]
    else:
        if not (process.pending & b and signo < 32):
            process.pending |= b
            process.siginfo.setdefault(signo, []).append(info)
        targets = [t for t in process.tasks.values() if not t.sigmask & b] or list(process.tasks.values())[:1]
    if signo == abi.SIGKILL or (action(process, signo)[0] == abi.SIG_DFL and signo not in _STOP):
        # A fatal default action: any thread may act on it at once.
        targets = list(process.tasks.values())
    for t in targets[:1] if task is None and len(targets) > 1 and signo != abi.SIGKILL else targets:
        t.interrupt()
    for sf in process.signalfds:
        if sf.mask & b:
            sf.waitq.notify()


def fatal_pending(task) -> bool:
    """A signal that will end the process is pending (SIGKILL, or a deliverable one whose
    action is the default termination). fork checks this as Linux's copy_process does, so
    a child is never made after its parent's group was killed: it would escape the kill."""
    proc = task.process
    if proc.exiting or task.killed:
        return True
    pending = task.pending | proc.pending
    if pending & bit(abi.SIGKILL):
        return True
    ready = pending & ~task.sigmask
    while ready:
        signo = (ready & -ready).bit_length()
        ready &= ready - 1
        if action(proc, signo)[0] == abi.SIG_DFL and signo not in abi.IGNORED_BY_DEFAULT \
                and signo not in _STOP:
            return True
    return False


def next_signal(task) -> tuple[int, bytes] | None:
    """Dequeue the lowest-numbered deliverable signal. Caller holds kernel.lock."""
    proc = task.process
    ready = (task.pending | proc.pending) & ~task.sigmask
    ready |= (task.pending | proc.pending) & (bit(abi.SIGKILL) | bit(abi.SIGSTOP))
    if not ready:
        return None
    signo = (ready & -ready).bit_length()
    b = bit(signo)
    owner_pending, owner_info = (task, task.siginfo) if task.pending & b else (proc, proc.siginfo)
    infos = owner_info.get(signo) or [make_siginfo(signo, SI_KERNEL)]
    info = infos.pop(0)
    if not infos:
        owner_info.pop(signo, None)
        owner_pending.pending &= ~b
    return signo, info


def deliver(task) -> None:
    """Deliver every deliverable pending signal to task (user state is at a safe point)."""
    kernel = task.kernel
    with kernel.lock:   # frames are written to guest memory other threads may be remapping
        _deliver_locked(task, kernel)


def _deliver_locked(task, kernel) -> None:
    while True:
        if task.process.stopped:
            from umiak.kernel.jobctl import wait_while_stopped
            wait_while_stopped(task)   # another thread took a stop signal; SIGCONT or SIGKILL ends this
        got = next_signal(task)
        task.recompute_pending()
        if got is None:
            if task.restart_nr is not None:   # interrupted by a signal that was not handled
                _restart(task)
            if task.saved_sigmask is not None:
                task.set_sigmask(task.saved_sigmask)
                task.saved_sigmask = None
            return
        signo, info = got
        handler, flags, restorer, mask = action(task.process, signo)
        if handler == abi.SIG_IGN and signo != abi.SIGKILL:
            continue
        if handler == abi.SIG_DFL or signo == abi.SIGKILL:
            if signo in abi.IGNORED_BY_DEFAULT:
                continue
            if signo in _STOP:
                if kernel.tracer is not None:
                    kernel.tracer.signal(task, signo, struct.unpack_from("<i", info, 8)[0], 0, info)
                from umiak.kernel.jobctl import stop
                stop(task, signo)
                continue
            if kernel.tracer is not None:
                kernel.tracer.signal(task, signo, struct.unpack_from("<i", info, 8)[0], 0, info)
            raise ExitGroup(128 + signo, signo)
        if kernel.tracer is not None:
            kernel.tracer.signal(task, signo, struct.unpack_from("<i", info, 8)[0],
                                 struct.unpack_from("<Q", info, 16)[0], info)
        if task.restart_nr is not None:
            if flags & abi.SA_RESTART and not task.restart_nohand or task.restart_always:
                _restart(task)
            task.restart_nr = task.restart_block = None   # a handler ran: EINTR, nothing continues
            task.restart_always = False
        try:
            setup_frame(task, signo, info, handler, flags, restorer, mask)
        except SyscallError:   # the stack cannot take the frame
            force_sigsegv(task, signo)


def force_sig(task, signo: int, info: bytes) -> None:
    """Linux's force_sig_info: a signal the kernel raises for the task's own doing. If it
    is blocked or ignored it is unblocked and its action reset to default (so it kills);
    it is delivered at the task's next safe point. Caller holds kernel.lock."""
    proc = task.process
    b = bit(signo)
    handler = action(proc, signo)[0]
    blocked = bool(task.sigmask & b)
    if blocked or handler == abi.SIG_IGN:
        proc.sigactions[signo] = (abi.SIG_DFL, 0, 0, 0)
        if blocked:
            task.set_sigmask(task.sigmask & ~b)
    send(task.kernel, proc, signo, info, task)


def force_sigsegv(task, signo: int) -> None:
    """Linux's force_sigsegv: a signal frame could not be written (or, for sigreturn,
    read back). SIGSEGV follows; when SIGSEGV itself was the signal that could not be
    delivered, its handler is reset so that the program dies of it."""
    if signo == abi.SIGSEGV:
        task.process.sigactions[abi.SIGSEGV] = (abi.SIG_DFL, 0, 0, 0)
    force_sig(task, abi.SIGSEGV, make_siginfo(abi.SIGSEGV, SI_KERNEL, addr=0))


def _restart(task) -> None:
    """Re-execute the interrupted `syscall` instruction with its number restored."""
    regs = task.vcpu.get_regs()
    regs[RIP] -= 2
    regs[RAX] = task.restart_nr
    task.vcpu.set_regs(regs)
    task.restart_nr = None
    task.restart_always = False


def setup_frame(task, signo: int, info: bytes, handler: int, flags: int, restorer: int, mask: int) -> None:
    """Build an rt_sigframe on the user (or alternate) stack and enter the handler."""
    vcpu, mm = task.vcpu, task.mm
    regs = vcpu.get_regs()
    sp = regs[RSP]
    alt_sp, alt_flags, alt_size = task.sigaltstack
    on_alt = not alt_flags & SS_DISABLE and alt_sp <= sp < alt_sp + alt_size
    if flags & abi.SA_ONSTACK and not alt_flags & SS_DISABLE and not on_alt:
        sp = alt_sp + alt_size
        if alt_flags & SS_AUTODISARM:
            task.sigaltstack = (0, SS_DISABLE, 0)
    else:
        sp -= 128  # the red zone
    xsave = vcpu.get_fpu()
    fp_size = len(xsave) + 4
    sp = (sp - fp_size) & ~63
    fpstate = sp
    frame_size = 8 + _UC_HEAD.size + _SIGCONTEXT.size + 8 + SIGINFO_SIZE
    sp = ((sp - frame_size) & ~15) - 8   # as on function entry: (rsp + 8) % 16 == 0
    uc = sp + 8
    sc = uc + _UC_HEAD.size
    info_addr = sc + _SIGCONTEXT.size + 8
    fault_addr = struct.unpack_from("<Q", info, 16)[0] if signo in (abi.SIGSEGV, abi.SIGBUS) else 0
    # The xsave image with Linux's software-reserved bytes, so libc may inspect it.
    xs = bytearray(xsave)
    if len(xs) >= 512:
        struct.pack_into("<IIQI", xs, 464, FP_XSTATE_MAGIC1, fp_size, _xfeatures(xs), len(xs))
    mm.write(fpstate, bytes(xs) + struct.pack("<I", FP_XSTATE_MAGIC2))
    scvals = [regs[i] for i in _SC_ORDER]
    frame_mask = task.sigmask if task.saved_sigmask is None else task.saved_sigmask
    task.saved_sigmask = None
    mm.write(sc, _SIGCONTEXT.pack(*scvals, 0x33, 0, 0, 0x2B, task.fault_error, task.fault_trapno,
                                  frame_mask, fault_addr, fpstate))
    mm.write(uc, _UC_HEAD.pack(UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS, 0,
                               alt_sp, (SS_ONSTACK if on_alt else 0) | (alt_flags & SS_DISABLE), alt_size))
    mm.write_u64(sc + _SIGCONTEXT.size, frame_mask)  # uc_sigmask
    mm.write(info_addr, info)
    mm.write_u64(sp, restorer)
    new = list(regs)
    new[RDI], new[RSI], new[RDX], new[RAX] = signo, info_addr, uc, 0
    new[RSP], new[RIP] = sp, handler
    new[RFLAGS] = regs[RFLAGS] & ~(0x100 | 0x400 | 0x40000)  # TF, DF, AC
    vcpu.set_regs(new)
    newmask = task.sigmask | mask
    if not flags & abi.SA_NODEFER:
        newmask |= bit(signo)
    task.set_sigmask(newmask)
    if flags & abi.SA_RESETHAND:
        task.process.sigactions[signo] = (abi.SIG_DFL, 0, 0, 0)


def _xfeatures(xs: bytearray) -> int:
    return struct.unpack_from("<Q", xs, 512)[0] if len(xs) >= 520 else 3


def sigreturn(task) -> bool:
    """rt_sigreturn(2): restore registers, mask, FPU state and the alternate stack.

    The whole frame is read before anything changes. False when it cannot be read:
    the registers are left as they are and SIGSEGV is forced, as on Linux."""
    vcpu, mm = task.vcpu, task.mm
    regs = vcpu.get_regs()
    uc = regs[RSP]  # the restorer's `syscall` runs with rsp = frame + 8 = &uc
    sc = uc + _UC_HEAD.size
    try:
        vals = _SIGCONTEXT.unpack(mm.read(sc, _SIGCONTEXT.size))
        fpstate = vals[26]
        fpu = mm.read(fpstate, len(vcpu.get_fpu())) if fpstate else None
        mask = mm.read_u64(sc + _SIGCONTEXT.size)
        _, ss_sp, ss_flags, ss_size = _UC_HEAD.unpack(mm.read(uc, _UC_HEAD.size))[1:]
    except SyscallError:
        force_sigsegv(task, 0)
        return False
    new = list(regs)
    for i, idx in enumerate(_SC_ORDER):
        new[idx] = vals[i]
    # Only the flags user code may change come from the frame (Linux's FIX_EFLAGS).
    new[RFLAGS] = (regs[RFLAGS] & ~FIX_EFLAGS) | (new[RFLAGS] & FIX_EFLAGS) | 2
    if fpu is not None:
        vcpu.set_fpu(fpu)
    if not ss_flags & SS_ONSTACK:
        task.sigaltstack = (ss_sp, ss_flags & ~SS_ONSTACK, ss_size) if ss_size else task.sigaltstack
    vcpu.set_regs(new)
    task.set_sigmask(mask)
    return True
