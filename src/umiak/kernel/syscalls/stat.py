"""What a file is: stat(2), lstat(2), fstat(2), newfstatat(2), statx(2), statfs(2),
fstatfs(2) and access(2), faccessat(2), faccessat2(2)."""

import os

from umiak.kernel import abi
from umiak.kernel.abi import s32
from umiak.kernel.errors import EFAULT, EINVAL, SyscallError
from umiak.kernel.syscalls.fdutil import NS, path_arg, vfs_of
from umiak.kernel.vfs.permissions import check_access


def encode_stat(st) -> bytes:
    """st: an os.stat_result (host files) or a files.Stat, which has the same fields."""
    a, m, c = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
    return abi.STAT.pack(
        st.st_dev, st.st_ino, st.st_nlink, st.st_mode, st.st_uid, st.st_gid, 0,
        st.st_rdev, st.st_size, st.st_blksize, st.st_blocks, a // NS, a % NS, m // NS, m % NS, c // NS, c % NS)


def encode_statx(st, mask: int, mount_root: bool = False) -> bytes:
    a, m, c = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
    rdev = st.st_rdev
    attrs = abi.STATX_ATTR_MOUNT_ROOT if mount_root else 0
    return abi.STATX.pack(
        abi.STATX_BASIC_STATS | abi.STATX_MNT_ID, st.st_blksize, attrs,
        st.st_nlink, st.st_uid, st.st_gid, st.st_mode & 0xFFFF, 0,
        st.st_ino, st.st_size, st.st_blocks, abi.STATX_ATTR_MOUNT_ROOT,
        a // NS, a % NS, 0, 0, c // NS, c % NS, m // NS, m % NS,
        os.major(rdev), os.minor(rdev), os.major(st.st_dev), os.minor(st.st_dev),
        1, 0, 0)


def sys_fstat(task, fd, statbuf):
    """fstat(2)"""
    st = task.fds.get(s32(fd)).stat()
    task.mm.write(statbuf, encode_stat(st))
    return 0


def _stat_path(task, dirfd, path_addr, statbuf, flags):
    if flags & ~(abi.AT_SYMLINK_NOFOLLOW | abi.AT_NO_AUTOMOUNT | abi.AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    # a NULL path with AT_EMPTY_PATH is the dirfd itself (Linux 6.11)
    path = "" if not path_addr and flags & abi.AT_EMPTY_PATH else path_arg(task, path_addr)
    st = vfs_of(task).stat(task, dirfd, path, flags)
    task.mm.write(statbuf, encode_stat(st))
    return 0


def sys_stat(task, path, statbuf):
    """stat(2)"""
    return _stat_path(task, abi.AT_FDCWD, path, statbuf, 0)


def sys_lstat(task, path, statbuf):
    """lstat(2)"""
    return _stat_path(task, abi.AT_FDCWD, path, statbuf, abi.AT_SYMLINK_NOFOLLOW)


def sys_newfstatat(task, dirfd, path, statbuf, flags):
    """newfstatat(2)"""
    return _stat_path(task, s32(dirfd), path, statbuf, s32(flags))


def sys_statx(task, dirfd, path, flags, mask, buf):
    """statx(2): no birth time (the host's is not read)."""
    flags = s32(flags)
    if flags & ~(abi.AT_SYMLINK_NOFOLLOW | abi.AT_NO_AUTOMOUNT | abi.AT_EMPTY_PATH | abi.AT_STATX_SYNC_TYPE):
        raise SyscallError(EINVAL)
    if flags & abi.AT_STATX_SYNC_TYPE == abi.AT_STATX_SYNC_TYPE:
        raise SyscallError(EINVAL)
    if mask & abi.STATX__RESERVED:
        raise SyscallError(EINVAL)
    p = path_arg(task, path) if path else ""
    if not path and not flags & abi.AT_EMPTY_PATH:
        raise SyscallError(EFAULT)
    vfs = vfs_of(task)
    loc, f = vfs.resolve_fd_or_path(task, s32(dirfd), p, not flags & abi.AT_SYMLINK_NOFOLLOW,
                                    bool(flags & abi.AT_EMPTY_PATH))
    if f is not None:
        st, loc = f.stat(), f.loc
    else:
        st = loc.node.stat()
    mount_root = loc is not None and loc.path == loc.mount.path
    task.mm.write(buf, encode_statx(st, mask, mount_root))
    return 0


def _access(task, dirfd, path_addr, mode, flags):
    if mode & ~7:
        raise SyscallError(EINVAL)
    if flags & ~(abi.AT_EACCESS | abi.AT_SYMLINK_NOFOLLOW | abi.AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    vfs = vfs_of(task)
    loc, f = vfs.resolve_fd_or_path(task, dirfd, path_arg(task, path_addr),
                                    not flags & abi.AT_SYMLINK_NOFOLLOW, bool(flags & abi.AT_EMPTY_PATH))
    if f is not None:
        loc = f.loc
        if loc is None:
            return 0
    if mode:
        check_access(task, loc, mode, effective=bool(flags & abi.AT_EACCESS))
    return 0


def sys_access(task, path, mode):
    """access(2)"""
    return _access(task, abi.AT_FDCWD, path, s32(mode), 0)


def sys_faccessat(task, dirfd, path, mode):
    """faccessat(2)"""
    return _access(task, s32(dirfd), path, s32(mode), 0)


def sys_faccessat2(task, dirfd, path, mode, flags):
    """faccessat2(2)"""
    return _access(task, s32(dirfd), path, s32(mode), s32(flags))


def _statfs(task, loc, buf):
    info, readonly = vfs_of(task).statfs(loc)
    flags = info.get("f_flags", abi.ST_RELATIME) | (abi.ST_RDONLY if readonly else 0)
    fsid = info.get("f_fsid", (0, 0))
    task.mm.write(buf, abi.STATFS.pack(
        info["f_type"], info["f_bsize"], info["f_blocks"], info["f_bfree"], info["f_bavail"],
        info["f_files"], info["f_ffree"], fsid[0], fsid[1], info["f_namelen"], info["f_frsize"], flags))
    return 0


def sys_statfs(task, path, buf):
    """statfs(2): a read-only mount has ST_RDONLY in f_flags."""
    loc = vfs_of(task).resolve(task, abi.AT_FDCWD, path_arg(task, path), True)
    return _statfs(task, loc, buf)


def sys_fstatfs(task, fd, buf):
    """fstatfs(2)"""
    f = task.fds.get(s32(fd))
    if f.loc is None:
        info = f.statfs()
        flags = info.get("f_flags", 0)
        fsid = info.get("f_fsid", (0, 0))
        task.mm.write(buf, abi.STATFS.pack(
            info["f_type"], info["f_bsize"], info["f_blocks"], info["f_bfree"], info["f_bavail"],
            info["f_files"], info["f_ffree"], fsid[0], fsid[1], info["f_namelen"], info["f_frsize"], flags))
        return 0
    return _statfs(task, f.loc, buf)
