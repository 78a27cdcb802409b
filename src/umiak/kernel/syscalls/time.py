"""Clocks and sleeping: clock_gettime(2), gettimeofday(2), nanosleep(2)..."""

import struct as _struct
import time as _time

from umiak.kernel import abi
from umiak.kernel.abi import (ITIMER_PROF, ITIMER_REAL, ITIMER_VIRTUAL, ITIMERVAL, SI_KERNEL, SI_TIMER,
                              SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD_ID, SIGEVENT, s32, s64)
from umiak.kernel.errors import EINTR, EINVAL, EPERM, ERESTART_RESTARTBLOCK, ERESTARTNOHAND, SyscallError
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


def _host_clock(task, clock: int) -> int:
    """The host clock id that serves a guest clock id, EINVAL for none."""
    clock = s32(clock)
    if clock < 0:
        return _cpu_clock(task, clock)
    c = _CLOCKS.get(clock)
    if c is None:
        raise SyscallError(EINVAL)
    return c


def _cpu_clock(task, clock: int) -> int:
    """A CPU-time clock id as Linux encodes it: (~pid << 3) | perthread(4) | which, which
    PROF 0, VIRT 1 or SCHED 2 (3 is a file descriptor's clock: none here). A thread's clock is
    its host thread's CPU time (its vCPU runs there); the process's is umiak's own. All three
    kinds count user and system time (VIRT would count user time only)."""
    which, pid = clock & 3, ~(clock >> 3)
    if which == 3 or task is None:
        raise SyscallError(EINVAL)
    if not clock & 4:
        if pid != 0 and pid not in task.kernel.processes:
            raise SyscallError(EINVAL)
        return _time.CLOCK_PROCESS_CPUTIME_ID
    if pid == 0 or pid == task.tid:
        target = task
    else:
        target = next((p.tasks[pid] for p in task.kernel.processes.values() if pid in p.tasks), None)
    if target is None:
        raise SyscallError(EINVAL)
    if target is task or target.host_thread is None:
        return _time.CLOCK_THREAD_CPUTIME_ID if target is task else _time.CLOCK_PROCESS_CPUTIME_ID
    try:
        return _time.pthread_getcpuclockid(target.host_thread)
    except (OSError, OverflowError):
        raise SyscallError(EINVAL) from None


def _own_thread_clock(task, clock: int) -> bool:
    clock = s32(clock)
    return clock == abi.CLOCK_THREAD_CPUTIME_ID or (clock < 0 and clock & 7 == 6 and ~(clock >> 3) in (0, task.tid))


