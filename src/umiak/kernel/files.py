"""Open file descriptions and the per-process descriptor table.

A `File` is what an fd points at (Linux's struct file): its offset and status
flags are shared by every fd dup'ed from it. Concrete files (host files,
devices, pipes, directories) override what they support; the defaults give
the errno Linux gives for an operation the object lacks.
"""

import heapq
import os
import stat as _stat
from typing import TYPE_CHECKING, TypeVar

from umiak.kernel import abi
from umiak.kernel.errors import (EAGAIN, EBADF, EINVAL, EISDIR, EMFILE, ENOTDIR, ENOTTY, ENXIO,
                                 EOPNOTSUPP, ESPIPE, SyscallError)
from umiak.records import record

if TYPE_CHECKING:
    from umiak.kernel.interfaces import Mappable
    from umiak.kernel.jobctl import Terminal
    from umiak.kernel.pagecache import HostCache, PageCaches
    from umiak.kernel.vfs.core import Loc
    from umiak.kernel.vfs.memfs import MemInode
    from umiak.kernel.vfs.pipe import Pipe
    from umiak.kernel.waiting import WaitQueue

# The kernel's struct termios (TCGETS/TCSETS*): 4 flags, c_line, c_cc[19]; glibc's own
# 60-byte struct is not what the ioctl takes (tcgetattr converts), and 60 bytes written
# into its 36-byte buffer overran the guest's stack.
TERMIOS_SIZE = 36


@record
class Stat:
    """What stat(2) reports about a file that has no host file behind it (same names as os.stat_result)."""
    st_mode: int
    st_ino: int = 0
    st_dev: int = 0
    st_nlink: int = 1
    st_uid: int = 0
    st_gid: int = 0
    st_size: int = 0
    st_rdev: int = 0
    st_blksize: int = 4096
    st_blocks: int = 0
    st_atime_ns: int = 0
    st_mtime_ns: int = 0
    st_ctime_ns: int = 0


def oserror(e: OSError) -> SyscallError:
    return SyscallError(e.errno or EINVAL)


def seek_target(offset: int, whence: int, pos: int, size: int, data_hole=None) -> int:
    """lseek(2)'s new position from SEEK_SET/CUR/END, or SEEK_DATA/SEEK_HOLE through
    data_hole(offset, want_data) where the file has holes; EINVAL for an unknown whence
    or a negative result, as Linux's generic_file_llseek."""
    if whence == abi.SEEK_SET:
        new = offset
    elif whence == abi.SEEK_CUR:
        new = pos + offset
    elif whence == abi.SEEK_END:
        new = size + offset
    elif whence in (abi.SEEK_DATA, abi.SEEK_HOLE) and data_hole is not None:
        new = data_hole(offset, whence == abi.SEEK_DATA)
    else:
        raise SyscallError(EINVAL)
    if new < 0:
        raise SyscallError(EINVAL)
    return new


def scatter(data: bytes, views: "list[memoryview]") -> int:
    """Copy data over views in order (as far as it goes); its length."""
    mv = memoryview(data)
    done, n = 0, len(mv)
    for v in views:
        k = min(len(v), n - done)
        if k <= 0:
            break
        v[:k] = mv[done:done + k]
        done += k
    return done


