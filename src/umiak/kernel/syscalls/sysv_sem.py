"""System V semaphores: semget(2), semop(2), semtimedop(2), semctl(2).

semop applies all its operations or none: while one would block, the caller
sleeps on the set's wait queue (IPC_NOWAIT: EAGAIN) and retries when any value
changes; IPC_RMID wakes the sleepers with EIDRM. Waits are never restarted
(EINTR on a signal, as Linux). SEM_UNDO is accepted; the adjustments are not
applied at exit.
"""

import struct
import time

from umiak.kernel import abi
from umiak.kernel.errors import E2BIG, EAGAIN, EFBIG, EIDRM, EINVAL, ERANGE, SyscallError
from umiak.kernel.sysvipc import (IPC64_PERM, IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, IpcObject,
                                  interrupted, namespace)
from umiak.kernel.waiting import WaitQueue

GETPID, GETVAL, GETALL, GETNCNT, GETZCNT, SETVAL, SETALL = 11, 12, 13, 14, 15, 16, 17
SEM_STAT, SEM_INFO, SEM_STAT_ANY = 18, 19, 20
SEM_UNDO = 0x1000
SEMMSL, SEMMNS, SEMOPM, SEMMNI, SEMVMX, SEMAEM = 32000, 1024000000, 500, 32000, 32767, 32767
SEMBUF = struct.Struct("<Hhh")
SEMID64_DS = struct.Struct("<48sQQQQQQQ")
SEMINFO = struct.Struct("<10i")   # semmap semmni semmns semmnu semmsl semopm semume semusz semvmx semaem


class SemSet(IpcObject):
    def __init__(self, key: int, task, mode: int, nsems: int):
        super().__init__(key, task, mode)
        self.values = [0] * nsems
        self.pids = [0] * nsems
        self.otime = 0
        self.waitq = WaitQueue()
        self.waiting: list[tuple[int, bool]] = []   # (semnum, for zero) of sleeping semops


def _table(task):
    return namespace(task.kernel).sem


def sys_semget(task, key, nsems, semflg):
    """semget(2)"""
    key, nsems, flags = abi.s32(key), abi.s32(nsems), abi.s32(semflg)

    def make():
        if not 0 < nsems <= SEMMSL:
            raise SyscallError(EINVAL)
        return SemSet(key, task, flags, nsems)

    def existing(s):
        if nsems > len(s.values):
            raise SyscallError(EINVAL)
    if nsems < 0 or nsems > SEMMSL:
        raise SyscallError(EINVAL)
    return _table(task).lookup(task, key, flags, make, existing).id


def _try(sem: SemSet, ops) -> tuple[int, bool] | None:
    """Apply every op or none: None when done, else (semnum, waiting for zero) of the first
    that would block."""
    vals = list(sem.values)
    for num, op, _flg in ops:
        v = vals[num]
        if op > 0:
            if v + op > SEMVMX:
                raise SyscallError(ERANGE)
            vals[num] = v + op
        elif op < 0:
            if v + op < 0:
                return num, False
            vals[num] = v + op
        elif v != 0:
            return num, True
    sem.values = vals
    return None


def _semop(task, semid, sops, nsops, timeout):
    nsops = abi.s32(nsops) if nsops < 1 << 32 else nsops
    if nsops < 1:
        raise SyscallError(EINVAL)
    if nsops > SEMOPM:
        raise SyscallError(E2BIG)
    raw = task.mm.read(sops, nsops * SEMBUF.size)
    ops = [SEMBUF.unpack_from(raw, i * SEMBUF.size) for i in range(nsops)]
    sem = _table(task).get(abi.s32(semid))
    assert isinstance(sem, SemSet)
    if any(num >= len(sem.values) for num, _, _ in ops):
        raise SyscallError(EFBIG)
    alter = any(op != 0 for _, op, _ in ops)
    sem.check(task, 2 if alter else 4)
    deadline = None if timeout is None else time.monotonic() + timeout
    entry = None
    try:
        while True:
            if sem.removed:
                raise SyscallError(EIDRM)
            blocked = _try(sem, ops)
            if blocked is None:
                break
            if any(flg & IPC_NOWAIT for _, _, flg in ops):
                raise SyscallError(EAGAIN)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise SyscallError(EAGAIN)
            seq = sem.waitq.seq
            if entry is None:
                entry = sem.waitq.add(task)
            sem.waiting.append(blocked)
            try:
                task.wait(lambda seq=seq: sem.waitq.seq != seq or sem.removed, left)
            except SyscallError as e:
                raise interrupted(e) from None
            finally:
                sem.waiting.remove(blocked)
    finally:
        if entry is not None:
            sem.waitq.remove(entry)
    pid = task.process.pid
    for num, _, _ in ops:
        sem.pids[num] = pid
    sem.otime = int(time.time())
    if alter:
        sem.waitq.notify()
    return 0


