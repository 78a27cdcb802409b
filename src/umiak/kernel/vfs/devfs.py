"""devfs: the device nodes a program expects in /dev."""

import os

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
        entries = {
            "null": dev(1, 3, NullFile),
            "zero": dev(1, 5, ZeroFile),
            "full": dev(1, 7, FullFile),
            "random": dev(1, 8, RandomFile),
            "urandom": dev(1, 9, RandomFile),
            "tty": DeviceNode(self, 5, 0, _open_host_tty),
            "stdin": SynthLink(self, "/proc/self/fd/0"),
            "stdout": SynthLink(self, "/proc/self/fd/1"),
            "stderr": SynthLink(self, "/proc/self/fd/2"),
            "fd": SynthLink(self, "/proc/self/fd"),
            "shm": SynthDir(self, {}, mode=0o1777),
            "pts": SynthDir(self, {}, mode=0o755),
        }
        self.root = SynthDir(self, entries, mode=0o755)


def _open_host_tty(task, loc, flags):
    """/dev/tty is the host's controlling terminal (ENXIO without one, as Linux)."""
    host_flags = (flags & os.O_ACCMODE) | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open("/dev/tty", host_flags)
    except OSError as e:
        raise oserror(e) from None
    return HostFile(fd, flags, loc.path, owned=True, loc=loc)


def make_devfs(kernel) -> DevFS:
    return DevFS(kernel)


__all__ = ["DevFS", "make_devfs"]
