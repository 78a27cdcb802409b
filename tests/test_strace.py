"""strace output of umiak (--strace, --trace, --syscall-summary) against Linux strace's format.

Two halves: the formatter on its own, fed by a fake task whose memory is a dict
of byte strings (pure formatting, no VM), and whole programs compiled at test
time, run natively under /usr/bin/strace and under `umiak run --strace`, whose
lines for the calls that matter must agree once addresses, pids and values
that legitimately differ are normalised.
"""

import errno
import io
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from umiak.kernel import abi
from umiak.kernel.errors import ExitGroup, SyscallError
from umiak.kernel.kernel import Kernel
from umiak.kernel.syscalls.table import MAX_NR, NAMES
from umiak.trace import make_tracer
from umiak.trace.tracer import Tracer

NR = {name: nr for nr, name in NAMES.items()}


# -- a fake task: guest memory as a dict of regions ------------------------------------

class FakeMM:
    def __init__(self, regions: dict[int, bytes]):
        self.regions = {a: bytearray(b) for a, b in regions.items()}

    def _find(self, addr, n):
        for base, data in self.regions.items():
            if base <= addr and addr + n <= base + len(data):
                return data, addr - base
        raise SyscallError(errno.EFAULT)

    def read(self, addr, n):
        if n <= 0:
            return b""
        data, off = self._find(addr, n)
        return bytes(data[off:off + n])

    def write(self, addr, b):
        data, off = self._find(addr, len(b))
        data[off:off + len(b)] = b

    def read_cstr(self, addr, limit=4096):
        data, off = self._find(addr, 1)
        end = data.find(b"\0", off)
        if end < 0:
            raise SyscallError(errno.EFAULT)
        if end - off >= limit:
            raise SyscallError(errno.ENAMETOOLONG)
        return bytes(data[off:end])

    def read_u64(self, addr):
        return struct.unpack("<Q", self.read(addr, 8))[0]

    def read_u32(self, addr):
        return struct.unpack("<I", self.read(addr, 4))[0]


class FakeKernel:
    """The kernel's dispatcher (the tracer's one caller) over a given handler list."""

    dispatch = Kernel.dispatch
    _beyond = Kernel._beyond

    def __init__(self, tracer=None, handlers=None):
        self.tracer, self.handlers = tracer, handlers

    def unknown_syscall(self, task, nr):
        return -errno.ENOSYS


class FakeProcess:
    def __init__(self):
        self.tasks = {}


class FakeTask:
    def __init__(self, regions=None, tid=100, process=None):
        self.mm = FakeMM(regions or {})
        self.tid = tid
        self.kernel = FakeKernel()
        self.process = process or FakeProcess()
        self.process.tasks[tid] = self


def handlers_returning(table: dict):
    """A dispatch list whose entries return (or raise) what `table` says, by syscall name."""
    hs = [lambda task, *a: -errno.ENOSYS] * MAX_NR
    for nr, name in NAMES.items():
        def h(task, a, b, c, d, e, f, name=name):
            v = table.get(name, 0)
            if callable(v):
                return v(task, a, b, c, d, e, f)
            if isinstance(v, BaseException):
                raise v
            return v
        hs[nr] = h
    return hs


def trace(task, calls, results, **kw):
    """Run calls [(name, args...)] through a Tracer; return its output lines."""
    out = io.StringIO()
    t = Tracer(out, **kw)
    kernel = FakeKernel(t, handlers_returning(results))
    for name, *args in calls:
        nr = NR[name] if isinstance(name, str) else name
        args = [a & abi.MASK64 for a in args] + [0] * (6 - len(args))
        try:
            kernel.dispatch(task, nr, *args)
        except ExitGroup as eg:
            t.exited(task, eg.status, eg.signal)
    t.finish()
    return out.getvalue().splitlines()


def one(task, name, *args, ret=0, results=None):
    r = dict(results or {})
    r.setdefault(name, ret)
    return trace(task, [(name, *args)], r)[0]


def L(call: str, result: str) -> str:
    """A line as strace aligns it: the result at column 40."""
    return (call + " ").ljust(40) + "= " + result


STR = 0x1000
BUF = 0x2000


# -- the formatter --------------------------------------------------------------------

def test_every_spec_names_known_kinds_and_syscalls():
    from umiak.trace import decode
    known = set(NAMES.values())
    for name, spec in decode.SPECS.items():
        assert name in known, name
        decode.compile_spec(spec)   # KeyError for a kind with no formatter


def test_write_escapes_like_strace():
    t = FakeTask({STR: b'a\tb\0c\x01\x7f\xff"\\'})
    assert one(t, "write", 3, STR, 10, ret=10) == 'write(3, "a\\tb\\0c\\1\\177\\377\\"\\\\", 10)   = 10'


