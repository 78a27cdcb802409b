"""System V shared memory: shmget(2), shmat(2), shmdt(2), shmctl(2).

A segment is an in-memory file (as Linux's shm is a tmpfs file): shmat maps it
MAP_SHARED, so every attachment, in this process or another (fork keeps them),
maps the same frames through its page cache. shm_nattch counts the attachments
in the VM's address spaces; a segment removed with IPC_RMID goes when the last
one is detached (its key is free at once).
"""

import struct
import time

from umiak.kernel import abi
from umiak.kernel.errors import EEXIST, EINVAL, SyscallError
from umiak.kernel.sysvipc import (IPC64_PERM, IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT, IpcObject, namespace)

SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_EXEC = 0o10000, 0o20000, 0o40000, 0o100000
SHM_LOCK, SHM_UNLOCK, SHM_STAT, SHM_INFO, SHM_STAT_ANY = 11, 12, 13, 14, 15
SHM_DEST, SHM_LOCKED = 0o1000, 0o2000
SHMMIN, SHMMAX, SHMALL, SHMMNI, SHMSEG = 1, 0xFFFFFFFFFEFFFFFF, 0xFFFFFFFFFEFFFFFF, 4096, 4096
PAGE = 4096
SHMID64_DS = struct.Struct("<48sQqqqiiQQQ")
SHMINFO = struct.Struct("<QQQQQ32x")            # shmmax, shmmin, shmmni, shmseg, shmall
SHM_INFO_ST = struct.Struct("<i4xQQQQQ")        # used_ids, shm_tot, shm_rss, shm_swp, swap_attempts, swap_successes


class Segment(IpcObject):
    def __init__(self, key: int, task, mode: int, size: int):
        super().__init__(key, task, mode)
        from umiak.kernel.vfs.memfs import make_memfd
        self.size = size
        self.file = make_memfd(task.kernel, f"SYSV{key & 0xFFFFFFFF:08x}", 0, (self.uid, self.gid))
        self.file.truncate(size)
        self.inode = self.file.inode
        self.cpid = task.process.pid
        self.lpid = 0
        self.atime = self.dtime = 0
        self.dest = False
        self.locked = False

    def attachments(self, kernel) -> int:
        n = 0
        seen = set()
        for p in kernel.processes.values():
            mm = p.mm
            if p.zombie or mm is None or id(mm) in seen:
                continue
            seen.add(id(mm))
            n += sum(1 for v in mm.vmas if v.offset == 0 and getattr(v.file, "inode", None) is self.inode)
        return n


def _table(task):
    """The VM's segments, after dropping removed ones that nothing maps any more
    (their last attachment may have gone with an exit or exec rather than shmdt)."""
    table = namespace(task.kernel).shm
    for seg in [s for s in table.by_index.values() if isinstance(s, Segment) and s.dest]:
        _reap(task, seg, table)
    return table


def _reap(task, seg: Segment, table) -> None:
    """A segment marked for removal goes once nothing maps it."""
    if seg.dest and not seg.removed and seg.attachments(task.kernel) == 0:
        table.drop(seg)


def sys_shmget(task, key, size, shmflg):
    """shmget(2)"""
    key, flags = abi.s32(key), abi.s32(shmflg)

    def make():
        if size < SHMMIN or size > SHMMAX:
            raise SyscallError(EINVAL)
        return Segment(key, task, flags, size)

    def existing(seg):
        if size > seg.size:
            raise SyscallError(EINVAL)
    return _table(task).lookup(task, key, flags, make, existing).id


