"""The VM's System V IPC namespace: the id/key tables and permissions shared by shared
memory (syscalls/sysv_shm.py), semaphores (sysv_sem.py) and message queues (sysv_msg.py).

Ids are made as Linux's: index + sequence * 32768, so a removed id is not soon reused.
Keys are per VM (the VM is its own IPC namespace): host processes do not see them.
"""

import struct
import time

from umiak.kernel.errors import EACCES, EEXIST, EINVAL, ENOENT, ENOSPC, EPERM, SyscallError

IPC_PRIVATE = 0
IPC_CREAT, IPC_EXCL, IPC_NOWAIT = 0o1000, 0o2000, 0o4000
IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO = 0, 1, 2, 3
SEQ_MULTIPLIER = 32768
IPCMNI = 32000
CAP_IPC_OWNER, CAP_SYS_ADMIN = 15, 21

# struct ipc64_perm: key, uid, gid, cuid, cgid, mode, seq, pad, 2 unused longs
IPC64_PERM = struct.Struct("<iIIIIIHH4xQQ")


class IpcObject:
    """What every SysV IPC object has: its key, owner, creator, mode and id."""

    def __init__(self, key: int, task, mode: int):
        creds = task.process.creds
        self.key = key
        self.uid = self.cuid = creds.euid
        self.gid = self.cgid = creds.egid
        self.mode = mode & 0o777
        self.id = -1
        self.seq = 0
        self.ctime = int(time.time())
        self.removed = False

    def perm_bytes(self) -> bytes:
        return IPC64_PERM.pack(self.key, self.uid, self.gid, self.cuid, self.cgid, self.mode, self.seq, 0, 0, 0)

    def check(self, task, want: int) -> None:
        """ipcperms: want is 4 (read) and/or 2 (write); EACCES unless the mode grants it."""
        creds = task.process.creds
        if creds.euid in (self.uid, self.cuid):
            granted = self.mode >> 6
        elif creds.egid in (self.gid, self.cgid) or {self.gid, self.cgid} & set(creds.groups):
            granted = self.mode >> 3
        else:
            granted = self.mode
        if want & ~granted & 7 and not creds.capable(CAP_IPC_OWNER):
            raise SyscallError(EACCES)

    def check_owner(self, task) -> None:
        """IPC_SET and IPC_RMID: the owner, the creator or CAP_SYS_ADMIN."""
        creds = task.process.creds
        if creds.euid not in (self.uid, self.cuid) and not creds.capable(CAP_SYS_ADMIN):
            raise SyscallError(EPERM)

    def set_perm(self, raw: bytes) -> None:
        """IPC_SET's uid, gid and the low 9 mode bits from a struct ipc64_perm."""
        _key, uid, gid, _cuid, _cgid, mode = IPC64_PERM.unpack_from(raw)[:6]
        self.uid, self.gid = uid, gid
        self.mode = (self.mode & ~0o777) | (mode & 0o777)
        self.ctime = int(time.time())


class IpcTable:
    """One kind of SysV IPC object (shm, sem or msg) of the VM."""

    def __init__(self, limit: int = IPCMNI):
        self.by_index: dict[int, IpcObject] = {}
        self.by_key: dict[int, IpcObject] = {}
        self.seq = 0
        self.limit = limit

    def get(self, ipc_id: int) -> IpcObject:
        """The live object with this id, else EINVAL (as Linux for a bad or removed id)."""
        if ipc_id < 0:
            raise SyscallError(EINVAL)
        obj = self.by_index.get(ipc_id % SEQ_MULTIPLIER)
        if obj is None or obj.id != ipc_id or obj.removed:
            raise SyscallError(EINVAL)
        return obj

    def lookup(self, task, key: int, flags: int, make, check_existing=None) -> IpcObject:
        """*get(2): the object of key (IPC_PRIVATE: always a new one), made by make() with
        IPC_CREAT; EEXIST with IPC_CREAT|IPC_EXCL, ENOENT without IPC_CREAT."""
        if key != IPC_PRIVATE:
            obj = self.by_key.get(key)
            if obj is not None:
                if flags & IPC_CREAT and flags & IPC_EXCL:
                    raise SyscallError(EEXIST)
                obj.check(task, (flags >> 6 | flags >> 3 | flags) & 7)
                if check_existing is not None:
                    check_existing(obj)
                return obj
            if not flags & IPC_CREAT:
                raise SyscallError(ENOENT)
        if len(self.by_index) >= self.limit:
            raise SyscallError(ENOSPC)
        obj = make()
        index = next(i for i in range(self.limit) if i not in self.by_index)
        obj.seq = self.seq
        self.seq = (self.seq + 1) % (0x7FFFFFFF // SEQ_MULTIPLIER)
        obj.id = obj.seq * SEQ_MULTIPLIER + index
        self.by_index[index] = obj
        if key != IPC_PRIVATE:
            self.by_key[key] = obj
        return obj

    def forget_key(self, obj: IpcObject) -> None:
        """IPC_RMID: the key is free at once (a segment still attached becomes IPC_PRIVATE)."""
        if obj.key != IPC_PRIVATE and self.by_key.get(obj.key) is obj:
            del self.by_key[obj.key]
        obj.key = IPC_PRIVATE

    def drop(self, obj: IpcObject) -> None:
        self.forget_key(obj)
        obj.removed = True
        if self.by_index.get(obj.id % SEQ_MULTIPLIER) is obj:
            del self.by_index[obj.id % SEQ_MULTIPLIER]

    def objects(self) -> list[IpcObject]:
        return [self.by_index[i] for i in sorted(self.by_index)]

    def max_index(self) -> int:
        return max(self.by_index, default=0)

    def stat_index(self, task, index: int, check: bool) -> IpcObject:
        """SHM_STAT/SEM_STAT/MSG_STAT: the object at table index (EINVAL if none); read
        permission checked unless the command is the *_STAT_ANY one."""
        obj = self.by_index.get(index)
        if obj is None:
            raise SyscallError(EINVAL)
        if check:
            obj.check(task, 4)
        return obj


class IpcNamespace:
    def __init__(self):
        self.shm = IpcTable(4096)
        self.sem = IpcTable(32000)
        self.msg = IpcTable(32000)


def namespace(kernel) -> IpcNamespace:
    """The VM's IPC namespace, made on first use."""
    ns = getattr(kernel, "sysvipc", None)
    if ns is None:
        ns = kernel.sysvipc = IpcNamespace()
    return ns


def interrupted(e: SyscallError) -> SyscallError:
    """SysV IPC waits are never restarted (signal(7)): EINTR whatever SA_RESTART says."""
    from umiak.kernel.errors import EINTR, ERESTARTSYS
    return SyscallError(EINTR) if e.errno == ERESTARTSYS else e