def test_octal_escape_before_a_digit_and_control_chars():
    t = FakeTask({STR: b"\x011\f\v\r\x1b[0m\xc3\xa9\0"})
    assert one(t, "write", 1, STR, 12, ret=12) == 'write(1, "\\0011\\f\\v\\r\\33[0m\\303\\251\\0", 12) = 12'


def test_buffer_cut_at_32_bytes():
    t = FakeTask({STR: b"0123456789012345678901234567890123456789\n"})
    line = one(t, "write", 1, STR, 41, ret=41)
    assert line == 'write(1, "01234567890123456789012345678901"..., 41) = 41'


def test_read_shows_the_returned_length_after_the_call():
    t = FakeTask({BUF: bytes(4096)})
    data = b"root:x:0:0:root:/root:/bin/bash\nmore"

    def read(task, fd, buf, n, *_):
        task.mm.write(buf, data)
        return len(data)
    line = trace(t, [("read", 3, BUF, 4096)], {"read": read})[0]
    assert line == 'read(3, "root:x:0:0:root:/root:/bin/bash\\n"..., 4096) = 36'
    short = trace(t, [("read", 3, BUF, 4096)], {"read": lambda task, fd, buf, *_: (task.mm.write(buf, b"ab\n"), 3)[1]})[0]
    assert short == L('read(3, "ab\\n", 4096)', "3")


def test_openat_flags_mode_and_errno():
    t = FakeTask({STR: b"/etc/passwd\0"})
    assert one(t, "openat", abi.AT_FDCWD, STR, abi.O_RDONLY | abi.O_CLOEXEC, ret=3) == \
        'openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3'
    assert one(t, "openat", abi.AT_FDCWD, STR, 0, ret=-errno.ENOENT) == \
        'openat(AT_FDCWD, "/etc/passwd", O_RDONLY) = -1 ENOENT (No such file or directory)'
    assert one(t, "openat", abi.AT_FDCWD, STR, abi.O_NONBLOCK | abi.O_CLOEXEC | abi.O_DIRECTORY, ret=3) == \
        'openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 3'
    fl = abi.O_RDWR | abi.O_CREAT | abi.O_EXCL | abi.O_APPEND
    assert one(t, "openat", abi.AT_FDCWD, STR, fl, 0o600, ret=7) == \
        'openat(AT_FDCWD, "/etc/passwd", O_RDWR|O_CREAT|O_EXCL|O_APPEND, 0600) = 7'


def test_bad_pointers_print_as_addresses():
    t = FakeTask()
    assert one(t, "openat", abi.AT_FDCWD, 0x10, 0, ret=-errno.EFAULT) == \
        "openat(AT_FDCWD, 0x10, O_RDONLY)        = -1 EFAULT (Bad address)"
    assert one(t, "write", 1, 0x10, 5, ret=-errno.EFAULT) == \
        "write(1, 0x10, 5)                       = -1 EFAULT (Bad address)"
    assert one(t, "brk", 0, ret=0x4000) == "brk(NULL)                               = 0x4000"


def test_syscall_error_raised_by_a_handler_becomes_minus_errno():
    t = FakeTask({STR: b"/x\0"})
    lines = trace(t, [("access", STR, 4 | 2)], {"access": SyscallError(errno.EACCES)})
    assert lines == ['access("/x", R_OK|W_OK)                 = -1 EACCES (Permission denied)']


def test_mmap_mprotect_madvise():
    t = FakeTask()
    assert one(t, "mmap", 0, 8192, 3, abi.MAP_PRIVATE | abi.MAP_ANONYMOUS, -1, 0, ret=0x7F77C4550000) == \
        "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f77c4550000"
    assert one(t, "mmap", 0x10000000, 4096, 5, 0x32, -1, 0, ret=0x10000000) == \
        "mmap(0x10000000, 4096, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = 0x10000000"
    assert one(t, "mmap", 0, 4096, 1, 0x802, 3, 0x1000, ret=-errno.ENOMEM) == \
        "mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 3, 0x1000) = -1 ENOMEM (Cannot allocate memory)"
    assert one(t, "mprotect", 0x4A1000, 16384, 0) == L("mprotect(0x4a1000, 16384, PROT_NONE)", "0")
    assert one(t, "madvise", 0x7000, 8192, 4) == L("madvise(0x7000, 8192, MADV_DONTNEED)", "0")


