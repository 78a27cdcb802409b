"""In-process tests of state the Process declares up front (REVIEW problem 6): its timers
and signalfds exist from the start, and a signalfd (which signals.send wakes) leaves the
process's list once its last reference closes, or never joins it when no fd was free."""

import threading
from types import SimpleNamespace

from umiak.kernel import abi
from umiak.kernel.files import FdTable
from umiak.kernel.process import Process, Task
from umiak.kernel.signals import bit
from umiak.kernel.syscalls.event import SignalFd, sys_signalfd4


class _Mem:
    """Guest memory holding one sigset_t at address 0x1000."""

    def __init__(self, mask: int):
        self.mask = mask

    def read_u64(self, addr: int) -> int:
        assert addr == 0x1000
        return self.mask


def _process() -> tuple[Process, Task]:
    kernel = SimpleNamespace(lock=threading.Lock(), current_task=lambda: None, tasks={})
    proc = Process(kernel, 1, _Mem(bit(abi.SIGUSR1)), FdTable(), "/")
    return proc, Task(proc, 1)


def test_a_signalfd_is_registered_until_its_last_reference_closes():
    proc, task = _process()
    assert proc.signalfds == [] and proc.itimers == {} and proc.posix_timers == {}
    fd = sys_signalfd4(task, -1, 0x1000, 8, 0)
    sf = proc.fds.get(fd)
    assert isinstance(sf, SignalFd) and proc.signalfds == [sf]
    dup = proc.fds.install(sf)
    proc.fds.close(fd)
    assert proc.signalfds == [sf]          # the dup still holds the description
    proc.fds.close(dup)
    assert proc.signalfds == []


def test_signalfd_over_the_fd_limit_is_not_registered():
    proc, task = _process()
    proc.fds.limit = 0
    from umiak.kernel.errors import EMFILE, SyscallError
    try:
        sys_signalfd4(task, -1, 0x1000, 8, 0)
    except SyscallError as e:
        assert e.errno == EMFILE
    else:
        raise AssertionError("signalfd4 with no free fd succeeded")
    assert proc.signalfds == []
