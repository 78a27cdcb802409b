"""Thread creation: clone(2) and clone3(2) for threads; fork-style clones are refused.

A unikernel runs one program, so clone without CLONE_VM|CLONE_THREAD (fork,
vfork, posix_spawn) returns ENOSYS; glibc reports that to the program.
"""

from umiak.kernel.abi import (CLONE_ARGS, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_PARENT_SETTID,
                              CLONE_PIDFD, CLONE_SETTLS, CLONE_SIGHAND, CLONE_THREAD, CLONE_VM)
from umiak.kernel.errors import EAGAIN, EINVAL, ENOSYS, SyscallError
from umiak.platform.base import RAX, RSP


def _clone(task, flags: int, stack: int, parent_tid: int, child_tid: int, tls: int) -> int:
    kernel = task.kernel
    if not flags & CLONE_THREAD or not flags & CLONE_VM:
        raise SyscallError(ENOSYS)
    if not flags & CLONE_SIGHAND:
        raise SyscallError(EINVAL)
    proc = task.process
    if len(proc.tasks) >= kernel.options.max_threads:
        raise SyscallError(EAGAIN)
    from umiak.kernel.process import Task
    tid = kernel.next_tid
    kernel.next_tid += 1
    child = Task(proc, tid)
    regs = task.vcpu.get_regs()
    regs[RAX] = 0
    if stack:
        regs[RSP] = stack
    try:
        vcpu = kernel.platform.create_vcpu(regs[16], regs[RSP])
    except Exception:  # noqa: BLE001 - the hypervisor refused another vCPU
        del proc.tasks[tid]
        raise SyscallError(EAGAIN) from None
    child.vcpu = vcpu
    vcpu.set_regs(regs)
    vcpu.set_fpu(task.vcpu.get_fpu())
    vcpu.set_fs_base(tls if flags & CLONE_SETTLS else task.vcpu.get_fs_base())
    vcpu.set_gs_base(task.vcpu.get_gs_base())
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


def sys_clone(task, flags, stack, parent_tid, child_tid, tls):
    """clone(2): threads only (see the module docstring)."""
    return _clone(task, flags & ~0xFF, stack, parent_tid, child_tid, tls)


def sys_clone3(task, args, size):
    """clone3(2): threads only; set_tid and cgroup are refused."""
    if size < 64 or size > 4096:
        raise SyscallError(EINVAL)
    raw = task.mm.read(args, min(size, CLONE_ARGS.size)).ljust(CLONE_ARGS.size, b"\0")
    flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup = \
        CLONE_ARGS.unpack(raw)
    if set_tid or set_tid_size or flags & CLONE_PIDFD:
        raise SyscallError(EINVAL)
    sp = stack + stack_size if stack else 0
    return _clone(task, flags, sp, parent_tid, child_tid, tls)


def sys_fork(task):
    """fork(2): one program per VM; ENOSYS."""
    raise SyscallError(ENOSYS)


def sys_vfork(task):
    """vfork(2): one program per VM; ENOSYS."""
    raise SyscallError(ENOSYS)
