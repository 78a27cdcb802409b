"""Directories and the names in them: getdents(2), getcwd(2), chdir(2), chroot(2),
readlink(2), and the changes to the tree: mkdir(2), mknod(2), symlink(2), link(2),
unlink(2), rmdir(2), rename(2) and their *at forms.

EROFS on a read-only mount comes after the errors Linux checks first (ENOENT/ENOTDIR
of the parent, EEXIST of the new name...).
"""

import os
import stat as _stat

from umiak.kernel import abi
from umiak.kernel.abi import s32
from umiak.kernel.errors import (EBUSY, EEXIST, EINVAL, EISDIR, ENOENT, ENOTDIR, ENOTEMPTY, EPERM, ERANGE,
                                 EROFS, EXDEV, SyscallError)
from umiak.kernel.syscalls.fdutil import owner_of, path_arg, vfs_of
from umiak.kernel.vfs.core import LAST_DOT, LAST_DOTDOT, LAST_NORM, LAST_ROOT
from umiak.kernel.vfs.permissions import check_access, fs_op, may_create, may_delete


def _getdents(task, fd, dirp, count, wide: bool):
    f = task.fds.get_io(s32(fd))
    entries = f.dir_entries()
    count &= 0xFFFFFFFF
    out = bytearray()
    pos = f.dir_pos
    while pos < len(entries):
        ino, dtype, name = entries[pos]
        bname = os.fsencode(name)
        if wide:
            reclen = (19 + len(bname) + 1 + 7) & ~7
            rec = ino.to_bytes(8, "little") + (pos + 1).to_bytes(8, "little") + reclen.to_bytes(2, "little") \
                + bytes([dtype]) + bname
        else:
            reclen = (18 + len(bname) + 2 + 7) & ~7
            rec = ino.to_bytes(8, "little") + (pos + 1).to_bytes(8, "little") + reclen.to_bytes(2, "little") + bname
        rec = rec + bytes(reclen - len(rec))
        if not wide:
            rec = rec[:-1] + bytes([dtype])
        if len(out) + reclen > count:
            if not out:
                raise SyscallError(EINVAL)
            break
        out += rec
        pos += 1
    task.mm.write(dirp, bytes(out))
    f.dir_pos = pos
    return len(out)


def sys_getdents64(task, fd, dirp, count):
    """getdents64(2): d_off is the index of the next entry."""
    return _getdents(task, fd, dirp, count, True)


def sys_getdents(task, fd, dirp, count):
    """getdents(2)"""
    return _getdents(task, fd, dirp, count, False)


def sys_readlink(task, path, buf, bufsiz):
    """readlink(2)"""
    bufsiz = s32(bufsiz)
    if bufsiz <= 0:
        raise SyscallError(EINVAL)
    return _readlinkat(task, abi.AT_FDCWD, path_arg(task, path), buf, bufsiz)


def sys_readlinkat(task, dirfd, path, buf, bufsiz):
    """readlinkat(2)"""
    bufsiz = s32(bufsiz)
    if bufsiz <= 0:
        raise SyscallError(EINVAL)
    return _readlinkat(task, s32(dirfd), path_arg(task, path), buf, bufsiz)


def _readlinkat(task, dirfd: int, path: str, buf: int, bufsiz: int) -> int:
    if not path:
        if dirfd == abi.AT_FDCWD:
            raise SyscallError(ENOENT)
        f = task.fds.get(dirfd)
        if f.loc is None or not _stat.S_ISLNK(f.loc.node.mode):
            raise SyscallError(ENOENT)
        target = f.loc.node.readlink()
    else:
        target = vfs_of(task).readlink(task, dirfd, path)
    data = os.fsencode(target)[:bufsiz]
    task.mm.write(buf, data)
    return len(data)


def sys_getcwd(task, buf, size):
    """getcwd(2): the working directory with symlinks resolved, as the kernel keeps it."""
    data = os.fsencode(vfs_of(task).cwd(task).path) + b"\0"
    if size < len(data):
        raise SyscallError(ERANGE)
    task.mm.write(buf, data)
    return len(data)


