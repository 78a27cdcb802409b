"""POSIX message queues: mq_open(2), mq_unlink(2), mq_timedsend(2), mq_timedreceive(2),
mq_notify(2) and mq_getsetattr(2).

The VM's queues live in its own mqueue namespace (`kernel.mqueues`, shown in
/dev/mqueue). A queue descriptor is a file: read(2) gives Linux's status line,
poll(2) says POLLIN while a message waits and POLLOUT while there is room.
Messages go out by priority, first in first out within one. mq_notify supports
SIGEV_SIGNAL and SIGEV_NONE; SIGEV_THREAD (glibc's netlink helper) is EINVAL.
"""

import bisect
import os
import stat as _stat
import struct
import time

from umiak.kernel import abi
from umiak.kernel.errors import (EACCES, EAGAIN, EBADF, EBUSY, EEXIST, EINVAL, EMSGSIZE, ENAMETOOLONG, ENOENT,
                                 ETIMEDOUT, SyscallError)
from umiak.kernel.files import File, Stat
from umiak.kernel.waiting import WaitQueue

MQ_ATTR = struct.Struct("<qqqq32x")   # mq_flags, mq_maxmsg, mq_msgsize, mq_curmsgs
MQ_PRIO_MAX = 32768
MSG_MAX, MSGSIZE_MAX = 10, 8192          # /proc/sys/fs/mqueue defaults
HARD_MSGMAX, HARD_MSGSIZEMAX = 65536, 16 << 20
CAP_SYS_RESOURCE = 24
MQUEUE_MAGIC = 0x19800202


class MessageQueue:
    def __init__(self, kernel, name: str, mode: int, owner: tuple[int, int], maxmsg: int, msgsize: int):
        self.kernel = kernel
        self.name = name
        self.mode = mode & 0o777
        self.uid, self.gid = owner
        self.maxmsg = maxmsg
        self.msgsize = msgsize
        self.messages: list[tuple[int, int, bytes]] = []   # (-prio, seq, data), sorted
        self.seq = 0
        self.bytes = 0
        self.waitq = WaitQueue()
        self.receivers = 0
        self.notify: tuple[int, int, int, int] | None = None   # (pid, kind, signo, value)
        self.ino = next(kernel.pipe_inos)
        self.time_ns = time.time_ns()
        self.nodes: dict[int, object] = {}   # its /dev/mqueue file, by devfs instance

    def status(self) -> bytes:
        n = self.notify
        kind, signo, pid = (n[1], n[2], n[0]) if n else (0, 0, 0)
        return (f"QSIZE:{self.bytes:<10} NOTIFY:{kind:<5} SIGNO:{signo:<5} NOTIFY_PID:{pid:<6}\n").encode()

    def put(self, prio: int, data: bytes) -> None:
        was_empty = not self.messages
        self.seq += 1
        bisect.insort(self.messages, (-prio, self.seq, data))
        self.bytes += len(data)
        self.time_ns = time.time_ns()
        if was_empty and self.notify is not None and not self.receivers:
            self._fire()
        self.waitq.notify()

    def _fire(self) -> None:
        """A message reached an empty queue nobody waits on: notify once, then unregister."""
        from umiak.kernel.signals import make_siginfo, send
        assert self.notify is not None
        pid, kind, signo, value = self.notify
        self.notify = None
        proc = self.kernel.processes.get(pid)
        if kind != abi.SIGEV_SIGNAL or proc is None or proc.zombie or not signo:
            return
        task = self.kernel.current_task()
        sender = task.process if task is not None else proc
        info = make_siginfo(signo, abi.SI_MESGQ, extra=struct.pack("<iIQ", sender.pid, sender.creds.uid, value))
        send(self.kernel, proc, signo, info)

    def take(self) -> tuple[int, bytes]:
        negprio, _, data = self.messages.pop(0)
        self.bytes -= len(data)
        self.time_ns = time.time_ns()
        self.waitq.notify()
        return -negprio, data


