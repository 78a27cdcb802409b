"""Extended attributes: getxattr(2) and family.

Reads show what the node has (Node.xattrs: an ext2/3/4 image's inodes, and the overlay's
names over them until copied up); other files have none (ENODATA, empty lists), as on a
Linux file system where none were set. Writes fail as on a read-only mount (EROFS) or,
where the file system is writable, with ENOTSUP.
"""

from umiak.kernel.abi import XATTR_NAME_MAX, XATTR_SIZE_MAX, s32
from umiak.kernel.errors import EINVAL, ENODATA, ENOTSUP, ERANGE, EROFS, SyscallError
from umiak.kernel.vfs.core import Loc


def _name(task, name) -> bytes:
    n = task.mm.read_cstr(name, XATTR_NAME_MAX + 1)
    if not n or len(n) > XATTR_NAME_MAX:
        raise SyscallError(ERANGE if n else EINVAL)
    return n


def _loc(task, path, follow: bool):
    p = task.mm.read_cstr(path, 4096).decode("utf-8", "surrogateescape")
    return task.kernel.vfs.resolve(task, -100, p, follow=follow)


def _node(loc_or_file):
    """The node a path or an fd names (None for files with no place in the tree)."""
    loc = loc_or_file if isinstance(loc_or_file, Loc) else loc_or_file.loc
    return loc.node if loc is not None else None


def _attrs(loc_or_file) -> dict[bytes, bytes]:
    node = _node(loc_or_file)
    return node.xattrs() if node is not None else {}


def _out(task, buf, size, data: bytes) -> int:
    """Copy the answer out, or its size for size 0; ERANGE when it does not fit."""
    if size == 0:
        return len(data)
    if size < len(data):
        raise SyscallError(ERANGE)
    task.mm.write(buf, data)
    return len(data)


def _get(task, loc_or_file, name, value=0, size=0) -> int:
    n = _name(task, name)
    v = _attrs(loc_or_file).get(n)
    if v is None:
        raise SyscallError(ENODATA)
    return _out(task, value, size, v)


def _list(task, loc_or_file, lst, size) -> int:
    return _out(task, lst, size, b"".join(k + b"\0" for k in _attrs(loc_or_file)))


def sys_getxattr(task, path, name, value, size):
    """getxattr(2)"""
    return _get(task, _loc(task, path, True), name, value, size)


def sys_lgetxattr(task, path, name, value, size):
    """lgetxattr(2)"""
    return _get(task, _loc(task, path, False), name, value, size)


def sys_fgetxattr(task, fd, name, value, size):
    """fgetxattr(2)"""
    return _get(task, task.fds.get(s32(fd)), name, value, size)


def sys_listxattr(task, path, lst, size):
    """listxattr(2)"""
    return _list(task, _loc(task, path, True), lst, size)


def sys_llistxattr(task, path, lst, size):
    """llistxattr(2)"""
    return _list(task, _loc(task, path, False), lst, size)


def sys_flistxattr(task, fd, lst, size):
    """flistxattr(2)"""
    return _list(task, task.fds.get(s32(fd)), lst, size)


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
