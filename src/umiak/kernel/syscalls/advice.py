"""Advice about file access that the kernel may ignore: fadvise64(2), readahead(2)."""

from umiak.kernel.abi import s32, s64
from umiak.kernel.errors import EINVAL, ESPIPE, SyscallError


def sys_fadvise64(task, fd, offset, length, advice):
    """fadvise64(2): validated, then ignored (the host's page cache does the work)."""
    f = task.fds.get(s32(fd))
    if not 0 <= s32(advice) <= 5 or s64(length) < 0:
        raise SyscallError(EINVAL)
    if f.pipe is not None:
        raise SyscallError(ESPIPE)
    return 0


def sys_readahead(task, fd, offset, count):
    """readahead(2): validated, then ignored."""
    task.fds.get(s32(fd))
    return 0
