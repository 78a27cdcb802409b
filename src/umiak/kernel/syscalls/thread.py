"""Task creation: clone(2) and clone3(2).

A clone with CLONE_THREAD adds a task to the caller's process. Any other makes a
new process (umiak.kernel.syscalls.fork, imported then: a kernel configured without
CONFIG_PROCESSES never imports it and answers as CONFIG_PROCESSES_ABSENT says).
"""

from umiak.kernel import abi
from umiak.kernel.abi import (CLONE_ARGS, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_DETACHED, CLONE_FS,
                              CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER,
                              CLONE_NEWUTS, CLONE_PARENT_SETTID, CLONE_PIDFD, CLONE_SETTLS, CLONE_SIGHAND,
                              CLONE_THREAD, CLONE_VM)
from umiak.kernel.errors import EAGAIN, EINVAL, ERESTARTNOINTR, SyscallError
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
        # Linux's copy_process: a signal pending at a clone is handled first, and the call
        # made again after its handler (ERESTARTNOINTR), so no child escapes a signal sent
        # before it existed: a ^C to a shell's group while the shell forks ends the shell
        # first, where a child made anyway would miss it and run on (and the shell, waiting
        # for it, would go on too).
        raise SyscallError(ERESTARTNOINTR)
    if len(kernel.tasks) >= kernel.options.max_threads:
        raise SyscallError(EAGAIN)
    creds = task.process.creds
    if creds.uid != 0:
        # RLIMIT_NPROC counts the tasks of the real uid; root is exempt, as on Linux.
        limit = task.process.rlimits.get(abi.RLIMIT_NPROC, [abi.RLIM_INFINITY])[0]
        if sum(1 for t in kernel.tasks.values() if t.process.creds.uid == creds.uid) >= limit:
            raise SyscallError(EAGAIN)
    if not flags & CLONE_THREAD:
        if kernel.config is not None and not kernel.config.has("PROCESSES"):
            from umiak.config.runtime import no_processes
            raise SyscallError(no_processes(kernel.config, task, "clone"))
        from umiak.kernel.syscalls.fork import new_process
        return new_process(task, flags, stack, parent_tid, child_tid, tls, exit_signal, pidfd_at)
    proc = task.process
    from umiak.kernel.process import Task
    tid = kernel.alloc_pid()
    child = Task(proc, tid)
    try:
        start_vcpu(task, child, flags, stack, tls, proc.mm)
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


def start_vcpu(task, child, flags: int, stack: int, tls: int, mm) -> None:
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