class File:
    """Base open file description: every operation the kernel may ask of an open file
    (interfaces.FileOps), each with the default Linux gives a file that lacks it."""

    path = ""          # guest path, for /proc/self/fd and strace
    flags = abi.O_RDONLY
    loc: "Loc | None" = None   # where the file sits in the VFS, None for pipes and stdio
    pipe: "Pipe | None" = None   # the in-memory pipe this is an end of (pipes and FIFOs)
    inode: "MemInode | None" = None   # the in-memory inode of a file with no place in the tree (memfd), else None
    sigpipe_on_epipe = False     # EPIPE from write(2) comes with SIGPIPE (pipes, host pipes/ttys)
    owner = 0          # F_SETOWN's pid
    dir_pos = 0        # getdents(2)'s position in dir_entries() (directories)
    pollable = True    # False where Linux's file has no poll (directories, /dev/null): epoll_ctl EPERM
    _waitq: "WaitQueue | None" = None

    def is_regular(self) -> bool:
        """A regular file: never blocks, cannot be polled (epoll_ctl says EPERM)."""
        return False

    # -- readiness (waiting.py) -----------------------------------------------------
    @property
    def waitq(self) -> "WaitQueue":
        """The queue woken when the file's readiness changes (made on first use)."""
        q = self._waitq
        if q is None:
            from umiak.kernel.waiting import WaitQueue
            q = self._waitq = WaitQueue()
        return q

    def host_fd(self) -> int | None:
        """The host fd whose readiness is this file's (polled with the kernel lock
        released), or None when readiness is the kernel's own (poll_mask and waitq)."""
        return None

    def poll_mask(self) -> int:
        """Current readiness as POLL* bits: the host fd's, else readable/writable."""
        fd = self.host_fd()
        if fd is not None:
            import select
            p = select.poll()
            p.register(fd, abi.POLLIN | abi.POLLOUT | abi.POLLPRI)
            got = p.poll(0)
            return got[0][1] if got else 0
        mask = 0
        if self.readable():
            mask |= abi.POLLIN | abi.POLLRDNORM
        if self.writable():
            mask |= abi.POLLOUT | abi.POLLWRNORM
        return mask

    def readable(self) -> bool:
        return (self.flags & abi.O_ACCMODE) != abi.O_WRONLY and not self.flags & abi.O_PATH

    def writable(self) -> bool:
        return (self.flags & abi.O_ACCMODE) in (abi.O_WRONLY, abi.O_RDWR) and not self.flags & abi.O_PATH

    def read(self, n: int) -> bytes:
        raise SyscallError(EINVAL)

    def write(self, data: bytes) -> int:
        raise SyscallError(EINVAL)

    def pread(self, offset: int, n: int) -> bytes:
        raise SyscallError(ESPIPE)

    def pwrite(self, offset: int, data: bytes) -> int:
        raise SyscallError(ESPIPE)

    def readinto(self, views: "list[memoryview]") -> int:
        """read(2) straight into guest memory (mm.write_views), for files that read fully
        (full_reads): the bytes read, spread over the views in order. Files whose data
        is at hand on the host override it to skip the intermediate bytes."""
        return scatter(self.read(sum(map(len, views))), views)

    def preadinto(self, offset: int, views: "list[memoryview]") -> int:
        """pread(2) straight into guest memory: as readinto, at offset."""
        return scatter(self.pread(offset, sum(map(len, views))), views)

    def lseek(self, offset: int, whence: int) -> int:
        raise SyscallError(ESPIPE)

    def stat(self):
        raise SyscallError(EBADF)

    def size(self) -> int:
        return self.stat().st_size

    def ioctl(self, task, req: int, arg: int) -> int:
        raise SyscallError(ENOTTY)

    def dir_entries(self) -> list[tuple[int, int, str]]:
        """All entries as (inode, d_type, name), '.' and '..' first; for directories only.
        getdents(2) walks them with `dir_pos`, which lseek resets."""
        raise SyscallError(ENOTDIR)

    def truncate(self, length: int) -> None:
        raise SyscallError(EINVAL)

    def available(self) -> int:
        """Bytes readable without blocking (FIONREAD)."""
        raise SyscallError(ENOTTY)

    def link_text(self) -> str:
        """What readlink("/proc/self/fd/N") shows."""
        return self.loc.path if self.loc is not None else self.path

    def reopen(self, flags: int) -> "File":
        """open("/proc/self/fd/N") of a file that has no path in the VFS (pipes, stdio)."""
        raise SyscallError(ENXIO)

    def sync(self) -> None:
        """fsync(2): files with nothing to write back say EINVAL, as Linux's pipes and devices."""
        raise SyscallError(EINVAL)

    def allocate(self, mode: int, offset: int, length: int) -> None:
        """fallocate(2) of a regular file whose file system cannot reserve space."""
        raise SyscallError(EOPNOTSUPP)

    pseudo_fs = abi.ANON_INODE_FS_MAGIC   # the internal file system fstatfs names (below)

    def statfs(self) -> dict:
        """fstatfs(2) of a file with no place in the tree: its pseudo file system, as
        Linux's simple_statfs (anon_inodefs for eventfd/epoll/..., pipefs, sockfs)."""
        return dict(f_type=self.pseudo_fs, f_bsize=4096, f_blocks=0, f_bfree=0, f_bavail=0, f_files=0,
                    f_ffree=0, f_namelen=255, f_frsize=4096)

    def set_host_flags(self, flags: int) -> None:
        """F_SETFL: the new status flags, for a file that keeps some of them on the host."""

    def mmap_file(self) -> "Mapping | None":
        """What a mapping of the file holds (mm's Vma.file), or None: mmap(2) says ENODEV."""
        return None

    full_reads = False   # read(2) may loop to fill the buffer (regular files), else one call
    # read(2) and write(2) of an O_NONBLOCK description are one host call each, readinto and
    # write, with nothing in between (host sockets: a busy server's calls)
    direct_io = False

    # -- lifetime -------------------------------------------------------------------
    # Every holder of the description takes a reference: each fd slot (dup, dup2,
    # F_DUPFD, SCM_RIGHTS receipt), each SCM_RIGHTS message in flight, and any mapping
    # that wants the file kept open. The last decref() closes it; nothing else in the
    # fd layer calls close(). epoll and the lock table do not hold the file: they ask
    # to be told when it goes, with watch(), as Linux's eventpoll_release().
    refs = 0
    _watchers: dict | None = None   # key -> fn(file), run once when the last reference goes

    def incref(self) -> "File":
        self.refs += 1
        return self

    def decref(self) -> None:
        """Drop one reference; at zero, tell the watchers and close the file (once)."""
        refs = self.refs - 1
        self.refs = refs
        if refs > 0:
            return
        if refs < 0:
            raise AssertionError(f"decref of an unreferenced file {self.path!r}")
        watchers = self._watchers
        if watchers:
            self._watchers = None
            for fn in watchers.values():
                fn(self)
        self.close()

    def watch(self, key, fn) -> None:
        """Call fn(self) when the description's last reference goes (replacing key's earlier fn)."""
        if self._watchers is None:
            self._watchers = {}
        self._watchers[key] = fn

    def unwatch(self, key) -> None:
        if self._watchers:
            self._watchers.pop(key, None)

    def close(self) -> None:
        """Release what the description holds: called once, by the last decref() (or
        directly on a file that was never installed)."""


