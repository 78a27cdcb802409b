"""Files that carry events: eventfd(2), timerfd_create(2), signalfd(2)."""

import struct
import time as _time

from umiak.kernel import abi
from umiak.kernel.abi import (EFD_SEMAPHORE, POLLIN, POLLOUT, SIGNALFD_SIGINFO, TFD_TIMER_ABSTIME,
                              TFD_TIMER_CANCEL_ON_SET, s32)
from umiak.kernel.errors import EAGAIN, EINVAL, SyscallError
from umiak.kernel.files import File, Stat
from umiak.kernel.timers import IntervalTimer, read_itimerspec

U64_MAX = (1 << 64) - 1


class _AnonFile(File):
    def __init__(self, kind: str, flags: int):
        self.path = f"anon_inode:[{kind}]"
        self.flags = abi.O_RDWR | (flags & (abi.O_NONBLOCK | abi.O_CLOEXEC))

    def link_text(self) -> str:
        return self.path

    def stat(self):
        return Stat(st_mode=0o600)


class EventFd(_AnonFile):
    def __init__(self, initval: int, flags: int):
        super().__init__("eventfd", flags)
        self.count = initval
        self.semaphore = bool(flags & EFD_SEMAPHORE)

    def poll_mask(self) -> int:
        return (POLLIN if self.count else 0) | (POLLOUT if self.count < U64_MAX - 1 else 0)

    def read(self, n: int) -> bytes:
        if n < 8:
            raise SyscallError(EINVAL)
        if not self.count:
            raise SyscallError(EAGAIN)
        v = 1 if self.semaphore else self.count
        self.count -= v
        self.waitq.notify()
        return v.to_bytes(8, "little")

    def write(self, data: bytes) -> int:
        if len(data) < 8:
            raise SyscallError(EINVAL)
        v = int.from_bytes(data[:8], "little")
        if v == U64_MAX:
            raise SyscallError(EINVAL)
        if self.count + v > U64_MAX - 1:
            raise SyscallError(EAGAIN)
        self.count += v
        self.waitq.notify()
        return 8


def sys_eventfd2(task, initval, flags):
    """eventfd2(2)"""
    flags = s32(flags)
    if flags & ~(EFD_SEMAPHORE | abi.O_NONBLOCK | abi.O_CLOEXEC):
        raise SyscallError(EINVAL)
    return task.fds.install(EventFd(initval & 0xFFFFFFFF, flags), cloexec=bool(flags & abi.O_CLOEXEC))


def sys_eventfd(task, initval):
    """eventfd(2)"""
    return sys_eventfd2(task, initval, 0)


class TimerFd(_AnonFile, IntervalTimer):
    def __init__(self, kernel, clock: int, flags: int):
        _AnonFile.__init__(self, "timerfd", flags)
        IntervalTimer.__init__(self, kernel)
        self.clock = clock
        self.expirations = 0

    def poll_mask(self) -> int:
        return POLLIN if self.expirations else 0

    def arm(self, value: float, interval: float) -> None:
        self.expirations = 0
        IntervalTimer.arm(self, value, interval)

    def expired(self, count: int) -> None:
        self.expirations += count
        self.waitq.notify()

    def read(self, n: int) -> bytes:
        if n < 8:
            raise SyscallError(EINVAL)
        if not self.expirations:
            raise SyscallError(EAGAIN)
        v, self.expirations = self.expirations, 0
        return v.to_bytes(8, "little")

    def close(self) -> None:
        self.cancel()


def sys_timerfd_create(task, clock, flags):
    """timerfd_create(2)"""
    from umiak.kernel.syscalls.time import _host_clock
    flags = s32(flags)
    if flags & ~(abi.O_NONBLOCK | abi.O_CLOEXEC):
        raise SyscallError(EINVAL)
    c = s32(clock)
    if c not in (abi.CLOCK_REALTIME, abi.CLOCK_MONOTONIC, abi.CLOCK_BOOTTIME,
                 abi.CLOCK_REALTIME_ALARM, abi.CLOCK_BOOTTIME_ALARM):
        raise SyscallError(EINVAL)
    return task.fds.install(TimerFd(task.kernel, _host_clock(task, clock), flags), cloexec=bool(flags & abi.O_CLOEXEC))


def _timerfd(task, fd) -> TimerFd:
    return task.fds.get_as(s32(fd), TimerFd)