def test_stat_structs():
    st = abi.STAT.pack(1, 2, 1, abi.S_IFREG | 0o644, 0, 0, 0, 0, 123, 4096, 8, *([0] * 6))
    chr_ = abi.STAT.pack(1, 2, 1, abi.S_IFCHR | 0o620, 0, 5, 0, 0x8800, 0, 1024, 0, *([0] * 6))
    t = FakeTask({STR: b"/x\0", BUF: st, 0x3000: chr_, 0x4000: b"\0"})
    assert one(t, "newfstatat", abi.AT_FDCWD, STR, BUF, 0) == \
        'newfstatat(AT_FDCWD, "/x", {st_mode=S_IFREG|0644, st_size=123, ...}, 0) = 0'
    assert one(t, "newfstatat", 1, 0x4000, 0x3000, abi.AT_EMPTY_PATH) == \
        'newfstatat(1, "", {st_mode=S_IFCHR|0620, st_rdev=makedev(0x88, 0), ...}, AT_EMPTY_PATH) = 0'
    assert one(t, "fstat", 1, 0x3000) == "fstat(1, {st_mode=S_IFCHR|0620, st_rdev=makedev(0x88, 0), ...}) = 0"
    assert one(t, "newfstatat", abi.AT_FDCWD, STR, BUF, 0, ret=-errno.ENOENT) == \
        'newfstatat(AT_FDCWD, "/x", 0x2000, 0)   = -1 ENOENT (No such file or directory)'


def test_signals_and_sigsets():
    act = abi.SIGACTION.pack(1, abi.SA_RESTORER, 0x408850, 0)
    t = FakeTask({BUF: act, 0x3000: bytes(32), 0x4000: struct.pack("<Q", (1 << 1) | (1 << 14)),
                  0x5000: struct.pack("<Q", 0xFFFFFFFE7FFFFFFF)})
    assert one(t, "rt_sigaction", abi.SIGINT, BUF, 0, 8) == \
        "rt_sigaction(SIGINT, {sa_handler=SIG_IGN, sa_mask=[], sa_flags=SA_RESTORER, sa_restorer=0x408850}, NULL, 8) = 0"
    assert one(t, "rt_sigaction", abi.SIGTERM, 0, 0x3000, 8) == \
        "rt_sigaction(SIGTERM, NULL, {sa_handler=SIG_DFL, sa_mask=[], sa_flags=0}, 8) = 0"
    assert one(t, "rt_sigprocmask", abi.SIG_BLOCK, 0x4000, 0x3000, 8) == \
        "rt_sigprocmask(SIG_BLOCK, [INT TERM], [], 8) = 0"
    assert one(t, "rt_sigprocmask", abi.SIG_SETMASK, 0x5000, 0, 8) == \
        "rt_sigprocmask(SIG_SETMASK, ~[RTMIN RT_1], NULL, 8) = 0"


def test_process_setup_calls_of_static_glibc():
    rl = abi.RLIMIT.pack(8 << 20, abi.RLIM_INFINITY)
    t = FakeTask({STR: b"/proc/self/exe\0", BUF: b"/tmp/st/h" + bytes(100), 0x3000: rl,
                  0x4000: bytes.fromhex("ede76789ac8137ba")})
    assert one(t, "arch_prctl", abi.ARCH_SET_FS, 0x36EE8380) == "arch_prctl(ARCH_SET_FS, 0x36ee8380)     = 0"
    assert one(t, "set_tid_address", 0x36EE8650, ret=4559) == "set_tid_address(0x36ee8650)             = 4559"
    assert one(t, "set_robust_list", 0x36EE8660, 24) == "set_robust_list(0x36ee8660, 24)         = 0"
    assert one(t, "rseq", 0x36EE8CA0, 0x20, 0, 0x53053053, ret=-errno.ENOSYS) == \
        "rseq(0x36ee8ca0, 0x20, 0, 0x53053053)   = -1 ENOSYS (Function not implemented)"
    assert one(t, "prlimit64", 0, abi.RLIMIT_STACK, 0, 0x3000) == \
        "prlimit64(0, RLIMIT_STACK, NULL, {rlim_cur=8192*1024, rlim_max=RLIM64_INFINITY}) = 0"
    assert one(t, "readlink", STR, BUF, 4096, ret=9) == 'readlink("/proc/self/exe", "/tmp/st/h", 4096) = 9'
    assert one(t, "getrandom", 0x4000, 8, abi.GRND_NONBLOCK, ret=8) == \
        'getrandom("\\xed\\xe7\\x67\\x89\\xac\\x81\\x37\\xba", 8, GRND_NONBLOCK) = 8'


