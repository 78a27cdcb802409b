"""Clocks and sleeping: clock_gettime(2), gettimeofday(2), nanosleep(2)..."""

import struct as _struct
import time as _time

from umiak.kernel import abi
from umiak.kernel.abi import (ITIMER_PROF, ITIMER_REAL, ITIMER_VIRTUAL, ITIMERVAL, SI_KERNEL, SI_TIMER,
                              SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD_ID, SIGEVENT, s32, s64)
from umiak.kernel.errors import EINTR, EINVAL, SyscallError
from umiak.kernel.timers import IntervalTimer, read_itimerspec

_CLOCKS = {
    abi.CLOCK_REALTIME: _time.CLOCK_REALTIME,
    abi.CLOCK_MONOTONIC: _time.CLOCK_MONOTONIC,
    abi.CLOCK_PROCESS_CPUTIME_ID: _time.CLOCK_PROCESS_CPUTIME_ID,
    abi.CLOCK_THREAD_CPUTIME_ID: _time.CLOCK_THREAD_CPUTIME_ID,
    abi.CLOCK_MONOTONIC_RAW: getattr(_time, "CLOCK_MONOTONIC_RAW", _time.CLOCK_MONOTONIC),
    abi.CLOCK_REALTIME_COARSE: 5,
    abi.CLOCK_MONOTONIC_COARSE: 6,
    abi.CLOCK_BOOTTIME: getattr(_time, "CLOCK_BOOTTIME", 7),
    abi.CLOCK_REALTIME_ALARM: _time.CLOCK_REALTIME,
    abi.CLOCK_BOOTTIME_ALARM: getattr(_time, "CLOCK_BOOTTIME", 7),
    abi.CLOCK_TAI: getattr(_time, "CLOCK_TAI", 11),
}


def _host_clock(clock: int) -> int:
    c = _CLOCKS.get(s32(clock))
    if c is None:
        raise SyscallError(EINVAL)
    return c


