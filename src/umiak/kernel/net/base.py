"""What every socket file shares, and the codecs of the socket ABI (cmsg, sockaddr, timeval).

A socket's operations never block: they raise EAGAIN, and `syscalls/net.py`
waits (Task.wait through waiting.wait_for) unless the guest asked for
O_NONBLOCK / MSG_DONTWAIT, with SO_RCVTIMEO / SO_SNDTIMEO as the deadline.
"""

from typing import TYPE_CHECKING

from umiak.kernel import abi
from umiak.kernel.abi import (CMSGHDR, SIOCGIFADDR, SIOCGIFBRDADDR, SIOCGIFCONF, SIOCGIFDSTADDR, SIOCGIFFLAGS,
                              SIOCGIFHWADDR, SIOCGIFINDEX, SIOCGIFMTU, SIOCGIFNAME, SIOCGIFNETMASK, SIOCINQ,
                              SIOCOUTQ, TIMEVAL)
from umiak.kernel.errors import EDOM, EINVAL, ENOPROTOOPT, ENOTTY, EOPNOTSUPP, EPIPE, SyscallError
from umiak.kernel.files import File, Stat

if TYPE_CHECKING:
    from umiak.kernel.kernel import Kernel

IFREQ_GET = (SIOCGIFNAME, SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFDSTADDR, SIOCGIFBRDADDR, SIOCGIFNETMASK,
             SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFINDEX)   # the ioctls that read a struct ifreq


def cmsg_align(n: int) -> int:
    return (n + 7) & ~7


def cmsg_space(n: int) -> int:
    return CMSGHDR.size + cmsg_align(n)


def parse_cmsgs(raw: bytes) -> list[tuple[int, int, bytes]]:
    """A guest's msg_control as (level, type, data) items (EINVAL for a malformed one)."""
    out, pos = [], 0
    while pos + CMSGHDR.size <= len(raw):
        ln, level, typ = CMSGHDR.unpack_from(raw, pos)
        if ln < CMSGHDR.size or pos + ln > len(raw):
            raise SyscallError(EINVAL)
        out.append((level, typ, raw[pos + CMSGHDR.size:pos + ln]))
        pos += cmsg_align(ln)
    return out


def build_cmsg(level: int, typ: int, data: bytes) -> bytes:
    """One control message, padded to its CMSG_SPACE except that the last may be cut by the caller."""
    body = CMSGHDR.pack(CMSGHDR.size + len(data), level, typ) + data
    return body + bytes(cmsg_align(len(body)) - len(body))


def timeval_seconds(raw: bytes) -> float | None:
    """SO_RCVTIMEO/SO_SNDTIMEO value: None for no timeout (0), else seconds."""
    if len(raw) < TIMEVAL.size:
        raise SyscallError(EINVAL)
    sec, usec = TIMEVAL.unpack_from(raw)
    if usec < 0 or usec >= 1_000_000:
        raise SyscallError(EDOM)
    if sec < 0:
        return None if sec == 0 and usec == 0 else 0.0   # Linux: a negative time means no wait... as 0
    t = sec + usec / 1e6
    return None if t == 0 else t


def timeval_bytes(t: float | None) -> bytes:
    if not t:
        return TIMEVAL.pack(0, 0)
    us = round(t * 1e6)
    return TIMEVAL.pack(us // 1_000_000, us % 1_000_000)


class Socket(File):
    """A socket open file description. Subclasses implement the socket operations;
    each raises SyscallError, EAGAIN when it would block."""

    family = abi.AF_UNSPEC
    type = abi.SOCK_STREAM
    proto = 0
    kernel: "Kernel"   # set by __init__: the VM the socket lives in
    rcvtimeo: float | None = None
    sndtimeo: float | None = None
    pseudo_fs = abi.SOCKFS_MAGIC

    def __init__(self, flags: int, kernel):
        self.flags = abi.O_RDWR | (flags & abi.O_NONBLOCK)
        self.kernel = kernel
        self.ino = next(kernel.socket_inos)

    # -- as a file ---------------------------------------------------------------
    @property
    def path(self) -> str:  # type: ignore[override]  # derived, where the base stores it
        return f"socket:[{self.ino}]"

    def link_text(self) -> str:
        return self.path

    def stat(self):
        return Stat(st_mode=abi.S_IFSOCK | 0o777, st_ino=self.ino, st_blksize=4096)

    def read(self, n: int) -> bytes:
        return self.recv(n, 0)

    def write(self, data: bytes) -> int:
        try:
            return self.send(data, 0)
        except SyscallError as e:
            if e.errno == EPIPE:
                sigpipe(self)
            raise

    def ioctl(self, task, req: int, arg: int) -> int:
        if req in IFREQ_GET or req == SIOCGIFCONF:
            # any socket answers the interface requests (glibc asks an AF_UNIX one first)
            from umiak.kernel.net import vm_stack
            from umiak.kernel.net.host import interface_ioctl  # lazy: start-up
            return interface_ioctl(task, vm_stack(self.kernel).probe_fd(), req, arg)
        if req in (SIOCINQ,):
            task.mm.write_u32(arg, self.available())
            return 0
        if req == SIOCOUTQ:
            task.mm.write_u32(arg, self.outq())
            return 0
        raise SyscallError(ENOTTY)

    def outq(self) -> int:
        return 0

    # -- the socket operations ------------------------------------------------------
    def bind(self, task, addr: bytes) -> None:
        raise SyscallError(EOPNOTSUPP)

    def listen(self, backlog: int) -> None:
        raise SyscallError(EOPNOTSUPP)

    def accept(self, task, flags: int) -> tuple["Socket", bytes]:
        raise SyscallError(EOPNOTSUPP)

    def connect(self, task, addr: bytes) -> None:
        """Start connecting: return when connected, raise EINPROGRESS when under way
        (the syscall layer then waits for POLLOUT and asks `connect_result`)."""
        raise SyscallError(EOPNOTSUPP)

    def connect_result(self) -> int:
        return 0

    def getsockname(self) -> bytes:
        raise SyscallError(EOPNOTSUPP)

    def getpeername(self) -> bytes:
        raise SyscallError(EOPNOTSUPP)

    def shutdown(self, how: int) -> None:
        raise SyscallError(EOPNOTSUPP)

    def send(self, data: bytes, flags: int) -> int:
        return self.sendmsg(self.kernel.current_task(), data, [], flags)

    def recv(self, n: int, flags: int) -> bytes:
        return self.recvmsg(self.kernel.current_task(), n, flags, 0)[0]

    def sendmsg(self, task, data: bytes, cmsgs: list, flags: int, addr: bytes | None = None) -> int:
        raise SyscallError(EOPNOTSUPP)

    def recvmsg(self, task, n: int, flags: int, controllen: int, want_addr: bool = False):
        """-> (data, addr bytes or None, control bytes, msg_flags, full length of the datagram)"""
        raise SyscallError(EOPNOTSUPP)

    def setsockopt(self, task, level: int, name: int, value: bytes) -> None:
        raise SyscallError(ENOPROTOOPT)

    def getsockopt(self, task, level: int, name: int, size: int) -> bytes:
        raise SyscallError(ENOPROTOOPT)


def sigpipe(sock) -> None:
    """EPIPE on a socket write: SIGPIPE to the writing thread (caller holds the kernel lock)."""
    from umiak.kernel.signals import make_siginfo, send
    kernel = sock.kernel
    task = kernel.current_task() if kernel is not None else None
    if task is None:
        return
    send(kernel, task.process, abi.SIGPIPE, make_siginfo(abi.SIGPIPE, 0, pid=task.process.pid), task)