class MqFile(File):
    """A message queue descriptor (mqd_t)."""

    pseudo_fs = MQUEUE_MAGIC

    def __init__(self, queue: MessageQueue, flags: int):
        self.queue = queue
        self.flags = flags

    @property
    def path(self) -> str:  # type: ignore[override]
        return "/" + self.queue.name

    @property
    def waitq(self):
        return self.queue.waitq

    def read(self, n: int) -> bytes:
        return self.queue.status()[:n]

    def poll_mask(self) -> int:
        q = self.queue
        mask = 0
        if q.messages:
            mask |= abi.POLLIN | abi.POLLRDNORM
        if len(q.messages) < q.maxmsg:
            mask |= abi.POLLOUT | abi.POLLWRNORM
        return mask

    def stat(self):
        q = self.queue
        return Stat(st_mode=_stat.S_IFREG | q.mode, st_ino=q.ino, st_uid=q.uid, st_gid=q.gid,
                    st_size=q.bytes + 0, st_atime_ns=q.time_ns, st_mtime_ns=q.time_ns, st_ctime_ns=q.time_ns)

    def close(self) -> None:
        """The registering process's close drops its notification (Linux's mqueue_flush_file)."""
        q = self.queue
        task = q.kernel.current_task()
        if q.notify is not None and task is not None and q.notify[0] == task.process.pid:
            q.notify = None


def dev_node(fs, q: MessageQueue):
    """The queue's file in /dev/mqueue (made once per queue and file system)."""
    node = q.nodes.get(id(fs))
    if node is None:
        from umiak.kernel.vfs.nodes import SynthFile
        node = q.nodes[id(fs)] = SynthFile(fs, lambda task: q.status(), mode=q.mode)
        node.uid, node.gid = q.uid, q.gid
    return node


def queues(kernel) -> dict[str, MessageQueue]:
    qs = getattr(kernel, "mqueues", None)
    if qs is None:
        qs = kernel.mqueues = {}
    return qs


def _name(task, addr) -> str:
    raw = task.mm.read_cstr(addr, 4097)
    if len(raw) > 255:
        raise SyscallError(ENAMETOOLONG)
    if b"/" in raw:
        raise SyscallError(EACCES)
    if not raw:
        raise SyscallError(ENOENT)
    return os.fsdecode(raw)


def _may(task, q: MessageQueue, acc: int) -> None:
    creds = task.process.creds
    if creds.euid == 0:
        return
    want = {abi.O_RDONLY: 4, abi.O_WRONLY: 2}.get(acc, 6)
    shift = 6 if creds.euid == q.uid else 3 if creds.egid == q.gid or q.gid in creds.groups else 0
    if want & ~(q.mode >> shift) & 7:
        raise SyscallError(EACCES)


def sys_mq_open(task, name, oflag, mode, attr):
    """mq_open(2): the name without glibc's leading slash."""
    from umiak.kernel.syscalls.fdutil import nofile_limit, owner_of
    flags = abi.s32(oflag)
    acc = flags & abi.O_ACCMODE
    if acc == 3:
        raise SyscallError(EINVAL)
    qname = _name(task, name)
    qs = queues(task.kernel)
    q = qs.get(qname)
    if q is not None:
        if flags & abi.O_CREAT and flags & abi.O_EXCL:
            raise SyscallError(EEXIST)
        _may(task, q, acc)
    elif not flags & abi.O_CREAT:
        raise SyscallError(ENOENT)
    else:
        maxmsg, msgsize = MSG_MAX, MSGSIZE_MAX
        if attr:
            _f, maxmsg, msgsize, _c = task.mm.read_struct(attr, MQ_ATTR)
            if maxmsg <= 0 or msgsize <= 0:
                raise SyscallError(EINVAL)
            privileged = task.process.creds.capable(CAP_SYS_RESOURCE)
            if maxmsg > (HARD_MSGMAX if privileged else MSG_MAX) or \
                    msgsize > (HARD_MSGSIZEMAX if privileged else MSGSIZE_MAX):
                raise SyscallError(EINVAL)
        q = MessageQueue(task.kernel, qname, mode & ~task.process.umask, owner_of(task), maxmsg, msgsize)
        qs[qname] = q
    nofile_limit(task)
    f = MqFile(q, acc | (flags & abi.O_NONBLOCK))
    return task.fds.install(f, bool(flags & abi.O_CLOEXEC))


def sys_mq_unlink(task, name):
    """mq_unlink(2): the name goes at once; open descriptors keep the queue."""
    qname = _name(task, name)
    qs = queues(task.kernel)
    if qname not in qs:
        raise SyscallError(ENOENT)
    del qs[qname]
    return 0


