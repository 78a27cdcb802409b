"""In-memory file systems: tmpfs, the write overlay on the root, and memfd files.

One set of nodes serves all three:

    MemInode  a file, symlink, FIFO, device or socket name whose data is in memory
    MemDir    a directory: its own entries, and optionally a `lower` host directory
              (a HostNode) seen through it; names removed from the lower one are
              kept as whiteouts
    Leaf      a file of the lower directory, read from the host until something
              changes it; then it is copied up into a MemInode and stays there

A tmpfs is a MemDir tree without lower directories. The overlay on the root is a
MemDir whose lower is the host's root (or --root): reading goes to the host,
creating, writing, renaming, deleting, chmod and chown happen in memory and vanish
with the VM. A lower directory renamed keeps its lower (Linux's overlayfs would
need redirect_dir for that). Copied-up files keep the host's st_dev and st_ino.
"""

import os
import stat as _stat
import time
from typing import TYPE_CHECKING

from umiak.kernel import abi
from umiak.kernel.abi import (F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE,
                              FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, MFD_ALLOW_SEALING, OVERLAYFS_SUPER_MAGIC,
                              RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT, TMPFS_MAGIC, UTIME_NOW, UTIME_OMIT)
from umiak.kernel.errors import (EEXIST, EFBIG, EINVAL, EISDIR, ENOENT, ENOSPC, ENOTDIR, ENOTEMPTY,
                                 ENXIO, EOPNOTSUPP, EPERM, EXDEV, GuestOutOfMemory, SyscallError)
from umiak.kernel.files import File, Mapping, Stat, seek_target
from umiak.kernel.vfs.nodes import DirFile, FileSystem, Node, dtype, makedev


if TYPE_CHECKING:
    from umiak.kernel.vfs.pipe import Pipe
    from umiak.kernel.pagecache import MemCache

BOGO_DIRENT_SIZE = 20        # tmpfs counts 20 bytes of st_size per directory entry
PAGE = 4096
MAX_FILE = 1 << 46           # s_maxbytes of tmpfs on x86-64 (close enough)