def sys_chdir(task, path):
    """chdir(2)"""
    vfs = vfs_of(task)
    loc = vfs.resolve(task, abi.AT_FDCWD, path_arg(task, path), True)
    if not loc.is_dir:
        raise SyscallError(ENOTDIR)
    check_access(task, loc, abi.X_OK)
    task.process.set_fs(cwd=loc.path)
    return 0


def sys_fchdir(task, fd):
    """fchdir(2)"""
    f = task.fds.get(s32(fd))
    if f.loc is None or not f.loc.is_dir:
        raise SyscallError(ENOTDIR)
    check_access(task, f.loc, abi.X_OK)
    task.process.set_fs(cwd=f.loc.path)
    return 0


def _exists(vfs, parent, name) -> bool:
    try:
        vfs.child(parent, name)
        return True
    except SyscallError as e:
        if e.errno in (ENOENT,):
            return False
        raise


def _create_at(task, dirfd: int, path: str):
    """Linux's filename_create: the parent must exist and the name must not, so EEXIST
    comes before the caller's EROFS (permissions.fs_op) and EACCES (may_create)."""
    vfs = vfs_of(task)
    parent, name, kind = vfs.resolve_parent(task, dirfd, path)
    if kind != LAST_NORM:
        raise SyscallError(EEXIST)
    if _exists(vfs, parent, name):
        raise SyscallError(EEXIST)
    if path.endswith("/"):
        raise SyscallError(ENOENT)
    return parent, name


def sys_mkdirat(task, dirfd, path, mode):
    """mkdirat(2)"""
    return _mkdirat(task, s32(dirfd), path_arg(task, path), mode & 0o7777)


def sys_mkdir(task, path, mode):
    """mkdir(2)"""
    return _mkdirat(task, abi.AT_FDCWD, path_arg(task, path), mode & 0o7777)


def _mkdirat(task, dirfd: int, path: str, mode: int) -> int:
    vfs = vfs_of(task)
    parent, name, kind = vfs.resolve_parent(task, dirfd, path)
    if kind != LAST_NORM or _exists(vfs, parent, name):
        raise SyscallError(EEXIST)
    fn = fs_op(parent, "mkdir")
    may_create(task, parent)
    fn(name, mode & ~task.process.umask, owner=owner_of(task))
    if task.kernel.inotify is not None:
        from umiak.kernel.inotify import created
        created(task, parent, name, True)
    return 0


def sys_mknodat(task, dirfd, path, mode, dev):
    """mknodat(2)"""
    return _mknodat(task, s32(dirfd), path_arg(task, path), mode & 0xFFFFFFFF, dev)


def sys_mknod(task, path, mode, dev):
    """mknod(2)"""
    return _mknodat(task, abi.AT_FDCWD, path_arg(task, path), mode & 0xFFFFFFFF, dev)


def _mknodat(task, dirfd: int, path: str, mode: int, dev: int) -> int:
    ftype = mode & abi.S_IFMT
    if ftype == abi.S_IFDIR:            # Linux's may_mknod: EPERM for a directory, EINVAL for junk
        raise SyscallError(EPERM)
    if ftype not in (0, abi.S_IFREG, abi.S_IFCHR, abi.S_IFBLK, abi.S_IFIFO, abi.S_IFSOCK):
        raise SyscallError(EINVAL)
    parent, name = _create_at(task, dirfd, path)
    fn = fs_op(parent, "mknod")
    may_create(task, parent)
    if ftype in (abi.S_IFCHR, abi.S_IFBLK) and not task.process.creds.capable(27):   # CAP_MKNOD
        raise SyscallError(EPERM)
    fn(name, mode & ~task.process.umask, dev, owner=owner_of(task))
    if task.kernel.inotify is not None:
        from umiak.kernel.inotify import created
        created(task, parent, name)
    return 0


