"""System V message queues: msgget(2), msgsnd(2), msgrcv(2), msgctl(2).

A queue holds (mtype, text) messages up to msg_qbytes bytes of text; a sender
waits for room and a receiver for a matching message (IPC_NOWAIT: EAGAIN and
ENOMSG), woken by the queue's wait queue; IPC_RMID wakes them with EIDRM.
Waits are never restarted (EINTR on a signal, as Linux).
"""

import struct
import time

from umiak.kernel import abi
from umiak.kernel.errors import E2BIG, EAGAIN, EIDRM, EINVAL, ENOMSG, EPERM, SyscallError
from umiak.kernel.sysvipc import (IPC64_PERM, IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, IpcObject,
                                  interrupted, namespace)
from umiak.kernel.waiting import WaitQueue

MSG_STAT, MSG_INFO, MSG_STAT_ANY = 11, 12, 13
MSG_NOERROR, MSG_EXCEPT, MSG_COPY = 0o10000, 0o20000, 0o40000
MSGMAX, MSGMNB, MSGMNI = 8192, 16384, 32000
CAP_SYS_RESOURCE = 24
MSQID64_DS = struct.Struct("<48sqqqQQQiiQQ")
MSGINFO = struct.Struct("<iiiiiiiH2x")   # msgpool msgmap msgmax msgmnb msgmni msgssz msgtql msgseg


class MsgQueue(IpcObject):
    def __init__(self, key: int, task, mode: int):
        super().__init__(key, task, mode)
        self.messages: list[tuple[int, bytes]] = []
        self.qbytes = MSGMNB
        self.cbytes = 0
        self.stime = self.rtime = 0
        self.lspid = self.lrpid = 0
        self.waitq = WaitQueue()


def _table(task):
    return namespace(task.kernel).msg


def sys_msgget(task, key, msgflg):
    """msgget(2)"""
    key, flags = abi.s32(key), abi.s32(msgflg)
    return _table(task).lookup(task, key, flags, lambda: MsgQueue(key, task, flags)).id


def _sleep(task, q: MsgQueue, ready) -> None:
    entry = q.waitq.add(task)
    try:
        task.wait(lambda: ready() or q.removed)
    except SyscallError as e:
        raise interrupted(e) from None
    finally:
        q.waitq.remove(entry)


def sys_msgsnd(task, msqid, msgp, msgsz, msgflg):
    """msgsnd(2)"""
    flags = abi.s32(msgflg)
    size = abi.s64(msgsz)
    q = _table(task).get(abi.s32(msqid))
    assert isinstance(q, MsgQueue)
    if size < 0 or size > MSGMAX:
        raise SyscallError(EINVAL)
    mtype = abi.s64(task.mm.read_u64(msgp))
    if mtype < 1:
        raise SyscallError(EINVAL)
    q.check(task, 2)
    text = task.mm.read(msgp + 8, size) if size else b""
    while q.cbytes + size > q.qbytes or len(q.messages) + 1 > q.qbytes:
        if flags & IPC_NOWAIT:
            raise SyscallError(EAGAIN)
        _sleep(task, q, lambda: q.cbytes + size <= q.qbytes)
        if q.removed:
            raise SyscallError(EIDRM)
    q.messages.append((mtype, text))
    q.cbytes += size
    q.lspid = task.process.pid
    q.stime = int(time.time())
    q.waitq.notify()
    return 0


def _find(q: MsgQueue, msgtyp: int, flags: int) -> int | None:
    msgs = q.messages
    if msgtyp == 0:
        return 0 if msgs else None
    if msgtyp > 0:
        if flags & MSG_EXCEPT:
            return next((i for i, (t, _) in enumerate(msgs) if t != msgtyp), None)
        return next((i for i, (t, _) in enumerate(msgs) if t == msgtyp), None)
    best = None
    for i, (t, _) in enumerate(msgs):
        if t <= -msgtyp and (best is None or t < msgs[best][0]):
            best = i
    return best


