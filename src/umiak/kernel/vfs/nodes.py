"""Building blocks shared by the file systems: directory and O_PATH files, synthetic
nodes (the entries of procfs and devfs), in-memory file contents and devices."""

import os
import stat as _stat
import time
from typing import TYPE_CHECKING

from umiak.kernel import abi
from umiak.kernel.errors import (EACCES, EBADF, EINVAL, EISDIR, ENOENT, ENOSPC, ENOTDIR, ENXIO, EOPNOTSUPP,
                                 SyscallError)
from umiak.kernel.files import File, Mapping, Stat, seek_target

if TYPE_CHECKING:
    from umiak.kernel.vfs.core import Loc

DT_OF_MODE = {
    _stat.S_IFDIR: abi.DT_DIR, _stat.S_IFREG: abi.DT_REG, _stat.S_IFLNK: abi.DT_LNK,
    _stat.S_IFCHR: abi.DT_CHR, _stat.S_IFBLK: abi.DT_BLK, _stat.S_IFIFO: abi.DT_FIFO,
    _stat.S_IFSOCK: abi.DT_SOCK,
}


def dtype(mode: int) -> int:
    return DT_OF_MODE.get(_stat.S_IFMT(mode), abi.DT_UNKNOWN)


def makedev(major: int, minor: int) -> int:
    """Linux's new_encode_dev, as glibc's makedev for st_dev/st_rdev."""
    return ((major & 0xFFFFF000) << 32) | ((major & 0xFFF) << 8) | ((minor & 0xFFFFFF00) << 12) | (minor & 0xFF)


class Node:
    """A node of a file system tree (interfaces.Inode). Every file system's nodes subclass
    it; the defaults are Linux's answers for an object without the operation."""

    __slots__ = ()
    mode: int
    tty = False    # a terminal device: open() is also given O_NOCTTY (DeviceNode)
    magic = None   # a magic link (/proc/self/exe, fd/N): jump(vfs, task) -> the Loc it leads to

    def stat(self):
        raise NotImplementedError

    def lookup(self, name: str) -> "Node":
        raise SyscallError(ENOTDIR)

    def list(self) -> list[tuple[int, int, str]]:
        raise SyscallError(ENOTDIR)

    def readlink(self) -> str:
        raise SyscallError(EINVAL)

    def open(self, task, loc, flags: int) -> File:
        raise SyscallError(ENXIO)

    def create(self, name: str, mode: int, owner=None) -> "Node":
        """A new regular file in this directory (open(O_CREAT)); EACCES where none can be made."""
        raise SyscallError(EACCES)

    def copy_up(self) -> "Node":
        """The node that takes changes: itself, or an overlay's in-memory copy of a host file."""
        return self

    def xattrs(self) -> dict[bytes, bytes]:
        """Extended attributes, full name -> value (only an image's inodes have any)."""
        return {}


class FileSystem:
    """A mountable file system (interfaces.FileSys): its root node and whether it refuses changes."""

    fstype = "none"     # its type in /proc/self/mounts (subclasses name theirs)
    readonly = False
    root: Node

    def statfs(self, node) -> dict:
        raise NotImplementedError

    def tmpfile(self, task, loc, flags: int, mode: int) -> File:
        """open(O_TMPFILE) in a directory of this file system."""
        raise SyscallError(EOPNOTSUPP)


class LocFile(File):
    """A file opened at a place (Loc) in the VFS tree: its path and stat come from there."""

    loc: "Loc"

    def __init__(self, loc, flags: int):
        self.loc = loc
        self.flags = flags

    @property
    def path(self) -> str:  # type: ignore[override]  # derived, where the base stores it
        return self.loc.path

    def stat(self):
        return self.loc.node.stat()


class PathFile(LocFile):
    """An O_PATH descriptor: a place in the tree usable as dirfd and by fstat, nothing else."""

    def read(self, n: int) -> bytes:
        raise SyscallError(EBADF)

    def write(self, data: bytes) -> int:
        raise SyscallError(EBADF)