def test_misc_structs():
    uts = b"Linux".ljust(65, b"\0") + b"umiak".ljust(65, b"\0") + bytes(65 * 4)
    ts = abi.TIMESPEC.pack(677, 440673647)
    t = FakeTask({BUF: uts, 0x3000: ts, 0x4000: struct.pack("<i", 1), 0x5000: struct.pack("<ii", 5, 6),
                  0x6000: struct.pack("<QQ", 0x7000, 3) + struct.pack("<QQ", 0x7100, 100),
                  0x7000: b"vm\n", 0x7100: bytes(100)})
    assert one(t, "uname", BUF) == 'uname({sysname="Linux", nodename="umiak", ...}) = 0'
    assert one(t, "clock_gettime", 1, 0x3000) == "clock_gettime(CLOCK_MONOTONIC, {tv_sec=677, tv_nsec=440673647}) = 0"
    assert one(t, "ioctl", 0, abi.FIONBIO, 0x4000) == "ioctl(0, FIONBIO, [1])                  = 0"
    assert one(t, "ioctl", 1, abi.TCGETS, 0x7FFDE44F0610, ret=-errno.ENOTTY) == \
        "ioctl(1, TCGETS, 0x7ffde44f0610)        = -1 ENOTTY (Inappropriate ioctl for device)"
    assert one(t, "pipe2", 0x5000, abi.O_CLOEXEC) == "pipe2([5, 6], O_CLOEXEC)                = 0"
    assert one(t, "readv", 3, 0x6000, 2, ret=3) == \
        'readv(3, [{iov_base="vm\\n", iov_len=3}, {iov_base="", iov_len=100}], 2) = 3'
    assert one(t, "fcntl", 3, abi.F_GETFL, ret=0x18000) == \
        "fcntl(3, F_GETFL)                       = 0x18000 (flags O_RDONLY|O_LARGEFILE|O_DIRECTORY)"
    assert one(t, "fcntl", 3, abi.F_SETFD, abi.FD_CLOEXEC) == "fcntl(3, F_SETFD, FD_CLOEXEC)           = 0"
    assert one(t, "lseek", 3, -5, 2, ret=-errno.EINVAL) == "lseek(3, -5, SEEK_END)                  = -1 EINVAL (Invalid argument)"
    assert one(t, "futex", 0x7F00, 0x81, 1) == "futex(0x7f00, FUTEX_WAKE_PRIVATE, 1)    = 0"
    assert one(t, "futex", 0x7F00, 0x109, 4642, 0, 0, 0xFFFFFFFF) == \
        "futex(0x7f00, FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME, 4642, NULL, FUTEX_BITSET_MATCH_ANY) = 0"
    assert one(t, "getpid", ret=5369) == "getpid()                                = 5369"


def test_termios_like_strace():
    tio = struct.pack("<4I", 0o2400, 0o5, 0o277, 0o105073) + bytes(20)
    t = FakeTask({BUF: tio})
    assert one(t, "ioctl", 1, abi.TCGETS, BUF) == (
        "ioctl(1, TCGETS, {c_iflag=ICRNL|IXON, c_oflag=NL0|CR0|TAB0|BS0|VT0|FF0|OPOST|ONLCR, "
        "c_cflag=B38400|CS8|CREAD, c_lflag=ISIG|ICANON|ECHO|ECHOE|ECHOK|IEXTEN|ECHOCTL|ECHOKE, ...}) = 0")


def test_sockets_poll_epoll_like_strace():
    sin = struct.pack("<H", abi.AF_INET) + struct.pack(">H", 8080) + bytes([127, 0, 0, 1]) + bytes(8)
    sun = struct.pack("<H", abi.AF_UNIX) + b"/tmp/nonexist.sock".ljust(108, b"\0")
    sin6 = struct.pack("<H", abi.AF_INET6) + struct.pack(">HI", 53, 0) + bytes(15) + b"\x01" + bytes(4)
    pfd = abi.POLLFD.pack(7, abi.POLLIN, abi.POLLIN) + abi.POLLFD.pack(6, abi.POLLOUT, abi.POLLOUT)
    ev = abi.EPOLL_EVENT.pack(abi.EPOLLIN | abi.EPOLLET, 7)
    t = FakeTask({0x1000: sin, 0x2000: sun, 0x3000: sin6, 0x4000: struct.pack("<i", 1),
                  0x5000: struct.pack("<I", 16), 0x6000: pfd, 0x7000: ev, 0x8000: b"hi",
                  0x9000: struct.pack("<ii", 6, 7)})
    assert one(t, "socket", abi.AF_INET, abi.SOCK_STREAM | abi.SOCK_CLOEXEC, abi.IPPROTO_TCP, ret=3) == \
        "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 3"
    assert one(t, "socket", abi.AF_INET6, abi.SOCK_DGRAM, 0, ret=5) == "socket(AF_INET6, SOCK_DGRAM, IPPROTO_IP) = 5"
    assert one(t, "setsockopt", 3, abi.SOL_SOCKET, abi.SO_REUSEADDR, 0x4000, 4) == \
        "setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0"
    assert one(t, "bind", 3, 0x1000, 16) == \
        'bind(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = 0'
    assert one(t, "connect", 4, 0x2000, 110, ret=-errno.ENOENT) == \
        'connect(4, {sa_family=AF_UNIX, sun_path="/tmp/nonexist.sock"}, 110) = -1 ENOENT (No such file or directory)'
    assert one(t, "sendto", 5, 0x8000, 2, abi.MSG_DONTWAIT, 0x3000, 28, ret=2) == (
        'sendto(5, "hi", 2, MSG_DONTWAIT, {sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 2')

    def getsockname(task, fd, addr, lenp, *_):
        task.mm.write(lenp, struct.pack("<I", 16))
        return 0
    t.mm.write(0x5000, struct.pack("<I", 64))
    assert trace(t, [("getsockname", 3, 0x1000, 0x5000)], {"getsockname": getsockname})[0] == \
        'getsockname(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, [64 => 16]) = 0'
    assert one(t, "socketpair", abi.AF_UNIX, abi.SOCK_STREAM, 0, 0x9000) == \
        "socketpair(AF_UNIX, SOCK_STREAM, 0, [6, 7]) = 0"
    assert one(t, "poll", 0x6000, 2, 100, ret=2) == \
        "poll([{fd=7, events=POLLIN}, {fd=6, events=POLLOUT}], 2, 100) = 2 ([{fd=7, revents=POLLIN}, {fd=6, revents=POLLOUT}])"
    assert one(t, "recvfrom", 7, 0x8000, 1, 0, 0, 0, ret=1) == L('recvfrom(7, "h", 1, 0, NULL, NULL)', "1")
    assert one(t, "epoll_create1", abi.EPOLL_CLOEXEC, ret=8) == L("epoll_create1(EPOLL_CLOEXEC)", "8")
    assert one(t, "epoll_ctl", 8, abi.EPOLL_CTL_ADD, 7, 0x7000) == \
        "epoll_ctl(8, EPOLL_CTL_ADD, 7, {events=EPOLLIN|EPOLLET, data={u32=7, u64=7}}) = 0"
    assert one(t, "shutdown", 6, abi.SHUT_WR) == L("shutdown(6, SHUT_WR)", "0")


