"""Readiness and waiting on files: wait queues, poll masks, and blocking I/O.

Every blocking call goes through `Task.wait`: a guest-internal file (pipe,
eventfd, timerfd, signalfd, epoll) wakes its waiters through its `WaitQueue`;
a host file descriptor (a terminal or pipe given as stdio, a socket) is polled
on the host with the kernel lock released. A file whose operation would block
raises EAGAIN; the syscall layer then waits for readiness unless O_NONBLOCK.
"""

from typing import TYPE_CHECKING

from umiak.kernel import abi
from umiak.kernel.abi import POLLERR, POLLHUP
from umiak.kernel.errors import EAGAIN, SyscallError

if TYPE_CHECKING:
    from umiak.kernel.interfaces import Waitable


class WaitQueue:
    """Tasks waiting for a file's state to change; `seq` counts changes (for EPOLLET).

    `hooks` are callbacks run on each change: an epoll instance puts its entry for the
    file on its ready list there, so epoll_wait looks only at files that changed."""

    __slots__ = ("waiters", "seq", "hooks")

    def __init__(self):
        self.waiters: list = []   # [task, fired] pairs
        self.seq = 0
        self.hooks: dict | None = None   # key -> fn(), see hook()

    def hook(self, key, fn) -> None:
        if self.hooks is None:
            self.hooks = {}
        self.hooks[key] = fn

    def unhook(self, key) -> None:
        if self.hooks:
            self.hooks.pop(key, None)

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
        if self.hooks:
            for fn in self.hooks.values():   # a hook never hooks or unhooks
                fn()


def wait_for(task, items: "list[tuple[Waitable, int]]", timeout: float | None) -> bool:
    """Sleep until one of (file, events) may be ready, or timeout (False).

    Caller holds the kernel lock; raises ERESTARTSYS on a signal."""
    entries, host = [], []
    for f, events in items:
        fd = f.host_fd()
        if fd is not None:
            host.append((fd, events & 0xFFFF))   # EPOLLET/ONESHOT/... are not poll(2) bits
        else:
            q = f.waitq
            entries.append((q, q.add(task)))
    try:
        return task.wait(lambda: any(e[1] for _, e in entries), timeout, host_fds=host or None)
    finally:
        for q, e in entries:
            q.remove(e)


def nothing_can_wake(task) -> bool:
    """Whether a sleep on guest-internal state would last forever: no other thread or
    process could change it and no armed timer could interrupt it with a signal."""
    k = task.kernel
    if len(k.tasks) > 1:   # live tasks of every process (zombies cannot wake anyone)
        return False
    return not k.timers.armed()


def blocking(task, f, events: int, op):
    """Run op() until it does not raise EAGAIN, waiting for `events` in between,
    unless the file is O_NONBLOCK (then EAGAIN goes to the program)."""
    while True:
        try:
            return op()
        except SyscallError as e:
            if e.errno != EAGAIN or f.flags & abi.O_NONBLOCK:
                raise
        if f.poll_mask() & (events | POLLERR | POLLHUP):
            # Ready but the operation still would block (e.g. a partial pipe write): sleep briefly.
            wait_for(task, [(f, events)], 0.001)
        else:
            wait_for(task, [(f, events)], None)
