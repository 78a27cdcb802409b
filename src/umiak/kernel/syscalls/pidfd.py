"""Process file descriptors: pidfd_open(2), pidfd_send_signal(2), pidfd_getfd(2).

A pidfd names one process for as long as the fd lives (a pid may be reused; the
pidfd still means the old process). It polls readable once the process has ended
(zombie or reaped), and waitid(P_PIDFD) waits for it. clone(CLONE_PIDFD) makes one.
"""

from umiak.kernel import abi
from umiak.kernel.abi import s32
from umiak.kernel.errors import EBADF, EINVAL, EPERM, ESRCH, SyscallError
from umiak.kernel.files import File, Stat
from umiak.kernel.abi import PIDFD_NONBLOCK, POLLIN, POLLRDNORM, SI_TKILL, SI_USER


class PidFd(File):
    def __init__(self, process, flags: int):
        self.process = process
        self.path = "anon_inode:[pidfd]"
        self.flags = abi.O_RDWR | (flags & abi.O_NONBLOCK)
        process.pidfds.append(self)

    def link_text(self) -> str:
        return self.path

    def stat(self):
        return Stat(st_mode=0o600)

    def poll_mask(self) -> int:
        return POLLIN | POLLRDNORM if self.process.zombie else 0

    def read(self, n: int) -> bytes:
        raise SyscallError(EINVAL)

    def close(self) -> None:
        try:
            self.process.pidfds.remove(self)
        except ValueError:
            pass


def process_ended(process) -> None:
    """Wake whoever polls a pidfd of process. Kernel lock held."""
    for f in process.pidfds:
        f.waitq.notify()


def make_pidfd(task, process, flags: int = 0) -> int:
    return task.fds.install(PidFd(process, flags), cloexec=True)


def pidfd_process(task, fd: int):
    return task.fds.get_as(s32(fd), PidFd, EBADF).process


def sys_pidfd_open(task, pid, flags):
    """pidfd_open(2): PIDFD_THREAD is refused (EINVAL)."""
    pid, flags = s32(pid), s32(flags)
    if flags & ~PIDFD_NONBLOCK or pid <= 0:
        raise SyscallError(EINVAL)
    k = task.kernel
    proc = k.processes.get(pid)
    if proc is None:
        t = k.tasks.get(pid)
        raise SyscallError(EINVAL if t is not None else ESRCH)   # a thread, not a process
    return make_pidfd(task, proc, flags)


def sys_pidfd_send_signal(task, pidfd, sig, info, flags):
    """pidfd_send_signal(2)"""
    from umiak.kernel.signals import make_siginfo, send
    from umiak.kernel.syscalls.signal import _may_signal
    sig = s32(sig)
    if flags:
        raise SyscallError(EINVAL)
    proc = pidfd_process(task, pidfd)
    if not 0 <= sig <= abi.NSIG:
        raise SyscallError(EINVAL)
    if proc.zombie:
        raise SyscallError(ESRCH)
    if not _may_signal(task, proc):
        raise SyscallError(EPERM)
    if info:
        raw = bytearray(task.mm.read(info, 128))
        signo, _err, code = s32(int.from_bytes(raw[0:4], "little")), 0, s32(int.from_bytes(raw[8:12], "little"))
        if signo != sig:
            raise SyscallError(EINVAL)
        if (code >= 0 or code == SI_TKILL) and proc is not task.process:   # as Linux refuses
            raise SyscallError(EPERM)
        data = bytes(raw)
    else:
        data = make_siginfo(sig, SI_USER, pid=task.process.pid, uid=task.process.creds.uid)
    if sig:
        send(task.kernel, proc, sig, data)
    return 0


def sys_pidfd_getfd(task, pidfd, targetfd, flags):
    """pidfd_getfd(2): a duplicate of another process's fd (close-on-exec), as Linux."""
    from umiak.kernel.syscalls.signal import _may_signal
    if flags:
        raise SyscallError(EINVAL)
    proc = pidfd_process(task, pidfd)
    if proc.zombie:
        raise SyscallError(ESRCH)
    if not _may_signal(task, proc):
        raise SyscallError(EPERM)
    f = proc.fds.get(s32(targetfd))
    return task.fds.install(f, cloexec=True)
