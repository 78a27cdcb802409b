"""Clocks and sleeping: clock_gettime(2), gettimeofday(2), nanosleep(2)..."""

import time as _time

from umiak.kernel import abi
from umiak.kernel.abi import s32, s64
from umiak.kernel.errors import EFAULT, EINVAL, SyscallError

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


def sys_nanosleep(task, req, rem):
    """nanosleep(2)"""
    ns = _read_timespec(task, req)
    _time.sleep(ns / 1e9)
    return 0


def sys_clock_nanosleep(task, clock, flags, req, rem):
    """clock_nanosleep(2) with TIMER_ABSTIME."""
    c = s32(clock)
    if c in (abi.CLOCK_THREAD_CPUTIME_ID,):
        raise SyscallError(EINVAL)
    hc = _host_clock(clock)
    ns = _read_timespec(task, req)
    if flags & abi.TIMER_ABSTIME:
        ns -= _time.clock_gettime_ns(hc)
    if ns > 0:
        _time.sleep(ns / 1e9)
    return 0


__all__ = ["EFAULT"]
