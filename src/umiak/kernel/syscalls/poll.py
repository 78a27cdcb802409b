"""Waiting on many files: poll(2), ppoll(2), select(2), pselect6(2) and epoll(7)."""

import struct
import time
from collections import deque
from functools import partial

from umiak.kernel import abi
from umiak.kernel.abi import (EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, EPOLL_EVENT, EPOLLET, EPOLLEXCLUSIVE,
                              EPOLLONESHOT, POLLERR, POLLFD, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI, s32, s64)
from umiak.kernel.errors import EBADF, EEXIST, EINTR, EINVAL, ELOOP, ENOENT, EPERM, ERESTARTSYS, SyscallError
from umiak.kernel.files import File, Stat
from umiak.kernel.waiting import wait_for

ALWAYS = POLLERR | POLLHUP
EPOLL_MAX_NESTS = 4   # Linux's limit on epolls inside epolls


def _timeout_ms(ms: int) -> float | None:
    ms = s32(ms)
    return None if ms < 0 else ms / 1000.0


def _timespec(task, addr) -> float | None:
    if not addr:
        return None
    sec, nsec = task.mm.read_struct(addr, abi.TIMESPEC)
    if s64(sec) < 0 or not 0 <= nsec < 1_000_000_000:
        raise SyscallError(EINVAL)
    return sec + nsec / 1e9


def _with_sigmask(task, sigmask: int, fn):
    """ppoll/pselect/epoll_pwait: run fn with a temporary signal mask, as Linux does."""
    if not sigmask:
        return fn()
    old = task.sigmask
    task.set_sigmask(task.mm.read_u64(sigmask))
    try:
        ret = fn()
    except SyscallError as e:
        if e.errno in (ERESTARTSYS, EINTR):
            task.saved_sigmask = old   # the handler runs with the temporary mask
            raise SyscallError(EINTR) from None
        task.set_sigmask(old)
        raise
    task.set_sigmask(old)
    return ret


def _do_poll(task, entries: list[tuple[int, int]], timeout: float | None) -> list[int]:
    """revents for each (fd, events); waits until one is non-zero or timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        out, items = [], []
        for fd, events in entries:
            if fd < 0:
                out.append(0)
                continue
            f = task.fds.files.get(fd)
            if f is None:
                out.append(POLLNVAL)
                continue
            out.append(f.poll_mask() & (events | ALWAYS))
            items.append((f, events | ALWAYS))
        if any(out):
            return out
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return out
        try:
            if not wait_for(task, items, left) and deadline is not None and time.monotonic() >= deadline:
                return out
        except SyscallError as e:
            if e.errno == ERESTARTSYS:
                raise SyscallError(EINTR) from None   # poll is never restarted
            raise


def _poll(task, fds, nfds, timeout):
    if nfds > task.fds.limit:
        raise SyscallError(EINVAL)
    raw = task.mm.read(fds, POLLFD.size * nfds)
    entries = [POLLFD.unpack_from(raw, i * POLLFD.size)[:2] for i in range(nfds)]
    revents = _do_poll(task, entries, timeout)
    out = bytearray(raw)
    for i, r in enumerate(revents):
        struct.pack_into("<h", out, i * POLLFD.size + 6, r if r < 0x8000 else r - 0x10000)
    task.mm.write(fds, bytes(out))
    return sum(1 for r in revents if r)


def sys_poll(task, fds, nfds, timeout):
    """poll(2)"""
    return _poll(task, fds, nfds, _timeout_ms(timeout))


def sys_ppoll(task, fds, nfds, tsp, sigmask, sigsetsize):
    """ppoll(2)"""
    timeout = _timespec(task, tsp)
    return _with_sigmask(task, sigmask, lambda: _poll(task, fds, nfds, timeout))


def _select(task, nfds, rp, wp, ep, timeout):
    nfds = s32(nfds)
    if nfds < 0 or nfds > task.fds.limit:
        raise SyscallError(EINVAL)
    nbytes = ((nfds + 63) // 64) * 8
    sets = [int.from_bytes(task.mm.read(p, nbytes), "little") if p else 0 for p in (rp, wp, ep)]
    entries = []
    for fd in range(nfds):
        ev = (_isset(sets[0], fd) and POLLIN) | (_isset(sets[1], fd) and POLLOUT) | (_isset(sets[2], fd) and POLLPRI)
        if ev:
            if fd not in task.fds.files:
                raise SyscallError(EBADF)
            entries.append((fd, ev))
    revents = _do_poll(task, entries, timeout)
    res = [0, 0, 0]
    count = 0
    for (fd, ev), r in zip(entries, revents, strict=True):
        hits = [ev & POLLIN and r & (POLLIN | POLLHUP | POLLERR), ev & POLLOUT and r & (POLLOUT | POLLERR),
                ev & POLLPRI and r & POLLPRI]
        for i, h in enumerate(hits):
            if h:
                res[i] |= 1 << fd
                count += 1
    for p, v in zip((rp, wp, ep), res, strict=True):
        if p:
            task.mm.write(p, v.to_bytes(nbytes, "little"))
    return count


def _isset(bits: int, fd: int) -> bool:
    """FD_ISSET: fd's bit in a select(2) set."""
    return bool(bits >> fd & 1)


