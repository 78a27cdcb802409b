"""memfd_create(2): an anonymous tmpfs file (vfs/memfs.py)."""

import os

from umiak.kernel.errors import EFAULT, EINVAL, SyscallError
from umiak.kernel.syscalls.fdutil import nofile_limit, owner_of

MFD_NAME_MAX = 249


def sys_memfd_create(task, name, flags):
    """memfd_create(2): an anonymous tmpfs file (MFD_HUGETLB is EINVAL: no huge pages)."""
    from umiak.kernel.abi import MFD_ALLOW_SEALING, MFD_CLOEXEC, MFD_EXEC, MFD_NOEXEC_SEAL
    from umiak.kernel.vfs.memfs import make_memfd
    flags &= 0xFFFFFFFF
    if flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC):
        raise SyscallError(EINVAL)
    if flags & MFD_NOEXEC_SEAL and flags & MFD_EXEC:
        raise SyscallError(EINVAL)
    try:
        raw = task.mm.read_cstr(name, MFD_NAME_MAX + 1)
    except SyscallError as e:
        if e.errno == EFAULT:
            raise
        raise SyscallError(EINVAL) from None
    if len(raw) > MFD_NAME_MAX:
        raise SyscallError(EINVAL)
    nofile_limit(task)
    f = make_memfd(task.kernel, os.fsdecode(raw), flags, owner_of(task))
    if flags & MFD_NOEXEC_SEAL:
        f.inode.mode &= ~0o111
        f.inode.seals |= 32    # F_SEAL_EXEC
        if not flags & MFD_ALLOW_SEALING:
            f.inode.seals &= ~1
    return task.fds.install(f, bool(flags & MFD_CLOEXEC))
