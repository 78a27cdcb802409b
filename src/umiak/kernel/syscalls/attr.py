"""Changes to a file's attributes and size: chmod(2), chown(2), utimensat(2) and the
older utime forms, truncate(2), ftruncate(2) and fallocate(2)."""

import stat as _stat

from umiak.kernel import abi
from umiak.kernel.abi import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, s32, s64
from umiak.kernel.errors import EBADF, EFAULT, EINVAL, EISDIR, ENODEV, EOPNOTSUPP, EROFS, ESPIPE, SyscallError
from umiak.kernel.syscalls.fdutil import NS, io_file, path_arg, vfs_of
from umiak.kernel.vfs.permissions import check_access, fs_op, may_change


def _change_loc(task, dirfd: int, path: str, follow: bool, empty_ok: bool, op: str, *args):
    """Apply a change of attributes (chmod, chown, utime) to what a path or AT_EMPTY_PATH names."""
    loc, f = vfs_of(task).resolve_fd_or_path(task, dirfd, path, follow, empty_ok)
    if f is not None:
        return _change_file(task, f, op, *args)
    may_change(task, loc, op, args)
    fs_op(loc, op)(*args)
    if task.kernel.inotify is not None:
        from umiak.kernel.inotify import changed
        changed(task, loc)
    return 0


def _change_file(task, f, op: str, *args):
    loc = f.loc
    if loc is None:
        if f.inode is not None:               # memfd: its inode keeps the change
            getattr(f.inode, op)(*args)       # op: "chmod", "chown" or "utime"
        return 0                              # pipes and stdio: nothing to keep
    if not loc.mount.readonly and not hasattr(loc.node, op):   # a node type without the change
        return 0
    may_change(task, loc, op, args)
    fs_op(loc, op)(*args)
    if task.kernel.inotify is not None:
        from umiak.kernel.inotify import changed
        changed(task, loc)
    return 0


def sys_fchmodat(task, dirfd, path, mode):
    """fchmodat(2)"""
    return _change_loc(task, s32(dirfd), path_arg(task, path), True, False, "chmod", mode & 0o7777)


def sys_chmod(task, path, mode):
    """chmod(2)"""
    return _change_loc(task, abi.AT_FDCWD, path_arg(task, path), True, False, "chmod", mode & 0o7777)


def sys_fchmod(task, fd, mode):
    """fchmod(2)"""
    return _change_file(task, task.fds.get_io(s32(fd)), "chmod", mode & 0o7777)


