"""devpts: /dev/ptmx and /dev/pts/N, the two ends of pseudo-terminals.

Opening /dev/ptmx (or /dev/pts/ptmx) makes a pty pair (umiak.kernel.tty.Tty) and
gives its master; /dev/pts/N appears at once, locked until TIOCSPTLCK(0)
(unlockpt), and goes when the master closes. The slave then reads EOF and
writes EIO (a hang-up), and the master reads EIO once every slave is closed.
Numbers are the lowest free ones, as Linux's.
"""

import stat as _stat

from umiak.kernel import abi
from umiak.kernel.errors import EINVAL, EIO, ENOSPC, SyscallError
from umiak.kernel.files import File, Stat
from umiak.kernel.abi import TIOCGPTLCK, TIOCGPTN, TIOCGPTPEER, TIOCSPTLCK
from umiak.kernel.tty import BUF_MAX, TOSTOP, Tty
from umiak.kernel.vfs.nodes import DeviceNode, SynthDir, SynthFS, makedev

PTY_SLAVE_MAJOR = 136
PTMX_RDEV = makedev(5, 2)
MAX_PTYS = 4096          # /proc/sys/kernel/pty/max
SLAVE_MODE = 0o600       # devpts' default mode= mount option


class DevPts:
    """The ptys of one VM (kernel.devpts) and the /dev/pts directory that shows them."""

    def __init__(self, fs: SynthFS, kernel):
        self.fs = fs
        self.kernel = kernel
        self.ttys: dict[int, Tty] = {}
        self.nodes: dict[int, DeviceNode] = {}
        self.ptmx = DeviceNode(fs, 5, 2, self.open_ptmx, mode=0o666, tty=True)
        self.dir = SynthDir(fs, self._entries, mode=0o755)

    def _entries(self) -> dict:
        out = {"ptmx": self.ptmx}
        out.update((str(i), n) for i, n in sorted(self.nodes.items()))
        return out

    def open_ptmx(self, task, loc, flags: int) -> "PtyMaster":
        flags &= ~abi.O_NOCTTY   # a master never becomes a controlling terminal
        index = next((i for i in range(MAX_PTYS) if i not in self.ttys), None)
        if index is None:
            raise SyscallError(ENOSPC)
        tty = Tty(self.kernel, index)
        creds = task.process.creds
        node = DeviceNode(self.fs, PTY_SLAVE_MAJOR, index,
                          lambda t, lc, fl: self.open_slave(t, lc, fl, tty), mode=SLAVE_MODE, tty=True)
        node.uid, node.gid = creds.fsuid, creds.fsgid
        self.ttys[index] = tty
        self.nodes[index] = node
        return PtyMaster(self, tty, loc, flags)

    def open_slave(self, task, loc, flags: int, tty: Tty) -> "PtySlave":
        if tty.locked or not tty.master_open:
            raise SyscallError(EIO)
        tty.slave_opens += 1
        tty.slave_ever = True
        if not flags & abi.O_NOCTTY:
            tty.maybe_acquire(task.process)
        return PtySlave(self, tty, loc, flags & ~(abi.O_CREAT | abi.O_EXCL | abi.O_TRUNC | abi.O_CLOEXEC | abi.O_NOCTTY))

    def remove(self, tty: Tty) -> None:
        self.ttys.pop(tty.index, None)
        self.nodes.pop(tty.index, None)


class _PtyEnd(File):
    pseudo_fs = abi.TMPFS_MAGIC

    def __init__(self, devpts: DevPts, tty: Tty, loc, flags: int):
        self.devpts = devpts
        self.tty = tty
        self.loc = loc
        self.flags = flags
        self.closed = False

    @property
    def waitq(self):  # both ends share the pair's queue
        return self.tty.waitq


