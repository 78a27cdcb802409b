"""Task creation: clone(2), clone3(2), fork(2) and vfork(2).

A clone with CLONE_THREAD adds a task to the caller's process. Any other makes a
new process: without CLONE_VM its address space is the caller's copied on write
(AddressSpace.fork); with CLONE_VM (vfork, posix_spawn) it runs on the caller's
very address space, and with CLONE_VFORK the caller sleeps until the child execs
or exits. Only the calling thread exists in the child.
"""

from umiak.kernel import abi
from umiak.kernel.abi import (CLONE_ARGS, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_DETACHED, CLONE_FILES,
                              CLONE_FS, CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID,
                              CLONE_NEWUSER, CLONE_NEWUTS, CLONE_PARENT, CLONE_PARENT_SETTID, CLONE_PIDFD,
                              CLONE_SETTLS, CLONE_SIGHAND, CLONE_THREAD, CLONE_VFORK, CLONE_VM)
from umiak.kernel.errors import EAGAIN, EINVAL, ENOMEM, ERESTARTSYS, GuestOutOfMemory, SyscallError
from umiak.platform.base import RAX, RIP, RSP

# Namespaces: the VM is one of each already.
_NEW_NAMESPACES = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID
                   | CLONE_NEWNET)


def _clone(task, flags: int, stack: int, parent_tid: int, child_tid: int, tls: int,
           exit_signal: int = 0, pidfd_at: int = 0) -> int:
    kernel = task.kernel
    if flags & CLONE_THREAD and not flags & CLONE_SIGHAND:
        raise SyscallError(EINVAL)
    if flags & CLONE_SIGHAND and not flags & CLONE_VM:
        raise SyscallError(EINVAL)
    if flags & CLONE_NEWNS and flags & CLONE_FS:
        raise SyscallError(EINVAL)
    if flags & _NEW_NAMESPACES:
        raise SyscallError(EINVAL)
    if flags & CLONE_PIDFD and flags & (CLONE_THREAD | CLONE_DETACHED):
        raise SyscallError(EINVAL)
    if task.has_signal:
        from umiak.kernel.signals import fatal_pending
        if fatal_pending(task):
            raise SyscallError(ERESTARTSYS)   # the signal ends the caller first: no child escapes it
    if len(kernel.tasks) >= kernel.options.max_threads:
        raise SyscallError(EAGAIN)
    creds = task.process.creds
    if creds.uid != 0:
        # RLIMIT_NPROC counts the tasks of the real uid; root is exempt, as on Linux.
        limit = task.process.rlimits.get(abi.RLIMIT_NPROC, [abi.RLIM_INFINITY])[0]
        if sum(1 for t in kernel.tasks.values() if t.process.creds.uid == creds.uid) >= limit:
            raise SyscallError(EAGAIN)
    if not flags & CLONE_THREAD:
        return _new_process(task, flags, stack, parent_tid, child_tid, tls, exit_signal, pidfd_at)
    proc = task.process
    from umiak.kernel.process import Task
    tid = kernel.alloc_pid()
    child = Task(proc, tid)
    try:
        _start_vcpu(task, child, flags, stack, tls, proc.mm)
    except SyscallError:
        del proc.tasks[tid]
        kernel.tasks.pop(tid, None)
        raise
    child.sigmask = task.sigmask
    child.nice, child.ioprio, child.mempolicy = task.nice, task.ioprio, task.mempolicy
    child.comm = task.comm
    if flags & CLONE_PARENT_SETTID:
        task.mm.write_u32(parent_tid, tid)
    if flags & CLONE_CHILD_SETTID:
        task.mm.write_u32(child_tid, tid)
    if flags & CLONE_CHILD_CLEARTID:
        child.clear_child_tid = child_tid
    child.recompute_pending()
    kernel.start_thread(child)
    return tid


def _start_vcpu(task, child, flags: int, stack: int, tls: int, mm) -> None:
    """The child's vCPU: the caller's registers (rax 0, the new stack), FPU and bases."""
    regs = task.vcpu.get_regs()
    regs[RAX] = 0
    if stack:
        regs[RSP] = stack
    try:
        vcpu = task.kernel.platform.create_vcpu(regs[RIP], regs[RSP], mm.platform)
    except Exception:  # noqa: BLE001 - the hypervisor refused another vCPU
        raise SyscallError(EAGAIN) from None
    child.vcpu = vcpu
    vcpu.set_regs(regs)
    vcpu.set_fpu(task.vcpu.get_fpu())
    vcpu.set_fs_base(tls if flags & CLONE_SETTLS else task.vcpu.get_fs_base())
    vcpu.set_gs_base(task.vcpu.get_gs_base())


