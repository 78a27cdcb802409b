"""Credentials: setuid(2), setreuid(2), setresuid(2), setfsuid(2) and the gid twins,
getres[ug]id(2), [gs]etgroups(2), capget(2) and capset(2).

The rules are Linux's (kernel/sys.c, security/commoncap.c): -1 leaves an id as it is;
without CAP_SETUID a process may only move between its real, effective and saved
uids; changing the real uid (or the effective one to another than the real) saves the
new effective uid; and the capabilities follow the uids as cap_emulate_setxuid says
(root losing its uids loses its capabilities, an effective uid of 0 regains the
permitted ones). The permission checks of the VFS ask Credentials.capable.
"""

from umiak.kernel.abi import s32
from umiak.kernel.errors import EFAULT, EINVAL, EPERM, ESRCH, SyscallError
from umiak.kernel.process import CAP_ALL

CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID = 0, 1, 2, 3, 4
CAP_SETGID, CAP_SETUID, CAP_SETPCAP, CAP_LINUX_IMMUTABLE = 6, 7, 8, 9
CAP_MKNOD, CAP_MAC_OVERRIDE = 27, 32
# The capabilities an fsuid of 0 brings (CAP_FS_MASK).
FS_CAPS = sum(1 << c for c in (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID,
                               CAP_LINUX_IMMUTABLE, CAP_MKNOD, CAP_MAC_OVERRIDE))

CAP_V1, CAP_V2, CAP_V3 = 0x19980330, 0x20071026, 0x20080522

_NOID = 0xFFFFFFFF      # (uid_t)-1: leave unchanged


def _id(v) -> int:
    return v & 0xFFFFFFFF


def _fix_caps(c, old: tuple[int, int, int]) -> None:
    """cap_emulate_setxuid: capabilities after (ruid, euid, suid) changed from old."""
    ruid, euid, suid = old
    if 0 in old and 0 not in (c.uid, c.euid, c.suid) and not c.keepcaps:
        c.cap_permitted = c.cap_effective = 0
    if euid == 0 and c.euid != 0:
        c.cap_effective = 0
    if euid != 0 and c.euid == 0:
        c.cap_effective = c.cap_permitted


def _fix_fs_caps(c, old_fsuid: int) -> None:
    if old_fsuid == 0 and c.fsuid != 0:
        c.cap_effective &= ~FS_CAPS
    elif old_fsuid != 0 and c.fsuid == 0:
        c.cap_effective |= c.cap_permitted & FS_CAPS


# A credential family's fields: real, effective, saved, and the file-system id.
_UIDS = ("uid", "euid", "suid", "fsuid")
_GIDS = ("gid", "egid", "sgid", "fsgid")


def _get(c, f: tuple[str, ...]) -> tuple[int, int, int]:
    return getattr(c, f[0]), getattr(c, f[1]), getattr(c, f[2])


def _store(c, f: tuple[str, ...], new: tuple[int, int, int]) -> None:
    """Set (real, effective, saved) of one family; the fs id follows the effective one,
    and for uids the capabilities follow as cap_emulate_setxuid says."""
    old = _get(c, f)
    for name, v in zip(f[:3], new, strict=True):
        setattr(c, name, v)
    setattr(c, f[3], new[1])
    if f is _UIDS:
        _fix_caps(c, old)


def _family(task, uids: bool):
    return task.process.creds, (_UIDS if uids else _GIDS), (CAP_SETUID if uids else CAP_SETGID)


def _setid(task, v, uids: bool):
    """setuid/setgid: with the capability every id; else the effective one, to the real or saved id."""
    c, f, cap = _family(task, uids)
    v = _id(v)
    if v == _NOID:
        raise SyscallError(EINVAL)
    real, _eff, saved = _get(c, f)
    if c.capable(cap):
        _store(c, f, (v, v, v))
    elif v in (real, saved):
        _store(c, f, (real, v, saved))
    else:
        raise SyscallError(EPERM)
    return 0


def sys_setuid(task, uid):
    """setuid(2)"""
    return _setid(task, uid, True)


def sys_setgid(task, gid):
    """setgid(2)"""
    return _setid(task, gid, False)


def _re(cur: tuple[int, int, int], r: int, e: int, privileged: bool) -> tuple[int, int, int]:
    """setreuid/setregid: the new (real, effective, saved), EPERM for a move not allowed."""
    real, eff, saved = cur
    if r != _NOID:
        if not privileged and r not in (real, eff):
            raise SyscallError(EPERM)
    if e != _NOID:
        if not privileged and e not in (real, eff, saved):
            raise SyscallError(EPERM)
    new_r = real if r == _NOID else r
    new_e = eff if e == _NOID else e
    new_s = new_e if r != _NOID or (e != _NOID and e != real) else saved
    return new_r, new_e, new_s


def _res(cur: tuple[int, int, int], ids: tuple[int, int, int], privileged: bool) -> tuple[int, int, int]:
    if not privileged and any(v != _NOID and v not in cur for v in ids):
        raise SyscallError(EPERM)
    return tuple(old if v == _NOID else v for old, v in zip(cur, ids, strict=True))  # type: ignore[return-value]


def _setreid(task, r, e, uids: bool):
    c, f, cap = _family(task, uids)
    _store(c, f, _re(_get(c, f), _id(r), _id(e), c.capable(cap)))
    return 0


def _setresid(task, r, e, s, uids: bool):
    c, f, cap = _family(task, uids)
    _store(c, f, _res(_get(c, f), (_id(r), _id(e), _id(s)), c.capable(cap)))
    return 0