class HostFile(File):
    """A host file descriptor: the guest's stdin/stdout/stderr (not owned: never closed),
    and regular files of host-backed file systems (owned).

    `caches` is the kernel's page_caches (set for files of host file systems): while a
    host file is mapped MAP_SHARED its pages live there, and read/write of any open
    file of the same inode go through them (pagecache.HostCache)."""

    caches: "PageCaches | None" = None
    sigpipe_on_epipe = True   # a host pipe or terminal (a regular file never gives EPIPE)

    def __init__(self, fd: int, flags: int, path: str, owned: bool = False, loc=None, caches=None):
        self.fd = fd
        self.flags = flags
        self.path = path
        self.owned = owned
        self.loc = loc
        self._regular: bool | None = None
        self._tty: bool | None = None
        self._key: tuple[int, int] | None = None
        if caches is not None:
            self.caches = caches

    def _is_regular(self) -> bool:
        if self._regular is None:
            try:
                st = os.fstat(self.fd)
                self._regular = _stat.S_ISREG(st.st_mode)
                self._key = (st.st_dev, st.st_ino)
            except OSError:
                self._regular = False
        return self._regular

    is_regular = _is_regular

    def host_fd(self) -> int | None:
        """Stdio terminals and pipes, host FIFOs and ttys: polled on the host."""
        if self.fd < 0 or self._is_regular():
            return None
        return self.fd

    def statfs(self) -> dict:
        from umiak.kernel.vfs.hostfs import host_statfs
        return host_statfs(self.fd)

    def _cache(self) -> "HostCache | None":
        """The page cache of this host file while some mapping shares it, else None."""
        if self.caches is not None and self._is_regular():
            return self.caches.get(self._key)
        return None

    def _would_block(self, events: int) -> bool:
        """Never block the VM inside a host read or write: a terminal or pipe that is not
        ready gives EAGAIN, and the syscall layer waits (with the kernel lock released)
        unless the guest asked for O_NONBLOCK, which is never set on the shared host fd."""
        import select
        p = select.poll()
        p.register(self.fd, events)
        return not p.poll(0)

    def read(self, n: int) -> bytes:
        if not self._is_regular():
            import select
            if self._would_block(select.POLLIN):
                raise SyscallError(EAGAIN)
        elif self.caches:
            c = self.caches.get(self._key)
            if c is not None:
                return self._read_cached(c, n)
        try:
            return os.read(self.fd, n)
        except IsADirectoryError:
            raise SyscallError(EISDIR) from None
        except OSError as e:
            raise oserror(e) from None

    def readinto(self, views: "list[memoryview]") -> int:
        """A regular host file reads into guest memory with one readv (no bytes made), unless
        a MAP_SHARED mapping of it has a page cache, whose (newer) pages it must see."""
        if self.caches and self._cache() is not None:
            return super().readinto(views)
        return _host_io(os.readv, self.fd, views)

    def preadinto(self, offset: int, views: "list[memoryview]") -> int:
        if self.caches and self._cache() is not None:
            return super().preadinto(offset, views)
        return _host_io(os.preadv, self.fd, views, offset)

    def _read_cached(self, c, n: int) -> bytes:
        try:
            pos = os.lseek(self.fd, 0, os.SEEK_CUR)
            data = os.read(self.fd, n)
        except OSError as e:
            raise oserror(e) from None
        return c.overlay(pos, data)

    def write(self, data: bytes) -> int:
        if not self._is_regular():
            import select
            if self._would_block(select.POLLOUT):
                raise SyscallError(EAGAIN)
        elif self.caches:
            c = self.caches.get(self._key)
            if c is not None:
                try:
                    n = os.write(self.fd, data)
                    pos = os.lseek(self.fd, 0, os.SEEK_CUR) - n   # O_APPEND: where it went
                except OSError as e:
                    raise oserror(e) from None
                c.write(pos, memoryview(data)[:n], allocate=False)
                return n
        try:
            return os.write(self.fd, data)
        except OSError as e:
            raise oserror(e) from None

    def pread(self, offset: int, n: int) -> bytes:
        try:
            data = os.pread(self.fd, n, offset)
        except OSError as e:
            raise oserror(e) from None
        if self.caches:
            c = self._cache()
            if c is not None:
                return c.overlay(offset, data)
        return data

    def pwrite(self, offset: int, data: bytes) -> int:
        try:
            n = os.pwrite(self.fd, data, offset)
        except OSError as e:
            raise oserror(e) from None
        if self.caches:
            c = self._cache()
            if c is not None:
                if self.flags & abi.O_APPEND:   # Linux appends even for pwrite on O_APPEND files
                    offset = os.fstat(self.fd).st_size - n
                c.write(offset, memoryview(data)[:n], allocate=False)
        return n

    def lseek(self, offset: int, whence: int) -> int:
        try:
            return os.lseek(self.fd, offset, whence)
        except OSError as e:
            raise oserror(e) from None

    def stat(self):
        try:
            return os.fstat(self.fd)
        except OSError as e:
            raise oserror(e) from None

    def available(self) -> int:
        import fcntl
        import termios
        try:
            out = fcntl.ioctl(self.fd, termios.FIONREAD, bytes(4))
        except OSError as e:
            raise oserror(e) from None
        return int.from_bytes(out, "little", signed=True)

    def truncate(self, length: int) -> None:
        try:
            os.ftruncate(self.fd, length)
        except OSError as e:
            raise oserror(e) from None
        if self.caches:
            c = self._cache()
            if c is not None:
                c.truncate(length)

    def sync(self) -> None:
        """fsync(2)/fdatasync(2): the file's dirty mapped pages first, as Linux."""
        try:
            if self.caches:
                c = self._cache()
                if c is not None:
                    c.writeback()
            os.fsync(self.fd)
        except OSError as e:
            raise oserror(e) from None

    @property
    def full_reads(self) -> bool:  # type: ignore[override]  # derived, where the base stores it
        return self._is_regular()

    def link_text(self) -> str:
        if self.loc is not None:
            return self.loc.path
        try:
            return os.readlink(f"/proc/self/fd/{self.fd}")
        except OSError:
            return self.path

    def reopen(self, flags: int) -> File:
        """A new open file description of the same host object, as Linux's /proc/self/fd/N open."""
        host_flags = (flags & (abi.O_ACCMODE | abi.O_APPEND | abi.O_TRUNC)) | os.O_CLOEXEC | os.O_NOCTTY
        try:
            fd = os.open(f"/proc/self/fd/{self.fd}", host_flags)
        except OSError as e:
            raise oserror(e) from None
        return HostFile(fd, flags & ~(abi.O_CREAT | abi.O_EXCL | abi.O_TRUNC | abi.O_CLOEXEC),
                        self.link_text(), owned=True, caches=self.caches)

    def mmap_file(self) -> "MappedHostFile":
        return MappedHostFile(self)

    def set_host_flags(self, flags: int) -> None:
        """F_SETFL: O_APPEND must reach a host fd we own (the host keeps the offset);
        O_NONBLOCK stays the guest's (emulated), never set on a shared host fd."""
        if not self.owned:
            return
        import fcntl
        try:
            cur = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            fcntl.fcntl(self.fd, fcntl.F_SETFL, (cur & ~os.O_APPEND) | (flags & os.O_APPEND))
        except OSError as e:
            raise oserror(e) from None

    def terminal(self, kernel) -> "Terminal | None":
        """The job-control state of this host tty (kernel/jobctl.py); None if not a tty."""
        if self._tty is None:
            self._tty = not self._is_regular() and self.fd >= 0 and os.isatty(self.fd)
        if not self._tty:
            return None
        from umiak.kernel.jobctl import host_terminal
        return host_terminal(kernel, self.fd)

    def ioctl(self, task, req: int, arg: int) -> int:
        import fcntl
        if req in (abi.TIOCGPGRP, abi.TIOCSPGRP, abi.TIOCSCTTY, abi.TIOCNOTTY, abi.TIOCGSID):
            # The guest's own process groups and sessions, never the host's.
            term = self.terminal(task.kernel)
            if term is None:
                raise SyscallError(ENOTTY)
            from umiak.kernel.jobctl import ioctl
            ioctl(task, term, req, arg)
            return 0
        if req in (abi.TCGETS, abi.TIOCGWINSZ):
            size = {abi.TCGETS: TERMIOS_SIZE, abi.TIOCGWINSZ: 8}[req]
            try:
                out = fcntl.ioctl(self.fd, req, bytes(size))
            except OSError as e:
                raise oserror(e) from None
            task.mm.write(arg, out)
            return 0
        if req in (abi.TCSETS, abi.TCSETSW, abi.TCSETSF, abi.TIOCSWINSZ):
            size = 8 if req == abi.TIOCSWINSZ else TERMIOS_SIZE
            data = task.mm.read(arg, size)
            try:
                fcntl.ioctl(self.fd, req, data)
            except OSError as e:
                raise oserror(e) from None
            return 0
        if req == abi.FIONREAD:
            n = self.available()
            task.mm.write_u32(arg, n)
            return 0
        raise SyscallError(ENOTTY)

    def allocate(self, mode: int, offset: int, length: int) -> None:
        """fallocate(2) on the host file (Python's os has no fallocate with a mode)."""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.fallocate(self.fd, ctypes.c_int(mode), ctypes.c_long(offset), ctypes.c_long(length)) != 0:
            raise SyscallError(ctypes.get_errno() or EINVAL)

    def close(self) -> None:
        if self.owned and self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1