def sys_fchownat(task, dirfd, path, uid, gid, flags):
    """fchownat(2): kept by the file system (in memory on the root and tmpfs)."""
    flags = s32(flags)
    if flags & ~(abi.AT_SYMLINK_NOFOLLOW | abi.AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    return _change_loc(task, s32(dirfd), path_arg(task, path), not flags & abi.AT_SYMLINK_NOFOLLOW,
                       bool(flags & abi.AT_EMPTY_PATH), "chown", s32(uid), s32(gid))


def sys_chown(task, path, uid, gid):
    """chown(2)"""
    return _change_loc(task, abi.AT_FDCWD, path_arg(task, path), True, False, "chown", s32(uid), s32(gid))


def sys_lchown(task, path, uid, gid):
    """lchown(2)"""
    return _change_loc(task, abi.AT_FDCWD, path_arg(task, path), False, False, "chown", s32(uid), s32(gid))


def sys_fchown(task, fd, uid, gid):
    """fchown(2)"""
    return _change_file(task, task.fds.get_io(s32(fd)), "chown", s32(uid), s32(gid))


def _utimes(task, dirfd: int, path_addr: int, ts, flags: int) -> int:
    """Set the times ts (None: now); the path is read only when there is something to change,
    and a NULL path is dirfd itself (Linux's do_utimes: no flags then; EFAULT with AT_FDCWD)."""
    if ts is not None and all(n == abi.UTIME_OMIT for _, n in ts):
        return 0
    if not path_addr:
        if dirfd == abi.AT_FDCWD:
            raise SyscallError(EFAULT)
        if flags:
            raise SyscallError(EINVAL)
        return _change_file(task, task.fds.get(dirfd), "utime", ts)
    return _change_loc(task, dirfd, path_arg(task, path_addr), not flags & abi.AT_SYMLINK_NOFOLLOW,
                       bool(flags & abi.AT_EMPTY_PATH), "utime", ts)


def sys_utimensat(task, dirfd, path, times, flags):
    """utimensat(2)"""
    flags = s32(flags)
    if flags & ~(abi.AT_SYMLINK_NOFOLLOW | abi.AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    ts = None
    if times:
        raw = task.mm.read(times, 32)
        ts = [abi.TIMESPEC.unpack_from(raw, 0), abi.TIMESPEC.unpack_from(raw, 16)]
        for _, nsec in ts:
            if not (0 <= nsec < NS) and nsec not in (abi.UTIME_NOW, abi.UTIME_OMIT):
                raise SyscallError(EINVAL)
    return _utimes(task, s32(dirfd), path, ts, flags)


def _timevals(task, addr):
    """Two struct timeval -> the timespecs utimensat takes (None: now)."""
    if not addr:
        return None
    raw = task.mm.read(addr, 32)
    out = []
    for i in (0, 16):
        sec, usec = abi.TIMESPEC.unpack_from(raw, i)
        if not 0 <= usec < 1_000_000:
            raise SyscallError(EINVAL)
        out.append((sec, usec * 1000))
    return out


def sys_futimesat(task, dirfd, path, times):
    """futimesat(2): a NULL path is dirfd itself."""
    return _utimes(task, s32(dirfd), path, _timevals(task, times), 0)


def sys_utimes(task, path, times):
    """utimes(2)"""
    return _utimes(task, abi.AT_FDCWD, path, _timevals(task, times), 0)


def sys_utime(task, path, times):
    """utime(2): struct utimbuf {actime, modtime} in seconds."""
    ts = None
    if times:
        a, m = task.mm.read_struct(times, abi.UTIMBUF)
        ts = [(a, 0), (m, 0)]
    return _utimes(task, abi.AT_FDCWD, path, ts, 0)


def sys_truncate(task, path, length):
    """truncate(2)"""
    length = s64(length)
    if length < 0:
        raise SyscallError(EINVAL)
    vfs = vfs_of(task)
    loc = vfs.resolve(task, abi.AT_FDCWD, path_arg(task, path), True)
    if loc.is_dir:
        raise SyscallError(EISDIR)
    if not _stat.S_ISREG(loc.node.mode):
        raise SyscallError(EINVAL)
    fn = fs_op(loc, "truncate")
    check_access(task, loc, abi.W_OK)
    fn(length)
    if task.kernel.inotify is not None:
        from umiak.kernel.inotify import IN_MODIFY, changed
        changed(task, loc, IN_MODIFY)
    return 0


def sys_ftruncate(task, fd, length):
    """ftruncate(2)"""
    length = s64(length)
    if length < 0:
        raise SyscallError(EINVAL)
    f = io_file(task, fd)
    if not f.writable() or not _stat.S_ISREG(f.stat().st_mode):
        raise SyscallError(EINVAL)
    f.truncate(length)
    if task.kernel.inotify is not None:
        from umiak.kernel.inotify import IN_MODIFY, file_event
        file_event(task, f, IN_MODIFY)
    return 0


FALLOC_KNOWN = 0x01 | 0x02 | 0x04 | 0x08 | 0x10 | 0x20 | 0x40


def sys_fallocate(task, fd, mode, offset, length):
    """fallocate(2): modes 0, KEEP_SIZE and PUNCH_HOLE|KEEP_SIZE; ENOSPC from the host's disk."""
    mode, offset, length = s32(mode), s64(offset), s64(length)
    if offset < 0 or length <= 0 or mode & ~FALLOC_KNOWN:
        raise SyscallError(EINVAL)
    if mode & FALLOC_FL_PUNCH_HOLE and not mode & FALLOC_FL_KEEP_SIZE:
        raise SyscallError(EOPNOTSUPP)
    f = io_file(task, fd)
    if not f.writable():
        raise SyscallError(EBADF)
    st = f.stat()
    if _stat.S_ISDIR(st.st_mode):
        raise SyscallError(EISDIR)
    if _stat.S_ISFIFO(st.st_mode):
        raise SyscallError(ESPIPE)
    if not _stat.S_ISREG(st.st_mode):
        raise SyscallError(ENODEV)
    if f.loc is not None and f.loc.mount.readonly:
        raise SyscallError(EROFS)
    f.allocate(mode, offset, length)   # EOPNOTSUPP where the file system cannot
    return 0