def sys_select(task, nfds, rp, wp, ep, tvp):
    """select(2): the timeout is not updated with the time left."""
    timeout = None
    if tvp:
        sec, usec = task.mm.read_struct(tvp, abi.TIMEVAL)
        if s64(sec) < 0 or not 0 <= usec < 1_000_000:
            raise SyscallError(EINVAL)
        timeout = sec + usec / 1e6
    return _select(task, nfds, rp, wp, ep, timeout)


def sys_pselect6(task, nfds, rp, wp, ep, tsp, sig):
    """pselect6(2)"""
    timeout = _timespec(task, tsp)
    sigmask = 0
    if sig:
        sigmask_ptr, size = struct.unpack("<QQ", task.mm.read(sig, 16))
        sigmask = sigmask_ptr if size == 8 else 0
    return _with_sigmask(task, sigmask, lambda: _select(task, nfds, rp, wp, ep, timeout))


# -- epoll ---------------------------------------------------------------------------

class _Epitem:
    """One registration: what to report, and whether it sits on the ready list."""

    __slots__ = ("file", "fd", "events", "data", "disabled", "queued", "hfd")

    def __init__(self, f: File, fd: int, events: int, data: int):
        self.file, self.fd, self.events, self.data = f, fd, events, data
        self.disabled = False   # EPOLLONESHOT fired, or the registration is gone
        self.queued = False     # on the epoll's ready list
        self.hfd = -1           # the host fd it is registered under (_HostSet)


