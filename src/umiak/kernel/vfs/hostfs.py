"""A host directory as a guest file system (the root, later volumes).

The host is only ever asked about one name inside a directory this file system
already holds open (`openat`/`fstatat` with `O_NOFOLLOW`), and names are never
`.`, `..` or contain `/`: symlinks and `..` are the VFS's business, so neither
a symlink nor a rename racing with the guest can lead outside the host directory.
"""

import os
import stat as _stat
from typing import TYPE_CHECKING

from umiak.kernel import abi
from umiak.kernel.errors import EINVAL, ENOENT, ENOTDIR, EOPNOTSUPP, SyscallError
from umiak.kernel.files import HostFile, oserror
from umiak.kernel.vfs.nodes import DirFile, FileSystem, Node, dtype

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FD_CACHE = 128   # directory fds kept open for lookups


class HostFS(FileSystem):
    """`host_root` seen as a file system; `readonly` refuses every change (EROFS).
    `caches`: the kernel's page caches of host files (pagecache.PageCaches), given to the
    files opened here so read/write see the pages of shared mappings."""

    fstype = "hostfs"   # its type in /proc/self/mounts
    dev = 0             # the device /proc/self/mountinfo shows (files keep their host st_dev)

    def __init__(self, host_root: str, readonly: bool = True, caches=None):
        self.caches = caches
        try:   # a directory, or a single file (-v /host/file:/guest/file)
            self.root_fd = os.open(host_root, os.O_PATH | os.O_CLOEXEC)
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

    def forget(self) -> None:
        """Directories were renamed or removed: drop the cached fds (they follow the inode)."""
        for k, v in list(self._dirfds.items()):
            if k:
                os.close(v)
        self._dirfds = {(): self.root_fd}

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


