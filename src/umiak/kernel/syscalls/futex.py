"""futex(2): wait queues keyed by the futex word's address, robust lists at thread exit.

umiak runs one process per VM, so private and shared futexes live in the same
table, keyed by guest-virtual address.
"""

import struct
import time

from umiak.kernel import abi
from umiak.kernel.abi import (FUTEX_BITSET_MATCH_ANY, FUTEX_CLOCK_REALTIME, FUTEX_CMP_REQUEUE, FUTEX_OWNER_DIED,
                              FUTEX_REQUEUE, FUTEX_TID_MASK, FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_WAITERS,
                              FUTEX_WAKE, FUTEX_WAKE_BITSET, FUTEX_WAKE_OP, s32)
from umiak.kernel.errors import EAGAIN, EINVAL, ENOSYS, ETIMEDOUT, SyscallError


class Waiter:
    __slots__ = ("task", "bitset", "woken", "addr")

    def __init__(self, task, addr: int, bitset: int):
        self.task, self.addr, self.bitset, self.woken = task, addr, bitset, False


def wake(task, addr: int, n: int, bitset: int = FUTEX_BITSET_MATCH_ANY) -> int:
    """Wake up to n waiters on addr whose bitset matches. Caller holds the kernel lock."""
    queues = task.kernel.futexes
    q = queues.get(addr)
    if not q:
        return 0
    woken = 0
    for w in list(q):
        if woken >= n:
            break
        if w.bitset & bitset:
            q.remove(w)
            w.woken = True
            w.task.cond.notify_all()
            woken += 1
    if not q:
        del queues[addr]
    return woken


def _timeout(task, utime: int, absolute: bool, realtime: bool) -> float | None:
    if not utime:
        return None
    sec, nsec = task.mm.read_struct(utime, abi.TIMESPEC)
    sec, nsec = abi.s64(sec), abi.s64(nsec)
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise SyscallError(EINVAL)
    t = sec + nsec / 1e9
    if absolute:
        now = time.clock_gettime(time.CLOCK_REALTIME if realtime else time.CLOCK_MONOTONIC)
        return max(0.0, t - now)
    return t


def _wait(task, addr: int, val: int, timeout: float | None, bitset: int) -> int:
    if addr & 3:
        raise SyscallError(EINVAL)
    if task.mm.read_u32(addr) != val & 0xFFFFFFFF:
        raise SyscallError(EAGAIN)
    w = Waiter(task, addr, bitset)
    task.kernel.futexes.setdefault(addr, []).append(w)
    try:
        ok = task.wait(lambda: w.woken, timeout)
    finally:
        if not w.woken:
            q = task.kernel.futexes.get(w.addr)
            if q and w in q:
                q.remove(w)
                if not q:
                    del task.kernel.futexes[w.addr]
    if not ok:
        raise SyscallError(ETIMEDOUT)
    return 0


def _requeue(task, addr: int, n_wake: int, n_move: int, addr2: int) -> int:
    done = wake(task, addr, n_wake)
    queues = task.kernel.futexes
    q = queues.get(addr, [])
    moved = 0
    while q and moved < n_move:
        w = q.pop(0)
        w.addr = addr2
        queues.setdefault(addr2, []).append(w)
        moved += 1
    if addr in queues and not queues[addr]:
        del queues[addr]
    return done + moved


def _wake_op(task, addr1: int, n1: int, n2: int, addr2: int, op: int) -> int:
    kind, cmp = (op >> 28) & 7, (op >> 24) & 15
    oparg, cmparg = (op >> 12) & 0xFFF, op & 0xFFF
    if op >> 31:
        oparg = 1 << oparg
    old = task.mm.read_u32(addr2)
    ops = {0: lambda o: oparg, 1: lambda o: o + oparg, 2: lambda o: o | oparg,
           3: lambda o: o & ~oparg, 4: lambda o: o ^ oparg}
    if kind not in ops:
        raise SyscallError(ENOSYS)
    task.mm.write_u32(addr2, ops[kind](old) & 0xFFFFFFFF)
    n = wake(task, addr1, n1)
    so = s32(old)
    tests = {0: so == cmparg, 1: so != cmparg, 2: so < cmparg, 3: so <= cmparg, 4: so > cmparg, 5: so >= cmparg}
    if tests.get(cmp, False):
        n += wake(task, addr2, n2)
    return n


def sys_futex(task, uaddr, op, val, utime, uaddr2, val3):
    """futex(2). PI futexes are not offered (ENOSYS), as on kernels without PI support."""
    cmd = op & 127
    realtime = bool(op & FUTEX_CLOCK_REALTIME)
    if cmd == FUTEX_WAIT:
        return _wait(task, uaddr, val, _timeout(task, utime, False, realtime), FUTEX_BITSET_MATCH_ANY)
    if cmd == FUTEX_WAIT_BITSET:
        if val3 & 0xFFFFFFFF == 0:
            raise SyscallError(EINVAL)
        return _wait(task, uaddr, val, _timeout(task, utime, True, realtime), val3)
    if cmd == FUTEX_WAKE:
        return wake(task, uaddr, s32(val) if s32(val) > 0 else 0)
    if cmd == FUTEX_WAKE_BITSET:
        if val3 & 0xFFFFFFFF == 0:
            raise SyscallError(EINVAL)
        return wake(task, uaddr, s32(val), val3)
    if cmd == FUTEX_REQUEUE:
        return _requeue(task, uaddr, s32(val), utime & 0x7FFFFFFF, uaddr2)
    if cmd == FUTEX_CMP_REQUEUE:
        if task.mm.read_u32(uaddr) != val3 & 0xFFFFFFFF:
            raise SyscallError(EAGAIN)
        return _requeue(task, uaddr, s32(val), utime & 0x7FFFFFFF, uaddr2)
    if cmd == FUTEX_WAKE_OP:
        return _wake_op(task, uaddr, s32(val), utime & 0x7FFFFFFF, uaddr2, val3 & 0xFFFFFFFF)
    raise SyscallError(ENOSYS)


def exit_robust_list(task) -> None:
    """Mark robust futexes the dying thread holds as FUTEX_OWNER_DIED and wake a waiter."""
    head, _ = task.robust_list
    if not head:
        return
    mm = task.mm
    try:
        first, offset, pending = struct.unpack("<QqQ", mm.read(head, 24))
        entry, seen = first, 0
        targets = [e for e in (pending,) if e]
        while entry != head and entry and seen < 2048:
            targets.append(entry)
            entry = mm.read_u64(entry)
            seen += 1
        for e in targets:
            addr = (e + offset) & abi.MASK64
            word = mm.read_u32(addr)
            if word & FUTEX_TID_MASK == task.tid:
                mm.write_u32(addr, (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED)
                wake(task, addr, 1)
    except SyscallError:
        pass