class EpollFile(File):
    """An epoll instance: the interest list, and a ready list of the entries whose file
    changed since epoll_wait last looked, so a wait costs what is ready, not what is
    registered (as Linux's rdllist). A guest file's WaitQueue hook queues its entry on
    each change; files whose readiness lives on the host (host_fd) have no such hook:
    they sit in one host epoll (`host`), asked on each wait and slept on.

    As on Linux, a registration belongs to the (fd, open file description) pair and does
    not keep the file open: it goes when the description's last reference does (so a
    dup'ed fd keeps it alive after the registered fd is closed), through File.watch."""

    path = "anon_inode:[eventpoll]"
    _waking = False   # notifying our waiters (a parent epoll's hook runs then)

    def __init__(self, flags: int):
        self.flags = abi.O_RDWR | (flags & abi.O_CLOEXEC)
        self.interest: dict[tuple[int, int], _Epitem] = {}   # (fd, id(file)) -> entry
        self.rdlist: deque[_Epitem] = deque()
        self.hosted: dict[tuple[int, int], _Epitem] = {}
        self.host: _HostSet | None = None   # one host epoll for the hosted files (made on first use)

    def link_text(self) -> str:
        return self.path

    def stat(self):
        return Stat(st_mode=0o600)

    def poll_mask(self) -> int:
        return 0x1 if self.ready(peek=True) else 0

    def _queue(self, ent: _Epitem) -> None:
        """The entry's file changed: look at it on the next wait, and wake waiters."""
        if not ent.queued and not ent.disabled:
            ent.queued = True
            self.rdlist.append(ent)
        q = self._waitq
        if q is not None and (q.waiters or q.hooks) and not self._waking:
            self._waking = True
            try:
                q.notify()   # epoll_wait sleepers, poll(2) on this epoll, a parent epoll
            finally:
                self._waking = False

    def reaches(self, other: "EpollFile", depth: int = 0) -> bool:
        """Whether other is this epoll or nested in it (too deep counts: Linux's ELOOP)."""
        if self is other or depth > EPOLL_MAX_NESTS:
            return True
        return any(isinstance(e.file, EpollFile) and e.file.reaches(other, depth + 1)
                   for e in self.interest.values())

    def add(self, fd: int, f: File, events: int, data: int) -> None:
        key = (fd, id(f))
        ent = self.interest[key] = _Epitem(f, fd, events, data)
        f.watch((id(self), fd), lambda _f: self._forget(key))
        hfd = f.host_fd()
        if hfd is not None:
            self.hosted[key] = ent
            if self.host is None:
                self.host = _HostSet()
            self.host.add(hfd, ent)
        else:
            f.waitq.hook((id(self), key), partial(self._queue, ent))   # ends of a pipe share a queue
            self._queue(ent)   # already ready: reported by the next wait

    def modify(self, key: tuple[int, int], events: int, data: int) -> None:
        ent = self.interest[key]
        ent.events, ent.data, ent.disabled = events, data, False
        if key not in self.hosted:
            self._queue(ent)
        elif self.host is not None:
            self.host.sync(ent.hfd)

    def _forget(self, key: tuple[int, int]) -> None:
        ent = self.interest.pop(key, None)
        if ent is not None:
            ent.disabled = True
            if self.hosted.pop(key, None) is not None and self.host is not None:
                self.host.remove(ent)
            ent.file.waitq.unhook((id(self), key))

    def remove(self, fd: int, f: File) -> None:
        self._forget((fd, id(f)))
        f.unwatch((id(self), fd))

    def close(self) -> None:
        for key, ent in list(self.interest.items()):
            self._forget(key)
            ent.file.unwatch((id(self), ent.fd))
        self.rdlist.clear()
        if self.host is not None:
            self.host.close()
            self.host = None

    def ready(self, peek: bool = False, maxevents: int = 1 << 30) -> list[tuple[int, int]]:
        """(mask, data) of ready entries, at most maxevents; peek changes nothing."""
        out: list[tuple[int, int]] = []
        rdl = self.rdlist
        if peek:
            for ent in rdl:
                if not ent.disabled and ent.file.poll_mask() & (ent.events | ALWAYS):
                    return [(1, 0)]
        else:
            again = []
            while rdl:
                ent = rdl.popleft()
                ent.queued = False
                if ent.disabled:
                    continue
                events = ent.events
                mask = ent.file.poll_mask() & (events | ALWAYS)
                if not mask:
                    continue   # back on the list at the file's next change
                if events & EPOLLONESHOT:
                    ent.disabled = True
                elif not events & EPOLLET:
                    again.append(ent)   # level-triggered: stays while ready
                out.append((mask, ent.data))
                if len(out) >= maxevents:
                    break
            for ent in again:   # behind the ones not looked at, as Linux
                if not ent.queued:
                    ent.queued = True
                    rdl.append(ent)
        if self.hosted and len(out) < maxevents and self.host is not None:
            for got, ent in self.host.ready(maxevents - len(out)):
                mask = got & (ent.events | ALWAYS)
                if not mask:
                    continue
                if peek:
                    return [(1, 0)]
                if ent.events & EPOLLONESHOT:
                    ent.disabled = True
                    self.host.sync(ent.hfd)
                out.append((mask, ent.data))
                if len(out) >= maxevents:
                    break
        return out


class _HostSet:
    """The files of one epoll whose readiness lives on the host (host_fd: stdio, host
    sockets), in one level-triggered host epoll: a wait asks it what is ready, and sleeps
    on its fd, instead of polling every such file each time. A host fd registered under
    several guest fds (dup) is registered once, for the union of their events."""

    def __init__(self):
        import select
        self.ep = select.epoll()
        self.ents: dict[int, list[_Epitem]] = {}   # host fd -> live entries

    def host_fd(self) -> int:
        return self.ep.fileno()   # readable while a member is ready (wait_for polls it)

    def add(self, hfd: int, ent: _Epitem) -> None:
        ent.hfd = hfd
        self.ents.setdefault(hfd, []).append(ent)
        self.sync(hfd)

    def remove(self, ent: _Epitem) -> None:
        ents = self.ents.get(ent.hfd)
        if ents is not None and ent in ents:
            ents.remove(ent)
            self.sync(ent.hfd)

    def sync(self, hfd: int | None) -> None:
        """Register hfd on the host for what its live entries want (or not at all)."""
        if hfd is None:
            return
        ents = self.ents.get(hfd)
        if ents is not None:
            ents[:] = [e for e in ents if e.file.host_fd() == hfd]   # drop released or reused
        want = 0
        for e in ents or ():
            if not e.disabled:
                want |= e.events & 0xFFFF & ~EPOLLEXCLUSIVE
        try:
            if not want:
                if not ents:
                    self.ents.pop(hfd, None)
                self.ep.unregister(hfd)
                return
            try:
                self.ep.modify(hfd, want)
            except FileNotFoundError:
                self.ep.register(hfd, want)
        except OSError:
            pass   # closed on the host: nothing to report, as a released socket

    def ready(self, maxevents: int) -> list[tuple[int, _Epitem]]:
        out = []
        for hfd, got in self.ep.poll(0, max(1, min(maxevents, 1024))):
            for e in self.ents.get(hfd, ()):
                if not e.disabled and e.file.host_fd() == hfd:
                    out.append((got, e))
        return out

    def close(self) -> None:
        self.ep.close()