def test_process_calls_like_strace():
    t = FakeTask({0x1000: b"worker\0", 0x2000: struct.pack("<I", 5 << 8), 0x3000: struct.pack("<I", 0)})
    assert one(t, "prctl", abi.PR_SET_NAME, 0x1000) == L('prctl(PR_SET_NAME, "worker")', "0")
    assert one(t, "prctl", abi.PR_SET_PDEATHSIG, abi.SIGKILL) == L("prctl(PR_SET_PDEATHSIG, SIGKILL)", "0")
    assert one(t, "wait4", 20674, 0x2000, 0, 0, ret=20674) == \
        "wait4(20674, [{WIFEXITED(s) && WEXITSTATUS(s) == 5}], 0, NULL) = 20674"
    assert one(t, "getresuid", 0x3000, 0x3000, 0x3000) == L("getresuid([0], [0], [0])", "0")
    fl = abi.CLONE_CHILD_CLEARTID | abi.CLONE_CHILD_SETTID | abi.SIGCHLD
    assert one(t, "clone", fl, 0, 0, 0x2B533650, 0, ret=20674) == \
        "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x2b533650) = 20674"


def test_unknown_syscall_and_exit_group():
    t = FakeTask()
    lines = trace(t, [(500, 1, 2), ("exit_group", 3)], {"exit_group": ExitGroup(3)})
    assert lines == [
        "syscall_0x1f4(0x1, 0x2, 0, 0, 0, 0)     = -1 ENOSYS (Function not implemented)",
        "exit_group(3)                           = ?",
        "+++ exited with 3 +++",
    ]


def test_fatal_signal_lines():
    out = io.StringIO()
    t = Tracer(out)
    task = FakeTask()
    t.signal(task, abi.SIGSEGV, 1, 0x10)
    t.exited(task, 139, abi.SIGSEGV)
    info = struct.pack("<iii4xII", abi.SIGUSR1, 0, -6, 23896, 0).ljust(128, b"\0")
    t.signal(task, abi.SIGUSR1, -6, 0, info)
    assert out.getvalue().splitlines() == [
        "--- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10} ---",
        "+++ killed by SIGSEGV +++",
        "--- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_TKILL, si_pid=23896, si_uid=0} ---",
    ]


def test_trace_filter_globs_and_negation():
    t = FakeTask()
    calls = [("brk", 0), ("mmap", 0, 4096, 3, 0x22, -1, 0), ("openat", -100, 0, 0), ("getpid",), ("close", 3)]
    lines = trace(t, calls, {}, trace_filter="mmap|brk,open*")
    assert [ln.split("(")[0] for ln in lines] == ["brk", "mmap", "openat"]
    lines = trace(t, calls, {}, trace_filter="!getpid|close")
    assert [ln.split("(")[0] for ln in lines] == ["brk", "mmap", "openat"]
    lines = trace(t, calls, {}, trace_filter="%memory")
    assert [ln.split("(")[0] for ln in lines] == ["brk", "mmap"]
    lines = trace(t, calls, {}, trace_filter="%file")
    assert [ln.split("(")[0] for ln in lines] == ["openat"]
    lines = trace(t, calls, {}, trace_filter="%desc")
    assert [ln.split("(")[0] for ln in lines] == ["mmap", "openat", "close"]   # mmap: strace counts its fd too
    with pytest.raises(ValueError, match="unknown syscall class"):
        Tracer(io.StringIO(), trace_filter="%nonsense")


