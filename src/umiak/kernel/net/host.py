"""Sockets on the host's network stack: AF_INET, AF_INET6 (TCP, UDP, ICMP where the host
allows) and AF_NETLINK (NETLINK_ROUTE) are real host sockets.

The host socket is always non-blocking; O_NONBLOCK is the guest's flag, and the
syscall layer waits for readiness on the host fd (a HostSocket has `fd`, so
poll/select/epoll poll it on the host too). Addresses pass through as raw bytes
(ctypes calls), so every sockaddr field reaches the host as the guest wrote it.
Nothing that would hand a guest pointer or a host fd across the boundary
passes: SCM_RIGHTS on these sockets is EINVAL, socket filters (they hold a
pointer) are refused, netlink requests that change the host are EPERM in host
mode (the guest may read the host's interfaces and routes, not change them).
"""

import ctypes
import errno
import fcntl
import os
import socket as _socket
import struct

from umiak.kernel import abi
from umiak.kernel.abi import (AF_NETLINK, MSG_DONTWAIT, MSG_NOSIGNAL, NLMSGHDR, SCM_RIGHTS, SIOCGIFCONF, SIOCOUTQ,
                              SO_ATTACH_BPF, SO_ATTACH_FILTER, SO_ATTACH_REUSEPORT_CBPF, SO_ATTACH_REUSEPORT_EBPF,
                              SO_PEERPIDFD, SOCKADDR_MAX, SOL_NETLINK, TCP_ZEROCOPY_RECEIVE)
from umiak.kernel.errors import EAGAIN, EINVAL, ENOPROTOOPT, EPERM, SyscallError
from umiak.kernel.net.base import IFREQ_GET, Socket

# flags a host call may see (the guest's MSG_WAITALL/MSG_CMSG_CLOEXEC are done here)
SEND_FLAGS = abi.MSG_OOB | abi.MSG_DONTROUTE | abi.MSG_EOR | abi.MSG_MORE | abi.MSG_CONFIRM | abi.MSG_FASTOPEN
RECV_FLAGS = abi.MSG_OOB | abi.MSG_PEEK | abi.MSG_TRUNC | abi.MSG_ERRQUEUE
MAX_RECV = 1 << 20           # one host recv at most (a socket read may be short)
REFUSED_OPTS = {
    (abi.SOL_SOCKET, SO_ATTACH_FILTER), (abi.SOL_SOCKET, SO_ATTACH_BPF),
    (abi.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF), (abi.SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF),
    (abi.SOL_SOCKET, SO_PEERPIDFD), (abi.SOL_TCP, TCP_ZEROCOPY_RECEIVE),
}
OPT_LEVELS = {abi.SOL_SOCKET, abi.SOL_IP, abi.SOL_TCP, abi.SOL_UDP, abi.SOL_IPV6,
              abi.IPPROTO_ICMPV6, SOL_NETLINK, 255, 136}   # ..., SOL_RAW, SOL_UDPLITE


class _iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(_iovec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p),
                ("controllen", ctypes.c_size_t), ("flags", ctypes.c_int)]


_LIBC: list[ctypes.CDLL] = []   # libc, loaded on first use (one per host process: it holds no VM state)


def libc():
    if not _LIBC:
        c = ctypes.CDLL(None, use_errno=True)
        vp, i, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
        for name, args in (("bind", [i, ctypes.c_char_p, ctypes.c_uint32]),
                           ("connect", [i, ctypes.c_char_p, ctypes.c_uint32]),
                           ("accept4", [i, vp, vp, i]), ("getsockname", [i, vp, vp]),
                           ("getpeername", [i, vp, vp]), ("sendmsg", [i, vp, i]),
                           ("recvmsg", [i, vp, i]), ("ioctl", [i, ctypes.c_ulong, vp])):
            fn = getattr(c, name)
            fn.argtypes = args
            fn.restype = ctypes.c_ssize_t if name in ("sendmsg", "recvmsg") else i
        _ = sz
        _LIBC.append(c)
    return _LIBC[0]


def _fail():
    raise SyscallError(ctypes.get_errno() or EINVAL)


def _oserror(e: OSError) -> SyscallError:
    return SyscallError(e.errno or EINVAL)


def interface_ioctl(task, fd: int, req: int, arg: int) -> int:
    """The SIOCGIF* requests that only read (names, flags, addresses, index, SIOCGIFCONF),
    asked of the host socket fd (a socket of the VM's namespace)."""
    if req in IFREQ_GET:
        ifr = task.mm.read(arg, 40)
        try:
            out = fcntl.ioctl(fd, req, ifr)
        except OSError as e:
            raise _oserror(e) from None
        task.mm.write(arg, out)
        return 0
    length, ptr = struct.unpack("<i4xQ", task.mm.read(arg, 16))
    if length < 0:
        raise SyscallError(EINVAL)
    buf = ctypes.create_string_buffer(max(length, 1))
    ifc = ctypes.create_string_buffer(struct.pack("<i4xQ", length, ctypes.addressof(buf) if ptr else 0), 16)
    if libc().ioctl(fd, req, ifc) < 0:
        _fail()
    got = struct.unpack_from("<i", ifc.raw)[0]
    if ptr:
        task.mm.write(ptr, buf.raw[:got])
    task.mm.write_u32(arg, got)
    return 0