def _mqd(task, mqdes) -> MqFile:
    return task.fds.get_as(abi.s32(mqdes), MqFile, EBADF)


def _deadline(task, abs_timeout) -> float | None:
    if not abs_timeout:
        return None
    sec, nsec = task.mm.read_struct(abs_timeout, abi.TIMESPEC)
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise SyscallError(EINVAL)
    return sec + nsec / 1e9


def _wait(task, f: MqFile, ready, abs_timeout) -> None:
    """Sleep until ready() (EAGAIN for O_NONBLOCK, ETIMEDOUT past the CLOCK_REALTIME deadline)."""
    if f.flags & abi.O_NONBLOCK:
        raise SyscallError(EAGAIN)
    deadline = _deadline(task, abs_timeout)
    q = f.queue
    entry = q.waitq.add(task)
    try:
        while not ready():
            left = None if deadline is None else deadline - time.time()
            if left is not None and left <= 0:
                raise SyscallError(ETIMEDOUT)
            task.wait(ready, left)
    finally:
        q.waitq.remove(entry)


def sys_mq_timedsend(task, mqdes, msg_ptr, msg_len, msg_prio, abs_timeout):
    """mq_timedsend(2)"""
    f = _mqd(task, mqdes)
    if not f.writable():
        raise SyscallError(EBADF)
    q = f.queue
    prio = msg_prio & 0xFFFFFFFF
    if prio >= MQ_PRIO_MAX:
        raise SyscallError(EINVAL)
    if msg_len > q.msgsize:
        raise SyscallError(EMSGSIZE)
    data = task.mm.read(msg_ptr, msg_len) if msg_len else b""
    if len(q.messages) >= q.maxmsg:
        _wait(task, f, lambda: len(q.messages) < q.maxmsg, abs_timeout)
    q.put(prio, data)
    return 0


def sys_mq_timedreceive(task, mqdes, msg_ptr, msg_len, msg_prio, abs_timeout):
    """mq_timedreceive(2): the oldest message of the highest priority."""
    f = _mqd(task, mqdes)
    if not f.readable():
        raise SyscallError(EBADF)
    q = f.queue
    if msg_len < q.msgsize:
        raise SyscallError(EMSGSIZE)
    if not q.messages:
        q.receivers += 1
        try:
            _wait(task, f, lambda: bool(q.messages), abs_timeout)
        finally:
            q.receivers -= 1
    prio, data = q.take()
    task.mm.write(msg_ptr, data)
    if msg_prio:
        task.mm.write_u32(msg_prio, prio)
    return len(data)


def sys_mq_notify(task, mqdes, notification):
    """mq_notify(2): one registered process per queue (EBUSY for another)."""
    f = _mqd(task, mqdes)
    q = f.queue
    pid = task.process.pid
    if not notification:
        if q.notify is not None and q.notify[0] == pid:
            q.notify = None
        return 0
    value, signo, kind, _tid = task.mm.read_struct(notification, abi.SIGEVENT)
    if kind not in (abi.SIGEV_SIGNAL, abi.SIGEV_NONE):
        raise SyscallError(EINVAL)
    if kind == abi.SIGEV_SIGNAL and not 0 < signo <= abi.NSIG:
        raise SyscallError(EINVAL)
    if q.notify is not None:
        raise SyscallError(EBUSY)
    q.notify = (pid, kind, signo if kind == abi.SIGEV_SIGNAL else 0, value)
    return 0


def sys_mq_getsetattr(task, mqdes, newattr, oldattr):
    """mq_getsetattr(2): only O_NONBLOCK of mq_flags can change."""
    f = _mqd(task, mqdes)
    q = f.queue
    new = task.mm.read_struct(newattr, MQ_ATTR) if newattr else None
    if new is not None and new[0] & ~abi.O_NONBLOCK:
        raise SyscallError(EINVAL)
    if oldattr:
        task.mm.write(oldattr, MQ_ATTR.pack(f.flags & abi.O_NONBLOCK, q.maxmsg, q.msgsize, len(q.messages)))
    if new is not None:
        f.flags = (f.flags & ~abi.O_NONBLOCK) | (new[0] & abi.O_NONBLOCK)
    return 0
