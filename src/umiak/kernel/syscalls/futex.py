"""futex(2): wait queues keyed as Linux keys futexes, robust lists at thread exit.

A private futex (FUTEX_PRIVATE_FLAG), or a shared one in a private mapping, is
keyed by its address space and virtual address: forked processes use the same
addresses for different words. A shared futex in a MAP_SHARED mapping (a
process-shared semaphore in /dev/shm, a memfd, a shared anonymous mapping) is
keyed by the guest-physical address of its word, the same in every process
that maps the page wherever it maps it (Linux keys it by inode and offset).

Where the guest answers a private FUTEX_WAKE itself when nobody waits (kvm's exitless
stubs), the kernel publishes which buckets ((uaddr >> 2) & 63) of (mm, address) keys
have a waiter queued here (kernel.futex_hint), and queues a waiter before it reads the
word it compares: a wake in the guest then sees the waiter's bit, or the waiter sees the
word the waker stored.
"""

import struct
import time

from umiak.kernel import abi
from umiak.kernel.abi import (FUTEX_BITSET_MATCH_ANY, FUTEX_CLOCK_REALTIME, FUTEX_CMP_REQUEUE, FUTEX_OWNER_DIED,
                              FUTEX_PRIVATE_FLAG, FUTEX_REQUEUE, MAP_SHARED, FUTEX_TID_MASK, FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_WAITERS,
                              FUTEX_WAKE, FUTEX_WAKE_BITSET, FUTEX_WAKE_OP, s32)
from umiak.kernel.errors import EAGAIN, EFAULT, EINVAL, ENOSYS, ETIMEDOUT, SyscallError

USER_END = (1 << 47) - 4096   # Linux's TASK_SIZE_MAX: where user space ends


class Waiter:
    __slots__ = ("task", "bitset", "woken", "addr")

    def __init__(self, task, addr, bitset: int):
        self.task, self.addr, self.bitset, self.woken = task, addr, bitset, False   # addr: the key


def futex_key(task, addr: int, op: int = 0):
    """The wait-queue key of the futex word at addr (see the module docstring)."""
    if addr & 3:
        raise SyscallError(EINVAL)
    if addr > USER_END - 4:
        raise SyscallError(EFAULT)   # as Linux's access_ok, for a wake as for a wait
    mm = task.mm
    if not op & FUTEX_PRIVATE_FLAG:
        vma = mm.find_vma(addr)
        if vma is not None and vma.flags & MAP_SHARED:
            e = mm.pages.get(addr >> 12)
            if e is None:
                mm.read_u32(addr & ~3)        # fault the shared page in (EFAULT if it cannot be)
                e = mm.pages.get(addr >> 12)
            if e is not None:
                return (e & ~0xFFF) | (addr & 0xFFF)
    return (mm, addr)


def wake(task, addr: int, n: int, bitset: int = FUTEX_BITSET_MATCH_ANY, op: int = 0) -> int:
    """Wake up to n waiters on the futex at addr whose bitset matches (a shared futex
    unless op has FUTEX_PRIVATE_FLAG). Caller holds the kernel lock."""
    return _wake_key(task.kernel, futex_key(task, addr, op), n, bitset)


def _enqueue(kernel, w: Waiter) -> None:
    kernel.futexes.setdefault(w.addr, []).append(w)
    _count(kernel, w.addr, 1)


def _dequeue(kernel, w: Waiter) -> None:
    """Take w off its queue, if it is on it."""
    q = kernel.futexes.get(w.addr)
    if q is None or w not in q:
        return
    q.remove(w)
    if not q:
        del kernel.futexes[w.addr]
    _count(kernel, w.addr, -1)


def _count(kernel, key, delta: int) -> None:
    """A waiter of key came or went: the bucket bits the guest's wakes look at."""
    if type(key) is not tuple:
        return   # a physical key: the guest answers no shared wake
    b = (key[1] >> 2) & 63
    n = kernel.futex_buckets[b] = kernel.futex_buckets[b] + delta
    if n == (1 if delta > 0 else 0):
        kernel.futex_bits ^= 1 << b
        if kernel.futex_hint is not None:
            kernel.futex_hint(kernel.futex_bits)


