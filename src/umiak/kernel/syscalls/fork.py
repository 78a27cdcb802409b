"""New processes: fork(2), vfork(2) and every clone without CLONE_THREAD.

Without CLONE_VM the child's address space is the caller's copied on write
(AddressSpace.fork); with CLONE_VM (vfork, posix_spawn) it runs on the caller's
very address space, and with CLONE_VFORK the caller sleeps until the child execs
or exits. Only the calling thread exists in the child. Imported at the first new
process; a kernel configured without CONFIG_PROCESSES never imports it.
"""

from umiak.kernel import abi
from umiak.kernel.abi import (CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_FILES, CLONE_FS, CLONE_PARENT,
                              CLONE_PARENT_SETTID, CLONE_PIDFD, CLONE_SIGHAND, CLONE_VFORK, CLONE_VM)
from umiak.kernel.errors import ENOMEM, GuestOutOfMemory, SyscallError
from umiak.kernel.syscalls.thread import _clone, start_vcpu


def new_process(task, flags: int, stack: int, parent_tid: int, child_tid: int, tls: int,
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
        start_vcpu(task, child, flags, stack, tls, mm)
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


def sys_fork(task):
    """fork(2)"""
    return _clone(task, 0, 0, 0, 0, 0, abi.SIGCHLD)


def sys_vfork(task):
    """vfork(2)"""
    return _clone(task, CLONE_VM | CLONE_VFORK, 0, 0, 0, 0, abi.SIGCHLD)