class DirFile(LocFile):
    """An open directory of any file system whose node has list() -> [(ino, d_type, name)]."""

    pollable = False

    def __init__(self, loc, flags: int):
        super().__init__(loc, flags)
        self.dir_pos = 0
        self._entries: list[tuple[int, int, str]] | None = None

    def read(self, n: int) -> bytes:
        raise SyscallError(EISDIR)

    def pread(self, offset: int, n: int) -> bytes:
        raise SyscallError(EISDIR)

    def sync(self) -> None:
        pass

    def dir_entries(self):
        if self._entries is None:
            loc = self.loc
            ino = loc.node.stat().st_ino
            parent = loc.parent if loc.parent is not None and loc.path != "/" else loc
            try:
                pino = parent.node.stat().st_ino
            except SyscallError:
                pino = ino
            self._entries = [(ino, abi.DT_DIR, "."), (pino, abi.DT_DIR, "..")] + list(loc.node.list())
        return self._entries

    def lseek(self, offset: int, whence: int) -> int:
        if whence == abi.SEEK_SET:
            pos = offset
        elif whence == abi.SEEK_CUR:
            pos = self.dir_pos + offset
        else:
            raise SyscallError(EINVAL)
        if pos < 0:
            raise SyscallError(EINVAL)
        if pos == 0:
            self._entries = None    # rewinddir sees the directory as it is now
        self.dir_pos = pos
        return pos


class BytesFile(LocFile):
    """A file whose contents were made when it was opened (procfs files); with `store`,
    a write hands the bytes to it (/proc/self/comm), else EINVAL."""

    def __init__(self, loc, flags: int, data: bytes, store=None):
        super().__init__(loc, flags)
        self.data = data
        self.pos = 0
        self.store = store

    def read(self, n: int) -> bytes:
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def pread(self, offset: int, n: int) -> bytes:
        return self.data[offset:offset + n]

    def write(self, data: bytes) -> int:
        if self.store is None:
            raise SyscallError(EINVAL)
        self.store(data)
        return len(data)

    def pwrite(self, offset: int, data: bytes) -> int:
        return self.write(data)

    def lseek(self, offset: int, whence: int) -> int:
        self.pos = seek_target(offset, whence, self.pos, len(self.data))
        return self.pos

    def available(self) -> int:
        return max(0, len(self.data) - self.pos)

    full_reads = True

    def mmap_file(self):
        return BytesMapping(self.data, self.path)


class BytesMapping(Mapping):
    """A read-only mapping of bytes made at open (what mm's file mappings need)."""

    writable = False

    def __init__(self, data: bytes, path: str):
        self.data = data
        self.path = path

    def pread(self, offset: int, n: int) -> bytes:
        return self.data[offset:offset + n]

    def pwrite(self, offset: int, data: bytes) -> int:
        return len(data)

    def size(self) -> int:
        return len(self.data)


# -- synthetic nodes -------------------------------------------------------------

class SynthFS(FileSystem):
    """A small in-memory file system of synthetic nodes (procfs, devfs)."""

    magic = abi.TMPFS_MAGIC

    def __init__(self, dev: int):
        self.dev = dev
        self._next_ino = 1
        self.time_ns = time.time_ns()
        self.root = None   # type: ignore[assignment]  # set by the subclass

    def ino(self) -> int:
        self._next_ino += 1
        return self._next_ino

    def statfs(self, node) -> dict:
        return dict(f_type=self.magic, f_bsize=4096, f_blocks=0, f_bfree=0, f_bavail=0,
                    f_files=0, f_ffree=0, f_namelen=255, f_frsize=4096)


class SynthNode(Node):
    nlink = 1

    def __init__(self, fs: SynthFS, mode: int, rdev: int = 0, uid: int = 0, gid: int = 0):
        self.fs = fs
        self.mode = mode
        self.ino = fs.ino()
        self.rdev = rdev
        self.uid = uid
        self.gid = gid

    def size(self) -> int:
        return 0

    def stat(self):
        t = self.fs.time_ns
        return Stat(st_mode=self.mode, st_ino=self.ino, st_dev=self.fs.dev, st_nlink=self.nlink,
                    st_uid=self.uid, st_gid=self.gid, st_size=self.size(), st_rdev=self.rdev,
                    st_blksize=4096 if not self.rdev else 4096, st_blocks=0,
                    st_atime_ns=t, st_mtime_ns=t, st_ctime_ns=t)


