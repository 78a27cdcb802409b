"""pipe(2): an in-memory byte queue with a read end and a write end.

A read of an empty pipe or a write to a full one raises EAGAIN here; the
syscall layer then waits (umiak.kernel.waiting) unless O_NONBLOCK. When nothing
could ever fill or drain the pipe or interrupt the wait (one thread, one process,
no timer armed: waiting.nothing_can_wake), Linux would sleep forever; umiak does
not hang the VM instead:
- a blocking write that would fill the pipe is taken whole (the buffer grows
  past its capacity);
- a blocking read of an empty pipe whose write end is still open says so once
  on stderr and returns EAGAIN.

The buffer is the guest's kernel memory, as on Linux: each 4 KiB of it the pipe has
held takes a frame of guest RAM (charged, never written: the bytes stay in Python),
kept until the pipe goes, so the hot path allocates nothing once a pipe is warm. A
write that finds no free frame gets ENOMEM (said once on stderr), never more host
memory than the guest was given.
"""

import stat as _stat

from umiak.kernel import abi
from umiak.kernel.abi import POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM
from umiak.kernel.errors import EAGAIN, EPIPE, SyscallError
from umiak.kernel.files import File, Stat
from umiak.kernel.frames import BufferCharge
from umiak.kernel.vfs.nodes import makedev
from umiak.kernel.waiting import WaitQueue

PIPE_CAPACITY = 65536
PIPE_BUF = 4096
PIPEFS_DEV = makedev(0, 14)


class Pipe:
    def __init__(self, kernel=None, uid: int = 0, gid: int = 0):
        self.kernel = kernel
        self.buf = bytearray()
        self.readers = 0
        self.writers = 0
        self.opened = [0, 0]   # readers, writers that ever opened it (a FIFO's open waits for a change)
        self.capacity = PIPE_CAPACITY
        self.ino = next(kernel.pipe_inos)
        self.uid = uid
        self.gid = gid
        import time
        self.time_ns = time.time_ns()
        self.warned = False
        config = getattr(kernel, "config", None)   # a kernel config's pipe buffer size
        if config is not None:
            self.capacity = config.pipe_capacity
        self.waitq = WaitQueue()
        self.charged = BufferCharge()   # guest frames for the buffer (module docstring)

    def charge(self, size: int) -> int:
        """Guest RAM for a buffer of size bytes: the bytes it covers (ENOMEM: none)."""
        return self.charged.cover(self.kernel, size, len(self.buf), "pipe writes")


class PipeEnd(File):
    """One end of a pipe; `both` for a FIFO opened O_RDWR (a reader and a writer at once).
    `loc` is set for a FIFO's ends (their path and inode are the FIFO's)."""

    def __init__(self, pipe: Pipe, flags: int, reading: bool, both: bool = False):
        self.pipe: Pipe = pipe
        self.flags = flags
        self.reading = reading
        self.both = both
        if reading or both:
            pipe.readers += 1
            pipe.opened[0] += 1
        if not reading or both:
            pipe.writers += 1
            pipe.opened[1] += 1
        self.closed = False
        self.loc = None

    @property
    def path(self) -> str:  # type: ignore[override]  # derived, where the base stores it
        return f"pipe:[{self.pipe.ino}]"

    def link_text(self) -> str:
        return self.loc.path if self.loc is not None else self.path

    def readable(self) -> bool:
        return (self.reading or self.both) and not self.flags & abi.O_PATH

    def writable(self) -> bool:
        return (not self.reading or self.both) and not self.flags & abi.O_PATH

    sigpipe_on_epipe = True
    pseudo_fs = abi.PIPEFS_MAGIC

    @property
    def waitq(self) -> WaitQueue:
        """Both ends (and every open of a FIFO) share the pipe's queue."""
        return self.pipe.waitq

    def read(self, n: int) -> bytes:
        p = self.pipe
        if p.buf:
            out = bytes(p.buf[:n])
            del p.buf[:n]
            p.waitq.notify()
            return out
        if p.writers == 0 or n == 0:
            return b""
        raise SyscallError(EAGAIN)

    def write(self, data: bytes) -> int:
        p = self.pipe
        if p.readers == 0:
            raise SyscallError(EPIPE)   # SIGPIPE is the signal code's to send
        room = p.capacity - len(p.buf)
        if room <= 0 or (len(data) <= PIPE_BUF and room < len(data)):
            raise SyscallError(EAGAIN)  # writes up to PIPE_BUF are atomic
        data = data[:min(room, p.charge(len(p.buf) + len(data)) - len(p.buf))]
        p.buf += data
        p.waitq.notify()
        return len(data)

    def write_unbounded(self, data: bytes) -> int:
        """A blocking write that nobody could ever drain (one thread): taken whole."""
        p = self.pipe
        if p.readers == 0:
            raise SyscallError(EPIPE)
        data = data[:p.charge(len(p.buf) + len(data)) - len(p.buf)]
        p.buf += data
        p.waitq.notify()
        return len(data)

    def read_deadlock(self) -> None:
        p = self.pipe
        if not p.warned and p.kernel is not None:
            p.warned = True
            p.kernel.warn("read of an empty pipe would wait forever (no other thread can write it): EAGAIN")
        raise SyscallError(EAGAIN)

    def poll_mask(self) -> int:
        p = self.pipe
        mask = 0
        if self.reading or self.both:
            if p.buf:
                mask |= POLLIN | POLLRDNORM
            if p.writers == 0:
                mask |= POLLHUP
        if not self.reading or self.both:
            if p.readers == 0:
                mask |= POLLERR
            elif len(p.buf) < p.capacity:
                mask |= POLLOUT | POLLWRNORM
        return mask

    def available(self) -> int:
        return len(self.pipe.buf)

    def stat(self):
        if self.loc is not None:
            return self.loc.node.stat()
        p = self.pipe
        return Stat(st_mode=_stat.S_IFIFO | 0o600, st_ino=p.ino, st_dev=PIPEFS_DEV, st_nlink=1,
                    st_uid=p.uid, st_gid=p.gid, st_size=0, st_blksize=4096,
                    st_atime_ns=p.time_ns, st_mtime_ns=p.time_ns, st_ctime_ns=p.time_ns)

    def reopen(self, flags: int) -> File:
        acc = flags & abi.O_ACCMODE
        return PipeEnd(self.pipe, flags & ~(abi.O_CREAT | abi.O_EXCL | abi.O_TRUNC | abi.O_CLOEXEC),
                       acc != abi.O_WRONLY)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.reading or self.both:
            self.pipe.readers -= 1
        if not self.reading or self.both:
            self.pipe.writers -= 1
        if self.pipe.readers <= 0 and self.pipe.writers <= 0 and self.pipe.kernel is not None:
            self.pipe.charged.release(self.pipe.kernel)
        self.pipe.waitq.notify()


def make_pipe(kernel, flags: int, uid: int = 0, gid: int = 0) -> tuple[PipeEnd, PipeEnd]:
    p = Pipe(kernel, uid, gid)
    fl = flags & (abi.O_NONBLOCK | abi.O_DIRECT)
    return PipeEnd(p, abi.O_RDONLY | fl, True), PipeEnd(p, abi.O_WRONLY | fl, False)
