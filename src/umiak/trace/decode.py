"""Syscall arguments and results in Linux strace's notation.

Each syscall has a tuple of argument kinds in SPECS (``"fd"``, ``"path"``,
``"buf_out:ret"`` ...); a kind names a formatter ``k_<kind>(c, value, param)``.
Kinds in OUT_KINDS describe memory the kernel fills in: they, and every
argument after the first of them, are printed after the call returns (as
strace does). A formatter may return None to leave its argument out (the mode
of openat without O_CREAT, the timeout of FUTEX_WAKE). Guest memory is read
through ``task.mm`` only; a pointer that cannot be read prints as its address.
"""

import os
import struct
import time

from umiak.kernel import abi
from umiak.kernel.abi import PATH_MAX, s32, s64
from umiak.kernel.errors import (ENAMETOOLONG, ERESTART_RESTARTBLOCK, ERESTARTNOHAND, ERESTARTNOINTR,
                                 ERESTARTSYS, SyscallError, errno_name)

MAX_STRLEN = 32        # strace -s default: bytes of a buffer shown before "..."
MAX_ARRAY = 32         # elements of an array shown before "..."


class Call:
    """One syscall being formatted: the task, raw arguments and (after it returns) the result."""

    __slots__ = ("task", "nr", "name", "args", "ret", "before")

    def __init__(self, task, nr: int, name: str, args, ret=None):
        self.task, self.nr, self.name, self.args, self.ret = task, nr, name, args, ret
        self.before: dict | None = None   # {pointer: value} read before the call, for "[112 => 16]"

    @property
    def failed(self) -> bool:
        return isinstance(self.ret, int) and -4096 < self.ret < 0


# -- strings --------------------------------------------------------------------

_ESC = {0x22: '\\"', 0x5C: "\\\\", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x0B: "\\v"}


def quote(data: bytes, hexall: bool = False) -> str:
    """Bytes in double quotes, escaped as strace escapes them."""
    if hexall:
        return '"' + "".join(f"\\x{b:02x}" for b in data) + '"'
    out = ['"']
    n = len(data)
    for i, b in enumerate(data):
        e = _ESC.get(b)
        if e is not None:
            out.append(e)
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        elif i + 1 < n and 0x30 <= data[i + 1] <= 0x39:
            out.append(f"\\{b:03o}")   # a digit follows: all three octal digits
        else:
            out.append(f"\\{b:o}")
    out.append('"')
    return "".join(out)


def ptr(v: int) -> str:
    return "NULL" if v == 0 else f"{v:#x}"


def buf(c: Call, addr: int, n: int, hexall: bool = False) -> str:
    """n bytes at addr (strace's printstrn): the first MAX_STRLEN, then "..." if cut."""
    if addr == 0 and n:
        return "NULL"
    try:
        data = c.task.mm.read(addr, min(n, MAX_STRLEN))
    except SyscallError:
        return ptr(addr)
    return quote(data, hexall) + ("..." if n > MAX_STRLEN else "")


def cstr(c: Call, addr: int, limit: int = MAX_STRLEN) -> str:
    """A NUL-terminated string, cut after limit bytes with "..."."""
    if addr == 0:
        return "NULL"
    try:
        s = c.task.mm.read_cstr(addr, limit + 1)
    except SyscallError as err:
        if err.errno != ENAMETOOLONG:
            return ptr(addr)
        try:
            return quote(c.task.mm.read(addr, limit)) + "..."
        except SyscallError:
            return ptr(addr)
    if len(s) > limit:
        return quote(s[:limit]) + "..."
    return quote(s)


def path(c: Call, addr: int) -> str:
    return cstr(c, addr, PATH_MAX - 1)


# -- numbers and flags ------------------------------------------------------------

def _table(*names: str, ns=abi) -> list[tuple[int, str]]:
    """[(value, name)] for names defined in abi, in the given order."""
    return [(getattr(ns, n), n) for n in names]


def _names(*names: str) -> dict[int, str]:
    """{value: name} for names defined in abi."""
    return {getattr(abi, n): n for n in names}


def _ints(prefix: str) -> dict[int, str]:
    """{value: name} for every integer constant in abi whose name starts with prefix."""
    return {v: n for n, v in vars(abi).items() if n.startswith(prefix) and type(v) is int}


def flags(v: int, table, zero: str = "0") -> str:
    """Names of the bits set in v, in table order, with leftover bits in hex."""
    parts = []
    for bit, name in table:
        if bit and v & bit == bit:
            parts.append(name)
            v &= ~bit
    if v:
        parts.append(f"{v:#x}")
    return "|".join(parts) if parts else zero


def xlat(v: int, names: dict, fallback: str | None = None) -> str:
    name = names.get(v)
    if name is not None:
        return name
    return fallback if fallback is not None else f"{v:#x} /* ??? */"


def octal(v: int) -> str:
    """C's %#03o: 0644, 000, 007."""
    return ("0%o" % v if v else "0").rjust(3, "0")


def signame(sig: int) -> str:
    if sig == 32:
        return "SIGRTMIN"
    if 32 < sig <= abi.NSIG:
        return f"SIGRT_{sig - 32}"
    return abi.SIGNAL_NAMES.get(sig, str(sig))


def sigset(mask: int, nbits: int = 64) -> str:
    """[INT TERM], or ~[...] listing the missing signals when more than half are set."""
    mask &= (1 << nbits) - 1
    pre = ""
    if bin(mask).count("1") * 2 > nbits:
        pre, mask = "~", ~mask & ((1 << nbits) - 1)
    names = [signame(i + 1)[3:] for i in range(nbits) if mask >> i & 1]
    return pre + "[" + " ".join(names) + "]"


OPEN_ACCMODE = _names("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")
# strace's order (O_CLOEXEC before O_DIRECTORY), compounds before their parts; O_ASYNC is FASYNC.
OPEN_FLAGS = _table("O_CREAT", "O_EXCL", "O_NOCTTY", "O_TRUNC", "O_APPEND", "O_NONBLOCK", "O_SYNC",
                    "O_DSYNC", "O_DIRECT", "O_LARGEFILE", "O_NOFOLLOW", "O_NOATIME", "O_CLOEXEC", "O_PATH",
                    "O_TMPFILE", "O_DIRECTORY") + [(abi.O_ASYNC, "FASYNC")]


def open_flags(v: int) -> str:
    v &= 0xFFFFFFFF
    rest = flags(v & ~abi.O_ACCMODE, OPEN_FLAGS, zero="")
    return OPEN_ACCMODE[v & abi.O_ACCMODE] + ("|" + rest if rest else "")


AT_FLAG_NAMES = _table("AT_SYMLINK_NOFOLLOW", "AT_REMOVEDIR", "AT_SYMLINK_FOLLOW", "AT_NO_AUTOMOUNT",
                  "AT_EMPTY_PATH")
AT_FLAG_NAMES_EACCESS = [(abi.AT_EACCESS, "AT_EACCESS")] + [t for t in AT_FLAG_NAMES if t[1] != "AT_REMOVEDIR"]
PROT_FLAGS = _table("PROT_READ", "PROT_WRITE", "PROT_EXEC", "PROT_SEM", "PROT_GROWSDOWN", "PROT_GROWSUP")
MAP_TYPES = _names("MAP_SHARED", "MAP_PRIVATE", "MAP_SHARED_VALIDATE")
MAP_FLAGS = _table("MAP_FIXED", "MAP_ANONYMOUS", "MAP_32BIT", "MAP_GROWSDOWN", "MAP_DENYWRITE",
                   "MAP_EXECUTABLE", "MAP_LOCKED", "MAP_NORESERVE", "MAP_POPULATE", "MAP_NONBLOCK",
                   "MAP_STACK", "MAP_HUGETLB", "MAP_SYNC", "MAP_FIXED_NOREPLACE", "MAP_UNINITIALIZED")
MREMAP_FLAGS = _table("MREMAP_MAYMOVE", "MREMAP_FIXED", "MREMAP_DONTUNMAP")
MADVISE = _ints("MADV_")
SEEK = _names("SEEK_SET", "SEEK_CUR", "SEEK_END", "SEEK_DATA", "SEEK_HOLE")
ACCESS_MODES = _table("R_OK", "W_OK", "X_OK")
CLOCKS = _names("CLOCK_REALTIME", "CLOCK_MONOTONIC", "CLOCK_PROCESS_CPUTIME_ID", "CLOCK_THREAD_CPUTIME_ID",
                "CLOCK_MONOTONIC_RAW", "CLOCK_REALTIME_COARSE", "CLOCK_MONOTONIC_COARSE", "CLOCK_BOOTTIME",
                "CLOCK_REALTIME_ALARM", "CLOCK_BOOTTIME_ALARM", "CLOCK_TAI")
RLIMITS = _ints("RLIMIT_")
ARCH_PRCTL = _names("ARCH_SET_GS", "ARCH_SET_FS", "ARCH_GET_FS", "ARCH_GET_GS", "ARCH_GET_CPUID", "ARCH_SET_CPUID")
GRND_FLAGS = _table("GRND_NONBLOCK", "GRND_RANDOM", "GRND_INSECURE")
SA_FLAGS = _table("SA_RESTORER", "SA_ONSTACK", "SA_RESTART", "SA_NODEFER", "SA_RESETHAND",
                  "SA_SIGINFO", "SA_NOCLDSTOP", "SA_NOCLDWAIT")
