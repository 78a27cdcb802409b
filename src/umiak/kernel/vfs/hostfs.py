"""A host directory as a guest file system (the root, later volumes).

The host is only ever asked about one name inside a directory this file system
already holds open (`openat`/`fstatat` with `O_NOFOLLOW`), and names are never
`.`, `..` or contain `/`: symlinks and `..` are the VFS's business, so neither
a symlink nor a rename racing with the guest can lead outside the host directory.
"""

import os
import stat as _stat

from umiak.kernel import abi
from umiak.kernel.errors import EINVAL, ENOENT, ENOTDIR, SyscallError
from umiak.kernel.files import HostFile, oserror
from umiak.kernel.vfs.nodes import DirFile, dtype

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FD_CACHE = 128   # directory fds kept open for lookups


class HostFS:
    """`host_root` seen as a file system; `readonly` refuses every change (EROFS)."""

    def __init__(self, host_root: str, readonly: bool = True):
        try:
            self.root_fd = os.open(host_root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise SyscallError(e.errno or ENOENT) from None
        self.host_root = host_root
        self.readonly = readonly
        self._dirfds: dict[tuple[str, ...], int] = {(): self.root_fd}
        self.root = HostNode(self, (), os.fstat(self.root_fd))

    def dirfd(self, rel: tuple[str, ...]) -> int:
        """An O_PATH fd of the directory at rel (opened one name at a time, no symlinks)."""
        fd = self._dirfds.get(rel)
        if fd is not None:
            return fd
        parent = self.dirfd(rel[:-1])
        try:
            fd = os.open(rel[-1], _DIR_FLAGS, dir_fd=parent)
        except OSError as e:
            # a symlink swapped in behind our back gives ELOOP here: say it is no directory
            raise SyscallError(ENOTDIR if e.errno in (20, 40) else (e.errno or ENOENT)) from None
        if len(self._dirfds) >= FD_CACHE:
            for k, v in list(self._dirfds.items()):
                if k:
                    os.close(v)
            self._dirfds = {(): self.root_fd}
        self._dirfds[rel] = fd
        return fd

    def statfs(self, node: "HostNode") -> dict:
        fd = self.dirfd(node.rel) if _stat.S_ISDIR(node.mode) else self.dirfd(node.rel[:-1])
        return host_statfs(fd)

    def close(self) -> None:
        for v in self._dirfds.values():
            try:
                os.close(v)
            except OSError:
                pass
        self._dirfds = {}


class HostNode:
    __slots__ = ("fs", "rel", "st", "mode")

    def __init__(self, fs: HostFS, rel: tuple[str, ...], st: os.stat_result):
        self.fs = fs
        self.rel = rel
        self.st = st
        self.mode = st.st_mode

    def _parent_fd(self) -> int:
        return self.fs.dirfd(self.rel[:-1])

    def stat(self):
        """A fresh lstat (sizes and times change under a running program)."""
        try:
            if not self.rel:
                st = os.fstat(self.fs.root_fd)
            else:
                st = os.stat(self.rel[-1], dir_fd=self._parent_fd(), follow_symlinks=False)
        except OSError as e:
            raise oserror(e) from None
        self.st = st
        return st

    def lookup(self, name: str) -> "HostNode":
        try:
            st = os.stat(name, dir_fd=self.fs.dirfd(self.rel), follow_symlinks=False)
        except OSError as e:
            raise oserror(e) from None
        return HostNode(self.fs, self.rel + (name,), st)

    def readlink(self) -> str:
        try:
            return os.readlink(self.rel[-1], dir_fd=self._parent_fd())
        except OSError as e:
            raise oserror(e) from None

    def list(self):
        try:
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.fs.dirfd(self.rel))
        except OSError as e:
            raise oserror(e) from None
        out = []
        try:
            with os.scandir(fd) as it:
                for e in it:
                    try:
                        t = dtype(e.stat(follow_symlinks=False).st_mode)
                    except OSError:
                        t = abi.DT_UNKNOWN
                    out.append((e.inode(), t, e.name))
        finally:
            os.close(fd)
        return out

    def open(self, task, loc, flags: int):
        if _stat.S_ISDIR(self.mode):
            return DirFile(loc, flags)
        host_flags = (flags & (abi.O_ACCMODE | abi.O_APPEND | abi.O_TRUNC)) \
            | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
        if not _stat.S_ISREG(self.mode):
            host_flags |= os.O_NONBLOCK   # a host FIFO must not block the whole VM in open
        try:
            fd = os.open(self.rel[-1], host_flags, dir_fd=self._parent_fd()) if self.rel else \
                os.open(".", host_flags, dir_fd=self.fs.root_fd)
        except OSError as e:
            raise oserror(e) from None
        return HostFile(fd, flags, loc.path, owned=True, loc=loc)


def host_statfs(fd: int) -> dict:
    """fstatfs(2) of a host fd (Python's statvfs lacks f_type, so ask libc)."""
    import ctypes
    buf = ctypes.create_string_buffer(120)
    libc = ctypes.CDLL(None, use_errno=True)
    # an O_PATH fd works with fstatfs
    if libc.fstatfs(fd, buf) != 0:
        raise SyscallError(ctypes.get_errno() or EINVAL)
    import struct
    (f_type, f_bsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, fsid0, fsid1,
     f_namelen, f_frsize, f_flags) = struct.unpack_from("<qqQQQQQiiqqq", buf.raw)
    return dict(f_type=f_type, f_bsize=f_bsize, f_blocks=f_blocks, f_bfree=f_bfree,
                f_bavail=f_bavail, f_files=f_files, f_ffree=f_ffree, f_fsid=(fsid0, fsid1),
                f_namelen=f_namelen, f_frsize=f_frsize, f_flags=f_flags)