def sys_msgrcv(task, msqid, msgp, msgsz, msgtyp, msgflg):
    """msgrcv(2): msgtyp 0 the first, > 0 the first of that type (MSG_EXCEPT: of another),
    < 0 the lowest type up to -msgtyp. MSG_COPY is not supported (ENOSYS, as without
    CONFIG_CHECKPOINT_RESTORE)."""
    from umiak.kernel.errors import ENOSYS
    flags = abi.s32(msgflg)
    size = abi.s64(msgsz)
    msgtyp = abi.s64(msgtyp)
    if flags & MSG_COPY:
        raise SyscallError(ENOSYS)
    q = _table(task).get(abi.s32(msqid))
    assert isinstance(q, MsgQueue)
    if size < 0:
        raise SyscallError(EINVAL)
    q.check(task, 4)
    while True:
        i = _find(q, msgtyp, flags)
        if i is not None:
            mtype, text = q.messages[i]
            if len(text) > size:
                if not flags & MSG_NOERROR:
                    raise SyscallError(E2BIG)
                text = text[:size]
            break
        if flags & IPC_NOWAIT:
            raise SyscallError(ENOMSG)
        _sleep(task, q, lambda: _find(q, msgtyp, flags) is not None)
        if q.removed:
            raise SyscallError(EIDRM)
    task.mm.write(msgp, struct.pack("<q", mtype) + text)
    full = q.messages.pop(i)
    q.cbytes -= len(full[1])
    q.lrpid = task.process.pid
    q.rtime = int(time.time())
    q.waitq.notify()
    return len(text)


def _stat_bytes(q: MsgQueue) -> bytes:
    perm = IPC64_PERM.pack(q.key, q.uid, q.gid, q.cuid, q.cgid, q.mode, q.seq, 0, 0, 0)
    return MSQID64_DS.pack(perm, q.stime, q.rtime, q.ctime, q.cbytes, len(q.messages), q.qbytes,
                           q.lspid, q.lrpid, 0, 0)


def sys_msgctl(task, msqid, cmd, buf):
    """msgctl(2)"""
    cmd = abi.s32(cmd)
    table = _table(task)
    mm = task.mm
    if cmd in (IPC_INFO, MSG_INFO):
        qs = [q for q in table.objects() if isinstance(q, MsgQueue)]
        if cmd == IPC_INFO:
            vals = (8192, 16384, MSGMAX, MSGMNB, MSGMNI, 16, 8192, 65535)
        else:
            vals = (len(qs), 16384, MSGMAX, MSGMNB, MSGMNI, 16, sum(len(q.messages) for q in qs),
                    sum(q.cbytes for q in qs) & 0xFFFF)
        mm.write(buf, MSGINFO.pack(*vals))
        return table.max_index()
    if cmd in (MSG_STAT, MSG_STAT_ANY):
        q = table.stat_index(task, abi.s32(msqid), cmd == MSG_STAT)
        assert isinstance(q, MsgQueue)
        mm.write(buf, _stat_bytes(q))
        return q.id
    q = table.get(abi.s32(msqid))
    assert isinstance(q, MsgQueue)
    if cmd == IPC_STAT:
        q.check(task, 4)
        mm.write(buf, _stat_bytes(q))
        return 0
    if cmd == IPC_SET:
        q.check_owner(task)
        raw = mm.read(buf, MSQID64_DS.size)
        qbytes = MSQID64_DS.unpack(raw)[6]
        if qbytes > MSGMNB and not task.process.creds.capable(CAP_SYS_RESOURCE):
            raise SyscallError(EPERM)
        q.set_perm(raw[:IPC64_PERM.size])
        q.qbytes = qbytes
        q.waitq.notify()
        return 0
    if cmd == IPC_RMID:
        q.check_owner(task)
        table.drop(q)
        q.waitq.notify()
        return 0
    raise SyscallError(EINVAL)