class Mapping:
    """What a file mapping holds (mm's Vma.file): the file's bytes as the mapping sees them,
    whether it may write them back, and for MAP_SHARED the page cache to map (if any).
    Subclasses keep what they need alive after close(2) of the descriptor, as on Linux."""

    path = ""
    writable = False   # a MAP_SHARED mapping may change the file (mprotect PROT_WRITE)

    def pread(self, offset: int, n: int) -> bytes:
        raise NotImplementedError

    def pwrite(self, offset: int, data: bytes) -> int:
        """Write back shared pages of a mapping with no page cache (default: dropped)."""
        return len(data)

    def size(self) -> int:
        raise NotImplementedError

    def page_cache(self) -> "Mappable | None":
        """The pages MAP_SHARED maps (made on first use), or None: shared mappings copy."""
        return None

    def ident(self) -> tuple[int, int]:
        """(st_dev, st_ino) for /proc/self/maps (0, 0 for anonymous objects)."""
        return 0, 0


class MappedHostFile(Mapping):
    """What a file mapping holds (mm's Vma.file): its own host fd, so the mapping
    outlives close(2) of the descriptor as on Linux. A MAP_SHARED mapping maps the
    pages of the host inode's cache (page_cache), when the file has one."""

    def __init__(self, f: HostFile):
        self.fd = os.dup(f.fd)
        self.path = f.path
        self.writable = f.writable()
        self.caches = f.caches if f._is_regular() else None
        self.key = f._key

    def page_cache(self) -> "HostCache | None":
        """The host inode's page cache (Mappable), made on the first shared mapping; None
        where there is none (stdio, files of no host file system): shared mappings copy."""
        if self.caches is None:
            return None
        c = self.caches.cache(self.key, self.fd)
        if self.writable:
            c.add_writer(self.fd)
        return c

    def pread(self, offset: int, n: int) -> bytes:
        try:
            data = os.pread(self.fd, n, offset)
        except OSError as e:
            raise oserror(e) from None
        c = self.caches.get(self.key) if self.caches else None
        return c.overlay(offset, data) if c is not None else data

    def pwrite(self, offset: int, data: bytes) -> int:
        if not self.writable:
            return len(data)
        try:
            return os.pwrite(self.fd, data, offset)
        except OSError as e:
            raise oserror(e) from None

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def ident(self) -> tuple[int, int]:
        """(st_dev, st_ino) for /proc/self/maps."""
        st = os.fstat(self.fd)
        return st.st_dev, st.st_ino

    def __del__(self):
        try:
            os.close(self.fd)
        except (OSError, AttributeError, TypeError):
            pass