def test_thread_prefix_and_unfinished_calls():
    proc = FakeProcess()
    main, child = FakeTask(tid=10, process=proc), FakeTask(tid=11, process=proc)
    out = io.StringIO()
    t = Tracer(out)

    def futex(task, *a):   # while main waits, the child thread writes
        kernel.dispatch(child, NR["write"], 1, 0, 0, 0, 0, 0)
        return 0
    kernel = FakeKernel(t, handlers_returning({"futex": futex}))
    kernel.dispatch(main, NR["futex"], 0x7F00, 0x80, 2, 0, 0, 0)
    assert out.getvalue().splitlines() == [
        "[pid    10] futex(0x7f00, FUTEX_WAIT_PRIVATE, 2, NULL <unfinished ...>",
        L('[pid    11] write(1, "", 0)', "0"),
        "[pid    10] <... futex resumed>)        = 0",
    ]


def test_relative_timestamps():
    lines = trace(FakeTask(), [("getpid",), ("getpid",)], {}, timestamps=True)
    assert all(re.fullmatch(r" {5}0\.\d{6} getpid\(\) +=  ?0", ln) for ln in lines), lines


def test_summary_table():
    t = FakeTask()
    lines = trace(t, [("getpid",), ("close", 3), ("close", 4)], {"close": -errno.EBADF},
                  strace=False, summary=True)
    assert lines[1] == "% time     seconds  usecs/call     calls    errors syscall"
    assert lines[2] == lines[-2] == "------ ----------- ----------- --------- --------- ----------------"
    body = {ln.split()[-1]: ln.split() for ln in lines[3:-2]}
    assert body["close"][3:5] == ["2", "2"] and body["getpid"][3] == "1"
    assert re.fullmatch(r"100\.00 +\d+\.\d{6} +\d+ +3 +2 total", lines[-1])


def test_exec_line():
    out = io.StringIO()
    Tracer(out).exec(FakeTask(), "./h", [b"./h", b"arg one"], 0x7FFD89E48148, 35)
    assert out.getvalue() == 'execve("./h", ["./h", "arg one"], 0x7ffd89e48148 /* 35 vars */) = 0\n'


def test_make_tracer(tmp_path):
    from umiak.options import RunOptions
    assert make_tracer(RunOptions(), sys.stderr) is None
    f = tmp_path / "trace.txt"
    tr = make_tracer(RunOptions(strace=True, strace_file=str(f)), sys.stderr)
    FakeKernel(tr, handlers_returning({"getpid": 42})).dispatch(FakeTask(), NR["getpid"], 0, 0, 0, 0, 0, 0)
    tr.finish()
    assert f.read_text() == "getpid()                                = 42\n"
    from umiak.errors import UmiakError
    with pytest.raises(UmiakError, match="cannot write the strace file"):
        make_tracer(RunOptions(strace=True, strace_file=str(tmp_path / "no" / "such")), sys.stderr)


# -- whole programs: native strace versus umiak --strace --------------------------------

ROOT = Path(__file__).resolve().parent
BUILD = ROOT / ".build"
STRACE = shutil.which("strace")
GCC = shutil.which("gcc")
needs_tools = pytest.mark.skipif(not (STRACE and GCC), reason="needs gcc and strace (apt-get install strace)")


def build(name: str, *flags: str) -> Path:
    """tests/guest/<name>.c -> tests/.build/<name> (static glibc), rebuilt when the source changes."""
    src = ROOT / "guest" / f"{name}.c"
    exe = BUILD / name
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        BUILD.mkdir(exist_ok=True)
        subprocess.run([GCC, "-static", "-O1", *flags, "-o", str(exe), str(src)], check=True)
    return exe


def native_strace(exe: Path, args: list[str], tmp: Path, *opts: str) -> tuple[list[str], subprocess.CompletedProcess]:
    out = tmp / "native.strace"
    p = subprocess.run([STRACE, "-o", str(out), *opts, str(exe), *args], capture_output=True)
    return out.read_text().splitlines(), p


def umiak(exe: Path, args: list[str], *opts: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT.parent / "src"))
    return subprocess.run([sys.executable, "-m", "umiak", "run", *opts, str(exe), *args],
                          capture_output=True, env=env, timeout=120)


def umiak_strace(exe: Path, args: list[str], tmp: Path, *opts: str) -> tuple[list[str], subprocess.CompletedProcess]:
    out = tmp / "umiak.strace"
    p = umiak(exe, args, "--strace", "--strace-file", str(out), *opts)
    assert out.exists(), p.stderr.decode()
    return out.read_text().splitlines(), p