SIGPROCMASK_HOW = _names("SIG_BLOCK", "SIG_UNBLOCK", "SIG_SETMASK")
FCNTL_CMDS = {getattr(abi, n): n for n in (
    "F_DUPFD", "F_GETFD", "F_SETFD", "F_GETFL", "F_SETFL", "F_GETLK", "F_SETLK", "F_SETLKW",
    "F_SETOWN", "F_GETOWN", "F_DUPFD_CLOEXEC", "F_SETPIPE_SZ", "F_GETPIPE_SZ", "F_ADD_SEALS",
    "F_GET_SEALS", "F_OFD_GETLK", "F_OFD_SETLK", "F_OFD_SETLKW")}
IOCTLS = {getattr(abi, n): n for n in (
    "TCGETS", "TCSETS", "TCSETSW", "TCSETSF", "TIOCGPGRP", "TIOCSPGRP", "TIOCGWINSZ", "TIOCSWINSZ",
    "FIONREAD", "FIONBIO", "FIOCLEX", "FIONCLEX", "FIOASYNC", "TIOCGPTN")}
S_IFMT_NAMES = {getattr(abi, n): n for n in ("S_IFSOCK", "S_IFLNK", "S_IFREG", "S_IFBLK", "S_IFDIR",
                                             "S_IFCHR", "S_IFIFO")}
STATX_MASKS = _table("STATX_ALL", "STATX_BASIC_STATS", "STATX_TYPE", "STATX_MODE", "STATX_NLINK",
                     "STATX_UID", "STATX_GID", "STATX_ATIME", "STATX_MTIME", "STATX_CTIME", "STATX_INO",
                     "STATX_SIZE", "STATX_BLOCKS", "STATX_BTIME", "STATX_MNT_ID", "STATX_DIOALIGN")
STATX_SYNC = _names("AT_STATX_SYNC_AS_STAT", "AT_STATX_FORCE_SYNC", "AT_STATX_DONT_SYNC", "AT_STATX_SYNC_TYPE")
FUTEX_OPS = _names("FUTEX_WAIT", "FUTEX_WAKE", "FUTEX_FD", "FUTEX_REQUEUE", "FUTEX_CMP_REQUEUE", "FUTEX_WAKE_OP",
                   "FUTEX_LOCK_PI", "FUTEX_UNLOCK_PI", "FUTEX_TRYLOCK_PI", "FUTEX_WAIT_BITSET",
                   "FUTEX_WAKE_BITSET", "FUTEX_WAIT_REQUEUE_PI", "FUTEX_CMP_REQUEUE_PI", "FUTEX_LOCK_PI2")
CLONE_FLAGS = sorted(((v, n) for v, n in _ints("CLONE_").items()), key=lambda t: t[0])
SS_FLAGS = _table("SS_ONSTACK", "SS_DISABLE", "SS_AUTODISARM")


def mode_t(mode: int) -> str:
    """st_mode as strace prints it: S_IFREG|0644."""
    parts = []
    t = mode & abi.S_IFMT
    if t:
        parts.append(S_IFMT_NAMES.get(t, f"{t:#o}"))
    for bit, name in ((0o4000, "S_ISUID"), (0o2000, "S_ISGID"), (0o1000, "S_ISVTX")):
        if mode & bit:
            parts.append(name)
    parts.append(octal(mode & 0o777))
    return "|".join(parts)


def makedev(dev: int) -> str:
    major = ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~0xFFF)
    minor = (dev & 0xFF) | ((dev >> 12) & ~0xFF)
    return f"makedev({hexnum(major)}, {hexnum(minor)})"


def hexnum(v: int) -> str:
    """C's %#x: 0x88, but 0."""
    return f"{v:#x}" if v else "0"


def rlim(v: int) -> str:
    if v == abi.RLIM_INFINITY:
        return "RLIM64_INFINITY"
    if v and v % 1024 == 0:
        return f"{v // 1024}*1024"
    return str(v)


# -- argument kinds ------------------------------------------------------------------
# k_<kind>(c, v, p): c is the Call, v the raw 64-bit argument, p the kind's parameter.

def k_int(c, v, p):
    return str(s32(v))


k_fd = k_int   # a file descriptor (for --trace=%desc)


def k_long(c, v, p):
    return str(s64(v))


def k_ulong(c, v, p):
    return str(v)


def k_hex(c, v, p):
    return f"{v:#x}" if v else "0"


def k_ptr(c, v, p):
    return ptr(v)


def k_dirfd(c, v, p):
    v = s32(v)
    return "AT_FDCWD" if v == abi.AT_FDCWD else str(v)


def k_octal(c, v, p):
    return octal(v & 0xFFFFFFFF)


def k_path(c, v, p):
    return path(c, v)


def k_str(c, v, p):
    return cstr(c, v)


def k_buf_in(c, v, p):
    """Bytes the call reads; p is the index of the length argument."""
    return buf(c, v, c.args[int(p)])


def k_buf_out(c, v, p):
    """Bytes the call wrote: as many as it returned (p == "ret") or arg p."""
    n = c.ret if p == "ret" else c.args[int(p)]
    return buf(c, v, n, hexall=c.name == "getrandom")


def k_cstr_out(c, v, p):
    return path(c, v)


def k_open_flags(c, v, p):
    return open_flags(v)


def k_open_mode(c, v, p):
    """openat's mode, shown only when the flags create a file."""
    fl = c.args[int(p)]
    if fl & abi.O_CREAT or fl & abi.O_TMPFILE == abi.O_TMPFILE:
        return octal(v & 0o7777)
    return None


def k_at_flags(c, v, p):
    return flags(v & 0xFFFFFFFF, AT_FLAG_NAMES_EACCESS if p == "eaccess" else AT_FLAG_NAMES)


def k_access_mode(c, v, p):
    return flags(v & 0xFFFFFFFF, ACCESS_MODES, zero="F_OK")


def k_prot(c, v, p):
    return flags(v & 0xFFFFFFFF, PROT_FLAGS, zero="PROT_NONE")


FLOCK_OPS = _table("LOCK_SH", "LOCK_EX", "LOCK_NB", "LOCK_UN")
FALLOC_FLAGS = _table("FALLOC_FL_KEEP_SIZE", "FALLOC_FL_PUNCH_HOLE", "FALLOC_FL_COLLAPSE_RANGE",
                      "FALLOC_FL_ZERO_RANGE", "FALLOC_FL_INSERT_RANGE", "FALLOC_FL_UNSHARE_RANGE")


def k_flock_op(c, v, p):
    return flags(v & 0xFFFFFFFF, FLOCK_OPS)


def k_falloc_mode(c, v, p):
    return flags(v & 0xFFFFFFFF, FALLOC_FLAGS)


def k_map_flags(c, v, p):
    v &= 0xFFFFFFFF
    t = MAP_TYPES.get(v & abi.MAP_TYPE)
    rest = flags(v & ~abi.MAP_TYPE if t else v, MAP_FLAGS, zero="")
    return "|".join(x for x in (t, rest) if x) or "0"


def k_mremap_flags(c, v, p):
    return flags(v & 0xFFFFFFFF, MREMAP_FLAGS)


def k_mremap_new(c, v, p):
    return ptr(v) if c.args[3] & abi.MREMAP_FIXED else None


def k_madvise(c, v, p):
    return xlat(s32(v), MADVISE, f"{s32(v)} /* MADV_??? */")


def k_whence(c, v, p):
    return xlat(s32(v), SEEK, f"{s32(v)} /* SEEK_??? */")


def k_clock(c, v, p):
    return xlat(s32(v), CLOCKS, str(s32(v)))


def k_timer_flags(c, v, p):
    return flags(v & 0xFFFFFFFF, [(abi.TIMER_ABSTIME, "TIMER_ABSTIME")])


def k_signo(c, v, p):
    v = s32(v)
    return signame(v) if 0 < v <= abi.NSIG else str(v)


def k_sighow(c, v, p):
    return xlat(s32(v), SIGPROCMASK_HOW, f"{v:#x} /* SIG_??? */")


def k_rlimit_res(c, v, p):
    return xlat(s32(v), RLIMITS, f"{v:#x} /* RLIMIT_??? */")


def k_arch_prctl_code(c, v, p):
    return xlat(s32(v), ARCH_PRCTL, f"{v:#x} /* ARCH_??? */")


def k_arch_prctl_addr(c, v, p):
    if c.args[0] in (abi.ARCH_GET_FS, abi.ARCH_GET_GS) and c.ret == 0:
        try:
            return f"[{c.task.mm.read_u64(v):#x}]"
        except SyscallError:
            pass
    return ptr(v)


def k_grnd(c, v, p):
    return flags(v & 0xFFFFFFFF, GRND_FLAGS)


def k_cloexec(c, v, p):
    return flags(v & 0xFFFFFFFF, [(abi.O_CLOEXEC, "O_CLOEXEC"), (abi.O_NONBLOCK, "O_NONBLOCK"),
                                  (abi.O_DIRECT, "O_DIRECT")])


def k_fcntl_cmd(c, v, p):
    return xlat(s32(v), FCNTL_CMDS, f"{v:#x} /* F_??? */")


def k_fcntl_arg(c, v, p):
    cmd = s32(c.args[1])
    if cmd in (abi.F_GETFD, abi.F_GETFL, abi.F_GETOWN, abi.F_GETPIPE_SZ, abi.F_GET_SEALS):
        return None
    if cmd == abi.F_SETFD:
        return flags(v & 0xFFFFFFFF, [(abi.FD_CLOEXEC, "FD_CLOEXEC")])
    if cmd == abi.F_SETFL:
        return open_flags(v)
    if cmd in (abi.F_DUPFD, abi.F_DUPFD_CLOEXEC, abi.F_SETOWN, abi.F_SETPIPE_SZ):
        return str(s32(v))
    return ptr(v)