def sys_symlinkat(task, target, dirfd, path):
    """symlinkat(2)"""
    t = path_arg(task, target)
    return _symlinkat(task, t, s32(dirfd), path_arg(task, path))


def sys_symlink(task, target, path):
    """symlink(2)"""
    t = path_arg(task, target)
    return _symlinkat(task, t, abi.AT_FDCWD, path_arg(task, path))


def _symlinkat(task, target: str, dirfd: int, path: str) -> int:
    if not target:
        raise SyscallError(ENOENT)
    parent, name = _create_at(task, dirfd, path)
    fn = fs_op(parent, "symlink")
    may_create(task, parent)
    fn(name, target, owner=owner_of(task))
    if task.kernel.inotify is not None:
        from umiak.kernel.inotify import created
        created(task, parent, name)
    return 0


def sys_linkat(task, olddirfd, oldpath, newdirfd, newpath, flags):
    """linkat(2)"""
    flags = s32(flags)
    if flags & ~(abi.AT_SYMLINK_FOLLOW | abi.AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    old = path_arg(task, oldpath)
    return _linkat(task, s32(olddirfd), old, s32(newdirfd), path_arg(task, newpath), flags)


def sys_link(task, oldpath, newpath):
    """link(2)"""
    old = path_arg(task, oldpath)
    return _linkat(task, abi.AT_FDCWD, old, abi.AT_FDCWD, path_arg(task, newpath), 0)


def _linkat(task, olddirfd: int, oldpath: str, newdirfd: int, newpath: str, flags: int) -> int:
    old, f = vfs_of(task).resolve_fd_or_path(task, olddirfd, oldpath, bool(flags & abi.AT_SYMLINK_FOLLOW),
                                             bool(flags & abi.AT_EMPTY_PATH))
    if f is not None:
        old = f.loc
        if old is None:
            raise SyscallError(ENOENT)
    if old.is_dir:
        raise SyscallError(EPERM)
    parent, name = _create_at(task, newdirfd, newpath)
    fn = fs_op(parent, "link")
    if parent.mount is not old.mount:
        raise SyscallError(EXDEV)
    may_create(task, parent)
    fn(name, old.node)
    if task.kernel.inotify is not None:
        from umiak.kernel.inotify import IN_ATTRIB, created, event
        event(task.kernel, IN_ATTRIB, old.node)
        created(task, parent, name)
    return 0


def _watch_key(task, loc):
    """The inode key inotify events of a removal need, taken before it (None: no watches)."""
    if task.kernel.inotify is None:
        return None
    from umiak.kernel.inotify import key_of
    return key_of(loc.node)


def _delete(task, parent, name: str, loc, op: str) -> int:
    """The common end of rmdir and unlink: the file system's op, sticky-bit rules, inotify."""
    fn = fs_op(parent, op)
    may_delete(task, parent, loc)
    key = _watch_key(task, loc)
    fn(name)
    if key is not None:
        from umiak.kernel.inotify import deleted
        deleted(task, parent, name, loc.node, op == "rmdir", key)
    return 0


def sys_unlinkat(task, dirfd, path, flags):
    """unlinkat(2)"""
    flags = s32(flags)
    if flags & ~abi.AT_REMOVEDIR:
        raise SyscallError(EINVAL)
    return _unlinkat(task, s32(dirfd), path_arg(task, path), flags)


def sys_unlink(task, path):
    """unlink(2)"""
    return _unlinkat(task, abi.AT_FDCWD, path_arg(task, path), 0)


def sys_rmdir(task, path):
    """rmdir(2)"""
    return _unlinkat(task, abi.AT_FDCWD, path_arg(task, path), abi.AT_REMOVEDIR)


def _unlinkat(task, dirfd: int, path: str, flags: int) -> int:
    vfs = vfs_of(task)
    parent, name, kind = vfs.resolve_parent(task, dirfd, path)
    if flags & abi.AT_REMOVEDIR:
        if kind == LAST_DOT:
            raise SyscallError(EINVAL)
        if kind == LAST_DOTDOT:
            raise SyscallError(ENOTEMPTY)
        if kind == LAST_ROOT:
            raise SyscallError(EBUSY)
        if parent.mount.readonly:
            raise SyscallError(EROFS)
        loc = vfs.child(parent, name)
        if not loc.is_dir:
            raise SyscallError(ENOTDIR)
        if loc.mount is not parent.mount:
            raise SyscallError(EBUSY)
        return _delete(task, parent, name, loc, "rmdir")
    if kind != LAST_NORM:
        raise SyscallError(EISDIR)
    if parent.mount.readonly:
        raise SyscallError(EROFS)
    loc = vfs.child(parent, name)
    if path.endswith("/"):
        raise SyscallError(EISDIR if loc.is_dir else ENOTDIR)
    if loc.is_dir:
        raise SyscallError(EISDIR)
    if loc.mount is not parent.mount:
        raise SyscallError(EBUSY)
    return _delete(task, parent, name, loc, "unlink")


def sys_renameat2(task, olddirfd, oldpath, newdirfd, newpath, flags):
    """renameat2(2)"""
    flags &= 0xFFFFFFFF
    if flags & ~(abi.RENAME_NOREPLACE | abi.RENAME_EXCHANGE | abi.RENAME_WHITEOUT):
        raise SyscallError(EINVAL)
    if flags & abi.RENAME_NOREPLACE and flags & abi.RENAME_EXCHANGE:
        raise SyscallError(EINVAL)
    old = path_arg(task, oldpath)
    return _renameat2(task, s32(olddirfd), old, s32(newdirfd), path_arg(task, newpath), flags)


def sys_renameat(task, olddirfd, oldpath, newdirfd, newpath):
    """renameat(2)"""
    old = path_arg(task, oldpath)
    return _renameat2(task, s32(olddirfd), old, s32(newdirfd), path_arg(task, newpath), 0)


def sys_rename(task, oldpath, newpath):
    """rename(2)"""
    old = path_arg(task, oldpath)
    return _renameat2(task, abi.AT_FDCWD, old, abi.AT_FDCWD, path_arg(task, newpath), 0)


def _renameat2(task, olddirfd: int, oldpath: str, newdirfd: int, newpath: str, flags: int) -> int:
    vfs = vfs_of(task)
    oparent, oname, okind = vfs.resolve_parent(task, olddirfd, oldpath)
    nparent, nname, nkind = vfs.resolve_parent(task, newdirfd, newpath)
    if oparent.mount is not nparent.mount:
        raise SyscallError(EXDEV)
    if okind != LAST_NORM:
        raise SyscallError(EBUSY)
    if nkind != LAST_NORM:
        raise SyscallError(EEXIST if flags & abi.RENAME_NOREPLACE else EBUSY)
    if oparent.mount.readonly:
        raise SyscallError(EROFS)
    old = vfs.child(oparent, oname)
    if flags & abi.RENAME_NOREPLACE and _exists(vfs, nparent, nname):
        raise SyscallError(EEXIST)
    if old.mount is not oparent.mount:
        raise SyscallError(EBUSY)       # a mount point
    fn = fs_op(oparent, "rename")
    may_delete(task, oparent, old)
    may_create(task, nparent)
    fn(oname, nparent.node, nname, flags)
    if task.kernel.inotify is not None:
        from umiak.kernel.inotify import moved
        moved(task, oparent, oname, nparent, nname, old.node)
    return 0


def sys_chroot(task, path):
    """chroot(2): a unikernel's root is fixed by --root, so changing it is EPERM (after
    Linux's path errors); chroot to the current root succeeds and changes nothing."""
    vfs = vfs_of(task)
    loc = vfs.resolve(task, abi.AT_FDCWD, path_arg(task, path), True)
    if not loc.is_dir:
        raise SyscallError(ENOTDIR)
    check_access(task, loc, abi.X_OK)
    if loc.path == "/" and loc.mount is vfs.root.mount:
        return 0
    raise SyscallError(EPERM)