def resumed(lines: list[str]) -> list[str]:
    """strace -f's calls cut by another process's line (`... <unfinished ...>`, later
    `<... write resumed>) = 6`) joined again, in the place the call began."""
    out: list[str] = []
    cut: dict[str, int] = {}
    for ln in lines:
        m = re.match(r"(\d+) +<\.\.\. \w+ resumed>(.*)", ln)
        if m and m.group(1) in cut:
            at = cut.pop(m.group(1))
            out[at] = out[at].removesuffix(" <unfinished ...>") + m.group(2)
            continue
        m = re.match(r"(\d+) ", ln)
        if m and ln.endswith(" <unfinished ...>"):
            cut[m.group(1)] = len(out)
        out.append(ln)
    return out


def normalise(lines: list[str], start: str | None = None) -> list[str]:
    """Drop pids and long addresses; keep the lines from the first one starting with `start`."""
    out = []
    for ln in resumed(lines):
        ln = re.sub(r"^\d+ +", "", ln)                     # strace -o prints the pid
        ln = re.sub(r"0x[0-9a-f]{6,}", "0xADDR", ln)
        ln = re.sub(r"\) +=", ") =", ln)                   # columns move with the addresses
        out.append(ln)
    if start is not None:
        first = next(i for i, ln in enumerate(out) if ln.startswith(start))
        out = out[first:]
    return out


@pytest.fixture()
def datafile(tmp_path):
    f = tmp_path / "data.txt"
    f.write_text("root:x:0:0:root:/root:/bin/bash\nline two\n")
    return f


@needs_tools
def test_file_calls_match_linux_strace(tmp_path, datafile):
    exe = build("strace_files")
    native, np_ = native_strace(exe, [str(datafile)], tmp_path)
    ours, up = umiak_strace(exe, [str(datafile)], tmp_path)
    assert up.returncode == np_.returncode == 3, up.stderr.decode()
    assert up.stdout == np_.stdout
    start = 'write(1, "hello\\n", 6)'
    assert normalise(ours, start) == normalise(native, start)


@needs_tools
def test_alignment_matches_linux_strace(tmp_path, datafile):
    """The result column: short lines padded so '= ' starts at column 40, as strace pads them."""
    exe = build("strace_files")
    native, _ = native_strace(exe, [str(datafile)], tmp_path)
    ours, _ = umiak_strace(exe, [str(datafile)], tmp_path)
    pick = ("write(1, \"hello", "close(3)", "exit_group(3)", "+++")
    strip = [re.sub(r"^\d+ +", "", ln) for ln in native]
    assert [ln for ln in ours if ln.startswith(pick)] == [ln for ln in strip if ln.startswith(pick)]


@needs_tools
def test_trace_filter_matches_strace_e_trace(tmp_path, datafile):
    exe = build("strace_files")
    native, _ = native_strace(exe, [str(datafile)], tmp_path, "-e", "trace=openat,close")
    ours, _ = umiak_strace(exe, [str(datafile)], tmp_path, "--trace", "openat|clo*")
    assert normalise(ours) == normalise(native)
    ours, _ = umiak_strace(exe, [str(datafile)], tmp_path, "--trace", "!write,brk,mmap,mprotect")
    assert not any(ln.startswith(("write(", "brk(")) for ln in ours)
    assert any(ln.startswith("openat(") for ln in ours)


@needs_tools
def test_relative_timestamps_end_to_end(tmp_path, datafile):
    exe = build("strace_files")
    ours, _ = umiak_strace(exe, [str(datafile)], tmp_path, "--strace-timestamps")
    assert ours and all(re.match(r" {5}\d\.\d{6} \S", ln) for ln in ours), ours[:3]


def summary_rows(text: str) -> dict[str, list[str]]:
    rows, on = {}, False
    for ln in text.splitlines():
        if ln.startswith("------"):
            on = True
            continue
        if on and ln.strip():
            parts = ln.split()
            rows[parts[-1]] = parts
    return rows


@needs_tools
def test_syscall_summary_counts_like_strace_c(tmp_path, datafile):
    exe = build("strace_files")
    native, _ = native_strace(exe, [str(datafile)], tmp_path, "-c")
    p = umiak(exe, [str(datafile)], "--syscall-summary")
    text = p.stderr.decode()
    assert "% time     seconds  usecs/call     calls    errors syscall" in text
    ours, theirs = summary_rows(text), summary_rows("\n".join(native))

    def counts(rows, name):   # calls and errors (blank errors = 0)
        r = rows[name]
        return r[3], (r[4] if len(r) == 6 else "0")
    for name in ("write", "openat", "close", "read", "lseek", "pread64", "newfstatat", "access"):
        assert counts(ours, name) == counts(theirs, name), name
    assert ours["total"][0] == "100.00"
    assert "exit_group" not in ours and "exit_group" not in theirs   # a call that never returns


@needs_tools
def test_fatal_signal_lines_match(tmp_path):
    exe = build("strace_segv")
    native, np_ = native_strace(exe, [], tmp_path)
    ours, up = umiak_strace(exe, [], tmp_path)
    assert up.returncode == 139
    assert normalise(ours)[-2:] == normalise(native)[-2:] == [
        "--- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10} ---",
        "+++ killed by SIGSEGV +++",
    ]


