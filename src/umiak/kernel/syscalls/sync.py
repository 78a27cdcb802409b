"""Syncing: sync(2), syncfs(2), fsync(2), fdatasync(2), sync_file_range(2)."""

import stat as _stat

from umiak.kernel.abi import s32, s64
from umiak.kernel.errors import EINVAL, ESPIPE, SyscallError
from umiak.kernel.syscalls.fdutil import io_file


def sys_sync(task):
    """sync(2)"""
    return 0


def sys_syncfs(task, fd):
    """syncfs(2)"""
    task.fds.get(s32(fd))
    return 0


def sys_fsync(task, fd):
    """fsync(2)"""
    io_file(task, fd).sync()
    return 0


def sys_fdatasync(task, fd):
    """fdatasync(2)"""
    io_file(task, fd).sync()
    return 0


def sys_sync_file_range(task, fd, offset, nbytes, flags):
    """sync_file_range(2): the data goes to the host's page cache at each write already."""
    if s64(offset) < 0 or s64(nbytes) < 0 or flags & ~7:
        raise SyscallError(EINVAL)
    f = io_file(task, fd)
    st = f.stat()
    if not (_stat.S_ISREG(st.st_mode) or _stat.S_ISDIR(st.st_mode) or _stat.S_ISLNK(st.st_mode)
            or _stat.S_ISBLK(st.st_mode)):
        raise SyscallError(ESPIPE)
    return 0
