"""One host thread per VM that fires guest timers (alarm, setitimer, timer_create, timerfd).

Callbacks run on the timer thread with the kernel lock held; they only make
signals pending or bump counters and wake waiters, never block.
"""

import _thread
import heapq
import itertools
import threading
import time
from collections.abc import Callable

from umiak.kernel.abi import ITIMERSPEC
from umiak.kernel.errors import EINVAL, SyscallError


class TimerQueue:
    def __init__(self, lock: threading.Lock):
        self._lock = lock                      # the kernel lock, held while callbacks run
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._live: dict[int, tuple] = {}
        self._ids = itertools.count(1)
        self._thread: int | None = None   # the timer thread's ident, started by the first add()
        self._stopped = False

    def add(self, deadline: float, callback) -> int:
        """Call callback() at time.monotonic() == deadline; returns a handle for cancel()."""
        with self._cond:
            tid = next(self._ids)
            entry = (deadline, tid, callback)
            self._live[tid] = entry
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                # A bare thread (as daemon as threading's): Thread.start() waits until the new
                # thread runs, which on a busy host cost every start milliseconds (the vDSO's
                # refresh is the first timer of every program).
                self._thread = _thread.start_new_thread(self._run, ())
            self._cond.notify()
            return tid

    def cancel(self, handle: int | None) -> None:
        if handle is None:
            return
        with self._cond:
            self._live.pop(handle, None)

    def armed(self) -> bool:
        """Some timer is still to fire (it may make a signal pending and wake a waiter)."""
        return bool(self._live)

    def stop(self) -> None:
        """No callback runs once this returns (the VM's memory may be someone else's next:
        Platform.recycle). Caller does not hold the kernel lock."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        with self._lock:   # a callback in flight holds it: it has finished; later ones see _stopped
            pass

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    while self._heap and self._heap[0][1] not in self._live:
                        heapq.heappop(self._heap)
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                _, tid, cb = heapq.heappop(self._heap)
                self._live.pop(tid, None)
            with self._lock:
                if self._stopped:
                    return
                try:
                    cb()
                except Exception:  # noqa: BLE001 - a timer must not kill the timer thread
                    pass


class IntervalTimer:
    """A one-shot or periodic timer on the VM's TimerQueue. Subclasses say what an
    expiry does in expired(count), where count includes periods missed meanwhile."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.interval = 0.0
        self.deadline: float | None = None
        self.handle: int | None = None   # the TimerQueue entry while armed

    def arm(self, value: float, interval: float) -> None:
        """value seconds from now (0 disarms), then every interval. Caller holds the kernel lock."""
        self.kernel.timers.cancel(self.handle)
        self.handle, self.deadline, self.interval = None, None, interval
        if value > 0:
            self.deadline = time.monotonic() + value
            self.handle = self.kernel.timers.add(self.deadline, self._fire)

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic()) if self.deadline else 0.0

    def itimerspec(self) -> bytes:
        """The struct itimerspec timer_gettime(2) and timerfd_gettime(2) write: period, time left."""
        return ITIMERSPEC.pack(*_sec_nsec(self.interval), *_sec_nsec(self.remaining()))

    def cancel(self) -> None:
        self.kernel.timers.cancel(self.handle)
        self.handle = self.deadline = None

    def _fire(self) -> None:
        count = 1
        if self.interval > 0 and self.deadline is not None:
            self.deadline += self.interval
            now = time.monotonic()
            if self.deadline < now:   # periods missed while the host was busy
                missed = int((now - self.deadline) / self.interval) + 1
                count += missed
                self.deadline += missed * self.interval
            self.handle = self.kernel.timers.add(self.deadline, self._fire)
        else:
            self.deadline, self.handle = None, None
        self.expired(count)

    def expired(self, count: int) -> None:
        raise NotImplementedError


def _sec_nsec(seconds: float) -> tuple[int, int]:
    ns = int(round(seconds * 1e9))
    return ns // 1_000_000_000, ns % 1_000_000_000


def read_itimerspec(task, addr: int) -> tuple[float, float]:
    """A guest struct itimerspec as (value, interval) in seconds; EINVAL if a field is out of range."""
    isec, insec, vsec, vnsec = ITIMERSPEC.unpack(task.mm.read(addr, ITIMERSPEC.size))
    if isec < 0 or vsec < 0 or not (0 <= insec < 1_000_000_000 and 0 <= vnsec < 1_000_000_000):
        raise SyscallError(EINVAL)
    return vsec + vnsec / 1e9, isec + insec / 1e9