def sys_clock_gettime(task, clock, tp):
    """clock_gettime(2): the host's clocks (CPU-time clocks are the host thread's)."""
    ns = _time.clock_gettime_ns(_host_clock(task, clock))
    task.mm.write(tp, abi.TIMESPEC.pack(ns // 1_000_000_000, ns % 1_000_000_000))
    return 0


def sys_clock_getres(task, clock, res):
    """clock_getres(2)"""
    c = _host_clock(task, clock)
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


def sys_clock_settime(task, clock, tp):
    """clock_settime(2): the VM has no CAP_SYS_TIME (as a container): setting CLOCK_REALTIME
    is EPERM after Linux's checks of the clock and the time (EINVAL), CPU-time clocks are EPERM
    (Linux never sets them), and the clocks nobody may set (CLOCK_MONOTONIC...) are EINVAL."""
    clock = s32(clock)
    if clock < 0:
        _host_clock(task, clock)
        raise SyscallError(EPERM)
    if clock != abi.CLOCK_REALTIME:
        raise SyscallError(EINVAL)
    _read_timespec(task, tp)
    raise SyscallError(EPERM)


def sys_settimeofday(task, tv, tz):
    """settimeofday(2): EINVAL for a bad time or zone, else EPERM (no CAP_SYS_TIME, see clock_settime)."""
    if tv:
        sec, usec = task.mm.read_struct(tv, abi.TIMEVAL)
        if s64(sec) < 0 or not 0 <= s64(usec) < 1_000_000:
            raise SyscallError(EINVAL)
    if tz:
        minuteswest, _ = _struct.unpack("<ii", task.mm.read(tz, 8))
        if not -15 * 60 <= minuteswest <= 15 * 60:
            raise SyscallError(EINVAL)
    raise SyscallError(EPERM)


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
    return _time.clock_gettime_ns(_host_clock(task, clock))


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


def _interrupted(task, left_ns: int, rem: int, clock: int, end_ns: int | None) -> None:
    """EINTR with the time left if a handler runs. If none does (a stop and SIGCONT) a
    relative sleep goes on until its first deadline, as Linux's restart_syscall
    continues it; an absolute one (end_ns None) is simply made again."""
    if rem:
        task.mm.write(rem, abi.TIMESPEC.pack(left_ns // 1_000_000_000, left_ns % 1_000_000_000))
    if end_ns is None:
        raise SyscallError(ERESTARTNOHAND)
    task.restart_block = (clock, end_ns, rem)
    raise SyscallError(ERESTART_RESTARTBLOCK)


def _sleep(task, clock: int, end_ns: int, rem: int) -> int:
    left = _sleep_until(task, clock, end_ns)
    if left:
        _interrupted(task, left, rem, clock, end_ns)
    return 0


def sys_nanosleep(task, req, rem):
    """nanosleep(2): EINTR with the time left in rem when a signal handler runs."""
    ns = _read_timespec(task, req)
    clock = abi.CLOCK_MONOTONIC
    return _sleep(task, clock, guest_clock_ns(task, clock) + ns, rem)


def sys_restart_syscall(task):
    """restart_syscall(2): what a relative sleep a stop interrupted is restarted as; it
    sleeps until the first call's deadline. EINTR when there is nothing to continue."""
    block, task.restart_block = task.restart_block, None
    if block is None:
        raise SyscallError(EINTR)
    return _sleep(task, *block)


def sys_clock_nanosleep(task, clock, flags, req, rem):
    """clock_nanosleep(2) with TIMER_ABSTIME."""
    clock = s32(clock)
    if _own_thread_clock(task, clock):        # Linux: a thread cannot sleep on its own CPU clock
        raise SyscallError(EINVAL)
    _host_clock(task, clock)
    ns = _read_timespec(task, req)
    if flags & abi.TIMER_ABSTIME:
        left = _sleep_until(task, clock, ns)
        if left:
            _interrupted(task, left, 0, clock, None)
        return 0
    return _sleep(task, clock, guest_clock_ns(task, clock) + ns, rem)


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
    _host_clock(task, clock)
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
    timers[tid].clock = _host_clock(task, clock)
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


# -- adjtimex(2) / clock_adjtime(2) ------------------------------------------------------

TIMEX_SIZE = 208
ADJ_OFFSET_SS_READ = 0xA001


def sys_adjtimex(task, buf):
    """adjtimex(2): reading (modes 0) gives the host's clock state (the clock the VM reads);
    any adjustment is EPERM (no CAP_SYS_TIME, as clock_settime)."""
    return _adjtime(task, buf)


def sys_clock_adjtime(task, clock, buf):
    """clock_adjtime(2): CLOCK_REALTIME as adjtimex; the other clocks cannot be adjusted."""
    c = s32(clock)
    if c < 0:
        _host_clock(task, c)
        raise SyscallError(95)   # EOPNOTSUPP: CPU-time clocks
    if c != abi.CLOCK_REALTIME:
        _host_clock(task, c)
        raise SyscallError(95)
    return _adjtime(task, buf)


def _adjtime(task, buf) -> int:
    import ctypes
    raw = task.mm.read(buf, TIMEX_SIZE)
    modes = int.from_bytes(raw[:4], "little")
    if modes not in (0, ADJ_OFFSET_SS_READ):
        raise SyscallError(EPERM)
    host = ctypes.create_string_buffer(TIMEX_SIZE)   # modes 0: a read, allowed to anyone
    libc = ctypes.CDLL(None, use_errno=True)
    state = libc.adjtimex(host)
    if state < 0:
        raise SyscallError(ctypes.get_errno() or EINVAL)
    out = bytearray(host.raw)
    out[:4] = raw[:4]
    task.mm.write(buf, bytes(out))
    return state