def sys_epoll_create(task, size):
    """epoll_create(2)"""
    if s32(size) <= 0:
        raise SyscallError(EINVAL)
    return task.fds.install(EpollFile(0))


def sys_epoll_create1(task, flags):
    """epoll_create1(2)"""
    if flags & ~abi.O_CLOEXEC:
        raise SyscallError(EINVAL)
    return task.fds.install(EpollFile(flags), cloexec=bool(flags & abi.O_CLOEXEC))


def _epoll(task, epfd) -> EpollFile:
    return task.fds.get_as(s32(epfd), EpollFile)


def sys_epoll_ctl(task, epfd, op, fd, event):
    """epoll_ctl(2)"""
    ep = _epoll(task, epfd)
    fd, op = s32(fd), s32(op)
    target = task.fds.get(fd)
    if target is ep:
        raise SyscallError(EINVAL)
    if target.is_regular() or not target.pollable:
        raise SyscallError(EPERM)   # regular files, directories, /dev/null cannot be polled
    key = (fd, id(target))
    if op == EPOLL_CTL_DEL:
        if key not in ep.interest:
            raise SyscallError(ENOENT)
        ep.remove(fd, target)
        return 0
    events, data = EPOLL_EVENT.unpack(task.mm.read(event, EPOLL_EVENT.size))
    if op == EPOLL_CTL_ADD:
        if key in ep.interest:
            raise SyscallError(EEXIST)
        if isinstance(target, EpollFile) and target.reaches(ep):
            raise SyscallError(ELOOP)   # a cycle of epolls would wake itself for ever
        ep.add(fd, target, events, data)
    elif op == EPOLL_CTL_MOD:
        if key not in ep.interest:
            raise SyscallError(ENOENT)
        if events & EPOLLEXCLUSIVE:
            raise SyscallError(EINVAL)
        ep.modify(key, events, data)
    else:
        raise SyscallError(EINVAL)
    ep.waitq.notify()
    return 0


def _epoll_wait(task, epfd, events, maxevents, timeout: float | None):
    ep = _epoll(task, epfd)
    maxevents = s32(maxevents)
    if maxevents <= 0 or maxevents > (1 << 31) // EPOLL_EVENT.size:
        raise SyscallError(EINVAL)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        got = ep.ready(maxevents=maxevents)
        if got:
            task.mm.write(events, b"".join(EPOLL_EVENT.pack(m, d) for m, d in got))
            return len(got)
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return 0
        # Guest files queue themselves and wake ep.waitq; host files are polled on the host.
        items: list = [(ep, 0x1)]
        if ep.hosted and ep.host is not None:
            items.append((ep.host, POLLIN))
        try:
            wait_for(task, items, left)
        except SyscallError as e:
            if e.errno == ERESTARTSYS:
                raise SyscallError(EINTR) from None
            raise


def sys_epoll_wait(task, epfd, events, maxevents, timeout):
    """epoll_wait(2)"""
    return _epoll_wait(task, epfd, events, maxevents, _timeout_ms(timeout))


def sys_epoll_pwait(task, epfd, events, maxevents, timeout, sigmask, sigsetsize):
    """epoll_pwait(2)"""
    return _with_sigmask(task, sigmask, lambda: _epoll_wait(task, epfd, events, maxevents, _timeout_ms(timeout)))


def sys_epoll_pwait2(task, epfd, events, maxevents, timeout, sigmask, sigsetsize):
    """epoll_pwait2(2)"""
    t = _timespec(task, timeout)
    return _with_sigmask(task, sigmask, lambda: _epoll_wait(task, epfd, events, maxevents, t))