def k_ioctl_cmd(c, v, p):
    v &= 0xFFFFFFFF
    return xlat(v, IOCTLS, f"{v:#x}")


def k_ioctl_arg(c, v, p):
    req = c.args[1] & 0xFFFFFFFF
    mm = c.task.mm
    try:
        if req in (abi.FIONBIO, abi.FIOASYNC) or (req in (abi.FIONREAD, abi.TIOCGPGRP, abi.TIOCGPTN)
                                                 and not c.failed):
            return f"[{s32(mm.read_u32(v))}]"
        if req in (abi.FIOCLEX, abi.FIONCLEX):
            return None
        if c.failed:
            return ptr(v)
        if req in (abi.TIOCGWINSZ, abi.TIOCSWINSZ):
            row, col, xp, yp = abi.WINSIZE.unpack(mm.read(v, abi.WINSIZE.size))
            return f"{{ws_row={row}, ws_col={col}, ws_xpixel={xp}, ws_ypixel={yp}}}"
        if req in (abi.TCGETS, abi.TCSETS, abi.TCSETSW, abi.TCSETSF):
            return termios(mm.read(v, 36))
    except SyscallError:
        pass
    return ptr(v)


BAUDS = ["B0", "B50", "B75", "B110", "B134", "B150", "B200", "B300", "B600", "B1200", "B1800", "B2400",
         "B4800", "B9600", "B19200", "B38400"]
BAUDS_HIGH = ["BOTHER", "B57600", "B115200", "B230400", "B460800", "B500000", "B576000", "B921600",
              "B1000000", "B1152000", "B1500000", "B2000000", "B2500000", "B3000000", "B3500000", "B4000000"]


def _bits(names: str) -> list[tuple[int, str]]:
    """'A B C' -> [(1, 'A'), (2, 'B'), (4, 'C')]; '-' skips a bit."""
    return [(1 << i, n) for i, n in enumerate(names.split()) if n != "-"]


# Linux's termios bits (asm-generic/termbits.h); printed in strace's order.
TERM_IFLAGS = _bits("IGNBRK BRKINT IGNPAR PARMRK INPCK ISTRIP INLCR IGNCR ICRNL IUCLC IXON IXANY IXOFF "
                    "IMAXBEL IUTF8")
TERM_OFLAGS = _bits("OPOST OLCUC ONLCR OCRNL ONOCR ONLRET OFILL OFDEL")
TERM_CFLAGS = [(0o100, "CSTOPB"), (0o200, "CREAD"), (0o400, "PARENB"), (0o1000, "PARODD"),
               (0o2000, "HUPCL"), (0o4000, "CLOCAL"), (0o10000000000, "CMSPAR"), (0o20000000000, "CRTSCTS")]
_LFLAG_BITS = dict((n, b) for b, n in _bits("ISIG ICANON XCASE ECHO ECHOE ECHOK ECHONL NOFLSH TOSTOP ECHOCTL "
                                            "ECHOPRT ECHOKE FLUSHO - PENDIN IEXTEN EXTPROC"))
TERM_LFLAGS = [(_LFLAG_BITS[n], n) for n in ("ISIG ICANON XCASE ECHO ECHOE ECHOK ECHONL NOFLSH IEXTEN ECHOCTL "
                                             "ECHOPRT ECHOKE FLUSHO PENDIN TOSTOP EXTPROC").split()]
# (mask, shift, names) of the delay fields in c_oflag
TERM_ODELAYS = [(0o400, 8, ("NL0", "NL1")), (0o3000, 9, ("CR0", "CR1", "CR2", "CR3")),
                (0o14000, 11, ("TAB0", "TAB1", "TAB2", "TAB3")), (0o20000, 13, ("BS0", "BS1")),
                (0o40000, 14, ("VT0", "VT1")), (0o100000, 15, ("FF0", "FF1"))]


def _baud(v: int) -> str:
    return BAUDS[v & 0o17] if not v & 0o10000 else BAUDS_HIGH[v & 0o17]


def termios(raw: bytes) -> str:
    """struct termios as strace prints it, without c_line and c_cc."""
    iflag, oflag, cflag, lflag = struct.unpack_from("<4I", raw)
    odelay = [names[(oflag & mask) >> shift] for mask, shift, names in TERM_ODELAYS]
    rest = flags(oflag & ~sum(m for m, _, _ in TERM_ODELAYS), TERM_OFLAGS, zero="")
    o = "|".join(odelay + ([rest] if rest else []))
    c = [_baud(cflag & 0o10017), ("CS5", "CS6", "CS7", "CS8")[(cflag >> 4) & 3]]
    if cflag >> 16 & 0o10017:
        c.append(_baud(cflag >> 16 & 0o10017) + "<<IBSHIFT")
    rest = flags(cflag & ~(0o10017 | 0o60 | (0o10017 << 16)), TERM_CFLAGS, zero="")
    if rest:
        c.append(rest)
    return (f"{{c_iflag={flags(iflag, TERM_IFLAGS)}, c_oflag={o}, c_cflag={'|'.join(c)}, "
            f"c_lflag={flags(lflag, TERM_LFLAGS)}, ...}}")


def k_stat_out(c, v, p):
    try:
        st = abi.STAT.unpack(c.task.mm.read(v, abi.STAT.size))
    except SyscallError:
        return ptr(v)
    mode, rdev, size = st[3], st[7], st[8]
    t = mode & abi.S_IFMT
    extra = f"st_rdev={makedev(rdev)}" if t in (abi.S_IFCHR, abi.S_IFBLK) else f"st_size={size}"
    return f"{{st_mode={mode_t(mode)}, {extra}, ...}}"


def k_statx_flags(c, v, p):
    v &= 0xFFFFFFFF
    sync = STATX_SYNC[v & abi.AT_STATX_SYNC_TYPE]
    rest = flags(v & ~abi.AT_STATX_SYNC_TYPE, AT_FLAG_NAMES, zero="")
    return sync + ("|" + rest if rest else "")


def k_statx_mask(c, v, p):
    return flags(v & 0xFFFFFFFF, STATX_MASKS)


def k_statx_out(c, v, p):
    try:
        sx = abi.STATX.unpack(c.task.mm.read(v, abi.STATX.size))
    except SyscallError:
        return ptr(v)
    mask, attrs, mode, size = sx[0], sx[2], sx[6], sx[9]
    return (f"{{stx_mask={flags(mask, STATX_MASKS)}, stx_attributes={attrs:#x}, "
            f"stx_mode={mode_t(mode)}, stx_size={size}, ...}}").replace("stx_attributes=0x0,", "stx_attributes=0,")


def timespec(c, v, usec: bool = False) -> str:
    if v == 0:
        return "NULL"
    try:
        sec, frac = abi.TIMESPEC.unpack(c.task.mm.read(v, abi.TIMESPEC.size))
    except SyscallError:
        return ptr(v)
    return f"{{tv_sec={sec}, {'tv_usec' if usec else 'tv_nsec'}={frac}}}"


def k_timespec(c, v, p):
    return timespec(c, v)


def k_timeval(c, v, p):
    return timespec(c, v, usec=True)


def k_rlimit(c, v, p):
    if v == 0:
        return "NULL"
    try:
        cur, mx = abi.RLIMIT.unpack(c.task.mm.read(v, abi.RLIMIT.size))
    except SyscallError:
        return ptr(v)
    inf = "RLIM64_INFINITY" if c.name == "prlimit64" else "RLIM_INFINITY"
    return f"{{rlim_cur={rlim(cur).replace('RLIM64_INFINITY', inf)}, rlim_max={rlim(mx).replace('RLIM64_INFINITY', inf)}}}"


def k_sigset(c, v, p):
    """A sigset_t whose size is argument p."""
    if v == 0:
        return "NULL"
    size = c.args[int(p)] if p else 8
    if size == 0 or size > 128 or size % 4:
        return ptr(v)
    try:
        raw = c.task.mm.read(v, min(size, 8))
    except SyscallError:
        return ptr(v)
    return sigset(int.from_bytes(raw, "little"), 8 * len(raw))


def k_sigaction(c, v, p):
    if v == 0:
        return "NULL"
    try:
        handler, fl, restorer, mask = abi.SIGACTION.unpack(c.task.mm.read(v, abi.SIGACTION.size))
    except SyscallError:
        return ptr(v)
    h = {abi.SIG_DFL: "SIG_DFL", abi.SIG_IGN: "SIG_IGN"}.get(handler, f"{handler:#x}")
    s = f"{{sa_handler={h}, sa_mask={sigset(mask)}, sa_flags={flags(fl & 0xFFFFFFFF, SA_FLAGS)}"
    if fl & abi.SA_RESTORER:
        s += f", sa_restorer={ptr(restorer)}"
    return s + "}"


def k_stack_t(c, v, p):
    if v == 0:
        return "NULL"
    try:
        sp, fl, size = abi.STACK_T.unpack(c.task.mm.read(v, abi.STACK_T.size))
    except SyscallError:
        return ptr(v)
    return f"{{ss_sp={ptr(sp)}, ss_flags={flags(fl & 0xFFFFFFFF, SS_FLAGS)}, ss_size={size}}}"


def k_uname(c, v, p):
    try:
        raw = c.task.mm.read(v, 65 * 2)
    except SyscallError:
        return ptr(v)
    sysname, node = raw[:65].split(b"\0")[0], raw[65:].split(b"\0")[0]
    return f"{{sysname={quote(sysname)}, nodename={quote(node)}, ...}}"