def _pids(lines: list[str]) -> list[str]:
    lines = [re.sub(r"si_pid=\d+", "si_pid=PID", ln) for ln in lines]
    return [re.sub(r"\[pid +\d+\] ", "[pid N] ", ln) for ln in lines]


@needs_tools
def test_handled_signal_lines_match(tmp_path):
    exe = build("strace_signal")
    native, _ = native_strace(exe, [], tmp_path)
    ours, up = umiak_strace(exe, [], tmp_path)
    assert up.returncode == 0 and up.stdout == b"sig\n"
    start = "--- SIGUSR1"
    assert _pids(normalise(ours, start)) == _pids(normalise(native, start)) == [
        "--- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_TKILL, si_pid=PID, si_uid=0} ---",
        'write(1, "sig\\n", 4) = 4',
        "rt_sigreturn({mask=[]}) = 0",
        "exit_group(0) = ?",
        "+++ exited with 0 +++",
    ]


@needs_tools
def test_thread_lines_carry_the_thread_id(tmp_path):
    exe = build("strace_thread", "-pthread")
    ours, up = umiak_strace(exe, [], tmp_path)
    assert up.returncode == 0, up.stderr.decode()
    clone = next(ln for ln in ours if ln.startswith("clone3("))
    child = int(re.search(r"=> \{parent_tid=\[(\d+)\]\}, 88\) += (\d+)$", clone).group(2))
    assert f'[pid {child:5d}] write(1, "t\\n", 2)' in "\n".join(ours)
    assert ours[-2:] == [L("exit_group(0)", "?"), "+++ exited with 0 +++"]


@needs_tools
def test_thread_exit_line(tmp_path):
    """strace -f prints '[pid N] +++ exited with 0 +++' when a thread ends (the kernel must tell the tracer)."""
    exe = build("strace_thread", "-pthread")
    native, _ = native_strace(exe, [], tmp_path, "-f")
    ours, _ = umiak_strace(exe, [], tmp_path)
    assert [ln for ln in _pids(ours) if "+++" in ln] == ["[pid N] +++ exited with 0 +++", "+++ exited with 0 +++"]
    assert [re.sub(r"^\d+ +", "", ln) for ln in native if "+++" in ln] == ["+++ exited with 0 +++"] * 2


@needs_tools
def test_forked_child_lines_carry_its_pid(tmp_path):
    """As strace -f: the child's calls and its end carry `[pid N]` while two tasks exist;
    the same lines (pids aside) as Linux's."""
    exe = build("strace_fork")
    native, _ = native_strace(exe, [], tmp_path, "-f")
    ours, up = umiak_strace(exe, [], tmp_path)
    assert (up.returncode, up.stdout) == (0, b"child\nparent\n"), up.stderr.decode()
    fork = next(ln for ln in ours if ln.startswith(("clone(", "fork(")) and re.search(r"= \d+$", ln))
    child = int(fork.rsplit("=", 1)[1])
    text = "\n".join(ours)
    assert L(f'[pid {child:5d}] write(1, "child\\n", 6)', "6") in text, text
    assert f"[pid {child:5d}] exit_group(3)" in text and f"[pid {child:5d}] +++ exited with 3 +++" in text, text
    assert ours[-3:] == [L('write(1, "parent\\n", 7)', "7"), L("exit_group(0)", "?"), "+++ exited with 0 +++"]
    strip = [re.sub(r"^\[pid +\d+\] ", "", ln) for ln in normalise(ours)]
    theirs = normalise(native)
    for want in ('write(1, "child\\n", 6) = 6', "+++ exited with 3 +++", 'write(1, "parent\\n", 7) = 7'):
        assert want in strip and want in theirs, want


@needs_tools
def test_syscall_summary_counts_every_process(tmp_path):
    """--syscall-summary covers the whole tree, as strace -f -c: the shell's forks, its
    children's execve (and the first one) and the pipeline's pipe."""
    script = tmp_path / "s.sh"
    script.write_text("/bin/true; /bin/echo hi | /bin/cat; /bin/true\n")
    out = tmp_path / "native.c"
    subprocess.run([STRACE, "-f", "-c", "-o", str(out), "/bin/dash", str(script)], capture_output=True, check=True)
    theirs = summary_rows(out.read_text())
    p = umiak(Path("/bin/dash"), [str(script)], "--syscall-summary")
    assert p.returncode == 0 and p.stdout == b"hi\n", p.stderr.decode()
    ours = summary_rows(p.stderr.decode())

    def calls(rows, *names):
        return sum(int(rows[n][3]) for n in names if n in rows)
    assert calls(ours, "execve") == calls(theirs, "execve") == 5
    assert calls(ours, "clone", "fork", "vfork") == calls(theirs, "clone", "fork", "vfork") == 4
    assert calls(ours, "pipe", "pipe2") == calls(theirs, "pipe", "pipe2") == 1
