"""Who may do what to a location: the permission policy of the VFS, in one place.

The path walk (vfs/core.py), the file syscalls and anything else that changes the
tree ask here, so "may this process remove /tmp/x" has one answer. The checks
follow Linux's fs/namei.c and fs/attr.c, and so does their order where a syscall
makes several: the errors of the lookup (ENOENT, ENOTDIR, EEXIST of the new name)
come first, then EROFS of a read-only mount (`fs_op`), then the mode bits (EACCES)
and ownership (EPERM).
"""

import stat as _stat

from umiak.kernel import abi
from umiak.kernel.abi import W_OK, X_OK
from umiak.kernel.errors import EACCES, EPERM, EROFS, SyscallError



def check_access(task, loc, mask: int, effective: bool = True) -> None:
    """access(2)'s check of one location: EACCES from the mode bits, EROFS for writes
    to a read-only mount. uid 0 passes reads and writes, and execution when any x bit is set.
    A task of None (the kernel itself) is root."""
    node = loc.node
    mode = node.mode
    if mask & W_OK and loc.mount.readonly \
            and (_stat.S_ISREG(mode) or _stat.S_ISDIR(mode) or _stat.S_ISLNK(mode)):
        raise SyscallError(EROFS)
    creds = None if task is None else task.process.creds
    uid = 0 if creds is None else (creds.euid if effective else creds.uid)
    if creds is None or uid == 0:
        if mask & X_OK and not _stat.S_ISDIR(mode) and not mode & 0o111:
            raise SyscallError(EACCES)
        return
    st = node.stat()
    gid = creds.egid if effective else creds.gid
    if st.st_uid == uid:
        bits = (mode >> 6) & 7
    elif st.st_gid == gid or st.st_gid in creds.groups:
        bits = (mode >> 3) & 7
    else:
        bits = mode & 7
    if mask & ~bits & 7:
        raise SyscallError(EACCES)


def may_search(task, loc) -> None:
    """Search (x) permission on a directory the walk passes through; root always may."""
    if task is not None and task.process.creds.euid != 0:
        check_access(task, loc, X_OK, effective=True)


def may_create(task, parent) -> None:
    """Write and search permission on the directory that gets a new name."""
    check_access(task, parent, W_OK | X_OK)


def may_delete(task, parent, loc) -> None:
    """Linux's may_delete: write and search on the directory, and in a sticky directory
    (/tmp) only the owner of the file or of the directory (or root) may remove it."""
    check_access(task, parent, W_OK | X_OK)
    euid = task.process.creds.euid
    if euid != 0 and parent.node.mode & _stat.S_ISVTX:
        if loc.node.stat().st_uid != euid and parent.node.stat().st_uid != euid:
            raise SyscallError(EPERM)


def may_change_attrs(task, loc, what: str, uid: int = -1, gid: int = -1) -> None:
    """chmod/utime need the owner (or root); chown needs root, or the owner giving the
    file to one of its own groups."""
    c = task.process.creds
    if c.euid == 0 or loc is None:
        return
    st = loc.node.stat()
    if what == "chown":
        if uid != -1 and uid != st.st_uid or st.st_uid != c.euid:
            raise SyscallError(EPERM)
        if gid != -1 and gid != c.egid and gid not in c.groups and gid != st.st_gid:
            raise SyscallError(EPERM)
    elif st.st_uid != c.euid:
        raise SyscallError(EPERM)


def may_change(task, loc, op: str, args) -> None:
    """The check before a change of attributes op(*args) ("chmod", "chown", "utime"):
    EROFS first; setting both times to now (args[0] None or all UTIME_NOW/OMIT) needs the
    owner or write permission, any other change the owner (chown: see may_change_attrs)."""
    if loc.mount.readonly:
        raise SyscallError(EROFS)
    if op == "chown":
        may_change_attrs(task, loc, "chown", *args)
    elif op == "utime" and args[0] is None or op == "utime" and all(
            n in (abi.UTIME_NOW, abi.UTIME_OMIT) for _, n in args[0]):
        if task.process.creds.euid != 0 and loc.node.stat().st_uid != task.process.creds.euid:
            check_access(task, loc, W_OK)
    else:
        may_change_attrs(task, loc, op)


def fs_op(loc, op: str):
    """The file system's method for a change, EROFS on a read-only mount, EPERM if it has none."""
    if loc.mount.readonly:
        raise SyscallError(EROFS)
    # By name: the changes a node supports differ by file system (a HostNode of a volume
    # has them all, procfs nodes none), and the EPERM must come before the permission checks.
    fn = getattr(loc.node, op, None)
    if fn is None:
        raise SyscallError(EPERM)
    return fn