def k_sysinfo(c, v, p):
    try:
        f = abi.SYSINFO.unpack(c.task.mm.read(v, abi.SYSINFO.size))
    except SyscallError:
        return ptr(v)
    return (f"{{uptime={f[0]}, loads=[{f[1]}, {f[2]}, {f[3]}], totalram={f[4]}, freeram={f[5]}, "
            f"sharedram={f[6]}, bufferram={f[7]}, totalswap={f[8]}, freeswap={f[9]}, procs={f[10]}, "
            f"totalhigh={f[11]}, freehigh={f[12]}, mem_unit={f[13]}}}")


def k_iovec(c, v, p):
    """An iovec array with count in arg p; for reads, the bytes returned spread over it."""
    n = c.args[int(p)]
    if n == 0 or n > 1024:
        return ptr(v) if n else "[]"
    try:
        raw = c.task.mm.read(v, abi.IOVEC.size * min(n, MAX_ARRAY))
    except SyscallError:
        return ptr(v)
    reading = c.name in ("readv", "preadv", "preadv2")
    left = c.ret if reading else None
    items = []
    for i in range(min(n, MAX_ARRAY)):
        base, ln = abi.IOVEC.unpack_from(raw, abi.IOVEC.size * i)
        show = ln if left is None else max(0, min(ln, left))
        if left is not None:
            left -= show
        items.append(f"{{iov_base={buf(c, base, show)}, iov_len={ln}}}")
    return "[" + ", ".join(items) + (", ..." if n > MAX_ARRAY else "") + "]"


def k_dirents(c, v, p):
    """getdents64's buffer: its address and how many entries the call returned."""
    n, off = 0, 0
    try:
        raw = c.task.mm.read(v, c.ret)
        while off + abi.DIRENT64.size <= len(raw):
            reclen = abi.DIRENT64.unpack_from(raw, off)[2]
            if reclen == 0:
                break
            off += reclen
            n += 1
    except SyscallError:
        return ptr(v)
    return f"{ptr(v)} /* {n} entries */"


def k_int_pair(c, v, p):
    try:
        a, b = struct.unpack("<ii", c.task.mm.read(v, 8))
    except SyscallError:
        return ptr(v)
    return f"[{a}, {b}]"


def k_cpuset(c, v, p):
    try:
        raw = c.task.mm.read(v, c.ret)
    except SyscallError:
        return ptr(v)
    bits = int.from_bytes(raw, "little")
    return "[" + " ".join(str(i) for i in range(8 * len(raw)) if bits >> i & 1) + "]"


def k_futex_op(c, v, p):
    v &= 0xFFFFFFFF
    cmd = v & abi.FUTEX_CMD_MASK
    s = FUTEX_OPS.get(cmd, f"{cmd:#x}")
    if v & abi.FUTEX_PRIVATE_FLAG:
        s += "_PRIVATE"
    if v & abi.FUTEX_CLOCK_REALTIME:
        s += "|FUTEX_CLOCK_REALTIME"
    return s


def _futex_cmd(c) -> int:
    return c.args[1] & abi.FUTEX_CMD_MASK


# How futex's arguments 3 to 6 print for each operation (strace's choice):
# u: val as unsigned, t: timeout, n: val2 as a count, a: uaddr2, v: val3, b: bitset, -: left out.
FUTEX_ARGS = {abi.FUTEX_WAIT: "ut--", abi.FUTEX_WAKE: "u---", abi.FUTEX_FD: "u---", abi.FUTEX_REQUEUE: "una-",
              abi.FUTEX_CMP_REQUEUE: "unav", abi.FUTEX_WAKE_OP: "unav", abi.FUTEX_LOCK_PI: "-t--",
              abi.FUTEX_UNLOCK_PI: "----", abi.FUTEX_TRYLOCK_PI: "----", abi.FUTEX_WAIT_BITSET: "ut-b",
              abi.FUTEX_WAKE_BITSET: "u--b", abi.FUTEX_WAIT_REQUEUE_PI: "uta-", abi.FUTEX_CMP_REQUEUE_PI: "unav",
              abi.FUTEX_LOCK_PI2: "-t--"}


def k_futex_arg(c, v, p):
    """futex's third to sixth arguments, as far as the operation uses them."""
    i = int(p)
    use = FUTEX_ARGS.get(_futex_cmd(c))
    if use is None:
        return f"{v:#x}"
    kind = use[i - 2]
    if kind == "-":
        return None
    if kind in "un":
        return str(v & 0xFFFFFFFF)
    if kind == "t":
        return timespec(c, v)
    if kind == "v":
        return str(s32(v)) if _futex_cmd(c) != abi.FUTEX_WAKE_OP else f"{v & 0xFFFFFFFF:#x}"
    if kind == "b":
        v &= 0xFFFFFFFF
        return "FUTEX_BITSET_MATCH_ANY" if v == abi.FUTEX_BITSET_MATCH_ANY else f"{v:#x}"
    return ptr(v)


def k_clone_flags(c, v, p):
    sig = v & 0xFF
    rest = flags(v & ~0xFF, CLONE_FLAGS, zero="")
    parts = [x for x in (rest, signame(sig) if sig else "") if x]
    return "|".join(parts) or "0"


def k_clone3(c, v, p):
    try:
        f = abi.CLONE_ARGS.unpack(c.task.mm.read(v, abi.CLONE_ARGS.size))
    except SyscallError:
        return ptr(v)
    fl, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls = f[:8]
    s = [f"flags={flags(fl, CLONE_FLAGS)}"]
    if fl & abi.CLONE_PIDFD:
        s.append(f"pidfd={ptr(pidfd)}")
    if fl & (abi.CLONE_CHILD_SETTID | abi.CLONE_CHILD_CLEARTID):
        s.append(f"child_tid={ptr(child_tid)}")
    if fl & abi.CLONE_PARENT_SETTID:
        s.append(f"parent_tid={ptr(parent_tid)}")
    s.append(f"exit_signal={signame(exit_signal) if exit_signal else 0}")
    s.append(f"stack={ptr(stack)}")
    s.append(f"stack_size={stack_size:#x}")
    if fl & abi.CLONE_SETTLS:
        s.append(f"tls={ptr(tls)}")
    out = "{" + ", ".join(s) + "}"
    if fl & abi.CLONE_PARENT_SETTID and c.ret is not None and not c.failed and c.ret > 0:
        try:
            out += f" => {{parent_tid=[{s32(c.task.mm.read_u32(parent_tid))}]}}"
        except SyscallError:
            pass
    return out


def k_strv(c, v, p):
    """A NULL-terminated array of strings (execve's argv)."""
    if v == 0:
        return "NULL"
    items = []
    try:
        for i in range(MAX_ARRAY + 1):
            a = c.task.mm.read_u64(v + 8 * i)
            if a == 0:
                break
            if i == MAX_ARRAY:
                items.append("...")
                break
            items.append(cstr(c, a))
    except SyscallError:
        return ptr(v)
    return "[" + ", ".join(items) + "]"


def k_envp(c, v, p):
    if v == 0:
        return "NULL"
    n = 0
    try:
        while c.task.mm.read_u64(v + 8 * n):
            n += 1
    except SyscallError:
        return ptr(v)
    return f"{ptr(v)} /* {n} var{'s' if n != 1 else ''} */"


def k_exit_sig(c, v, p):
    return k_signo(c, v, p) if s32(v) else "0"


# -- sockets -----------------------------------------------------------------------

AF_NAMES = _names("AF_UNSPEC", "AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET")
SOCK_TYPES = _names("SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_RDM", "SOCK_SEQPACKET", "SOCK_PACKET")
IPPROTOS = _names("IPPROTO_IP", "IPPROTO_ICMP", "IPPROTO_TCP", "IPPROTO_UDP", "IPPROTO_IPV6", "IPPROTO_ICMPV6",
                  "IPPROTO_RAW")
SOL_NAMES = _names("SOL_SOCKET", "SOL_IP", "SOL_TCP", "SOL_UDP", "SOL_IPV6")
SO_NAMES = _names("SO_DEBUG", "SO_REUSEADDR", "SO_TYPE", "SO_ERROR", "SO_DONTROUTE", "SO_BROADCAST", "SO_SNDBUF",
                  "SO_RCVBUF", "SO_KEEPALIVE", "SO_OOBINLINE", "SO_LINGER", "SO_REUSEPORT", "SO_PASSCRED",
                  "SO_PEERCRED", "SO_RCVLOWAT", "SO_SNDLOWAT", "SO_RCVTIMEO", "SO_SNDTIMEO", "SO_ACCEPTCONN",
                  "SO_PROTOCOL", "SO_DOMAIN")