F = TypeVar("F", bound=File)


class FdTable:
    """fd number -> File, and the set of close-on-exec numbers. Each slot holds a
    reference on its File (File.incref); closing the slot drops it.

    The lowest free number is found without a scan: every free number below `_top` is
    in the min-heap `_free` (which may also hold numbers install_at has taken since;
    those are skipped when met), and numbers from `_top` up are free unless install_at
    or F_DUPFD put a file there. `locks` (vfs.locks.LockTable) and `lock_pid` are set when
    the process first takes a file lock: closing an fd then drops the process's record
    locks on that file, and the description's last reference its OFD/flock locks."""

    SPAN = 1 << 16   # how far past the top F_DUPFD moves it (beyond: scan, keep the top)

    def __init__(self, limit: int = 1024):
        self.files: dict[int, File] = {}
        self.cloexec: set[int] = set()
        self.limit = limit
        self.locks = None
        self.lock_pid = 0
        self._free: list[int] = []       # heap of free numbers below _top (and stale ones)
        self._in_free: set[int] = set()  # what _free holds, so a number is pushed once
        self._top = 0

    def get(self, fd: int) -> File:
        f = self.files.get(fd)
        if f is None:
            raise SyscallError(EBADF)
        return f

    def get_as(self, fd: int, cls: "type[F]", errno: int = EINVAL) -> "F":
        """The file at fd when it is a cls (an epoll, a timerfd, a socket...): EBADF for no
        file, errno (EINVAL for most such calls, ENOTSOCK for sockets) for another kind."""
        f = self.files.get(fd)
        if f is None:
            raise SyscallError(EBADF)
        if not isinstance(f, cls):
            raise SyscallError(errno)
        return f

    def get_io(self, fd: int) -> File:
        """The file for an I/O call: EBADF also for O_PATH descriptors, as Linux."""
        f = self.files.get(fd)
        if f is None or f.flags & abi.O_PATH:
            raise SyscallError(EBADF)
        return f

    def _take(self, lowest: int) -> int:
        """The lowest free number >= lowest (EMFILE at the limit)."""
        files, free = self.files, self._free
        while free and free[0] in files:          # taken by install_at since it was freed
            self._in_free.discard(heapq.heappop(free))
        if free and free[0] >= lowest:
            fd = free[0]
            if fd >= self.limit:
                raise SyscallError(EMFILE)
            self._in_free.discard(heapq.heappop(free))
            return fd
        if 0 < lowest < self._top and free:
            # F_DUPFD with a minimum above the lowest hole: the least free number past it
            # (one pass over the holes, in C; the taken one stays behind as a stale entry).
            got = min((n for n in free if n >= lowest and n not in files), default=None)
            if got is not None:
                if got >= self.limit:
                    raise SyscallError(EMFILE)
                return got
        top = self._top
        if top < lowest <= min(self.limit, top + self.SPAN):
            # F_DUPFD past the top: [top, lowest) goes to the heap, in order (each number
            # exceeds all the heap holds, so appending keeps it a heap), and top moves up.
            free.extend(range(top, lowest))
            self._in_free.update(range(top, lowest))
            self._top = top = lowest
        fd = max(lowest, top)
        while fd in files:                        # only slots install_at (or a far F_DUPFD) filled
            fd += 1
        if lowest <= top:
            self._top = fd                        # everything in [top, fd) is in use
        if fd >= self.limit:
            raise SyscallError(EMFILE)
        if lowest <= top:
            self._top = fd + 1
        return fd

    def install(self, f: File, cloexec: bool = False, lowest: int = 0) -> int:
        fd = self._take(lowest)
        self.files[fd] = f.incref()
        if cloexec:
            self.cloexec.add(fd)
        else:
            self.cloexec.discard(fd)
        return fd

    def install_at(self, fd: int, f: File, cloexec: bool = False) -> None:
        """dup2/dup3: put f at fd, closing what was there (even the same file, as Linux)."""
        if fd >= self.limit or fd < 0:
            raise SyscallError(EBADF)
        f.incref()
        old = self.files.get(fd)
        self.files[fd] = f
        if cloexec:
            self.cloexec.add(fd)
        else:
            self.cloexec.discard(fd)
        if old is not None:
            self._put(old)

    def close(self, fd: int) -> None:
        f = self.files.pop(fd, None)
        if f is None:
            raise SyscallError(EBADF)
        self.cloexec.discard(fd)
        if fd < self._top and fd not in self._in_free:
            heapq.heappush(self._free, fd)
            self._in_free.add(fd)
        self._put(f)

    def _put(self, f: File) -> None:
        """One fd's reference on f goes (Linux's filp_close then fput)."""
        locks = self.locks
        if locks is not None:
            if locks.records:
                self._unlock(locks, f)
            f.watch(locks, locks.release_file)    # OFD and flock locks go with the description
        f.decref()

    def _unlock(self, locks, f: File) -> None:
        """close(2) of any fd drops the process's record locks on the file (POSIX)."""
        try:
            from umiak.kernel.vfs.locks import file_key
            locks.release_owner(file_key(f), ("posix", self.lock_pid))
        except SyscallError:
            pass


def is_dir_mode(mode: int) -> bool:
    return _stat.S_ISDIR(mode)


__all__ = ["File", "HostFile", "FdTable", "Stat", "MappedHostFile", "is_dir_mode", "oserror"]


def _host_io(call, *args):
    """A host read into guest memory, its OSError as the guest's errno."""
    try:
        return call(*args)
    except IsADirectoryError:
        raise SyscallError(EISDIR) from None
    except OSError as e:
        raise oserror(e) from None