def sys_timerfd_settime(task, fd, flags, new, old):
    """timerfd_settime(2)"""
    t = _timerfd(task, fd)
    if flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET):
        raise SyscallError(EINVAL)
    value, interval = read_itimerspec(task, new)
    if old:
        task.mm.write(old, t.itimerspec())
    if flags & TFD_TIMER_ABSTIME and value:
        value = max(1e-9, value - _time.clock_gettime(t.clock))
    t.arm(value, interval)
    return 0


def sys_timerfd_gettime(task, fd, cur):
    """timerfd_gettime(2)"""
    t = _timerfd(task, fd)
    task.mm.write(cur, t.itimerspec())
    return 0


class SignalFd(_AnonFile):
    """Reads dequeue pending signals in `mask` of the reading thread or the process."""

    def __init__(self, process, mask: int, flags: int):
        super().__init__("signalfd", flags)
        self.process, self.kernel, self.mask = process, process.kernel, mask

    def close(self) -> None:
        if self in self.process.signalfds:
            self.process.signalfds.remove(self)

    def _task(self):
        return self.kernel.current_task()

    def poll_mask(self) -> int:
        t = self._task()
        if t is None:
            return 0
        return POLLIN if (t.pending | t.process.pending) & self.mask else 0

    def read(self, n: int) -> bytes:
        from umiak.kernel.signals import bit
        if n < SIGNALFD_SIGINFO.size:
            raise SyscallError(EINVAL)
        t = self._task()
        out = b""
        while len(out) + SIGNALFD_SIGINFO.size <= n:
            pend = (t.pending | t.process.pending) & self.mask
            if not pend:
                break
            signo = (pend & -pend).bit_length()
            owner = t if t.pending & bit(signo) else t.process
            infos = owner.siginfo.get(signo, [])
            info = infos.pop(0) if infos else struct.pack("<i", signo).ljust(abi.SIGINFO_SIZE, b"\0")
            if not infos:
                owner.siginfo.pop(signo, None)
                owner.pending &= ~bit(signo)
            out += _signalfd_info(info)
        t.recompute_pending()
        if not out:
            raise SyscallError(EAGAIN)
        return out


def _signalfd_info(info: bytes) -> bytes:
    """struct signalfd_siginfo from a siginfo, by its kind as Linux's signalfd_copyinfo:
    SIGCHLD's status and times; a timer's id and overrun; a sigval (sigqueue, timers, mq_notify)."""
    signo, errno_, code = struct.unpack_from("<iii", info)
    pid, uid = struct.unpack_from("<iI", info, 16)
    status = value = utime = stime = tid = overrun = 0
    if signo == abi.SIGCHLD and code > 0:
        status, utime, stime = struct.unpack_from("<i4xqq", info, 24)
    elif code in (abi.SI_QUEUE, abi.SI_TIMER, abi.SI_MESGQ) or code < 0 and signo >= 32:
        value = struct.unpack_from("<Q", info, 24)[0]
        if code == abi.SI_TIMER:
            tid, overrun, pid, uid = pid, uid, 0, 0
    addr = 0
    if code > 0 and signo in (abi.SIGSEGV, abi.SIGBUS, abi.SIGILL, abi.SIGFPE, abi.SIGTRAP):
        addr, pid, uid = struct.unpack_from("<Q", info, 16)[0], 0, 0
    return SIGNALFD_SIGINFO.pack(signo, errno_, code, pid, uid, 0, tid, 0, overrun, 0, status,
                                 abi.s32(value), value, utime, stime, addr)


def sys_signalfd4(task, fd, mask, sizemask, flags):
    """signalfd4(2)"""
    from umiak.kernel.signals import bit
    flags = s32(flags)
    if sizemask != 8 or flags & ~(abi.O_NONBLOCK | abi.O_CLOEXEC):
        raise SyscallError(EINVAL)
    m = task.mm.read_u64(mask) & ~(bit(abi.SIGKILL) | bit(abi.SIGSTOP))
    fd = s32(fd)
    if fd != -1:
        f = task.fds.get(fd)
        if not isinstance(f, SignalFd):
            raise SyscallError(EINVAL)
        f.mask = m
        return fd
    sf = SignalFd(task.process, m, flags)
    fd = task.fds.install(sf, cloexec=bool(flags & abi.O_CLOEXEC))
    task.process.signalfds.append(sf)   # signals.send wakes its readers (until close)
    return fd


def sys_signalfd(task, fd, mask, sizemask):
    """signalfd(2)"""
    return sys_signalfd4(task, fd, mask, sizemask, 0)
