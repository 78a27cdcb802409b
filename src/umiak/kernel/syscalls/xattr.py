"""Extended attributes: getxattr(2) and family.

umiak keeps no extended attributes: reads find none (ENODATA, empty lists), as
on a Linux file system where none were set; writes fail as on a read-only
mount (EROFS) or, where the file system is writable, with ENOTSUP.
"""

from umiak.kernel.abi import XATTR_NAME_MAX, XATTR_SIZE_MAX, s32
from umiak.kernel.errors import EINVAL, ENODATA, ENOTSUP, ERANGE, EROFS, SyscallError


def _name(task, name) -> bytes:
    n = task.mm.read_cstr(name, XATTR_NAME_MAX + 1)
    if not n or len(n) > XATTR_NAME_MAX:
        raise SyscallError(ERANGE if n else EINVAL)
    return n


def _loc(task, path, follow: bool):
    p = task.mm.read_cstr(path, 4096).decode("utf-8", "surrogateescape")
    return task.kernel.vfs.resolve(task, -100, p, follow=follow)


def _get(task, loc_or_file, name) -> int:
    _name(task, name)
    raise SyscallError(ENODATA)


def sys_getxattr(task, path, name, value, size):
    """getxattr(2)"""
    return _get(task, _loc(task, path, True), name)


def sys_lgetxattr(task, path, name, value, size):
    """lgetxattr(2)"""
    return _get(task, _loc(task, path, False), name)


def sys_fgetxattr(task, fd, name, value, size):
    """fgetxattr(2)"""
    return _get(task, task.fds.get(s32(fd)), name)


def sys_listxattr(task, path, lst, size):
    """listxattr(2)"""
    _loc(task, path, True)
    return 0


def sys_llistxattr(task, path, lst, size):
    """llistxattr(2)"""
    _loc(task, path, False)
    return 0


def sys_flistxattr(task, fd, lst, size):
    """flistxattr(2)"""
    task.fds.get(s32(fd))
    return 0


def _set(task, loc, name, size) -> int:
    _name(task, name)
    if size > XATTR_SIZE_MAX:
        raise SyscallError(EINVAL)
    if loc is not None and loc.mount.readonly:
        raise SyscallError(EROFS)
    raise SyscallError(ENOTSUP)


def sys_setxattr(task, path, name, value, size, flags):
    """setxattr(2)"""
    return _set(task, _loc(task, path, True), name, size)


def sys_lsetxattr(task, path, name, value, size, flags):
    """lsetxattr(2)"""
    return _set(task, _loc(task, path, False), name, size)


def sys_fsetxattr(task, fd, name, value, size, flags):
    """fsetxattr(2)"""
    f = task.fds.get(s32(fd))
    return _set(task, f.loc, name, size)


def sys_removexattr(task, path, name):
    """removexattr(2)"""
    return _set(task, _loc(task, path, True), name, 0)


def sys_lremovexattr(task, path, name):
    """lremovexattr(2)"""
    return _set(task, _loc(task, path, False), name, 0)


def sys_fremovexattr(task, fd, name):
    """fremovexattr(2)"""
    f = task.fds.get(s32(fd))
    return _set(task, f.loc, name, 0)