def sys_clock_gettime(task, clock, tp):
    """clock_gettime(2): the host's clocks (CPU-time clocks are the host thread's)."""
    ns = _time.clock_gettime_ns(_host_clock(clock))
    task.mm.write(tp, abi.TIMESPEC.pack(ns // 1_000_000_000, ns % 1_000_000_000))
    return 0


def sys_clock_getres(task, clock, res):
    """clock_getres(2)"""
    c = _host_clock(clock)
    if res:
        r = _time.clock_getres(c)
        task.mm.write(res, abi.TIMESPEC.pack(int(r), round((r - int(r)) * 1e9)))
    return 0


def sys_gettimeofday(task, tv, tz):
    """gettimeofday(2)"""
    if tv:
        ns = _time.time_ns()
        task.mm.write(tv, abi.TIMEVAL.pack(ns // 1_000_000_000, (ns // 1000) % 1_000_000))
    if tz:
        task.mm.write(tz, bytes(8))
    return 0


def sys_time(task, tloc):
    """time(2)"""
    t = int(_time.time())
    if tloc:
        task.mm.write_u64(tloc, t)
    return t


def _read_timespec(task, addr) -> int:
    sec, nsec = task.mm.read_struct(addr, abi.TIMESPEC)
    sec, nsec = s64(sec), s64(nsec)
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise SyscallError(EINVAL)
    return sec * 1_000_000_000 + nsec


# -- sleeping that signals interrupt -------------------------------------------------

_VDSO_MONO = (abi.CLOCK_MONOTONIC, abi.CLOCK_MONOTONIC_RAW, abi.CLOCK_MONOTONIC_COARSE, abi.CLOCK_BOOTTIME)
_VDSO_REAL = (abi.CLOCK_REALTIME, abi.CLOCK_REALTIME_COARSE)


def guest_clock_ns(task, clock: int) -> int:
    """The clock as the program reads it: from the vDSO's parameters when the vDSO
    serves that clock (so a sleep ends when the program's own clock says so)."""
    v = task.kernel.vdso
    if v is not None and (clock in _VDSO_MONO or clock in _VDSO_REAL):
        now = v.now_ns()
        if now is not None:
            return now + (v.rt_offset if clock in _VDSO_REAL else 0)
    return _time.clock_gettime_ns(_host_clock(clock))


def _sleep_until(task, clock: int, end_ns: int) -> int:
    """Sleep until clock reaches end_ns; the nanoseconds left when a signal interrupted
    the sleep, else 0. Host timeouts may end a hair early: sleep again until it is due."""
    while True:
        left = end_ns - guest_clock_ns(task, clock)
        if left <= 0:
            return 0
        try:
            task.wait(lambda: False, left / 1e9)
        except SyscallError:
            return max(1, end_ns - guest_clock_ns(task, clock))


def _interrupted(task, left_ns: int, rem: int) -> None:
    if rem:
        task.mm.write(rem, abi.TIMESPEC.pack(left_ns // 1_000_000_000, left_ns % 1_000_000_000))
    raise SyscallError(EINTR)


def sys_nanosleep(task, req, rem):
    """nanosleep(2): EINTR with the time left in rem when a signal handler runs."""
    ns = _read_timespec(task, req)
    clock = abi.CLOCK_MONOTONIC
    left = _sleep_until(task, clock, guest_clock_ns(task, clock) + ns)
    if left:
        _interrupted(task, left, rem)
    return 0


def sys_clock_nanosleep(task, clock, flags, req, rem):
    """clock_nanosleep(2) with TIMER_ABSTIME."""
    clock = s32(clock)
    if clock == abi.CLOCK_THREAD_CPUTIME_ID:
        raise SyscallError(EINVAL)
    _host_clock(clock)
    ns = _read_timespec(task, req)
    absolute = bool(flags & abi.TIMER_ABSTIME)
    end = ns if absolute else guest_clock_ns(task, clock) + ns
    left = _sleep_until(task, clock, end)
    if left:
        _interrupted(task, left, 0 if absolute else rem)
    return 0


# -- interval timers and POSIX timers ------------------------------------------------


class GuestTimer(IntervalTimer):
    """A timer that makes a signal pending when it expires (setitimer, alarm, timer_create)."""

    def __init__(self, task, signo: int, notify: int, target_tid: int, value: int, timer_id: int):
        super().__init__(task.kernel)
        self.process = task.process
        self.signo, self.notify, self.target_tid = signo, notify, target_tid
        self.value, self.timer_id = value, timer_id
        self.overrun = 0
        self.clock = _time.CLOCK_MONOTONIC

    def expired(self, count: int) -> None:
        from umiak.kernel.signals import make_siginfo, send
        self.overrun += count - 1   # periods missed count as overruns
        if self.notify == SIGEV_NONE or self.process.exiting:
            return
        if self.timer_id < 0:   # setitimer/alarm: a plain kernel signal
            info = make_siginfo(self.signo, SI_KERNEL)
        else:
            info = make_siginfo(self.signo, SI_TIMER, extra=_struct.pack("<iiQ", self.timer_id, self.overrun,
                                                                              self.value))
            self.overrun = 0
        target = self.process.tasks.get(self.target_tid) if self.notify & SIGEV_THREAD_ID else None
        send(self.kernel, self.process, self.signo, info, target)


def _itimer(task, which: int) -> GuestTimer:
    timers = task.process.itimers
    t = timers.get(which)
    if t is None:
        signo = {ITIMER_REAL: abi.SIGALRM, ITIMER_VIRTUAL: abi.SIGVTALRM, ITIMER_PROF: abi.SIGPROF}[which]
        t = timers[which] = GuestTimer(task, signo, SIGEV_SIGNAL, 0, 0, -1)
    return t


def _tv(seconds: float) -> tuple[int, int]:
    us = int(round(seconds * 1e6))
    return us // 1_000_000, us % 1_000_000


def sys_getitimer(task, which, value):
    """getitimer(2). ITIMER_VIRTUAL and ITIMER_PROF count wall-clock time, not CPU time."""
    which = s32(which)
    if which not in (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF):
        raise SyscallError(EINVAL)
    t = _itimer(task, which)
    task.mm.write(value, ITIMERVAL.pack(*_tv(t.interval), *_tv(t.remaining())))
    return 0


def sys_setitimer(task, which, new, old):
    """setitimer(2). ITIMER_VIRTUAL and ITIMER_PROF count wall-clock time, not CPU time."""
    which = s32(which)
    if which not in (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF):
        raise SyscallError(EINVAL)
    t = _itimer(task, which)
    vals = ITIMERVAL.unpack(task.mm.read(new, ITIMERVAL.size)) if new else (0, 0, 0, 0)
    for usec in (vals[1], vals[3]):
        if not 0 <= usec < 1_000_000:
            raise SyscallError(EINVAL)
    if old:
        task.mm.write(old, ITIMERVAL.pack(*_tv(t.interval), *_tv(t.remaining())))
    t.arm(vals[2] + vals[3] / 1e6, vals[0] + vals[1] / 1e6)
    return 0


def sys_alarm(task, seconds):
    """alarm(2)"""
    t = _itimer(task, ITIMER_REAL)
    left = t.remaining()
    t.arm(float(seconds & 0xFFFFFFFF), 0.0)
    return int(left + 0.999999) if left else 0


def sys_timer_create(task, clock, sevp, timerid):
    """timer_create(2): SIGEV_SIGNAL, SIGEV_THREAD_ID and SIGEV_NONE (glibc builds SIGEV_THREAD on these)."""
    _host_clock(clock)
    timers = task.process.posix_timers
    tid = 0
    while tid in timers:
        tid += 1
    if sevp:
        value, signo, notify, target = SIGEVENT.unpack(task.mm.read(sevp, SIGEVENT.size))
        if notify not in (SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID):
            raise SyscallError(EINVAL)
        if notify != SIGEV_NONE and not 1 <= signo <= abi.NSIG:
            raise SyscallError(EINVAL)
        if notify == SIGEV_THREAD_ID and target not in task.process.tasks:
            raise SyscallError(EINVAL)
    else:
        value, signo, notify, target = tid, abi.SIGALRM, SIGEV_SIGNAL, 0
    task.mm.write_u32(timerid, tid)
    timers[tid] = GuestTimer(task, signo, notify, target, value, tid)
    timers[tid].clock = _host_clock(clock)
    return 0


def _timer(task, timerid) -> GuestTimer:
    t = task.process.posix_timers.get(s32(timerid))
    if t is None:
        raise SyscallError(EINVAL)
    return t


def sys_timer_settime(task, timerid, flags, new, old):
    """timer_settime(2) with TIMER_ABSTIME."""
    t = _timer(task, timerid)
    value, interval = read_itimerspec(task, new)
    if old:
        task.mm.write(old, t.itimerspec())
    if flags & abi.TIMER_ABSTIME and value:
        value = max(1e-9, value - _time.clock_gettime(t.clock))
    t.arm(value, interval)
    return 0


def sys_timer_gettime(task, timerid, cur):
    """timer_gettime(2)"""
    t = _timer(task, timerid)
    task.mm.write(cur, t.itimerspec())
    return 0


def sys_timer_getoverrun(task, timerid):
    """timer_getoverrun(2)"""
    return _timer(task, timerid).overrun


def sys_timer_delete(task, timerid):
    """timer_delete(2)"""
    t = _timer(task, timerid)
    t.arm(0, 0)
    del task.process.posix_timers[s32(timerid)]
    return 0
