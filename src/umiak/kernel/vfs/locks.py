"""File locks: fcntl record locks (process-owned F_SETLK and description-owned F_OFD_SETLK)
and flock(2) locks, in one table per VM.

A lock belongs to an owner: ("posix", pid) for F_SETLK (so threads of one process
never conflict, and closing any fd of the file drops them, as Linux), ("ofd", file)
for F_OFD_SETLK and flock (dropped when the open file description's last fd closes).
Files are told apart by (st_dev, st_ino). The locks live in the VM: host processes
do not see them on volume files.
"""

from umiak.kernel.abi import F_UNLCK, F_WRLCK, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN
from umiak.kernel.errors import EAGAIN, EDEADLK, EINVAL, SyscallError
from umiak.kernel.waiting import WaitQueue

INF = 1 << 63


def file_key(f) -> tuple:
    st = f.stat()
    return (st.st_dev, st.st_ino)


class LockTable:
    def __init__(self):
        self.records: dict[tuple, list[list]] = {}   # key -> [owner, type, start, end) entries
        self.flocks: dict[tuple, dict] = {}          # key -> {file: LOCK_SH | LOCK_EX}
        self.waitq = WaitQueue()

    # -- record locks -------------------------------------------------------------------
    def conflict(self, key, owner, ltype: int, start: int, end: int):
        """The first lock of another owner that a lock of ltype over [start, end) would meet."""
        for lk in self.records.get(key, ()):
            o, t, s, e = lk
            if o != owner and s < end and start < e and (ltype == F_WRLCK or t == F_WRLCK):
                return lk
        return None

    def set(self, key, owner, ltype: int, start: int, end: int) -> None:
        """Replace owner's locks over [start, end) by ltype (F_UNLCK removes), merging neighbours."""
        out = []
        for lk in self.records.get(key, ()):
            o, t, s, e = lk
            if o != owner or e <= start or s >= end:
                out.append(lk)
                continue
            if s < start:
                out.append([o, t, s, start])
            if e > end:
                out.append([o, t, end, e])
        if ltype != F_UNLCK:
            s, e = start, end
            keep = []
            for lk in out:     # merge with adjacent or overlapping locks of the same owner and type
                if lk[0] == owner and lk[1] == ltype and lk[2] <= e and s <= lk[3]:
                    s, e = min(s, lk[2]), max(e, lk[3])
                else:
                    keep.append(lk)
            out = keep + [[owner, ltype, s, e]]
        out.sort(key=lambda lk: lk[2])
        if out:
            self.records[key] = out
        else:
            self.records.pop(key, None)
        self.waitq.notify()

    def lock(self, task, key, owner, ltype: int, start: int, end: int, wait: bool) -> None:
        """F_SETLK(W) / F_OFD_SETLK(W): EAGAIN on a conflict, or wait for it to go (EINTR on a
        signal). A wait that only this thread could end gives EDEADLK instead of hanging."""
        if ltype == F_UNLCK:
            self.set(key, owner, ltype, start, end)
            return
        while self.conflict(key, owner, ltype, start, end) is not None:
            if not wait:
                raise SyscallError(EAGAIN)
            if len(task.kernel.tasks) <= 1:
                raise SyscallError(EDEADLK)
            self._wait(task, lambda: self.conflict(key, owner, ltype, start, end) is None)
        self.set(key, owner, ltype, start, end)

    def _wait(self, task, ready) -> None:
        entry = self.waitq.add(task)
        try:
            task.wait(ready)
        finally:
            self.waitq.remove(entry)

    def release_owner(self, key, owner) -> None:
        if any(lk[0] == owner for lk in self.records.get(key, ())):
            self.set(key, owner, F_UNLCK, 0, INF)

    # -- flock ----------------------------------------------------------------------------
    def flock(self, task, key, f, op: int) -> None:
        held = self.flocks.setdefault(key, {})
        kind = op & ~LOCK_NB
        if kind == LOCK_UN:
            if held.pop(f, None) is not None:
                self.waitq.notify()
            if not held:
                self.flocks.pop(key, None)
            return
        if kind not in (LOCK_SH, LOCK_EX):
            raise SyscallError(EINVAL)

        def blocked() -> bool:
            return any(g is not f and (kind == LOCK_EX or t == LOCK_EX) for g, t in held.items())

        if held.get(f) is not None and held[f] != kind:
            held.pop(f)              # a conversion drops the old lock first, as Linux
            self.waitq.notify()
        while blocked():
            if op & LOCK_NB:
                raise SyscallError(EAGAIN)
            if len(task.kernel.tasks) <= 1:
                raise SyscallError(EDEADLK)
            self._wait(task, lambda: not blocked())
        held[f] = kind

    def release_file(self, f) -> None:
        """The open file description is gone: its OFD and flock locks go with it."""
        owner = ("ofd", id(f))
        for key in [k for k, lks in self.records.items() if any(lk[0] == owner for lk in lks)]:
            self.set(key, owner, F_UNLCK, 0, INF)
        for key in [k for k, held in self.flocks.items() if f in held]:
            del self.flocks[key][f]
            if not self.flocks[key]:
                del self.flocks[key]
            self.waitq.notify()