def _getresid(task, r, e, s, uids: bool):
    c, f, _cap = _family(task, uids)
    for addr, v in zip((r, e, s), _get(c, f), strict=True):
        task.mm.write_u32(addr, v)
    return 0


def _setfsid(task, v, uids: bool):
    """setfsuid/setfsgid: always return the old fs id; change it to one of the process's ids
    (any with the capability); an fsuid of 0 carries the file-system capabilities."""
    c, f, cap = _family(task, uids)
    old = getattr(c, f[3])
    v = _id(v)
    if v != _NOID and (v in (*_get(c, f), old) or c.capable(cap)):
        setattr(c, f[3], v)
        if uids:
            _fix_fs_caps(c, old)
    return old


def sys_setreuid(task, ruid, euid):
    """setreuid(2)"""
    return _setreid(task, ruid, euid, True)


def sys_setregid(task, rgid, egid):
    """setregid(2)"""
    return _setreid(task, rgid, egid, False)


def sys_setresuid(task, ruid, euid, suid):
    """setresuid(2)"""
    return _setresid(task, ruid, euid, suid, True)


def sys_setresgid(task, rgid, egid, sgid):
    """setresgid(2)"""
    return _setresid(task, rgid, egid, sgid, False)


def sys_getresuid(task, ruid, euid, suid):
    """getresuid(2)"""
    return _getresid(task, ruid, euid, suid, True)


def sys_getresgid(task, rgid, egid, sgid):
    """getresgid(2)"""
    return _getresid(task, rgid, egid, sgid, False)


def sys_setfsuid(task, fsuid):
    """setfsuid(2)"""
    return _setfsid(task, fsuid, True)


def sys_setfsgid(task, fsgid):
    """setfsgid(2)"""
    return _setfsid(task, fsgid, False)


def sys_getgroups(task, size, lst):
    """getgroups(2)"""
    groups = task.process.creds.groups
    size = s32(size)
    if size < 0:
        raise SyscallError(EINVAL)
    if size == 0:
        return len(groups)
    if size < len(groups):
        raise SyscallError(EINVAL)
    task.mm.write(lst, b"".join(g.to_bytes(4, "little") for g in groups))
    return len(groups)


def sys_setgroups(task, size, lst):
    """setgroups(2): needs CAP_SETGID (kept for getgroups and the permission checks)."""
    size = s32(size)
    if size < 0 or size > 65536:
        raise SyscallError(EINVAL)
    if not task.process.creds.capable(CAP_SETGID):
        raise SyscallError(EPERM)
    raw = task.mm.read(lst, 4 * size) if size else b""
    task.process.creds.groups = [int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4)]
    return 0


# -- capabilities ------------------------------------------------------------------------

def _cap_header(task, hdrp) -> tuple[int, int]:
    """(version, words) of a cap_user_header_t; an unknown version is answered with ours."""
    if not hdrp:
        raise SyscallError(EFAULT)
    version = task.mm.read_u32(hdrp)
    if version == CAP_V1:
        return version, 1
    if version in (CAP_V2, CAP_V3):
        return version, 2
    task.mm.write_u32(hdrp, CAP_V3)
    return 0, 0


def _target(task, hdrp):
    pid = s32(task.mm.read_u32(hdrp + 4))
    if pid < 0:
        raise SyscallError(EINVAL)
    if pid in (0, task.process.pid) or pid in task.process.tasks:
        return task.process
    p = task.kernel.processes.get(pid)
    if p is None:
        raise SyscallError(ESRCH)
    return p


def sys_capget(task, hdrp, datap):
    """capget(2): the effective, permitted and inheritable sets (versions 1, 2 and 3)."""
    version, words = _cap_header(task, hdrp)
    if not version:
        if not datap:
            return 0          # a probe for the preferred version
        raise SyscallError(EINVAL)
    c = _target(task, hdrp).creds
    if not datap:
        return 0
    out = b""
    for i in range(words):
        for v in (c.cap_effective, c.cap_permitted, c.cap_inheritable):
            out += (v >> (32 * i) & 0xFFFFFFFF).to_bytes(4, "little")
    task.mm.write(datap, out)
    return 0


def sys_capset(task, hdrp, datap):
    """capset(2): of this process only; the permitted set may only shrink, the effective set
    stays within it, the inheritable within the old inheritable and permitted ones."""
    version, words = _cap_header(task, hdrp)
    if not version:
        raise SyscallError(EINVAL)
    pid = s32(task.mm.read_u32(hdrp + 4))
    if pid not in (0, task.process.pid, task.tid):
        raise SyscallError(EPERM)
    raw = task.mm.read(datap, 12 * words)
    eff = perm = inh = 0
    for i in range(words):
        e, p, h = (int.from_bytes(raw[12 * i + 4 * k:12 * i + 4 * k + 4], "little") for k in range(3))
        eff |= e << (32 * i)
        perm |= p << (32 * i)
        inh |= h << (32 * i)
    eff, perm, inh = eff & CAP_ALL, perm & CAP_ALL, inh & CAP_ALL
    c = task.process.creds
    if inh & ~(c.cap_inheritable | c.cap_permitted) and not c.capable(CAP_SETPCAP):
        raise SyscallError(EPERM)
    if perm & ~c.cap_permitted or eff & ~perm:
        raise SyscallError(EPERM)
    c.cap_effective, c.cap_permitted, c.cap_inheritable = eff, perm, inh
    return 0