TCP_NAMES = _names("TCP_NODELAY", "TCP_MAXSEG", "TCP_CORK", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT")
MSG_FLAGS = _table("MSG_OOB", "MSG_PEEK", "MSG_DONTROUTE", "MSG_CTRUNC", "MSG_TRUNC", "MSG_DONTWAIT",
                   "MSG_EOR", "MSG_WAITALL", "MSG_NOSIGNAL", "MSG_MORE", "MSG_CMSG_CLOEXEC")
SOCK_FLAGS = _table("SOCK_CLOEXEC", "SOCK_NONBLOCK")
SHUT = _names("SHUT_RD", "SHUT_WR", "SHUT_RDWR")


def k_af(c, v, p):
    return xlat(s32(v), AF_NAMES, f"{s32(v)} /* AF_??? */")


def k_sock_type(c, v, p):
    v &= 0xFFFFFFFF
    t = SOCK_TYPES.get(v & abi.SOCK_TYPE_MASK, f"{v & abi.SOCK_TYPE_MASK:#x} /* SOCK_??? */")
    rest = flags(v & ~abi.SOCK_TYPE_MASK, SOCK_FLAGS, zero="")
    return t + ("|" + rest if rest else "")


def k_sock_flags(c, v, p):
    return flags(v & 0xFFFFFFFF, SOCK_FLAGS)


def k_sock_proto(c, v, p):
    if s32(c.args[0]) in (abi.AF_INET, abi.AF_INET6):
        return xlat(s32(v), IPPROTOS, str(s32(v)))
    return str(s32(v))


def k_msg_flags(c, v, p):
    return flags(v & 0xFFFFFFFF, MSG_FLAGS)


def k_shut(c, v, p):
    return xlat(s32(v), SHUT, str(s32(v)))


def k_sol(c, v, p):
    return xlat(s32(v), SOL_NAMES, str(s32(v)))


def k_sockopt(c, v, p):
    level = s32(c.args[1])
    names = SO_NAMES if level == abi.SOL_SOCKET else TCP_NAMES if level == abi.SOL_TCP else {}
    return xlat(s32(v), names, str(s32(v)))


def k_sockopt_val(c, v, p):
    """An option value of length arg p (int-sized ones print as [1])."""
    n = c.args[int(p)] if p.isdigit() else None
    if n is None:   # getsockopt: the length is behind a pointer
        try:
            n = c.task.mm.read_u32(c.args[4])
        except SyscallError:
            return ptr(v)
    if n == 4:
        try:
            return f"[{s32(c.task.mm.read_u32(v))}]"
        except SyscallError:
            return ptr(v)
    if n == abi.TIMEVAL.size and c.args[1] == abi.SOL_SOCKET and c.args[2] in (abi.SO_RCVTIMEO, abi.SO_SNDTIMEO):
        try:
            sec, usec = abi.TIMEVAL.unpack(c.task.mm.read(v, abi.TIMEVAL.size))
            return f"{{tv_sec={sec}, tv_usec={usec}}}"
        except SyscallError:
            return ptr(v)
    return buf(c, v, n)


def sockaddr(c: Call, addr: int, n: int) -> str:
    if addr == 0:
        return "NULL"
    try:
        raw = c.task.mm.read(addr, min(n, 128))
    except SyscallError:
        return ptr(addr)
    if len(raw) < 2:
        return "{sa_family=AF_UNSPEC}" if not raw else ptr(addr)
    fam = struct.unpack_from("<H", raw)[0]
    head = f"{{sa_family={AF_NAMES.get(fam, str(fam))}"
    if fam == abi.AF_UNIX:
        p = raw[2:]
        if p[:1] == b"\0" and len(p) > 1:
            return head + f", sun_path=@{quote(p[1:])}}}"
        return head + (f", sun_path={quote(p.split(bytes(1))[0])}}}" if p else "}")
    if fam == abi.AF_INET and len(raw) >= 8:
        port = struct.unpack_from(">H", raw, 2)[0]
        ip = ".".join(str(b) for b in raw[4:8])
        return head + f", sin_port=htons({port}), sin_addr=inet_addr(\"{ip}\")}}"
    if fam == abi.AF_INET6 and len(raw) >= 24:
        import ipaddress
        port, flow = struct.unpack_from(">HI", raw, 2)
        ip6 = ipaddress.IPv6Address(raw[8:24])
        scope = struct.unpack_from("<I", raw, 24)[0] if len(raw) >= 28 else 0
        return head + (f", sin6_port=htons({port}), sin6_flowinfo=htonl({flow}), "
                       f"inet_pton(AF_INET6, \"{ip6}\", &sin6_addr), sin6_scope_id={scope}}}")
    return head + f", sa_data={quote(raw[2:])}}}"


def k_sockaddr(c, v, p):
    """A socket address whose length is argument p."""
    return sockaddr(c, v, c.args[int(p)])


def k_sockaddr_out(c, v, p):
    """A socket address the call fills in; its length is behind the pointer in argument p."""
    lp = c.args[int(p)]
    if v == 0 or lp == 0:
        return ptr(v)
    try:
        n = c.task.mm.read_u32(lp)
    except SyscallError:
        return ptr(v)
    return sockaddr(c, v, n)


def k_socklen_out(c, v, p):
    """[16], or [112 => 16] when the call changed the length."""
    if v == 0:
        return "NULL"
    try:
        after = c.task.mm.read_u32(v)
    except SyscallError:
        return ptr(v)
    before = c.before.get(v) if c.before else None
    return f"[{before} => {after}]" if before is not None and before != after else f"[{after}]"


def k_buf_out_len(c, v, p):
    """recvfrom's buffer: the bytes received (MSG_TRUNC may return more than the buffer held)."""
    return buf(c, v, min(c.ret, c.args[2]))


# -- poll / epoll --------------------------------------------------------------------

POLL_FLAGS = _table("POLLIN", "POLLPRI", "POLLOUT", "POLLERR", "POLLHUP", "POLLNVAL", "POLLRDNORM",
                    "POLLRDBAND", "POLLWRNORM", "POLLWRBAND", "POLLMSG", "POLLRDHUP")
EPOLL_FLAGS = _table("EPOLLIN", "EPOLLPRI", "EPOLLOUT", "EPOLLERR", "EPOLLHUP", "EPOLLRDHUP",
                     "EPOLLEXCLUSIVE", "EPOLLWAKEUP", "EPOLLONESHOT", "EPOLLET")
EPOLL_OPS = _names("EPOLL_CTL_ADD", "EPOLL_CTL_DEL", "EPOLL_CTL_MOD")


def pollfds(c: Call, addr: int, n: int, revents: bool) -> str:
    try:
        raw = c.task.mm.read(addr, abi.POLLFD.size * min(n, MAX_ARRAY))
    except SyscallError:
        return ptr(addr)
    items = []
    for i in range(min(n, MAX_ARRAY)):
        fd, ev, rev = abi.POLLFD.unpack_from(raw, abi.POLLFD.size * i)
        if revents:
            if rev:
                items.append(f"{{fd={fd}, revents={flags(rev & 0xFFFF, POLL_FLAGS)}}}")
        else:
            items.append(f"{{fd={fd}, events={flags(ev & 0xFFFF, POLL_FLAGS)}}}")
    return "[" + ", ".join(items) + (", ..." if n > MAX_ARRAY and not revents else "") + "]"


def k_pollfds(c, v, p):
    return pollfds(c, v, c.args[1], False)


def epoll_event(raw: bytes, off: int) -> str:
    ev, data = abi.EPOLL_EVENT.unpack_from(raw, off)
    return f"{{events={flags(ev, EPOLL_FLAGS)}, data={{u32={data & 0xFFFFFFFF}, u64={data}}}}}"


def k_epoll_op(c, v, p):
    return xlat(s32(v), EPOLL_OPS, str(s32(v)))


def k_epoll_event(c, v, p):
    if v == 0:
        return "NULL"
    try:
        return epoll_event(c.task.mm.read(v, abi.EPOLL_EVENT.size), 0)
    except SyscallError:
        return ptr(v)


def k_epoll_events(c, v, p):
    n = c.ret
    sz = abi.EPOLL_EVENT.size
    try:
        raw = c.task.mm.read(v, sz * min(n, MAX_ARRAY))
    except SyscallError:
        return ptr(v)
    items = [epoll_event(raw, sz * i) for i in range(min(n, MAX_ARRAY))]
    return "[" + ", ".join(items) + (", ..." if n > MAX_ARRAY else "") + "]"


def k_epoll_flags(c, v, p):
    return flags(v & 0xFFFFFFFF, [(abi.EPOLL_CLOEXEC, "EPOLL_CLOEXEC")])


def k_efd_flags(c, v, p):
    return flags(v & 0xFFFFFFFF, [(abi.EFD_SEMAPHORE, "EFD_SEMAPHORE"), (abi.EFD_CLOEXEC, "EFD_CLOEXEC"),
                                  (abi.EFD_NONBLOCK, "EFD_NONBLOCK")])


# -- processes ------------------------------------------------------------------------

WAIT_FLAGS = _table("WNOHANG", "WUNTRACED", "WEXITED", "WCONTINUED", "WNOWAIT")
PRCTL = _ints("PR_")


def k_wait_flags(c, v, p):
    return flags(v & 0xFFFFFFFF, WAIT_FLAGS)


def k_wstatus(c, v, p):
    """wait4's status: [{WIFEXITED(s) && WEXITSTATUS(s) == 0}]."""
    if v == 0:
        return "NULL"
    if c.ret == 0:
        return ptr(v)
    try:
        st = c.task.mm.read_u32(v)
    except SyscallError:
        return ptr(v)
    sig = st & 0x7F
    if sig == 0:
        return f"[{{WIFEXITED(s) && WEXITSTATUS(s) == {st >> 8 & 0xFF}}}]"
    if sig == 0x7F:
        return f"[{{WIFSTOPPED(s) && WSTOPSIG(s) == {signame(st >> 8 & 0xFF)}}}]"
    core = " && WCOREDUMP(s)" if st & 0x80 else ""
    return f"[{{WIFSIGNALED(s) && WTERMSIG(s) == {signame(sig)}{core}}}]"


def k_prctl_op(c, v, p):
    return xlat(s32(v), PRCTL, f"{s32(v)} /* PR_??? */")


def k_prctl_arg(c, v, p):
    op, i = s32(c.args[0]), int(p)
    if op in (abi.PR_SET_NAME, abi.PR_GET_NAME):
        if i != 1:
            return None
        return cstr(c, v) if op == abi.PR_SET_NAME or not c.failed else ptr(v)
    if op in (abi.PR_GET_DUMPABLE, abi.PR_GET_NO_NEW_PRIVS, abi.PR_GET_TIMERSLACK, abi.PR_GET_SECCOMP,
              abi.PR_GET_THP_DISABLE):
        return None
    if op in (abi.PR_SET_DUMPABLE, abi.PR_SET_NO_NEW_PRIVS, abi.PR_SET_TIMERSLACK, abi.PR_CAPBSET_READ,
              abi.PR_SET_CHILD_SUBREAPER, abi.PR_SET_THP_DISABLE):
        return str(v) if i == 1 else None
    if op == abi.PR_SET_PDEATHSIG:
        return (signame(s32(v)) if v else "0") if i == 1 else None
    return f"{v:#x}" if v else "0"


def k_rusage(c, v, p):
    try:
        f = abi.RUSAGE.unpack(c.task.mm.read(v, abi.RUSAGE.size))
    except SyscallError:
        return ptr(v)
    return (f"{{ru_utime={{tv_sec={f[0]}, tv_usec={f[1]}}}, ru_stime={{tv_sec={f[2]}, tv_usec={f[3]}}}, "
            "...}")


def k_rusage_who(c, v, p):
    return RUSAGE_WHO.get(s32(v), str(s32(v)))


RUSAGE_WHO = _names("RUSAGE_SELF", "RUSAGE_CHILDREN", "RUSAGE_THREAD")


def k_clone(c, v, p):
    """clone(2) on x86-64: flags, stack, parent_tid, child_tid, tls, printed by name as strace does."""
    fl, stack, parent_tid, child_tid, tls = c.args[:5]
    s = [f"child_stack={ptr(stack)}", f"flags={k_clone_flags(c, fl, '')}"]
    if fl & abi.CLONE_PARENT_SETTID:
        shown = ptr(parent_tid)
        if c.ret is not None and not c.failed:
            try:
                shown = f"[{s32(c.task.mm.read_u32(parent_tid))}]"
            except SyscallError:
                pass
        s.append(f"parent_tid={shown}")
    if fl & (abi.CLONE_CHILD_SETTID | abi.CLONE_CHILD_CLEARTID):
        s.append(f"child_tidptr={ptr(child_tid)}")
    if fl & abi.CLONE_SETTLS:
        s.append(f"tls={ptr(tls)}")
    return ", ".join(s)


def k_sigreturn(c, v, p):
    """rt_sigreturn's {mask=[...]}: the mask it restored."""
    mask = getattr(c.task, "sigmask", None)
    return None if mask is None else f"{{mask={sigset(mask)}}}"


def k_time_out(c, v, p):
    """time(2)'s pointer: [1795382668 /* 2026-11-22T21:24:28+0000 */]."""
    if v == 0:
        return "NULL"
    try:
        t = s64(c.task.mm.read_u64(v))
    except SyscallError:
        return ptr(v)
    return f"[{t} /* {_date(t)} */]"


def _date(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def k_tms(c, v, p):
    if v == 0:
        return "NULL"
    try:
        f = abi.TMS.unpack(c.task.mm.read(v, abi.TMS.size))
    except SyscallError:
        return ptr(v)
    return f"{{tms_utime={f[0]}, tms_stime={f[1]}, tms_cutime={f[2]}, tms_cstime={f[3]}}}"


def k_ids_out(c, v, p):
    """getresuid's [0]."""
    try:
        return f"[{c.task.mm.read_u32(v)}]"
    except SyscallError:
        return ptr(v)


def k_groups(c, v, p):
    n = c.ret if c.name == "getgroups" else c.args[0]
    if c.name == "getgroups" and c.args[0] == 0:
        return ptr(v)
    try:
        raw = c.task.mm.read(v, 4 * min(n, MAX_ARRAY))
    except SyscallError:
        return ptr(v)
    return "[" + ", ".join(str(x) for x in struct.unpack(f"<{len(raw) // 4}I", raw)) + "]"


def k_cpuset_in(c, v, p):
    try:
        raw = c.task.mm.read(v, min(c.args[1], 128))
    except SyscallError:
        return ptr(v)
    bits = int.from_bytes(raw, "little")
    return "[" + " ".join(str(i) for i in range(8 * len(raw)) if bits >> i & 1) + "]"


def k_long_out(c, v, p):
    """[value] of a long the call stored (get_robust_list)."""
    try:
        return f"[{c.task.mm.read_u64(v):#x}]" if p == "hex" else f"[{c.task.mm.read_u64(v)}]"
    except SyscallError:
        return ptr(v)


def k_personality(c, v, p):
    v &= 0xFFFFFFFF
    return "PER_LINUX" if v == 0 else "0xffffffff" if v == 0xFFFFFFFF else f"{v:#x}"


def k_fd_close_range_max(c, v, p):
    v &= 0xFFFFFFFF
    return "~0" if v == 0xFFFFFFFF else str(v)


def k_close_range_flags(c, v, p):
    return flags(v & 0xFFFFFFFF, _table("CLOSE_RANGE_UNSHARE", "CLOSE_RANGE_CLOEXEC"))


def k_mfd_flags(c, v, p):
    return flags(v & 0xFFFFFFFF, _table("MFD_CLOEXEC", "MFD_ALLOW_SEALING", "MFD_HUGETLB"))


def k_off_ptr(c, v, p):
    if v == 0:
        return "NULL"
    try:
        return f"[{s64(c.task.mm.read_u64(v))}]"
    except SyscallError:
        return ptr(v)


UTIME_SPECIAL = _names("UTIME_NOW", "UTIME_OMIT")


def k_utimes(c, v, p):
    if v == 0:
        return "NULL"
    try:
        a = abi.TIMESPEC.unpack(c.task.mm.read(v, abi.TIMESPEC.size))
        b = abi.TIMESPEC.unpack(c.task.mm.read(v + abi.TIMESPEC.size, abi.TIMESPEC.size))
    except SyscallError:
        return ptr(v)

    def one(t):
        return UTIME_SPECIAL.get(t[1], f"{{tv_sec={t[0]}, tv_nsec={t[1]}}}")
    return f"[{one(a)}, {one(b)}]"


KINDS = {name[2:]: fn for name, fn in globals().items() if name.startswith("k_")}

# Kinds that describe memory the kernel fills in: printed after the call.
OUT_KINDS = frozenset({"buf_out", "cstr_out", "stat_out", "statx_out", "dirents", "int_pair", "cpuset",
                       "uname", "sysinfo", "arch_prctl_addr", "ioctl_arg", "clone3", "sockaddr_out",
                       "socklen_out", "buf_out_len", "epoll_events", "wstatus", "rusage", "tms", "ids_out",
                       "groups", "long_out", "prctl_arg", "sockopt_val_out", "clone", "sigreturn", "time_out"})
# Out kinds that take their own look at a failed call (the others print the address).
OUT_ON_ERROR = frozenset({"ioctl_arg", "arch_prctl_addr", "clone3", "prctl_arg", "clone"})
# A timespec / rlimit / sigaction / sigset / stack_t written by the kernel: "<kind>_out".

# Implemented calls that have no spec yet: strace decodes them, umiak prints their six
# raw arguments in hex. Listed so that a newly implemented call is a decision (write
# its spec, or add it here), checked by tests/unit/test_syscall_table.py.
UNDECODED = frozenset({
    "creat", "mknod", "mknodat", "lchown", "getdents", "openat2", "readahead",
    "preadv", "pwritev", "preadv2", "pwritev2", "vmsplice", "pselect6", "epoll_pwait2",
    "setxattr", "lsetxattr", "fsetxattr", "listxattr", "llistxattr", "flistxattr",
    "removexattr", "lremovexattr", "fremovexattr",
    "getitimer", "setitimer", "timer_create", "timer_settime", "timer_gettime",
    "timer_getoverrun", "timer_delete", "timerfd_create", "timerfd_settime", "timerfd_gettime",
    "signalfd", "signalfd4",
    "sched_setparam", "sched_getparam", "sched_setscheduler", "sched_rr_get_interval",
    "capget", "capset", "rt_tgsigqueueinfo", "ioprio_get", "ioprio_set",
    "sched_getattr", "sched_setattr", "adjtimex", "clock_adjtime", "process_vm_readv", "process_vm_writev",
    "kcmp", "pkey_alloc", "pkey_free", "pkey_mprotect", "mbind", "set_mempolicy", "get_mempolicy",
})

SPECS: dict[str, tuple[str, ...]] = {
    "read": ("fd", "buf_out:ret", "ulong"),
    "write": ("fd", "buf_in:2", "ulong"),
    "open": ("path", "open_flags", "open_mode:1"),
    "close": ("fd",),
    "stat": ("path", "stat_out"),
    "fstat": ("fd", "stat_out"),
    "lstat": ("path", "stat_out"),
    "lseek": ("fd", "long", "whence"),
    "mmap": ("ptr", "ulong", "prot", "map_flags", "fd", "hex"),
    "mprotect": ("ptr", "ulong", "prot"),
    "munmap": ("ptr", "ulong"),
    "brk": ("ptr",),
    "rt_sigaction": ("signo", "sigaction", "sigaction_out", "ulong"),
    "rt_sigprocmask": ("sighow", "sigset:3", "sigset_out:3", "ulong"),
    "rt_sigreturn": ("sigreturn",),
    "ioctl": ("fd", "ioctl_cmd", "ioctl_arg"),
    "pread64": ("fd", "buf_out:ret", "ulong", "long"),
    "pwrite64": ("fd", "buf_in:2", "ulong", "long"),
    "readv": ("fd", "iovec_out:2", "int"),
    "writev": ("fd", "iovec:2", "int"),
    "access": ("path", "access_mode"),
    "pipe": ("int_pair",),
    "select": ("int", "ptr", "ptr", "ptr", "ptr"),
    "sched_yield": (),
    "mremap": ("ptr", "ulong", "ulong", "mremap_flags", "mremap_new"),
    "msync": ("ptr", "ulong", "hex"),
    "mincore": ("ptr", "ulong", "ptr"),
    "madvise": ("ptr", "ulong", "madvise"),
    "dup": ("fd",),
    "dup2": ("fd", "fd"),
    "pause": (),
    "restart_syscall": (),
    "nanosleep": ("timespec", "timespec_out"),
    "getpid": (),
    "exit": ("int",),
    "wait4": ("int", "wstatus", "wait_flags", "ptr"),
    "kill": ("int", "exit_sig"),
    "uname": ("uname",),
    "fcntl": ("fd", "fcntl_cmd", "fcntl_arg"),
    "flock": ("fd", "flock_op"),
    "fsync": ("fd",),
    "fdatasync": ("fd",),
    "truncate": ("path", "long"),
    "ftruncate": ("fd", "long"),
    "getdents64": ("fd", "dirents", "ulong"),
    "getcwd": ("cstr_out", "ulong"),
    "chdir": ("path",),
    "fchdir": ("fd",),
    "rename": ("path", "path"),
    "mkdir": ("path", "octal"),
    "rmdir": ("path",),
    "link": ("path", "path"),
    "unlink": ("path",),
    "symlink": ("path", "path"),
    "readlink": ("path", "buf_out:ret", "ulong"),
    "chmod": ("path", "octal"),
    "fchmod": ("fd", "octal"),
    "chown": ("path", "int", "int"),
    "fchown": ("fd", "int", "int"),
    "umask": ("octal",),
    "gettimeofday": ("timeval_out", "ptr"),
    "getrlimit": ("rlimit_res", "rlimit_out"),
    "sysinfo": ("sysinfo",),
    "getuid": (), "getgid": (), "geteuid": (), "getegid": (), "getppid": (), "getpgrp": (),
    "setsid": (), "gettid": (),
    "setuid": ("int",), "setgid": ("int",), "setpgid": ("int", "int"), "getpgid": ("int",),
    "setreuid": ("int", "int"), "setregid": ("int", "int"), "setresuid": ("int", "int", "int"),
    "setresgid": ("int", "int", "int"), "setfsuid": ("int",), "setfsgid": ("int",),
    "clock_settime": ("clock", "timespec"), "settimeofday": ("timeval", "ptr"),
    "setdomainname": ("buf_in:1", "ulong"),
    "tee": ("fd", "fd", "ulong", "int"),
    "getsid": ("int",),
    "sigaltstack": ("stack_t", "stack_t_out"),
    "arch_prctl": ("arch_prctl_code", "arch_prctl_addr"),
    "setrlimit": ("rlimit_res", "rlimit"),
    "sched_getaffinity": ("int", "ulong", "cpuset"),
    "set_tid_address": ("ptr",),
    "time": ("time_out",),
    "futex": ("ptr", "futex_op", "futex_arg:2", "futex_arg:3", "futex_arg:4", "futex_arg:5"),
    "clock_gettime": ("clock", "timespec_out"),
    "clock_getres": ("clock", "timespec_out"),
    "clock_nanosleep": ("clock", "timer_flags", "timespec", "timespec_out"),
    "exit_group": ("int",),
    "tgkill": ("int", "int", "exit_sig"),
    "tkill": ("int", "exit_sig"),
    "openat": ("dirfd", "path", "open_flags", "open_mode:2"),
    "mkdirat": ("dirfd", "path", "octal"),
    "newfstatat": ("dirfd", "path", "stat_out", "at_flags"),
    "unlinkat": ("dirfd", "path", "at_flags"),
    "renameat": ("dirfd", "path", "dirfd", "path"),
    "renameat2": ("dirfd", "path", "dirfd", "path", "hex"),
    "readlinkat": ("dirfd", "path", "buf_out:ret", "ulong"),
    "fchmodat": ("dirfd", "path", "octal"),
    "faccessat": ("dirfd", "path", "access_mode"),
    "faccessat2": ("dirfd", "path", "access_mode", "at_flags:eaccess"),
    "set_robust_list": ("ptr", "ulong"),
    "dup3": ("fd", "fd", "cloexec"),
    "pipe2": ("int_pair", "cloexec"),
    "prlimit64": ("int", "rlimit_res", "rlimit", "rlimit_out"),
    "getrandom": ("buf_out:ret", "ulong", "grnd"),
    "statx": ("dirfd", "path", "statx_flags", "statx_mask", "statx_out"),
    "rseq": ("ptr", "hex", "int", "hex"),
    "clone": ("clone",),
    "clone3": ("clone3", "ulong"),
    "execve": ("path", "strv", "envp"),
    "getpriority": ("int", "int"),
    "sched_getscheduler": ("int",),
    "fork": (), "vfork": (),
    "getrusage": ("rusage_who", "rusage"),
    "times": ("tms",),
    "getgroups": ("int", "groups"),
    "setgroups": ("int", "groups"),
    "getresuid": ("ids_out", "ids_out", "ids_out"),
    "getresgid": ("ids_out", "ids_out", "ids_out"),
    "rt_sigpending": ("sigset_out:1", "ulong"),
    "rt_sigtimedwait": ("sigset:3", "ptr", "timespec", "ulong"),
    "rt_sigsuspend": ("sigset:1", "ulong"),
    "rt_sigqueueinfo": ("int", "signo", "ptr"),
    "personality": ("personality",),
    "setpriority": ("int", "int", "int"),
    "mlock": ("ptr", "ulong"), "munlock": ("ptr", "ulong"), "mlock2": ("ptr", "ulong", "hex"),
    "mlockall": ("hex",), "munlockall": (),
    "prctl": ("prctl_op", "prctl_arg:1", "prctl_arg:2", "prctl_arg:3", "prctl_arg:4"),
    "sched_setaffinity": ("int", "ulong", "cpuset_in"),
    "get_robust_list": ("int", "long_out:hex", "long_out"),
    "socket": ("af", "sock_type", "sock_proto"),
    "socketpair": ("af", "sock_type", "sock_proto", "int_pair"),
    "connect": ("fd", "sockaddr:2", "ulong"),
    "bind": ("fd", "sockaddr:2", "ulong"),
    "listen": ("fd", "int"),
    "accept": ("fd", "sockaddr_out:2", "socklen_out"),
    "accept4": ("fd", "sockaddr_out:2", "socklen_out", "sock_flags"),
    "getsockname": ("fd", "sockaddr_out:2", "socklen_out"),
    "getpeername": ("fd", "sockaddr_out:2", "socklen_out"),
    "sendto": ("fd", "buf_in:2", "ulong", "msg_flags", "sockaddr:5", "ulong"),
    "recvfrom": ("fd", "buf_out_len", "ulong", "msg_flags", "sockaddr_out:5", "socklen_out"),
    "sendmsg": ("fd", "ptr", "msg_flags"),
    "sendmmsg": ("fd", "ptr", "int", "msg_flags"),
    "recvmmsg": ("fd", "ptr", "int", "msg_flags", "timespec"),
    "recvmsg": ("fd", "ptr", "msg_flags"),
    "shutdown": ("fd", "shut"),
    "setsockopt": ("fd", "sol", "sockopt", "sockopt_val:4", "ulong"),
    "getsockopt": ("fd", "sol", "sockopt", "sockopt_val_out", "socklen_out"),
    "poll": ("pollfds", "ulong", "int"),
    "ppoll": ("pollfds", "ulong", "timespec", "sigset:4", "ulong"),
    "epoll_create": ("int",),
    "epoll_create1": ("epoll_flags",),
    "epoll_ctl": ("fd", "epoll_op", "fd", "epoll_event"),
    "epoll_wait": ("fd", "epoll_events", "int", "int"),
    "epoll_pwait": ("fd", "epoll_events", "int", "int", "sigset:5", "ulong"),
    "eventfd": ("ulong",),
    "eventfd2": ("ulong", "efd_flags"),
    "memfd_create": ("str", "mfd_flags"),
    "close_range": ("fd", "fd_close_range_max", "close_range_flags"),
    "sendfile": ("fd", "fd", "off_ptr", "ulong"),
    "utimensat": ("dirfd", "path", "utimes", "at_flags"),
    "fchownat": ("dirfd", "path", "int", "int", "at_flags"),
    "linkat": ("dirfd", "path", "dirfd", "path", "at_flags"),
    "symlinkat": ("path", "dirfd", "path"),
    "fallocate": ("fd", "falloc_mode", "long", "long"),
    "utime": ("path", "ptr"),
    "utimes": ("path", "ptr"),
    "futimesat": ("dirfd", "path", "ptr"),
    "sync_file_range": ("fd", "long", "long", "int"),
    "fadvise64": ("fd", "long", "long", "int"),
    "sync": (), "syncfs": ("fd",),
    "alarm": ("ulong",),
    "waitid": ("int", "int", "ptr", "wait_flags", "ptr"),
    "execveat": ("dirfd", "path", "strv", "envp", "at_flags"),
    "membarrier": ("hex", "hex", "int"),
    "sched_get_priority_max": ("int",), "sched_get_priority_min": ("int",),
    "pidfd_open": ("int", "hex"),
    "pidfd_send_signal": ("fd", "exit_sig", "ptr", "hex"),
    "pidfd_getfd": ("fd", "int", "hex"),
    "copy_file_range": ("fd", "off_ptr", "fd", "off_ptr", "ulong", "hex"),
    "splice": ("fd", "off_ptr", "fd", "off_ptr", "ulong", "hex"),
    "chroot": ("path",),
    "statfs": ("path", "ptr"), "fstatfs": ("int", "ptr"),
    "getxattr": ("path", "str", "ptr", "ulong"), "lgetxattr": ("path", "str", "ptr", "ulong"),
    "fgetxattr": ("fd", "str", "ptr", "ulong"),
    "sethostname": ("buf_in:1", "ulong"),
    "getcpu": ("ptr", "ptr", "ptr"),
    "inotify_init": (), "inotify_init1": ("hex",),
    "inotify_add_watch": ("fd", "path", "hex"), "inotify_rm_watch": ("fd", "int"),
    "mq_open": ("str", "open_flags", "open_mode:1", "ptr"), "mq_unlink": ("str",),
    "mq_timedsend": ("fd", "buf_in:2", "ulong", "ulong", "timespec"),
    "mq_timedreceive": ("fd", "ptr", "ulong", "ptr", "timespec"),
    "mq_notify": ("fd", "ptr"), "mq_getsetattr": ("fd", "ptr", "ptr"),
    "shmget": ("hex", "ulong", "hex"), "shmat": ("int", "ptr", "hex"), "shmdt": ("ptr",),
    "shmctl": ("int", "int", "ptr"),
    "semget": ("hex", "int", "hex"), "semop": ("int", "ptr", "ulong"),
    "semtimedop": ("int", "ptr", "ulong", "timespec"), "semctl": ("int", "int", "int", "hex"),
    "msgget": ("hex", "hex"), "msgsnd": ("int", "ptr", "ulong", "hex"),
    "msgrcv": ("int", "ptr", "ulong", "long", "hex"), "msgctl": ("int", "int", "ptr"),
}

# The "<kind>_out" forms: the same formatter, printed after the call.
for _k in ("timespec", "timeval", "rlimit", "sigaction", "sigset", "stack_t", "iovec", "sockopt_val"):
    KINDS[_k + "_out"] = KINDS[_k]
OUT_KINDS = OUT_KINDS | {k + "_out" for k in ("timespec", "timeval", "rlimit", "sigaction", "sigset",
                                               "stack_t", "iovec", "sockopt_val")}

RETURNS = {
    "mmap": "hex", "brk": "hex", "mremap": "hex", "shmat": "hex",
    "exit": "none", "exit_group": "none", "rt_sigreturn": "int",
    "fcntl": "fcntl", "time": "time", "umask": "octal", "poll": "poll", "ppoll": "poll",
}


# -- putting a call together -----------------------------------------------------------

def compile_spec(spec: tuple[str, ...]):
    """("fd", "buf_out:ret") -> [(formatter, param, is_out)], and the index of the first out kind."""
    out = []
    first_out = len(spec)
    for i, kind in enumerate(spec):
        name, _, param = kind.partition(":")
        is_out = name in OUT_KINDS
        if is_out and first_out == len(spec):
            first_out = i
        out.append((KINDS[name], param, is_out, name in OUT_ON_ERROR, name))
    return out, first_out


_COMPILED: dict[str, tuple | None] = {}   # syscall name -> compile_spec's result (None: no spec)


def compiled(name: str):
    got = _COMPILED.get(name)
    if got is None:
        spec = SPECS.get(name)
        got = _COMPILED[name] = compile_spec(spec) if spec is not None else None
    return got


def _fmt_args(c: Call, kinds, lo: int, hi: int) -> list[str]:
    parts = []
    for i in range(lo, hi):
        fn, param, is_out, on_error, _ = kinds[i]
        v = c.args[i]
        if is_out and c.ret is not None and c.failed and not on_error:
            s = ptr(v)
        else:
            try:
                s = fn(c, v, param)
            except Exception:  # noqa: BLE001 - a bad pointer or a decoder bug shows the raw value
                s = ptr(v)
        if s is not None:
            parts.append(s)
    return parts


def _read_u32(c: Call, v: int):
    try:
        return c.task.mm.read_u32(v)
    except SyscallError:
        return None


# Out kinds that need a value from before the call.
BEFORE = {"socklen_out": _read_u32}


def entry_args(c: Call) -> tuple[list[str], int]:
    """The arguments printed when the call starts, and where the rest begins."""
    comp = compiled(c.name)
    if comp is None:
        return [f"{a:#x}" if a else "0" for a in c.args], 6
    kinds, first_out = comp
    for i in range(first_out, len(kinds)):
        grab = BEFORE.get(kinds[i][4])
        if grab is not None and c.args[i]:
            if c.before is None:
                c.before = {}
            c.before[c.args[i]] = grab(c, c.args[i])
    return _fmt_args(c, kinds, 0, first_out), first_out


def exit_args(c: Call, start: int) -> list[str]:
    comp = compiled(c.name)
    if comp is None:
        return []
    kinds, _ = comp
    return _fmt_args(c, kinds, start, len(kinds))


RESTART = {ERESTARTSYS: ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
           ERESTARTNOINTR: ("ERESTARTNOINTR", "To be restarted"),
           ERESTARTNOHAND: ("ERESTARTNOHAND", "To be restarted if no handler"),
           ERESTART_RESTARTBLOCK: ("ERESTART_RESTARTBLOCK", "Interrupted by signal")}
FD_FLAGS = [(abi.FD_CLOEXEC, "FD_CLOEXEC")]


def errno_text(e: int) -> str:
    return f"{errno_name(e)} ({os.strerror(e)})"


def result(c: Call) -> str:
    """What follows "= ": 3, 0x7f..., -1 ENOENT (No such file or directory), ?"""
    ret = c.ret
    if not isinstance(ret, int):   # the handler replaced every register (rt_sigreturn, execve)
        try:
            ret = c.ret = s64(c.task.vcpu.get_regs()[0])
        except Exception:  # noqa: BLE001 - no registers to show
            return "?"
    if -4096 < ret < 0:
        e = -ret
        if e in RESTART:
            name, desc = RESTART[e]
            return f"? {name} ({desc})"
        return f"-1 {errno_text(e)}"
    kind = RETURNS.get(c.name, "int")
    if kind == "hex":
        return f"{ret & abi.MASK64:#x}"
    if kind == "octal":
        return octal(ret)
    if kind == "fcntl":
        cmd = s32(c.args[1])
        if cmd == abi.F_GETFL:
            return f"{ret:#x} (flags {open_flags(ret)})"
        if cmd == abi.F_GETFD and ret:
            return f"{ret:#x} (flags {flags(ret, FD_FLAGS)})"
    if kind == "poll" and ret > 0:
        return f"{ret} ({pollfds(c, c.args[0], c.args[1], True)})"
    if kind == "time" and ret >= 0:
        return f"{ret} ({_date(ret)})"
    return str(s64(ret))


# -- signals --------------------------------------------------------------------------

SI_CODES = {
    abi.SIGSEGV: {1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 3: "SEGV_BNDERR", 4: "SEGV_PKUERR"},
    abi.SIGBUS: {1: "BUS_ADRALN", 2: "BUS_ADRERR", 3: "BUS_OBJERR", 4: "BUS_MCEERR_AR", 5: "BUS_MCEERR_AO"},
    abi.SIGILL: {1: "ILL_ILLOPC", 2: "ILL_ILLOPN", 3: "ILL_ILLADR", 4: "ILL_ILLTRP", 5: "ILL_PRVOPC",
                 6: "ILL_PRVREG", 7: "ILL_COPROC", 8: "ILL_BADSTK"},
    abi.SIGFPE: {1: "FPE_INTDIV", 2: "FPE_INTOVF", 3: "FPE_FLTDIV", 4: "FPE_FLTOVF", 5: "FPE_FLTUND",
                 6: "FPE_FLTRES", 7: "FPE_FLTINV", 8: "FPE_FLTSUB"},
    abi.SIGTRAP: {1: "TRAP_BRKPT", 2: "TRAP_TRACE", 3: "TRAP_BRANCH", 4: "TRAP_HWBKPT"},
}
SI_GENERIC = _ints("SI_")
FAULT_SIGNALS = frozenset(SI_CODES)


def siginfo(signo: int, code: int, addr: int, info: bytes | None = None) -> str:
    """--- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10} ---

    info is the raw siginfo_t if the kernel has it; without it, addr stands for its
    bytes 16..23 (si_addr of a fault, or si_pid and si_uid of a signal sent by kill)."""
    name = signame(signo)
    cname = SI_GENERIC.get(code) if code <= 0 or code == abi.SI_KERNEL else SI_CODES.get(signo, {}).get(code)
    s = f"{{si_signo={name}, si_code={cname or code}"
    if info is not None and len(info) >= 24:
        addr = struct.unpack_from("<Q", info, 16)[0]
    if signo in FAULT_SIGNALS and code > 0:
        s += f", si_addr={ptr(addr)}"
    elif code in (abi.SI_USER, abi.SI_QUEUE, abi.SI_TKILL) and (addr or info is not None):
        s += f", si_pid={addr & 0xFFFFFFFF}, si_uid={addr >> 32}"
    return f"--- {name} {s}}} ---"