class PtyMaster(_PtyEnd):
    """The master end: reads what the slave shows, writes what the user types."""

    @property
    def path(self) -> str:  # type: ignore[override]
        return self.loc.path if self.loc is not None else "/dev/ptmx"

    def read(self, n: int) -> bytes:
        return self.tty.master_read(n)

    def write(self, data: bytes) -> int:
        return self.tty.master_write(data)

    def poll_mask(self) -> int:
        t = self.tty
        mask = 0
        if t.out:
            mask |= abi.POLLIN | abi.POLLRDNORM
        if t.slave_ever and not t.slave_opens:
            mask |= abi.POLLHUP
        if t.input_len() < BUF_MAX:
            mask |= abi.POLLOUT | abi.POLLWRNORM
        return mask

    def available(self) -> int:
        return len(self.tty.out)

    def stat(self):
        if self.loc is not None:
            return self.loc.node.stat()
        return Stat(st_mode=_stat.S_IFCHR | 0o666, st_rdev=PTMX_RDEV)

    def ioctl(self, task, req: int, arg: int) -> int:
        t = self.tty
        if req == TIOCGPTN:
            task.mm.write_u32(arg, t.index)
            return 0
        if req == TIOCSPTLCK:
            t.locked = task.mm.read_u32(arg) != 0
            return 0
        if req == TIOCGPTLCK:
            task.mm.write_u32(arg, int(t.locked))
            return 0
        if req == TIOCGPTPEER:
            if arg & ~(abi.O_ACCMODE | abi.O_NOCTTY | abi.O_NONBLOCK | abi.O_CLOEXEC):
                raise SyscallError(EINVAL)
            node = self.devpts.nodes.get(t.index)
            if node is None:
                raise SyscallError(EIO)
            f = self.devpts.open_slave(task, None, arg, t)
            f.node = node
            return task.fds.install(f, cloexec=bool(arg & abi.O_CLOEXEC))
        return t.ioctl(task, req, arg, master=True)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.tty.master_open = False
        self.devpts.remove(self.tty)
        self.tty.hangup()


class PtySlave(_PtyEnd):
    """The slave end: the program's terminal, /dev/pts/N."""

    def __init__(self, devpts: DevPts, tty: Tty, loc, flags: int):
        super().__init__(devpts, tty, loc, flags)
        self.node = loc.node if loc is not None else devpts.nodes.get(tty.index)

    @property
    def path(self) -> str:  # type: ignore[override]
        return f"/dev/pts/{self.tty.index}"

    def link_text(self) -> str:
        return self.loc.path if self.loc is not None else self.path

    def read(self, n: int) -> bytes:
        if not self.tty.master_open:
            return b""
        self.tty.job_control(self.devpts.kernel.current_task(), abi.SIGTTIN)
        return self.tty.slave_read(n)

    def write(self, data: bytes) -> int:
        if not self.tty.master_open:
            raise SyscallError(EIO)
        if self.tty.lflag & TOSTOP:
            self.tty.job_control(self.devpts.kernel.current_task(), abi.SIGTTOU)
        return self.tty.slave_write(data)

    def poll_mask(self) -> int:
        t = self.tty
        if not t.master_open:
            return (abi.POLLIN | abi.POLLRDNORM | abi.POLLOUT | abi.POLLWRNORM | abi.POLLERR | abi.POLLHUP)
        mask = 0
        if t.slave_readable():
            mask |= abi.POLLIN | abi.POLLRDNORM
        if len(t.out) < BUF_MAX:
            mask |= abi.POLLOUT | abi.POLLWRNORM
        return mask

    def available(self) -> int:
        t = self.tty
        return sum(map(len, t.lines)) if t.canonical() else len(t.raw)

    def stat(self):
        if self.node is not None:
            return self.node.stat()
        return Stat(st_mode=_stat.S_IFCHR | SLAVE_MODE, st_rdev=makedev(PTY_SLAVE_MAJOR, self.tty.index))

    def ioctl(self, task, req: int, arg: int) -> int:
        if not self.tty.master_open:
            raise SyscallError(EIO)
        return self.tty.ioctl(task, req, arg, master=False)

    def reopen(self, flags: int) -> File:
        """open("/proc/self/fd/N") of a TIOCGPTPEER slave: another open of the same slave."""
        t = self.tty
        if t.locked or not t.master_open:
            raise SyscallError(EIO)
        t.slave_opens += 1
        return PtySlave(self.devpts, t, None, flags & ~(abi.O_CREAT | abi.O_EXCL | abi.O_TRUNC | abi.O_CLOEXEC))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.tty.slave_opens -= 1
        self.tty.waitq.notify()