class _Changes(Node):
    """Changes to a writable host directory (volumes). Every name is one component in a
    directory held open; the object of chmod/chown/utime/truncate is reached through an
    O_PATH|O_NOFOLLOW fd, so no host symlink is ever followed."""

    __slots__ = ()
    # What the node it is mixed into (HostNode) has:
    fs: "HostFS"
    rel: tuple[str, ...]   # the path below fs.host_root, one name per component
    mode: int
    if TYPE_CHECKING:
        def stat(self): ...
        def lookup(self, name: str) -> "HostNode": ...

    def _dirfd(self) -> int:
        return self.fs.dirfd(self.rel)

    def _host(self, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except OSError as e:
            raise oserror(e) from None

    def create(self, name: str, mode: int, owner=None) -> Node:
        fd = self._host(os.open, name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                        mode, dir_fd=self._dirfd())
        os.close(fd)
        self._own(name, owner)
        return self.lookup(name)

    def mkdir(self, name: str, mode: int, owner=None) -> None:
        self._host(os.mkdir, name, mode, dir_fd=self._dirfd())
        self._own(name, owner)

    def mknod(self, name: str, mode: int, dev: int, owner=None) -> None:
        self._host(os.mknod, name, mode, dev, dir_fd=self._dirfd())
        self._own(name, owner)

    def symlink(self, name: str, target: str, owner=None) -> None:
        self._host(os.symlink, target, name, dir_fd=self._dirfd())
        self._own(name, owner)

    def _own(self, name: str, owner) -> None:
        """A new file belongs to the guest's fsuid/fsgid as on Linux (so `--user` programs
        such as initdb can use the 0700 directories they make), when the host lets us chown."""
        euid = os.geteuid()
        if owner is None or owner == (euid, os.getegid()) or euid != 0 and owner[0] != euid:
            return   # nothing to change, or a change only root may make
        try:
            os.chown(name, owner[0], owner[1], dir_fd=self._dirfd(), follow_symlinks=False)
        except OSError:
            pass  # an unprivileged umiak: the file stays the host user's, as before

    def link(self, name: str, old: "HostNode") -> None:
        self._host(os.link, old.rel[-1], name, src_dir_fd=old.fs.dirfd(old.rel[:-1]),
                   dst_dir_fd=self._dirfd(), follow_symlinks=False)

    def unlink(self, name: str) -> None:
        self._host(os.unlink, name, dir_fd=self._dirfd())

    def rmdir(self, name: str) -> None:
        self._host(os.rmdir, name, dir_fd=self._dirfd())
        self.fs.forget()

    def rename(self, name: str, new_parent: "HostNode", new_name: str, flags: int) -> None:
        src, dst = self._dirfd(), new_parent.fs.dirfd(new_parent.rel)
        if flags:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.renameat2(src, os.fsencode(name), dst, os.fsencode(new_name), flags) != 0:
                raise SyscallError(ctypes.get_errno() or EINVAL)
        else:
            self._host(os.rename, name, new_name, src_dir_fd=src, dst_dir_fd=dst)
        self.fs.forget()

    def _host_open(self, flags: int) -> int:
        """A host fd of this node (never through a host symlink)."""
        if not self.rel:   # the mount's root itself, held as an O_PATH fd
            return self._host(os.open, f"/proc/self/fd/{self.fs.root_fd}", flags & ~os.O_NOFOLLOW)
        return self._host(os.open, self.rel[-1], flags, dir_fd=self.fs.dirfd(self.rel[:-1]))

    def read_bytes(self) -> bytes:
        """The whole file (copy-up into the overlay)."""
        fd = self._host_open(os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            chunks: list[bytes] = []
            while True:
                b = self._host(os.read, fd, 1 << 20)
                if not b:
                    return b"".join(chunks)
                chunks.append(b)
        finally:
            os.close(fd)

    def _self_fd(self) -> int:
        if not self.rel:
            return os.dup(self.fs.root_fd)
        return self._host(os.open, self.rel[-1], os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=self.fs.dirfd(self.rel[:-1]))

    def _via_fd(self, fn, *args, **kw):
        fd = self._self_fd()
        try:
            return self._host(fn, f"/proc/self/fd/{fd}", *args, **kw)
        finally:
            os.close(fd)

    def chmod(self, mode: int) -> None:
        if _stat.S_ISLNK(self.mode):
            raise SyscallError(EOPNOTSUPP)
        self._via_fd(os.chmod, mode)

    def chown(self, uid: int, gid: int) -> None:
        if _stat.S_ISLNK(self.mode):
            fd = self.fs.dirfd(self.rel[:-1])
            self._host(os.chown, self.rel[-1], uid, gid, dir_fd=fd, follow_symlinks=False)
            return
        self._via_fd(os.chown, uid, gid)

    def utime(self, ts) -> None:
        import time
        if ts is None:
            self._via_fd(os.utime)
            return
        st = self.stat()
        now = time.time_ns()
        out = []
        for (sec, nsec), old in zip(ts, (st.st_atime_ns, st.st_mtime_ns), strict=True):
            out.append(now if nsec == (1 << 30) - 1 else old if nsec == (1 << 30) - 2 else sec * 10**9 + nsec)
        self._via_fd(os.utime, ns=tuple(out))

    def truncate(self, length: int) -> None:
        fd = self._host_open(os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            self._host(os.ftruncate, fd, length)
            if self.fs.caches:
                st = os.fstat(fd)
                c = self.fs.caches.get((st.st_dev, st.st_ino))
                if c is not None:
                    c.truncate(length)   # mapped pages past the end go (SIGBUS on touch)
        finally:
            os.close(fd)


class HostNode(_Changes):
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
                for ent in it:
                    try:
                        t = dtype(ent.stat(follow_symlinks=False).st_mode)
                    except OSError:
                        t = abi.DT_UNKNOWN
                    out.append((ent.inode(), t, ent.name))
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
        fd = self._host_open(host_flags)
        return HostFile(fd, flags, loc.path if loc is not None else "/".join(self.rel), owned=True, loc=loc,
                        caches=self.fs.caches if _stat.S_ISREG(self.mode) else None)


def host_statfs(fd: int) -> dict:
    """fstatfs(2) of a host fd (Python's statvfs lacks f_type, so ask libc)."""
    import ctypes
    buf = ctypes.create_string_buffer(abi.STATFS.size)   # the host's struct statfs is Linux's
    libc = ctypes.CDLL(None, use_errno=True)
    # an O_PATH fd works with fstatfs
    if libc.fstatfs(fd, buf) != 0:
        raise SyscallError(ctypes.get_errno() or EINVAL)
    (f_type, f_bsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, fsid0, fsid1,
     f_namelen, f_frsize, f_flags) = abi.STATFS.unpack(buf.raw)
    return dict(f_type=f_type, f_bsize=f_bsize, f_blocks=f_blocks, f_bfree=f_bfree,
                f_bavail=f_bavail, f_files=f_files, f_ffree=f_ffree, f_fsid=(fsid0, fsid1),
                f_namelen=f_namelen, f_frsize=f_frsize, f_flags=f_flags)
