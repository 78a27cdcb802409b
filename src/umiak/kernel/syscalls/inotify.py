"""inotify_init(2), inotify_init1(2), inotify_add_watch(2), inotify_rm_watch(2):
watches on the VM's files (the events are made by umiak.kernel.inotify's hooks)."""

from umiak.kernel import abi
from umiak.kernel.abi import s32
from umiak.kernel.errors import EBADF, EEXIST, EINVAL, ENOENT, ENOTDIR, SyscallError
from umiak.kernel.syscalls.fdutil import nofile_limit, path_arg, vfs_of

IN_NONBLOCK, IN_CLOEXEC = abi.O_NONBLOCK, abi.O_CLOEXEC


def sys_inotify_init1(task, flags):
    """inotify_init1(2)"""
    from umiak.kernel.inotify import Inotify, registry
    flags = s32(flags)
    if flags & ~(IN_NONBLOCK | IN_CLOEXEC):
        raise SyscallError(EINVAL)
    nofile_limit(task)
    registry(task.kernel)
    return task.fds.install(Inotify(task.kernel, flags & IN_NONBLOCK), bool(flags & IN_CLOEXEC))


def sys_inotify_init(task):
    """inotify_init(2)"""
    return sys_inotify_init1(task, 0)


def _instance(task, fd):
    from umiak.kernel.inotify import Inotify
    return task.fds.get_as(s32(fd), Inotify)


def sys_inotify_add_watch(task, fd, pathname, mask):
    """inotify_add_watch(2): a second watch of the same inode by one instance changes its
    mask (IN_MASK_ADD: adds to it; IN_MASK_CREATE: EEXIST) and keeps its wd."""
    from umiak.kernel import inotify as ino
    from umiak.kernel.vfs.permissions import check_access
    mask &= 0xFFFFFFFF
    if task.fds.files.get(s32(fd)) is None:
        raise SyscallError(EBADF)
    inst = _instance(task, fd)
    if not mask & ino.IN_ALL_EVENTS:
        raise SyscallError(EINVAL)
    if mask & ino.IN_MASK_ADD and mask & ino.IN_MASK_CREATE:
        raise SyscallError(EINVAL)
    loc = vfs_of(task).resolve(task, abi.AT_FDCWD, path_arg(task, pathname), not mask & ino.IN_DONT_FOLLOW)
    if mask & ino.IN_ONLYDIR and not loc.is_dir:
        raise SyscallError(ENOTDIR)
    check_access(task, loc, abi.R_OK)
    key = ino.key_of(loc.node)
    if key is None:
        raise SyscallError(ENOENT)
    keep = mask & (ino.IN_ALL_EVENTS | ino.IN_ONESHOT | ino.IN_EXCL_UNLINK | ino.IN_ONLYDIR | ino.IN_DONT_FOLLOW)
    w = inst.by_key.get(key)
    if w is not None:
        if mask & ino.IN_MASK_CREATE:
            raise SyscallError(EEXIST)
        w.mask = (w.mask | keep) if mask & ino.IN_MASK_ADD else keep
        return w.wd
    w = ino.Watch(inst, inst.next_wd, keep, key)
    inst.next_wd += 1
    inst.by_wd[w.wd] = w
    inst.by_key[key] = w
    ino.registry(task.kernel).watches.setdefault(key, []).append(w)
    return w.wd


def sys_inotify_rm_watch(task, fd, wd):
    """inotify_rm_watch(2): the watch ends with IN_IGNORED."""
    inst = _instance(task, fd)
    w = inst.by_wd.get(s32(wd))
    if w is None:
        raise SyscallError(EINVAL)
    inst.remove(w)
    return 0