def sys_shmat(task, shmid, shmaddr, shmflg):
    """shmat(2): maps the segment MAP_SHARED (SHM_RND rounds to SHMLBA, a page)."""
    flags = abi.s32(shmflg)
    seg = _table(task).get(abi.s32(shmid))
    assert isinstance(seg, Segment)
    ro = bool(flags & SHM_RDONLY)
    seg.check(task, 4 if ro else 6)
    addr = shmaddr
    if addr & (PAGE - 1):
        if not flags & SHM_RND:
            raise SyscallError(EINVAL)
        addr &= ~(PAGE - 1)
    prot = abi.PROT_READ | (0 if ro else abi.PROT_WRITE) | (abi.PROT_EXEC if flags & SHM_EXEC else 0)
    mflags = abi.MAP_SHARED
    if addr:
        mflags |= abi.MAP_FIXED if flags & SHM_REMAP else abi.MAP_FIXED_NOREPLACE
    elif flags & SHM_REMAP:
        raise SyscallError(EINVAL)
    mapping = seg.file.mmap_file()
    if ro:
        mapping.writable = False
    try:
        got = task.mm.mmap(addr, seg.size, prot, mflags, mapping, 0, f"/SYSV{seg.key & 0xFFFFFFFF:08x} (deleted)")
    except SyscallError as e:
        raise SyscallError(EINVAL if e.errno == EEXIST else e.errno) from None
    seg.atime = int(time.time())
    seg.lpid = task.process.pid
    return got


def sys_shmdt(task, shmaddr):
    """shmdt(2): unmaps the attachment that starts at shmaddr (EINVAL if none does)."""
    if shmaddr & (PAGE - 1):
        raise SyscallError(EINVAL)
    mm = task.mm
    vma = mm.find_vma(shmaddr)
    inode = getattr(vma.file, "inode", None) if vma is not None else None
    seg = next((s for s in _table(task).by_index.values() if isinstance(s, Segment) and s.inode is inode), None)
    if vma is None or vma.start != shmaddr or vma.offset != 0 or seg is None:
        raise SyscallError(EINVAL)
    mm.munmap(shmaddr, abi.page_up(seg.size))
    seg.dtime = int(time.time())
    seg.lpid = task.process.pid
    _reap(task, seg, _table(task))
    return 0


def _stat_bytes(task, seg: Segment) -> bytes:
    mode = seg.mode | (SHM_DEST if seg.dest else 0) | (SHM_LOCKED if seg.locked else 0)
    perm = IPC64_PERM.pack(seg.key, seg.uid, seg.gid, seg.cuid, seg.cgid, mode, seg.seq, 0, 0, 0)
    return SHMID64_DS.pack(perm, seg.size, seg.atime, seg.dtime, seg.ctime, seg.cpid, seg.lpid,
                           seg.attachments(task.kernel), 0, 0)


def sys_shmctl(task, shmid, cmd, buf):
    """shmctl(2)"""
    cmd = abi.s32(cmd)
    table = _table(task)
    mm = task.mm
    if cmd == IPC_INFO:
        mm.write(buf, SHMINFO.pack(SHMMAX, SHMMIN, SHMMNI, SHMSEG, SHMALL))
        return table.max_index()
    if cmd == SHM_INFO:
        segs = [s for s in table.objects() if isinstance(s, Segment)]
        pages = sum(abi.page_up(s.size) // PAGE for s in segs)
        mm.write(buf, SHM_INFO_ST.pack(len(segs), pages, pages, 0, 0, 0))
        return table.max_index()
    if cmd in (SHM_STAT, SHM_STAT_ANY):
        seg = table.stat_index(task, abi.s32(shmid), cmd == SHM_STAT)
        assert isinstance(seg, Segment)
        mm.write(buf, _stat_bytes(task, seg))
        return seg.id
    seg = table.get(abi.s32(shmid))
    assert isinstance(seg, Segment)
    if cmd == IPC_STAT:
        seg.check(task, 4)
        mm.write(buf, _stat_bytes(task, seg))
        return 0
    if cmd == IPC_SET:
        seg.check_owner(task)
        seg.set_perm(mm.read(buf, IPC64_PERM.size))
        return 0
    if cmd == IPC_RMID:
        seg.check_owner(task)
        seg.dest = True
        table.forget_key(seg)
        _reap(task, seg, table)
        return 0
    if cmd in (SHM_LOCK, SHM_UNLOCK):
        seg.locked = cmd == SHM_LOCK
        return 0
    raise SyscallError(EINVAL)

