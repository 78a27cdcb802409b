"""Opening and closing descriptors: open(2), openat(2), openat2(2), creat(2), close(2),
close_range(2) and dup(2), dup2(2), dup3(2)."""

from umiak.kernel import abi
from umiak.kernel.abi import s32
from umiak.kernel.errors import E2BIG, EBADF, EINVAL, EMFILE, SyscallError
from umiak.kernel.syscalls.fdutil import nofile_limit, path_arg, vfs_of

# f_flags kept by an open file (F_GETFL shows them); O_CLOEXEC lives in the fd table
OPEN_KEEP = (abi.O_ACCMODE | abi.O_APPEND | abi.O_NONBLOCK | abi.O_DSYNC | abi.O_ASYNC | abi.O_DIRECT
             | abi.O_LARGEFILE | abi.O_DIRECTORY | abi.O_NOFOLLOW | abi.O_NOATIME | abi.O_SYNC | abi.O_PATH)
O_PATH_KEEP = abi.O_PATH | abi.O_DIRECTORY | abi.O_NOFOLLOW
VALID_OPEN = 0o37777777 & ~0o10   # every flag Linux knows (openat2 refuses the rest)


def _do_open(task, dirfd, path_addr, flags, mode, resolve=0):
    path = path_arg(task, path_addr)
    if flags & abi.O_CREAT and flags & abi.O_DIRECTORY and (flags & abi.O_TMPFILE) != abi.O_TMPFILE:
        raise SyscallError(EINVAL)
    if (flags & abi.O_TMPFILE) == abi.O_TMPFILE and not flags & (abi.O_WRONLY | abi.O_RDWR):
        raise SyscallError(EINVAL)
    if flags & abi.O_PATH:
        flags &= O_PATH_KEEP | abi.O_CLOEXEC
    else:
        flags |= abi.O_LARGEFILE
    nofile = nofile_limit(task)
    if len(task.fds.files) >= nofile and all(i in task.fds.files for i in range(nofile)):
        raise SyscallError(EMFILE)    # Linux takes the fd number before it looks up the path
    f = vfs_of(task).open(task, dirfd, path, flags, mode, resolve)
    f.flags = flags & (O_PATH_KEEP if flags & abi.O_PATH else OPEN_KEEP)
    try:
        fd = task.fds.install(f, bool(flags & abi.O_CLOEXEC))
    except SyscallError:
        f.close()
        raise
    if task.kernel.inotify is not None and not flags & abi.O_PATH:
        from umiak.kernel.inotify import IN_OPEN, file_event, watch_close
        file_event(task, f, IN_OPEN)
        watch_close(task, f)
    return fd


def sys_open(task, path, flags, mode):
    """open(2)"""
    return _do_open(task, abi.AT_FDCWD, path, s32(flags), mode & 0xFFFFFFFF)


def sys_openat(task, dirfd, path, flags, mode):
    """openat(2)"""
    return _do_open(task, s32(dirfd), path, s32(flags), mode & 0xFFFFFFFF)


def sys_creat(task, path, mode):
    """creat(2)"""
    return _do_open(task, abi.AT_FDCWD, path, abi.O_CREAT | abi.O_WRONLY | abi.O_TRUNC, mode & 0xFFFFFFFF)


def sys_openat2(task, dirfd, path, how, size):
    """openat2(2): RESOLVE_CACHED is ignored (the walk never needs to block)."""
    if size < abi.OPEN_HOW.size:
        raise SyscallError(EINVAL)
    if size > abi.PAGE_SIZE:
        raise SyscallError(E2BIG)
    raw = task.mm.read(how, size)
    if any(raw[abi.OPEN_HOW.size:]):
        raise SyscallError(E2BIG)
    flags, mode, resolve = abi.OPEN_HOW.unpack_from(raw)
    if flags & ~VALID_OPEN or flags >> 32:
        raise SyscallError(EINVAL)
    if resolve & ~abi.RESOLVE_NO_XDEV & ~abi.RESOLVE_NO_MAGICLINKS & ~abi.RESOLVE_NO_SYMLINKS \
            & ~abi.RESOLVE_BENEATH & ~abi.RESOLVE_IN_ROOT & ~abi.RESOLVE_CACHED:
        raise SyscallError(EINVAL)
    creating = flags & abi.O_CREAT or (flags & abi.O_TMPFILE) == abi.O_TMPFILE
    if (mode and not creating) or mode & ~0o7777:
        raise SyscallError(EINVAL)
    if resolve & abi.RESOLVE_BENEATH and resolve & abi.RESOLVE_IN_ROOT:
        raise SyscallError(EINVAL)
    if flags & abi.O_PATH and flags & ~(O_PATH_KEEP | abi.O_CLOEXEC | abi.O_LARGEFILE):
        raise SyscallError(EINVAL)
    return _do_open(task, s32(dirfd), path, flags, mode, resolve)


def sys_close(task, fd):
    """close(2)"""
    task.fds.close(s32(fd))
    return 0


def sys_close_range(task, first, last, flags):
    """close_range(2): CLOSE_RANGE_UNSHARE has nothing to unshare (one fd table)."""
    first &= 0xFFFFFFFF
    last &= 0xFFFFFFFF
    if flags & ~(abi.CLOSE_RANGE_UNSHARE | abi.CLOSE_RANGE_CLOEXEC) or first > last:
        raise SyscallError(EINVAL)
    fds = task.fds
    for fd in sorted(n for n in fds.files if first <= n <= last):
        if flags & abi.CLOSE_RANGE_CLOEXEC:
            fds.cloexec.add(fd)
        else:
            fds.close(fd)
    return 0


def sys_dup(task, fd):
    """dup(2)"""
    f = task.fds.get(s32(fd))
    nofile_limit(task)
    return task.fds.install(f)


def sys_dup2(task, oldfd, newfd):
    """dup2(2)"""
    oldfd, newfd = s32(oldfd), s32(newfd)
    if oldfd == newfd:
        task.fds.get(oldfd)
        return newfd
    return _dup3(task, oldfd, newfd & 0xFFFFFFFF, 0)


def sys_dup3(task, oldfd, newfd, flags):
    """dup3(2)"""
    return _dup3(task, s32(oldfd), newfd & 0xFFFFFFFF, s32(flags))


def _dup3(task, oldfd: int, newfd: int, flags: int) -> int:
    """newfd is unsigned, as in the prototype: a negative one is past any limit (EBADF)."""
    if flags & ~abi.O_CLOEXEC:
        raise SyscallError(EINVAL)
    if oldfd == newfd:
        raise SyscallError(EINVAL)
    if newfd >= nofile_limit(task):
        raise SyscallError(EBADF)
    f = task.fds.get(oldfd)
    task.fds.install_at(newfd, f, bool(flags & abi.O_CLOEXEC))
    return newfd
