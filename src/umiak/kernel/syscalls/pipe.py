"""pipe(2) and pipe2(2); the pipe itself is vfs/pipe.py."""

from umiak.kernel import abi
from umiak.kernel.abi import s32
from umiak.kernel.errors import EINVAL, SyscallError
from umiak.kernel.syscalls.fdutil import nofile_limit


def _pipe(task, fdsaddr, flags):
    flags = s32(flags)
    if flags & ~(abi.O_CLOEXEC | abi.O_NONBLOCK | abi.O_DIRECT):
        raise SyscallError(EINVAL)
    from umiak.kernel.vfs.pipe import make_pipe
    c = task.process.creds
    r, w = make_pipe(task.kernel, flags, c.euid, c.egid)
    nofile_limit(task)
    cloexec = bool(flags & abi.O_CLOEXEC)
    fds = task.fds
    rfd = fds.install(r, cloexec)
    try:
        wfd = fds.install(w, cloexec)
    except SyscallError:
        fds.close(rfd)
        raise
    try:
        task.mm.write(fdsaddr, rfd.to_bytes(4, "little") + wfd.to_bytes(4, "little"))
    except SyscallError:
        fds.close(rfd)
        fds.close(wfd)
        raise
    return 0


def sys_pipe(task, fds):
    """pipe(2): see vfs/pipe.py for what an empty pipe does with one thread."""
    return _pipe(task, fds, 0)


def sys_pipe2(task, fds, flags):
    """pipe2(2)"""
    return _pipe(task, fds, flags)