class MemFS(FileSystem):
    """A tmpfs: `limit` bytes of file data at most (ENOSPC beyond), half the guest's RAM by default."""

    fstype = "tmpfs"
    magic = TMPFS_MAGIC

    def __init__(self, kernel, mode: int = 0o1777, limit: int | None = None, lower=None):
        self.kernel = kernel
        self.dev = makedev(0, next(kernel.anon_minors))   # an anonymous block device 0:N, as Linux's
        self._ino = 0
        if limit is None:
            limit = max(kernel.options.mem_size // 2, 1 << 20)
        self.limit = limit
        self.used = 0
        self.root = MemDir(self, _stat.S_IFDIR | mode, (0, 0), lower=lower)
        if lower is None:
            self.root.ino = 1

    def next_ino(self) -> int:
        self._ino += 1
        return self._ino

    def charge(self, delta: int) -> None:
        """File data grows (or shrinks) by delta bytes: ENOSPC past the limit."""
        if delta > 0 and self.used + delta > self.limit:
            raise SyscallError(ENOSPC)
        self.used += delta

    def reserve(self, n: int) -> None:
        """ENOSPC unless n more bytes of pages fit (they are counted once present: settle)."""
        if n > 0 and self.used + n > self.limit:
            raise SyscallError(ENOSPC)

    def statfs(self, node) -> dict:
        bs = 4096
        return dict(f_type=self.magic, f_bsize=bs, f_blocks=self.limit // bs,
                    f_bfree=max(0, self.limit - self.used) // bs, f_bavail=max(0, self.limit - self.used) // bs,
                    f_files=self.limit // bs, f_ffree=self.limit // bs - self._ino, f_namelen=255,
                    f_frsize=bs, f_fsid=(0, 0), f_flags=abi.ST_RELATIME)

    def tmpfile(self, task, loc, flags: int, mode: int):
        """open(O_TMPFILE): an unnamed file in this file system (linkat can give it a name)."""
        from umiak.kernel.vfs.core import Loc
        inode = MemInode(self, _stat.S_IFREG | (mode & 0o7777), _owner(task))
        inode.nlink = 0
        path = loc.child_path(f"#{inode.ino}") + " (deleted)"
        return inode.open(task, Loc(path, inode, loc.mount, loc), flags & ~abi.O_TMPFILE)


class OverlayFS(MemFS):
    """The root: the host directory `lower` (a HostFS) with an in-memory layer over it."""

    fstype = "overlay"
    magic = OVERLAYFS_SUPER_MAGIC

    def __init__(self, kernel, lower_fs):
        self.lower_fs = lower_fs
        super().__init__(kernel, 0o755, limit=1 << 62, lower=lower_fs.root)

    def statfs(self, node) -> dict:
        info = dict(self.lower_fs.statfs(self.lower_fs.root))
        info["f_type"] = self.magic
        info["f_flags"] = info.get("f_flags", 0) & ~abi.ST_RDONLY
        return info


def _owner(task) -> tuple[int, int]:
    if task is None:
        return 0, 0
    c = task.process.creds
    return c.euid, c.egid


def _now() -> int:
    return time.time_ns()


class _Attrs(Node):
    """st_* fields kept in memory."""

    def _init_attrs(self, fs, mode: int, owner: tuple[int, int]):
        self.fs = fs
        self.ino = fs.next_ino()
        self.dev = fs.dev
        self.mode = mode
        self.uid, self.gid = owner
        self.atime = self.mtime = self.ctime = _now()

    def chmod(self, mode: int) -> None:
        self.mode = _stat.S_IFMT(self.mode) | (mode & 0o7777)
        self.ctime = _now()

    def chown(self, uid: int, gid: int) -> None:
        if uid != -1:
            self.uid = uid & 0xFFFFFFFF
        if gid != -1:
            self.gid = gid & 0xFFFFFFFF
        if not _stat.S_ISDIR(self.mode):
            # Linux drops set-user-ID (and set-group-ID when group-executable) on chown
            drop = _stat.S_ISUID | (_stat.S_ISGID if self.mode & 0o010 else 0)
            self.mode &= ~drop
        self.ctime = _now()

    def utime(self, ts) -> None:
        now = _now()
        if ts is None:
            self.atime = self.mtime = now
        else:
            for i, (sec, nsec) in enumerate(ts):
                if nsec == UTIME_OMIT:
                    continue
                v = now if nsec == UTIME_NOW else sec * 1_000_000_000 + nsec
                if i == 0:
                    self.atime = v
                else:
                    self.mtime = v
        self.ctime = now


class MemInode(_Attrs):
    """A non-directory in memory. A regular file's data is its page cache (guest frames, holes
    absent), so read/write, truncate and every MAP_SHARED mapping see one copy. The file
    system is charged for the pages present, not the size: holes are free, as in Linux's
    tmpfs (a write at 2 GiB costs one page; SEEK_DATA/SEEK_HOLE report the pages)."""

    def __init__(self, fs, mode: int, owner: tuple[int, int], rdev: int = 0):
        self._init_attrs(fs, mode, owner)
        self.nlink = 1
        self.rdev = rdev
        self.length = 0          # st_size of a regular file
        self.charged = 0         # bytes of pages the file system counts for this file (settle)
        self._cache: "MemCache | None" = None
        self.target = ""
        self.pipe: Pipe | None = None   # a FIFO's pipe, made at its first open
        self.seals = 0
        self.locks = None

    @property
    def cache(self):
        """The file's pages (made on first use; the frames go back when the inode is freed)."""
        c = self._cache
        if c is None:
            import weakref

            from umiak.kernel.pagecache import MemCache, memory_of
            frames, ram = memory_of(self.fs.kernel)
            c = self._cache = MemCache(frames, ram)
            weakref.finalize(self, _free_pages, c).atexit = False
        return c

    def read_at(self, offset: int, n: int) -> bytes:
        n = min(n, self.length - offset)
        if n <= 0 or offset < 0:
            return b""
        return self.cache.read(offset, n)

    def read_into(self, offset: int, views: "list[memoryview]") -> int:
        """read_at straight into guest memory (File.readinto)."""
        n = min(sum(map(len, views)), self.length - offset)
        if n <= 0 or offset < 0:
            return 0
        return self.cache.read_into(offset, n, views)

    @property
    def data(self) -> bytes:
        """The whole content (for the few callers that want it at once)."""
        return self.read_at(0, self.length)

    @data.setter
    def data(self, content) -> None:
        """Replace the content; the caller has charged the file system for it."""
        if self._cache is not None:
            self._cache.truncate(0)
        self.length = 0
        if content:
            self.cache.write(0, content)
        self.length = len(content)

    def size(self) -> int:
        if _stat.S_ISLNK(self.mode):
            return len(os.fsencode(self.target))
        return self.length

    def stat(self):
        size = self.size()
        blocks = (self._cache.resident() * 8 if self._cache is not None else 0) if _stat.S_ISREG(self.mode) else 0
        return Stat(st_mode=self.mode, st_ino=self.ino, st_dev=self.dev, st_nlink=self.nlink,
                    st_uid=self.uid, st_gid=self.gid, st_size=size, st_rdev=self.rdev,
                    st_blksize=4096, st_blocks=blocks,
                    st_atime_ns=self.atime, st_mtime_ns=self.mtime, st_ctime_ns=self.ctime)

    def readlink(self) -> str:
        if not _stat.S_ISLNK(self.mode):
            raise SyscallError(EINVAL)
        return self.target

    def settle(self) -> None:
        """Charge the file system for the pages now present (written, or faulted in by a
        shared mapping since the last change), or give back what was dropped."""
        have = self._cache.resident() * PAGE if self._cache is not None else 0
        if have != self.charged:
            self.fs.used += have - self.charged
            self.charged = have

    def _missing(self, offset: int, end: int) -> int:
        """Bytes of the pages in [offset, end) not present yet (what a write must allocate)."""
        first, last = offset // PAGE, (end - 1) // PAGE
        pages = self._cache.pages if self._cache is not None else {}
        if len(pages) < last - first + 1:
            have = sum(1 for i in pages if first <= i <= last)
        else:
            have = sum(1 for i in range(first, last + 1) if i in pages)
        return (last - first + 1 - have) * PAGE

    def truncate(self, length: int) -> None:
        if _stat.S_ISDIR(self.mode):
            raise SyscallError(EISDIR)
        if length > MAX_FILE:
            raise SyscallError(EFBIG)
        old = self.length
        if length != old:
            if length < old and self._cache is not None:
                self._cache.truncate(length)   # mapped pages past the end go: SIGBUS on touch
            self.length = length               # growing makes a hole: nothing to charge
            self.settle()
        self.mtime = self.ctime = _now()

    def write_at(self, offset: int, data) -> int:
        n = len(data)
        end = offset + n
        if end > MAX_FILE:
            raise SyscallError(EFBIG)
        if n == 0:
            return 0
        old = self.length
        self.fs.reserve(self._missing(offset, end))
        try:
            self.cache.write(offset, data)
        except GuestOutOfMemory:               # out of guest memory: leave the file as it was
            if end > old:
                self.cache.truncate(old)
            self.settle()
            raise SyscallError(ENOSPC) from None
        if end > old:
            self.length = end
        self.settle()
        self.mtime = self.ctime = _now()
        return n

    def seek_data_hole(self, offset: int, hole: bool) -> int:
        """lseek SEEK_DATA/SEEK_HOLE: data is the pages present, holes the rest; ENXIO at or past
        the end, and the end of the file is a hole."""
        size = self.length
        if offset < 0 or offset >= size:
            raise SyscallError(ENXIO)
        pages = self._cache.pages if self._cache is not None else {}
        idx, last = offset // PAGE, (size - 1) // PAGE
        if hole:
            while idx <= last and idx in pages:
                idx += 1
            return min(size, max(offset, idx * PAGE))
        after = [i for i in pages if idx <= i <= last]
        if not after:
            raise SyscallError(ENXIO)
        return max(offset, min(after) * PAGE)

    def open(self, task, loc, flags: int):
        fmt = _stat.S_IFMT(self.mode)
        if fmt == _stat.S_IFREG:
            if flags & abi.O_TRUNC and self.length:
                self.truncate(0)
            return MemFile(loc, flags, self)
        if fmt == _stat.S_IFIFO:
            return _open_fifo(task, self, loc, flags)
        if fmt in (_stat.S_IFCHR, _stat.S_IFBLK):
            return _open_device(task, self, loc, flags)
        raise SyscallError(ENXIO)


class Leaf(Node):
    """A non-directory of a lower (host) directory, until a change copies it up."""

    __slots__ = ("lower", "upper", "fs")

    def __init__(self, fs, lower):
        self.fs = fs
        self.lower = lower
        self.upper = None

    @property   # Node declares mode a plain attribute: a Leaf's is its upper's or lower's
    def mode(self) -> int:  # type: ignore[override]
        return self.upper.mode if self.upper is not None else self.lower.mode

    @property
    def nlink(self):
        return self.upper.nlink if self.upper is not None else self.lower.st.st_nlink

    def stat(self):
        return self.upper.stat() if self.upper is not None else self.lower.stat()

    def readlink(self) -> str:
        return self.upper.readlink() if self.upper is not None else self.lower.readlink()

    def size(self) -> int:
        return self.stat().st_size

    def xattrs(self) -> dict[bytes, bytes]:
        return self.lower.xattrs() if self.upper is None else {}

    def copy_up(self) -> MemInode:
        """Bring the host file into memory (keeping its st_dev and st_ino)."""
        if self.upper is not None:
            return self.upper
        st = self.lower.stat()
        inode = MemInode(self.fs, st.st_mode, (st.st_uid, st.st_gid), st.st_rdev)
        inode.ino, inode.dev = st.st_ino, st.st_dev
        inode.atime, inode.mtime, inode.ctime = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
        if _stat.S_ISLNK(st.st_mode):
            inode.target = self.lower.readlink()
        elif _stat.S_ISREG(st.st_mode):
            data = self.lower.read_bytes()
            self.fs.reserve(len(data))
            inode.data = data
            inode.settle()
        self.upper = inode
        return inode

    def open(self, task, loc, flags: int):
        if self.upper is None and ((flags & abi.O_ACCMODE) != abi.O_RDONLY or flags & abi.O_TRUNC) \
                and _stat.S_ISREG(self.lower.mode):
            self.copy_up()
        if self.upper is not None:
            return self.upper.open(task, loc, flags)
        if _stat.S_ISFIFO(self.lower.mode) or _stat.S_ISCHR(self.lower.mode) or _stat.S_ISBLK(self.lower.mode):
            return self.copy_up().open(task, loc, flags)   # a FIFO or device of the root lives in the VM
        return self.lower.open(task, loc, flags)

    def chmod(self, mode: int) -> None:
        self.copy_up().chmod(mode)

    def chown(self, uid: int, gid: int) -> None:
        self.copy_up().chown(uid, gid)

    def utime(self, ts) -> None:
        self.copy_up().utime(ts)

    def truncate(self, length: int) -> None:
        self.copy_up().truncate(length)


def _inode_of(node):
    """The MemInode behind a node that can be hard-linked (a Leaf is copied up first)."""
    if isinstance(node, Leaf):
        return node.copy_up()
    return node


class PendingFill:
    """What a MemDir is to hold before anything looks inside it (MemDir.pending): made by
    the first look, once; other threads looking meanwhile wait for it."""

    def __init__(self, fill):
        import threading
        self.fill = fill
        self.lock = threading.Lock()
        self.filler: int | None = None   # the thread filling (its own looks go through)

    def run(self, d: "MemDir") -> None:
        from threading import get_ident
        if self.filler == get_ident():
            return
        with self.lock:
            if d.pending is not self:
                return
            self.filler = get_ident()
            try:
                self.fill()
            finally:
                d.pending = None
                self.filler = None


class MemDir(_Attrs):
    """A directory in memory, over an optional lower host directory."""

    def __init__(self, fs, mode: int, owner: tuple[int, int], lower=None, parent=None):
        self.lower = lower
        self.parent = parent
        self._entries: dict = {}
        self.pending: PendingFill | None = None   # the VM's /etc files: made at the first look inside
        self.whiteouts: set[str] = set()
        self.own = lower is None          # st_* fields are ours (else the lower's until changed)
        self._init_attrs(fs, mode, owner)
        if lower is not None:
            st = lower.st
            self.ino, self.dev, self.mode = st.st_ino, st.st_dev, st.st_mode
            self.uid, self.gid = st.st_uid, st.st_gid
        self.locks = None

    # -- st_* ---------------------------------------------------------------------
    def _own(self) -> None:
        """This directory's attributes change: take them over from the lower directory."""
        if not self.own:
            st = self.lower.stat()
            self.mode, self.uid, self.gid = st.st_mode, st.st_uid, st.st_gid
            self.atime, self.mtime, self.ctime = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
            self.own = True

    def _changed(self) -> None:
        self._own()
        self.mtime = self.ctime = _now()

    def chmod(self, mode: int) -> None:
        self._own()
        super().chmod(mode)

    def chown(self, uid: int, gid: int) -> None:
        self._own()
        super().chown(uid, gid)

    def utime(self, ts) -> None:
        self._own()
        super().utime(ts)

    def stat(self):
        if not self.own:
            return self.lower.stat()
        if self.lower is None:
            nsub = sum(1 for n in self.entries.values() if _stat.S_ISDIR(n.mode))
            return Stat(st_mode=self.mode, st_ino=self.ino, st_dev=self.dev, st_nlink=2 + nsub,
                        st_uid=self.uid, st_gid=self.gid,
                        st_size=(len(self.entries) + 2) * BOGO_DIRENT_SIZE, st_blksize=4096,
                        st_atime_ns=self.atime, st_mtime_ns=self.mtime, st_ctime_ns=self.ctime)
        try:
            st = self.lower.stat()
            size, nlink = st.st_size, st.st_nlink
        except SyscallError:
            size, nlink = 4096, 2
        return Stat(st_mode=self.mode, st_ino=self.ino, st_dev=self.dev, st_nlink=nlink,
                    st_uid=self.uid, st_gid=self.gid, st_size=size, st_blksize=4096, st_blocks=8,
                    st_atime_ns=self.atime, st_mtime_ns=self.mtime, st_ctime_ns=self.ctime)

    def xattrs(self) -> dict[bytes, bytes]:
        return self.lower.xattrs() if self.lower is not None else {}

    @property
    def entries(self) -> dict:
        """The names made or changed here (the lower directory's others show through)."""
        if self.pending is not None:
            self.pending.run(self)
        return self._entries

    # -- names ----------------------------------------------------------------------
    def lookup(self, name: str):
        n = self.entries.get(name)
        if n is not None:
            return n
        if self.lower is None or name in self.whiteouts:
            raise SyscallError(ENOENT)
        hn = self.lower.lookup(name)
        if _stat.S_ISDIR(hn.mode):
            n = MemDir(self.fs, hn.mode, (0, 0), lower=hn, parent=self)
        else:
            n = Leaf(self.fs, hn)
        self.entries[name] = n
        return n

    def _lower_has(self, name: str) -> bool:
        if self.lower is None:
            return False
        try:
            self.lower.lookup(name)
            return True
        except SyscallError:
            return False

    def list(self):
        out, seen = [], set()
        entries = self.entries
        if self.lower is not None:
            for ino, t, name in self.lower.list():
                if name in self.whiteouts:
                    continue
                seen.add(name)
                n = entries.get(name)
                if n is None:
                    out.append((ino, t, name))
                else:
                    out.append((_ino(n, ino), dtype(n.mode), name))
        for name, n in entries.items():
            if name not in seen:
                out.append((_ino(n, 0), dtype(n.mode), name))
        return out

    def is_empty(self) -> bool:
        if self.entries:
            return False
        if self.lower is None:
            return True
        return all(name in self.whiteouts for _, _, name in self.lower.list())

    def open(self, task, loc, flags: int):
        return DirFile(loc, flags)

    # -- changes -----------------------------------------------------------------------
    def _add(self, name: str, node) -> None:
        if name in self.entries or (name not in self.whiteouts and self._lower_has(name)):
            raise SyscallError(EEXIST)
        self.whiteouts.discard(name)
        self.entries[name] = node
        self._changed()

    def _drop(self, name: str) -> None:
        self.entries.pop(name, None)
        if self._lower_has(name):
            self.whiteouts.add(name)
        self._changed()

    def _new_owner(self, owner) -> tuple[int, int]:
        uid, gid = owner if owner is not None else (0, 0)
        if self.mode & _stat.S_ISGID:
            gid = self.gid
        return uid, gid

    def create(self, name: str, mode: int, owner=None) -> MemInode:
        node = MemInode(self.fs, _stat.S_IFREG | (mode & 0o7777), self._new_owner(owner))
        self._add(name, node)
        return node

    def mkdir(self, name: str, mode: int, owner=None) -> None:
        d = MemDir(self.fs, _stat.S_IFDIR | (mode & 0o7777) | (self.mode & _stat.S_ISGID),
                   self._new_owner(owner), parent=self)
        self._add(name, d)

    def mknod(self, name: str, mode: int, dev: int, owner=None) -> None:
        fmt = _stat.S_IFMT(mode) or _stat.S_IFREG
        node = MemInode(self.fs, fmt | (mode & 0o7777), self._new_owner(owner),
                        rdev=dev if fmt in (_stat.S_IFCHR, _stat.S_IFBLK) else 0)
        self._add(name, node)

    def symlink(self, name: str, target: str, owner=None) -> None:
        node = MemInode(self.fs, _stat.S_IFLNK | 0o777, self._new_owner(owner))
        node.target = target
        self._add(name, node)

    def link(self, name: str, old) -> None:
        inode = _inode_of(old)
        if isinstance(inode, MemDir):
            raise SyscallError(EPERM)
        if inode.fs is not self.fs:
            raise SyscallError(EXDEV)
        self._add(name, inode)
        inode.nlink += 1
        inode.ctime = _now()

    def unlink(self, name: str) -> None:
        node = self.lookup(name)
        if isinstance(node, MemDir):
            raise SyscallError(EISDIR)
        self._drop(name)
        inode = node.upper if isinstance(node, Leaf) else node
        if inode is not None:
            inode.nlink -= 1
            inode.ctime = _now()
            if inode.nlink <= 0:
                _release(inode)

    def rmdir(self, name: str) -> None:
        node = self.lookup(name)
        if not isinstance(node, MemDir):
            raise SyscallError(ENOTDIR)
        if not node.is_empty():
            raise SyscallError(ENOTEMPTY)
        self._drop(name)

    def rename(self, name: str, new_parent: "MemDir", new_name: str, flags: int) -> None:
        if not isinstance(new_parent, MemDir):
            raise SyscallError(EXDEV)
        node = self.lookup(name)
        try:
            target = new_parent.lookup(new_name)
        except SyscallError as e:
            if e.errno != ENOENT:
                raise
            target = None
        if flags & RENAME_EXCHANGE:
            if target is None:
                raise SyscallError(ENOENT)
            if isinstance(node, MemDir) and new_parent._under(node) or \
                    isinstance(target, MemDir) and self._under(target):
                raise SyscallError(EINVAL)
            self.entries[name], new_parent.entries[new_name] = target, node
            for d, n in ((self, target), (new_parent, node)):
                if isinstance(n, MemDir):
                    n.parent = d
                d._changed()
            return
        if target is not None and flags & RENAME_NOREPLACE:
            raise SyscallError(EEXIST)
        if isinstance(node, MemDir):
            if new_parent._under(node):
                raise SyscallError(EINVAL)
            if target is not None and target is not node:
                if not isinstance(target, MemDir):
                    raise SyscallError(ENOTDIR)
                if not target.is_empty():
                    raise SyscallError(ENOTEMPTY)
        elif isinstance(target, MemDir):
            raise SyscallError(EISDIR)
        if target is node or (target is not None and _same(target, node)):
            return                         # two names of one file: nothing to do, as Linux
        if target is not None and not isinstance(target, MemDir):
            inode = target.upper if isinstance(target, Leaf) else target
            if inode is not None:
                inode.nlink -= 1
                if inode.nlink <= 0:
                    _release(inode)
        self.entries.pop(name, None)
        if self._lower_has(name):
            self.whiteouts.add(name)
        if flags & RENAME_WHITEOUT:
            wo = MemInode(self.fs, _stat.S_IFCHR, (0, 0), rdev=0)
            self.whiteouts.discard(name)
            self.entries[name] = wo
        new_parent.whiteouts.discard(new_name)
        new_parent.entries[new_name] = node
        if isinstance(node, MemDir):
            node.parent = new_parent
        self._changed()
        if new_parent is not self:
            new_parent._changed()

    def _under(self, ancestor: "MemDir") -> bool:
        """Is self ancestor or inside it (renaming a directory into itself is EINVAL)."""
        d = self
        while d is not None:
            if d is ancestor:
                return True
            d = d.parent
        return False

    def truncate(self, length: int) -> None:
        raise SyscallError(EISDIR)


def _same(a, b) -> bool:
    ia = a.upper if isinstance(a, Leaf) else a
    ib = b.upper if isinstance(b, Leaf) else b
    return ia is not None and ia is ib


def _ino(node, default: int) -> int:
    try:
        return node.ino if not isinstance(node, Leaf) else (node.upper.ino if node.upper else node.lower.st.st_ino)
    except AttributeError:
        return default


def _release(inode: MemInode) -> None:
    """The last name is gone; open files keep the data until closed (then Python frees it)."""
    inode.fs.charge(-inode.charged)
    inode.charged = 0
    inode.fs = _Detached(inode.fs)


def _free_pages(cache) -> None:
    """The inode is gone (no name, no open file, no mapping): its frames are free again."""
    try:
        cache.drop_all()
    except Exception:  # noqa: BLE001 - the VM may be gone already
        pass


class _Detached:
    """The file system of an unlinked file: writes through open descriptors still work but no
    longer count against the mount's limit (they are freed when the last one closes)."""

    def __init__(self, fs):
        self.dev = fs.dev
        self.kernel = fs.kernel
        self.used = 0                       # counted, never limited

    def charge(self, delta: int) -> None:
        pass

    def reserve(self, n: int) -> None:
        pass

    def next_ino(self) -> int:
        return 0


# -- open files -----------------------------------------------------------------------------

class MemFile(File):
    """An open in-memory regular file (tmpfs, the overlay's upper files, memfd)."""

    full_reads = True

    def is_regular(self) -> bool:
        return True

    def __init__(self, loc, flags: int, inode: MemInode, path: str | None = None):
        self.loc = loc
        self.flags = flags
        self.inode: MemInode = inode
        self.pos = 0
        self._path = path

    @property
    def path(self) -> str:  # type: ignore[override]  # derived, where the base stores it
        return self._path if self._path is not None else self._loc_path()

    def _loc_path(self) -> str:
        assert self.loc is not None, "a memory file without a path of its own has a place in the VFS"
        return self.loc.path

    def link_text(self) -> str:
        if self._path is not None:
            return self._path
        path = self._loc_path()
        return path + (" (deleted)" if self.inode.nlink == 0 and "(deleted)" not in path else "")

    def stat(self):
        return self.inode.stat()

    def read(self, n: int) -> bytes:
        out = self.inode.read_at(self.pos, n)
        self.pos += len(out)
        return out

    def pread(self, offset: int, n: int) -> bytes:
        return self.inode.read_at(offset, n)

    def readinto(self, views: "list[memoryview]") -> int:
        n = self.inode.read_into(self.pos, views)
        self.pos += n
        return n

    def preadinto(self, offset: int, views: "list[memoryview]") -> int:
        return self.inode.read_into(offset, views)

    def _check_seals(self, offset: int, n: int) -> None:
        seals = self.inode.seals
        if seals & F_SEAL_WRITE or seals & F_SEAL_FUTURE_WRITE:
            raise SyscallError(EPERM)
        if seals & F_SEAL_GROW and offset + n > self.inode.length:
            raise SyscallError(EPERM)

    def write(self, data: bytes) -> int:
        if self.flags & abi.O_APPEND:
            self.pos = self.inode.length
        self._check_seals(self.pos, len(data))
        n = self.inode.write_at(self.pos, data)
        self.pos += n
        return n

    def pwrite(self, offset: int, data: bytes) -> int:
        if self.flags & abi.O_APPEND:     # Linux appends even for pwrite on O_APPEND files
            offset = self.inode.length
        self._check_seals(offset, len(data))
        return self.inode.write_at(offset, data)

    def lseek(self, offset: int, whence: int) -> int:
        self.pos = seek_target(offset, whence, self.pos, self.inode.length,
                               lambda off, data: self.inode.seek_data_hole(off, not data))
        return self.pos

    def truncate(self, length: int) -> None:
        seals = self.inode.seals
        cur = self.inode.length
        if length < cur and seals & F_SEAL_SHRINK or length > cur and seals & F_SEAL_GROW:
            raise SyscallError(EPERM)
        self.inode.truncate(length)

    def allocate(self, mode: int, offset: int, length: int) -> None:
        """fallocate(2): mode 0 and FALLOC_FL_KEEP_SIZE; holes are not kept, so punching zeroes."""
        end = offset + length
        if mode & FALLOC_FL_PUNCH_HOLE:
            stop = min(end, self.inode.length)
            if offset < stop:
                self.inode.cache.zero(offset, stop)
            return
        if mode & ~FALLOC_FL_KEEP_SIZE:
            raise SyscallError(EOPNOTSUPP)
        if end > self.inode.length and not mode & FALLOC_FL_KEEP_SIZE:
            if self.inode.seals & F_SEAL_GROW:
                raise SyscallError(EPERM)
            self.inode.truncate(end)

    def available(self) -> int:
        return max(0, self.inode.length - self.pos)

    def sync(self) -> None:
        pass

    def statfs(self) -> dict:
        """A memfd (no place in the tree): its internal tmpfs."""
        return self.inode.fs.statfs(self.inode)

    def mmap_file(self):
        return MemMapping(self.inode, self.writable(), self.path)

    def reopen(self, flags: int) -> "MemFile":
        """open("/proc/self/fd/N") of a memfd: a new description of the same inode."""
        f = MemFile(self.loc, flags & ~(abi.O_CREAT | abi.O_EXCL | abi.O_CLOEXEC), self.inode, self._path)
        if flags & abi.O_TRUNC and (flags & abi.O_ACCMODE) != abi.O_RDONLY:
            f.truncate(0)
        return f


class MemMapping(Mapping):
    """What a mapping of an in-memory file holds: the inode (the data outlives close(2)).
    MAP_SHARED maps the inode's own frames (page_cache); MAP_PRIVATE copies them (pread)."""

    def __init__(self, inode: MemInode, writable: bool, path: str):
        self.inode = inode
        self.writable = bool(writable)
        self.path = path

    def pread(self, offset: int, n: int) -> bytes:
        return self.inode.read_at(offset, n)

    def page_cache(self):
        return self.inode.cache

    def size(self) -> int:
        return self.inode.length

    def ident(self) -> tuple[int, int]:
        return self.inode.dev, self.inode.ino


def make_memfd(kernel, name: str, flags: int, owner: tuple[int, int]) -> MemFile:
    """memfd_create(2): a file of an internal tmpfs; /proc/self/fd shows /memfd:NAME (deleted)."""
    fs = kernel._memfd_fs
    if fs is None:
        fs = kernel._memfd_fs = MemFS(kernel, 0o1777)
    inode = MemInode(fs, _stat.S_IFREG | 0o777, owner)
    inode.nlink = 0
    if not flags & MFD_ALLOW_SEALING:
        inode.seals = F_SEAL_SEAL
    return MemFile(None, abi.O_RDWR | abi.O_LARGEFILE, inode, path=f"/memfd:{name} (deleted)")


# -- FIFOs and device nodes in memory ---------------------------------------------------------

def _open_fifo(task, inode: MemInode, loc, flags: int):
    """A named pipe: every open shares the inode's Pipe. O_NONBLOCK|O_WRONLY without a reader
    is ENXIO; a blocking open waits for the other end when another thread could open it."""
    from umiak.kernel.vfs.pipe import Pipe, PipeEnd
    p = inode.pipe
    if p is None:
        p = inode.pipe = Pipe(inode.fs.kernel, inode.uid, inode.gid)
        p.ino = inode.ino
    acc = flags & abi.O_ACCMODE
    if acc == abi.O_WRONLY and flags & abi.O_NONBLOCK and p.readers == 0:
        raise SyscallError(ENXIO)
    keep = flags & ~(abi.O_CREAT | abi.O_EXCL | abi.O_TRUNC | abi.O_CLOEXEC)
    end = PipeEnd(p, keep, acc != abi.O_WRONLY, both=acc == abi.O_RDWR)
    end.loc = loc
    p.waitq.notify()
    if acc != abi.O_RDWR and not flags & abi.O_NONBLOCK and task is not None and len(task.kernel.tasks) > 1:
        # The other end came, even if it has gone again before this task ran (Linux's
        # wait_for_partner: a count of opens, not the ends open now).
        side = 1 if acc == abi.O_RDONLY else 0
        seen = p.opened[side]
        other = (lambda: p.opened[side] != seen or (p.writers if side else p.readers) > 0)
        q = p.waitq
        entry = q.add(task)
        try:
            task.wait(other)
        except BaseException:
            end.close()
            raise
        finally:
            q.remove(entry)
    return end


def _open_device(task, inode: MemInode, loc, flags: int):
    """mknod'ed character devices open the devfs device with the same numbers."""
    kernel = inode.fs.kernel
    if kernel is None or not _stat.S_ISCHR(inode.mode):
        raise SyscallError(ENXIO)
    devfs = kernel.vfs.mounts.get("/dev")
    if devfs is not None:
        for node in devfs.fs.root.entries().values():
            if node.rdev == inode.rdev and _stat.S_ISCHR(node.mode):
                return node.open(task, loc, flags)
    raise SyscallError(ENXIO)