def _new_process(task, flags: int, stack: int, parent_tid: int, child_tid: int, tls: int,
                 exit_signal: int, pidfd_at: int = 0) -> int:
    """fork, vfork and every clone without CLONE_THREAD."""
    import copy
    from umiak.kernel.files import FdTable
    from umiak.kernel.process import Process, Task
    kernel = task.kernel
    parent = task.process
    if flags & CLONE_VM:
        mm = parent.mm
    else:
        try:
            mm = parent.mm.fork(kernel.platform.new_root())
        except (MemoryError, GuestOutOfMemory):
            raise SyscallError(ENOMEM) from None   # no frames for the page tables (fork.c's ENOMEM)
    if flags & CLONE_FILES:
        fds = parent.fds
    else:
        fds = FdTable(parent.fds.limit)
        for n, f in parent.fds.files.items():
            fds.install_at(n, f, n in parent.fds.cloexec)
    pid = kernel.alloc_pid()
    proc = Process(kernel, pid, mm, fds, parent.cwd)
    proc.umask = parent.umask
    if flags & CLONE_FS:   # one fs_struct: a chdir or umask in either is seen by both
        if parent.fs_peers is None:
            parent.fs_peers = [parent]
        parent.fs_peers.append(proc)
        proc.fs_peers = parent.fs_peers
    proc.exe, proc.comm = parent.exe, parent.comm
    proc.argv, proc.envp, proc.auxv = list(parent.argv), list(parent.envp), list(parent.auxv)
    proc.creds = copy.deepcopy(parent.creds)
    proc.rlimits = {k: list(v) for k, v in parent.rlimits.items()}
    proc.sigactions = parent.sigactions if flags & CLONE_SIGHAND else dict(parent.sigactions)
    proc.pgid, proc.sid = parent.pgid, parent.sid
    proc.child_signal = exit_signal & 0xFF
    real_parent = parent.parent if flags & CLONE_PARENT and parent.parent is not None else parent
    proc.parent, proc.ppid = real_parent, real_parent.pid
    import time
    proc.start_time = time.monotonic()
    child = Task(proc, pid)
    proc.leader = child
    try:
        _start_vcpu(task, child, flags, stack, tls, mm)
    except SyscallError:
        kernel.tasks.pop(pid, None)
        if mm is not parent.mm:
            mm.release()
        if fds is not parent.fds:
            for n in list(fds.files):
                fds.close(n)
        raise
    real_parent.children.append(proc)
    kernel.processes[pid] = proc
    child.sigmask = task.sigmask
    child.nice, child.ioprio, child.mempolicy = task.nice, task.ioprio, task.mempolicy
    child.comm = task.comm
    if not flags & CLONE_VM or flags & CLONE_VFORK:
        child.sigaltstack = task.sigaltstack
    if flags & CLONE_PIDFD:
        from umiak.kernel.syscalls.pidfd import make_pidfd
        task.mm.write_u32(pidfd_at, make_pidfd(task, proc))
    if flags & CLONE_PARENT_SETTID:
        task.mm.write_u32(parent_tid, pid)
    if flags & CLONE_CHILD_SETTID:
        mm.write_u32(child_tid, pid)
    if flags & CLONE_CHILD_CLEARTID:
        child.clear_child_tid = child_tid
    child.recompute_pending()
    if kernel.tracer is not None and hasattr(kernel.tracer, "forked"):
        kernel.tracer.forked(task, child)
    if flags & CLONE_VFORK:
        proc.vfork_parent = task
    kernel.start_thread(child)
    if flags & CLONE_VFORK:
        # Linux's wait_for_vfork_done: only a fatal signal ends the wait.
        task.wait(lambda: proc.vfork_parent is None, interruptible=False)
    return pid


def sys_clone(task, flags, stack, parent_tid, child_tid, tls):
    """clone(2): no namespaces (EINVAL)."""
    if flags & CLONE_PIDFD and flags & CLONE_PARENT_SETTID:
        raise SyscallError(EINVAL)   # both would use parent_tid
    return _clone(task, flags & ~0xFF, stack, parent_tid, child_tid, tls, flags & 0xFF, parent_tid)


def sys_clone3(task, args, size):
    """clone3(2): set_tid and cgroup are refused."""
    if size < 64 or size > 4096:
        raise SyscallError(EINVAL)
    raw = task.mm.read(args, min(size, CLONE_ARGS.size)).ljust(CLONE_ARGS.size, b"\0")
    flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup = \
        CLONE_ARGS.unpack(raw)
    if set_tid or set_tid_size or flags & 0xFF or exit_signal > abi.NSIG:
        raise SyscallError(EINVAL)
    if flags & CLONE_THREAD and exit_signal:
        raise SyscallError(EINVAL)
    sp = stack + stack_size if stack else 0
    return _clone(task, flags, sp, parent_tid, child_tid, tls, exit_signal, pidfd)


def sys_fork(task):
    """fork(2)"""
    return _clone(task, 0, 0, 0, 0, 0, abi.SIGCHLD)


def sys_vfork(task):
    """vfork(2)"""
    return _clone(task, CLONE_VM | CLONE_VFORK, 0, 0, 0, 0, abi.SIGCHLD)