class HostSocket(Socket):
    """A guest socket that is a host socket."""

    direct_io = True   # a stream or datagram socket that is not netlink (__init__)

    def __init__(self, kernel, sock: _socket.socket, flags: int, stack=None):
        super().__init__(flags, kernel)
        self.kernel = kernel
        self.stack = stack
        self.sock = sock
        self.fd = sock.fileno()
        self.family = int(sock.family)
        self.type = int(sock.type) & 0xF
        self.proto = sock.proto
        if self.family == AF_NETLINK:
            self.direct_io = False   # its requests are checked (send)
        try:
            self.ino = os.fstat(self.fd).st_ino
        except OSError:
            pass

    def host_fd(self) -> int | None:
        """The host socket, polled on the host; None once released (nothing to poll)."""
        return self.fd if self.fd >= 0 else None

    def poll_mask(self) -> int:
        return super().poll_mask() if self.fd >= 0 else 0   # released: epoll sets may still hold it

    def statfs(self) -> dict:
        from umiak.kernel.vfs.hostfs import host_statfs
        return host_statfs(self.fd)

    def stat(self):
        try:
            return os.fstat(self.fd)
        except OSError as e:
            raise _oserror(e) from None

    def close(self) -> None:
        if self.fd >= 0:
            self.fd = -1
            self.sock.close()

    def available(self) -> int:
        return self._int_ioctl(abi.FIONREAD)

    def outq(self) -> int:
        return self._int_ioctl(SIOCOUTQ)

    def _int_ioctl(self, req: int) -> int:
        try:
            out = fcntl.ioctl(self.fd, req, bytes(4))
        except OSError as e:
            raise _oserror(e) from None
        return int.from_bytes(out, "little", signed=True)

    def ioctl(self, task, req: int, arg: int) -> int:
        if req in IFREQ_GET or req == SIOCGIFCONF:
            return interface_ioctl(task, self.fd, req, arg)
        return super().ioctl(task, req, arg)

    # -- connections -------------------------------------------------------------
    def bind(self, task, addr: bytes) -> None:
        if self.family == AF_NETLINK and len(addr) >= 8:
            addr = addr[:4] + bytes(4) + addr[8:]    # nl_pid: let the host choose (guest pids are not the host's)
        if libc().bind(self.fd, addr, len(addr)) < 0:
            _fail()

    def listen(self, backlog: int) -> None:
        try:
            self.sock.listen(backlog)
        except OSError as e:
            raise _oserror(e) from None

    def accept(self, task, flags: int):
        buf = ctypes.create_string_buffer(SOCKADDR_MAX)
        ln = ctypes.c_uint32(SOCKADDR_MAX)
        fd = libc().accept4(self.fd, buf, ctypes.byref(ln), _socket.SOCK_NONBLOCK | _socket.SOCK_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise SyscallError(EAGAIN if err == errno.EWOULDBLOCK else err or EINVAL)
        sock = _socket.socket(fileno=fd)
        return HostSocket(self.kernel, sock, flags, self.stack), buf.raw[:min(ln.value, SOCKADDR_MAX)]

    def connect(self, task, addr: bytes) -> None:
        if libc().connect(self.fd, addr, len(addr)) < 0:
            _fail()

    def connect_result(self) -> int:
        return self.sock.getsockopt(abi.SOL_SOCKET, abi.SO_ERROR)

    def _name(self, fn) -> bytes:
        buf = ctypes.create_string_buffer(SOCKADDR_MAX)
        ln = ctypes.c_uint32(SOCKADDR_MAX)
        if fn(self.fd, buf, ctypes.byref(ln)) < 0:
            _fail()
        return buf.raw[:min(ln.value, SOCKADDR_MAX)]

    def getsockname(self) -> bytes:
        return self._name(libc().getsockname)

    def getpeername(self) -> bytes:
        return self._name(libc().getpeername)

    def shutdown(self, how: int) -> None:
        try:
            self.sock.shutdown(how)
        except OSError as e:
            raise _oserror(e) from None

    # -- data ----------------------------------------------------------------------
    def recv(self, n: int, flags: int) -> bytes:
        try:
            return self.sock.recv(min(n, MAX_RECV), (flags & RECV_FLAGS) | MSG_DONTWAIT)
        except BlockingIOError:
            raise SyscallError(EAGAIN) from None
        except OSError as e:
            raise _oserror(e) from None

    def readinto(self, views: "list[memoryview]") -> int:
        """read(2) of a non-blocking socket: one host recv into guest memory, no bytes made."""
        try:
            if len(views) == 1:
                return self.sock.recv_into(views[0], 0, MSG_DONTWAIT)
            return self.sock.recvmsg_into(views, 0, MSG_DONTWAIT)[0]
        except BlockingIOError:
            raise SyscallError(EAGAIN) from None
        except OSError as e:
            raise _oserror(e) from None

    def send(self, data: bytes, flags: int) -> int:
        if self.family == AF_NETLINK:
            self._check_netlink(data)
        try:
            return self.sock.send(data, (flags & SEND_FLAGS) | MSG_DONTWAIT | MSG_NOSIGNAL)
        except BlockingIOError:
            raise SyscallError(EAGAIN) from None
        except OSError as e:
            raise _oserror(e) from None

    def sendmsg(self, task, data: bytes, cmsgs: list, flags: int, addr: bytes | None = None) -> int:
        if not cmsgs and addr is None:
            return self.send(data, flags)
        if self.family == AF_NETLINK:
            self._check_netlink(data)
        control = b""
        for level, typ, body in cmsgs:
            if level == abi.SOL_SOCKET and typ == SCM_RIGHTS:
                raise SyscallError(EINVAL)     # as Linux for a non-AF_UNIX socket
            from umiak.kernel.net.base import build_cmsg
            control += build_cmsg(level, typ, body)
        dbuf = ctypes.create_string_buffer(data, len(data)) if data else None
        iov = _iovec(ctypes.addressof(dbuf) if dbuf is not None else None, len(data))
        name = ctypes.create_string_buffer(addr, len(addr)) if addr else None
        cbuf = ctypes.create_string_buffer(control, len(control)) if control else None
        msg = _msghdr(ctypes.addressof(name) if name is not None else None, len(addr or b""),
                      ctypes.pointer(iov), 1, ctypes.addressof(cbuf) if cbuf is not None else None,
                      len(control), 0)
        n = libc().sendmsg(self.fd, ctypes.addressof(msg), (flags & SEND_FLAGS) | MSG_DONTWAIT | MSG_NOSIGNAL)
        if n < 0:
            err = ctypes.get_errno()
            raise SyscallError(EAGAIN if err == errno.EWOULDBLOCK else err or EINVAL)
        return n

    def recvmsg(self, task, n: int, flags: int, controllen: int, want_addr: bool = False):
        if not want_addr and not controllen and (self.type == abi.SOCK_STREAM or not flags & abi.MSG_TRUNC):
            data = self.recv(n, flags)
            return data, None, b"", 0, len(data)
        return self._recvmsg(n, flags, controllen)

    def _recvmsg(self, n: int, flags: int, controllen: int):
        n = min(n, MAX_RECV)
        dbuf = ctypes.create_string_buffer(max(n, 1))
        iov = _iovec(ctypes.addressof(dbuf), n)
        name = ctypes.create_string_buffer(SOCKADDR_MAX)
        cbuf = ctypes.create_string_buffer(controllen) if controllen else None
        msg = _msghdr(ctypes.addressof(name), SOCKADDR_MAX, ctypes.pointer(iov), 1,
                      ctypes.addressof(cbuf) if cbuf is not None else None, controllen, 0)
        got = libc().recvmsg(self.fd, ctypes.addressof(msg), (flags & RECV_FLAGS) | MSG_DONTWAIT)
        if got < 0:
            err = ctypes.get_errno()
            raise SyscallError(EAGAIN if err == errno.EWOULDBLOCK else err or EINVAL)
        control = cbuf.raw[:msg.controllen] if cbuf is not None else b""
        addr = name.raw[:min(msg.namelen, SOCKADDR_MAX)] if msg.namelen else b""
        return dbuf.raw[:min(got, n)], addr, control, msg.flags, got

    # -- options ---------------------------------------------------------------------
    def setsockopt(self, task, level: int, name: int, value: bytes) -> None:
        self._check_opt(level, name)
        try:
            self.sock.setsockopt(level, name, value)
        except OSError as e:
            raise _oserror(e) from None

    def getsockopt(self, task, level: int, name: int, size: int) -> bytes:
        self._check_opt(level, name)
        try:
            return self.sock.getsockopt(level, name, max(1, min(size, 1024)))[:size]
        except OSError as e:
            raise _oserror(e) from None

    def _check_opt(self, level: int, name: int) -> None:
        if level not in OPT_LEVELS or (level, name) in REFUSED_OPTS:
            raise SyscallError(ENOPROTOOPT)

    def _check_netlink(self, data: bytes) -> None:
        """Host mode: only requests that read (RTM_GET*, NLMSG_NOOP/DONE) reach the host."""
        if self.stack is not None and self.stack.mode != "host":
            return   # our own namespace: the guest is its administrator
        pos = 0
        while pos + NLMSGHDR.size <= len(data):
            ln, typ = NLMSGHDR.unpack_from(data, pos)[:2]
            if typ >= 16 and typ & 3 != 2 or typ in (2,):
                raise SyscallError(EPERM)
            if ln < NLMSGHDR.size:
                break
            pos += (ln + 3) & ~3