def _wake_key(kernel, addr, n: int, bitset: int = FUTEX_BITSET_MATCH_ANY) -> int:
    q = kernel.futexes.get(addr)
    if not q:
        return 0
    woken = 0
    for w in list(q):
        if woken >= n:
            break
        if w.bitset & bitset:
            _dequeue(kernel, w)
            w.woken = True
            w.task.cond.notify_all()
            woken += 1
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


def _wait(task, uaddr: int, op: int, val: int, timeout: float | None, bitset: int) -> int:
    w = Waiter(task, futex_key(task, uaddr, op), bitset)   # EINVAL, EFAULT as Linux
    _enqueue(task.kernel, w)   # before the word is read (the module docstring)
    try:
        if task.mm.read_u32(uaddr) != val & 0xFFFFFFFF:
            raise SyscallError(EAGAIN)
        ok = task.wait(lambda: w.woken, timeout)
    finally:
        if not w.woken:
            _dequeue(task.kernel, w)
    if not ok:
        raise SyscallError(ETIMEDOUT)
    return 0


def _requeue(task, uaddr: int, op: int, n_wake: int, n_move: int, uaddr2: int) -> int:
    addr, addr2 = futex_key(task, uaddr, op), futex_key(task, uaddr2, op)
    kernel = task.kernel
    done = _wake_key(kernel, addr, n_wake)
    moved = 0
    while moved < n_move and kernel.futexes.get(addr):
        w = kernel.futexes[addr][0]
        _dequeue(kernel, w)
        w.addr = addr2
        _enqueue(kernel, w)
        moved += 1
    return done + moved


def _wake_op(task, addr1: int, n1: int, n2: int, addr2: int, op: int, flags: int) -> int:
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
    n = wake(task, addr1, n1, op=flags)
    so = s32(old)
    tests = {0: so == cmparg, 1: so != cmparg, 2: so < cmparg, 3: so <= cmparg, 4: so > cmparg, 5: so >= cmparg}
    if tests.get(cmp, False):
        n += wake(task, addr2, n2, op=flags)
    return n


def sys_futex(task, uaddr, op, val, utime, uaddr2, val3):
    """futex(2). PI futexes are not offered (ENOSYS), as on kernels without PI support."""
    cmd = op & 127
    realtime = bool(op & FUTEX_CLOCK_REALTIME)
    if realtime and cmd != FUTEX_WAIT_BITSET:
        raise SyscallError(ENOSYS)   # as Linux: only a bitset wait takes the realtime clock
    if cmd == FUTEX_WAIT:
        return _wait(task, uaddr, op, val, _timeout(task, utime, False, realtime), FUTEX_BITSET_MATCH_ANY)
    if cmd == FUTEX_WAIT_BITSET:
        if val3 & 0xFFFFFFFF == 0:
            raise SyscallError(EINVAL)
        return _wait(task, uaddr, op, val, _timeout(task, utime, True, realtime), val3)
    if cmd == FUTEX_WAKE:
        return wake(task, uaddr, s32(val) if s32(val) > 0 else 0, op=op)
    if cmd == FUTEX_WAKE_BITSET:
        if val3 & 0xFFFFFFFF == 0:
            raise SyscallError(EINVAL)
        return wake(task, uaddr, s32(val), val3, op)
    if cmd == FUTEX_REQUEUE:
        return _requeue(task, uaddr, op, s32(val), utime & 0x7FFFFFFF, uaddr2)
    if cmd == FUTEX_CMP_REQUEUE:
        if task.mm.read_u32(uaddr) != val3 & 0xFFFFFFFF:
            raise SyscallError(EAGAIN)
        return _requeue(task, uaddr, op, s32(val), utime & 0x7FFFFFFF, uaddr2)
    if cmd == FUTEX_WAKE_OP:
        return _wake_op(task, uaddr, s32(val), utime & 0x7FFFFFFF, uaddr2, val3 & 0xFFFFFFFF, op)
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
