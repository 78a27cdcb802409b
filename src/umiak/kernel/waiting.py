"""Readiness and waiting on files: wait queues, poll masks, and blocking I/O.

Every blocking call goes through `Task.wait`: a guest-internal file (pipe,
eventfd, timerfd, signalfd, epoll) wakes its waiters through its `WaitQueue`;
a host file descriptor (a terminal or pipe given as stdio, a socket) is polled
on the host with the kernel lock released. A file whose operation would block
raises EAGAIN; the syscall layer then waits for readiness unless O_NONBLOCK.
"""

import select

from umiak.kernel import abi
from umiak.kernel.abi import POLLERR, POLLHUP, POLLIN, POLLOUT, POLLPRI, POLLRDNORM, POLLWRNORM
from umiak.kernel.errors import EAGAIN, SyscallError


class WaitQueue:
    """Tasks waiting for a file's state to change; `seq` counts changes (for EPOLLET)."""

    __slots__ = ("waiters", "seq")

    def __init__(self):
        self.waiters: list = []   # [task, fired] pairs
        self.seq = 0

    def add(self, task) -> list:
        entry = [task, False]
        self.waiters.append(entry)
        return entry

    def remove(self, entry: list) -> None:
        try:
            self.waiters.remove(entry)
        except ValueError:
            pass

    def notify(self) -> None:
        """State changed: wake every waiter. Caller holds the kernel lock."""
        self.seq += 1
        for entry in self.waiters:
            entry[1] = True
            entry[0].wake()


def waitq(f) -> WaitQueue:
    q = getattr(f, "_waitq", None)
    if q is None:
        q = WaitQueue()
        try:
            f._waitq = q
        except AttributeError:
            pass
    return q


def host_fd(f) -> int | None:
    """The host fd to poll for f, when f's readiness lives on the host (not regular files)."""
    fd = getattr(f, "fd", None)
    if fd is None or not isinstance(fd, int):
        return None
    is_regular = getattr(f, "_is_regular", None)
    if is_regular is not None and is_regular():
        return None
    return fd


def poll_mask(f) -> int:
    """Current readiness of f as POLL* bits (without waiting)."""
    pm = getattr(f, "poll_mask", None)
    if pm is not None:
        return pm()
    fd = host_fd(f)
    if fd is not None:
        p = select.poll()
        p.register(fd, POLLIN | POLLOUT | POLLPRI)
        got = p.poll(0)
        return got[0][1] if got else 0
    mask = 0
    if f.readable():
        mask |= POLLIN | POLLRDNORM
    if f.writable():
        mask |= POLLOUT | POLLWRNORM
    return mask


def wait_for(task, items: list[tuple[object, int]], timeout: float | None) -> bool:
    """Sleep until one of (file, events) may be ready, or timeout (False).

    Caller holds the kernel lock; raises ERESTARTSYS on a signal."""
    entries, host = [], []
    for f, events in items:
        fd = host_fd(f) if getattr(f, "poll_mask", None) is None else None
        if fd is not None:
            host.append((fd, events & 0xFFFF))   # EPOLLET/ONESHOT/... are not poll(2) bits
        else:
            q = waitq(f)
            entries.append((q, q.add(task)))
    try:
        return task.wait(lambda: any(e[1] for _, e in entries), timeout, host_fds=host or None)
    finally:
        for q, e in entries:
            q.remove(e)


def blocking(task, f, events: int, op):
    """Run op() until it does not raise EAGAIN, waiting for `events` in between,
    unless the file is O_NONBLOCK (then EAGAIN goes to the program)."""
    while True:
        try:
            return op()
        except SyscallError as e:
            if e.errno != EAGAIN or f.flags & abi.O_NONBLOCK:
                raise
        if poll_mask(f) & (events | POLLERR | POLLHUP):
            # Ready but the operation still would block (e.g. a partial pipe write): sleep briefly.
            wait_for(task, [(f, events)], 0.001)
        else:
            wait_for(task, [(f, events)], None)
