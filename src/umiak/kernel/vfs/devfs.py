"""devfs: the device nodes a program expects in /dev."""

import os

from umiak.kernel import abi
from umiak.kernel.errors import ENXIO, SyscallError
from umiak.kernel.files import HostFile, oserror
from umiak.kernel.vfs.nodes import (DeviceNode, FullFile, NullFile, RandomFile, SynthDir, SynthFS,
                                    SynthLink, ZeroFile, makedev)


class DevFS(SynthFS):
    fstype = "devtmpfs"

    def __init__(self, kernel):
        super().__init__(makedev(0, 5))
        self.kernel = kernel
        dev = lambda major, minor, cls, mode=0o666: DeviceNode(  # noqa: E731
            self, major, minor, lambda task, loc, flags: cls(loc, flags), mode)
        from umiak.kernel.vfs.devpts import DevPts
        self.pts = getattr(kernel, "devpts", None) or DevPts(self, kernel)
        if kernel is not None:
            kernel.devpts = self.pts   # the VM's ptys, one set however often /dev is mounted
        entries = {
            "null": dev(1, 3, NullFile),
            "zero": dev(1, 5, ZeroFile),
            "full": dev(1, 7, FullFile),
            "random": dev(1, 8, RandomFile),
            "urandom": dev(1, 9, RandomFile),
            "tty": DeviceNode(self, 5, 0, _open_tty, tty=True),
            "ptmx": DeviceNode(self, 5, 2, self.pts.open_ptmx, tty=True),
            "stdin": SynthLink(self, "/proc/self/fd/0"),
            "stdout": SynthLink(self, "/proc/self/fd/1"),
            "stderr": SynthLink(self, "/proc/self/fd/2"),
            "fd": SynthLink(self, "/proc/self/fd"),
            "shm": SynthDir(self, {}, mode=0o1777),
            "mqueue": SynthDir(self, self._mqueues, mode=0o1777),
            "pts": self.pts.dir,
        }
        self.root = SynthDir(self, entries, mode=0o755)


    def _mqueues(self) -> dict:
        """/dev/mqueue: the VM's POSIX message queues, each file reading as its status line."""
        queues = getattr(self.kernel, "mqueues", None)
        if not queues:
            return {}
        from umiak.kernel.syscalls.mqueue import dev_node
        return {name: dev_node(self, q) for name, q in queues.items()}


def _open_tty(task, loc, flags):
    """/dev/tty: the process's controlling pty, else the host's controlling terminal
    (ENXIO without one, as Linux)."""
    from umiak.kernel.tty import OUTER_SESSION, controlling_tty
    tty = controlling_tty(task.kernel, task.process) if task is not None else None
    if tty is not None:
        node = task.kernel.devpts.nodes.get(tty.index)
        if node is not None:
            return node.open(task, loc, flags | abi.O_NOCTTY)
    if task is not None and task.process.sid != OUTER_SESSION:
        raise SyscallError(ENXIO)   # a session made in the VM has no host terminal
    flags &= ~abi.O_NOCTTY
    host_flags = (flags & os.O_ACCMODE) | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open("/dev/tty", host_flags)
    except OSError as e:
        raise oserror(e) from None
    return HostFile(fd, flags, loc.path, owned=True, loc=loc)


def make_devfs(kernel) -> DevFS:
    return DevFS(kernel)


__all__ = ["DevFS", "make_devfs"]