def sys_semop(task, semid, sops, nsops):
    """semop(2)"""
    return _semop(task, semid, sops, nsops, None)


def sys_semtimedop(task, semid, sops, nsops, timeout):
    """semtimedop(2): EAGAIN when the timeout passes first."""
    t = None
    if timeout:
        sec, nsec = task.mm.read_struct(timeout, abi.TIMESPEC)
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            raise SyscallError(EINVAL)
        t = sec + nsec / 1e9
    return _semop(task, semid, sops, nsops, t)


def _stat_bytes(sem: SemSet) -> bytes:
    perm = IPC64_PERM.pack(sem.key, sem.uid, sem.gid, sem.cuid, sem.cgid, sem.mode, sem.seq, 0, 0, 0)
    return SEMID64_DS.pack(perm, sem.otime, 0, sem.ctime, 0, len(sem.values), 0, 0)


def sys_semctl(task, semid, semnum, cmd, arg):
    """semctl(2): arg is union semun, passed by value (an int or a pointer)."""
    cmd, semnum = abi.s32(cmd), abi.s32(semnum)
    table = _table(task)
    mm = task.mm
    if cmd in (IPC_INFO, SEM_INFO):
        sets = table.objects()
        used = sum(len(s.values) for s in sets if isinstance(s, SemSet))
        vals = [1024000 if cmd == IPC_INFO else len(sets), SEMMNI, SEMMNS if cmd == IPC_INFO else used,
                SEMMNS, SEMMSL, SEMOPM, SEMOPM, 20, SEMVMX, SEMAEM]
        mm.write(arg, SEMINFO.pack(*vals))
        return table.max_index()
    if cmd in (SEM_STAT, SEM_STAT_ANY):
        sem = table.stat_index(task, abi.s32(semid), cmd == SEM_STAT)
        assert isinstance(sem, SemSet)
        mm.write(arg, _stat_bytes(sem))
        return sem.id
    sem = table.get(abi.s32(semid))
    assert isinstance(sem, SemSet)
    n = len(sem.values)
    if cmd == IPC_RMID:
        sem.check_owner(task)
        table.drop(sem)
        sem.waitq.notify()
        return 0
    if cmd == IPC_SET:
        sem.check_owner(task)
        sem.set_perm(mm.read(arg, IPC64_PERM.size))
        return 0
    if cmd == IPC_STAT:
        sem.check(task, 4)
        mm.write(arg, _stat_bytes(sem))
        return 0
    if cmd == GETALL:
        sem.check(task, 4)
        mm.write(arg, struct.pack(f"<{n}H", *sem.values))
        return 0
    if cmd == SETALL:
        sem.check(task, 2)
        vals = list(struct.unpack(f"<{n}H", mm.read(arg, 2 * n)))
        if any(v > SEMVMX for v in vals):
            raise SyscallError(ERANGE)
        sem.values = vals
        sem.pids = [task.process.pid] * n
        sem.ctime = int(time.time())
        sem.waitq.notify()
        return 0
    if cmd not in (GETPID, GETVAL, GETNCNT, GETZCNT, SETVAL):
        raise SyscallError(EINVAL)
    if not 0 <= semnum < n:
        raise SyscallError(EINVAL)
    if cmd == SETVAL:
        val = abi.s32(arg)
        if not 0 <= val <= SEMVMX:
            raise SyscallError(ERANGE)
        sem.check(task, 2)
        sem.values[semnum] = val
        sem.pids[semnum] = task.process.pid
        sem.ctime = int(time.time())
        sem.waitq.notify()
        return 0
    sem.check(task, 4)
    if cmd == GETVAL:
        return sem.values[semnum]
    if cmd == GETPID:
        return sem.pids[semnum]
    zero = cmd == GETZCNT
    return sum(1 for num, z in sem.waiting if num == semnum and z == zero)