class SynthDir(SynthNode):
    """A directory whose entries are fixed (a dict) or made on each look (a callable)."""

    def __init__(self, fs: SynthFS, entries=None, mode: int = 0o555):
        super().__init__(fs, _stat.S_IFDIR | mode)
        self._entries = entries if entries is not None else {}

    def entries(self) -> dict:
        e = self._entries
        return e() if callable(e) else e

    @property
    def nlink(self):  # type: ignore[override]  # derived, where the base stores it
        return 2 + sum(1 for n in self.entries().values() if _stat.S_ISDIR(n.mode))

    def lookup(self, name: str):
        node = self.entries().get(name)
        if node is None:
            raise SyscallError(ENOENT)
        return node

    def list(self):
        return [(n.ino, dtype(n.mode), name) for name, n in self.entries().items()]

    def open(self, task, loc, flags: int):
        return DirFile(loc, flags)


class SynthFile(SynthNode):
    """A file whose contents a function makes at open (size 0 in stat, as procfs);
    writable when `store(data)` is given (and the mode allows)."""

    def __init__(self, fs: SynthFS, content, mode: int = 0o444, store=None):
        super().__init__(fs, _stat.S_IFREG | mode)
        self.content = content
        self.store = store

    def open(self, task, loc, flags: int):
        acc = flags & abi.O_ACCMODE
        if acc != abi.O_RDONLY and self.store is None:
            raise SyscallError(EACCES)
        data = self.content(task) if acc != abi.O_WRONLY else b""
        return BytesFile(loc, flags, data if isinstance(data, bytes) else data.encode(), self.store)

    def truncate(self, length: int) -> None:
        if self.store is None:
            raise SyscallError(EACCES)


class SynthLink(SynthNode):
    """A symlink with a fixed or computed target; with `jump` it is a magic link: following
    it goes to the location jump(vfs, task) gives, not to its text (/proc/self/exe, fd/N)."""

    def __init__(self, fs: SynthFS, target, jump=None, size=None):
        super().__init__(fs, _stat.S_IFLNK | 0o777)
        self.target = target
        self.link_size = size     # procfs reports 0 (and 64 for fd/N) rather than the length
        if jump is not None:
            self.magic = jump

    def readlink(self) -> str:
        t = self.target
        return t() if callable(t) else t

    def size(self) -> int:
        if self.link_size is not None:
            return self.link_size
        return len(os.fsencode(self.readlink()))


class DeviceNode(SynthNode):
    """A character device: opening it asks `factory(task, loc, flags)` for the File.
    A terminal (`tty`) is given O_NOCTTY too: without it, a session leader's open
    makes the terminal its controlling one."""

    def __init__(self, fs: SynthFS, major: int, minor: int, factory, mode: int = 0o666, tty: bool = False):
        super().__init__(fs, _stat.S_IFCHR | mode, rdev=makedev(major, minor))
        self.factory = factory
        self.tty = tty

    def open(self, task, loc, flags: int):
        return self.factory(task, loc, flags)


class FileNode(Node):
    """What /proc/self/fd/N leads to for a file with no place in the tree (pipes, stdio):
    stat is the file's, open makes a new description of the same object."""

    def __init__(self, file: File):
        self.file = file
        self.mode = file.stat().st_mode

    def stat(self):
        return self.file.stat()

    def open(self, task, loc, flags: int):
        return self.file.reopen(flags)


# -- devices -----------------------------------------------------------------------

class DeviceFile(LocFile):
    def lseek(self, offset: int, whence: int) -> int:
        return 0

    def pread(self, offset: int, n: int) -> bytes:
        return self.read(n)

    def pwrite(self, offset: int, data: bytes) -> int:
        return self.write(data)


class NullFile(DeviceFile):
    pollable = False

    def read(self, n: int) -> bytes:
        return b""

    def write(self, data: bytes) -> int:
        return len(data)


class ZeroFile(DeviceFile):
    pollable = False

    def read(self, n: int) -> bytes:
        return bytes(n)

    def write(self, data: bytes) -> int:
        return len(data)

    def mmap_file(self):
        return ZeroMapping()


class ZeroMapping(Mapping):
    """A mapping of /dev/zero: zeros as far as it goes (Linux makes it anonymous memory)."""

    writable = True
    path = "/dev/zero (deleted)"

    def pread(self, offset: int, n: int) -> bytes:
        return bytes(n)

    def pwrite(self, offset: int, data: bytes) -> int:
        return len(data)

    def size(self) -> int:
        return 1 << 62


class FullFile(ZeroFile):
    def write(self, data: bytes) -> int:
        raise SyscallError(ENOSPC)


class RandomFile(DeviceFile):
    def read(self, n: int) -> bytes:
        return os.urandom(n)

    def write(self, data: bytes) -> int:
        return len(data)
