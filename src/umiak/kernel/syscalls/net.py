"""The socket family: socket(2), bind(2), connect(2), accept4(2), sendmsg(2), recvmsg(2) ...

The socket objects live in `kernel/net/` (host sockets for AF_INET/AF_INET6/
AF_NETLINK, Python AF_UNIX). Their operations never block; here every call that
may wait does so through `_wait_op` (Task.wait: signals give EINTR or a restart,
SO_RCVTIMEO/SO_SNDTIMEO are its deadline), unless O_NONBLOCK or MSG_DONTWAIT.
"""

import struct
import time

from umiak.kernel import abi
from umiak.kernel.abi import (MMSGHDR_SIZE, MSG_WAITFORONE, MSGHDR, NETLINK_ROUTE, POLLERR, POLLHUP, POLLIN,
                              POLLOUT, SO_RCVTIMEO_NEW, SO_SNDTIMEO_NEW, SOCKADDR_MAX, UIO_MAXIOV, s32)
from umiak.kernel.errors import (EAFNOSUPPORT, EAGAIN, EINPROGRESS, EINTR, EINVAL, EMFILE, ENOTSOCK, EOPNOTSUPP,
                                 EPIPE, EPROTONOSUPPORT, ERESTARTSYS, ESOCKTNOSUPPORT, SyscallError)
from umiak.kernel.net.base import Socket, parse_cmsgs, sigpipe, timeval_bytes, timeval_seconds
from umiak.kernel.waiting import wait_for

MAX_SEND = 4 << 20         # bytes of a stream send taken from guest memory per step


# -- helpers --------------------------------------------------------------------------

def _sock(task, fd) -> Socket:
    return task.fds.get_as(s32(fd), Socket, ENOTSOCK)


def _read_addr(task, addr, addrlen) -> bytes:
    n = s32(addrlen)
    if n < 0 or n > SOCKADDR_MAX:
        raise SyscallError(EINVAL)
    if n == 0:
        return b""
    return task.mm.read(addr, n)


def _write_addr(task, addr, lenp, raw: bytes) -> None:
    """Fill a (struct sockaddr *, socklen_t *) pair as Linux's move_addr_to_user."""
    if not addr or not lenp:
        return
    ln = s32(task.mm.read_u32(lenp))
    if ln < 0:
        raise SyscallError(EINVAL)
    if ln and raw:
        task.mm.write(addr, raw[:ln])
    task.mm.write_u32(lenp, len(raw))


def _nonblock(sock, flags: int = 0) -> bool:
    return bool(sock.flags & abi.O_NONBLOCK or flags & abi.MSG_DONTWAIT)


def _wait_op(task, sock, events: int, op, nonblock: bool, timeout: float | None):
    """op() until it does not raise EAGAIN, waiting for `events` on sock in between."""
    deadline = None if timeout is None else time.monotonic() + timeout
    internal = sock.host_fd() is None
    while True:
        try:
            return op()
        except SyscallError as e:
            if e.errno != EAGAIN or nonblock:
                raise
        left = None
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SyscallError(EAGAIN)
        if internal and sock.poll_mask() & (events | POLLERR | POLLHUP):
            left = 0.002 if left is None else min(left, 0.002)   # ready, yet it would block: look again soon
        try:
            wait_for(task, [(sock, events)], left)
        except SyscallError as e:
            if e.errno == ERESTARTSYS and timeout is not None:
                raise SyscallError(EINTR) from None    # Linux: a socket timeout makes it EINTR
            raise


def _install(task, sock, flags: int) -> int:
    return task.fds.install(sock, cloexec=bool(flags & abi.SOCK_CLOEXEC))


# -- making sockets -------------------------------------------------------------------------

def _new_socket(task, family: int, stype: int, proto: int, flags: int) -> Socket:
    kernel = task.kernel
    if kernel.config is not None and family not in kernel.config.socket_families:
        raise SyscallError(EAFNOSUPPORT)    # a family this kernel was configured without
    if family == abi.AF_UNIX:
        if stype not in (abi.SOCK_STREAM, abi.SOCK_DGRAM, abi.SOCK_SEQPACKET):
            raise SyscallError(ESOCKTNOSUPPORT)
        if proto not in (0, abi.AF_UNIX):
            raise SyscallError(EPROTONOSUPPORT)
        from umiak.kernel.net.unix import UnixSocket
        return UnixSocket(kernel, stype, flags)
    if family in (abi.AF_INET, abi.AF_INET6, abi.AF_NETLINK):
        if family == abi.AF_NETLINK:
            if stype not in (abi.SOCK_RAW, abi.SOCK_DGRAM):
                raise SyscallError(ESOCKTNOSUPPORT)
            if proto != NETLINK_ROUTE:
                raise SyscallError(EPROTONOSUPPORT)
        from umiak.kernel.net import vm_stack
        from umiak.kernel.net.host import HostSocket
        st = vm_stack(kernel)
        return HostSocket(kernel, st.host_socket(family, stype, proto), flags, st)
    raise SyscallError(EAFNOSUPPORT)


def _split_type(type_: int) -> tuple[int, int]:
    type_ = s32(type_)
    flags = type_ & (abi.SOCK_NONBLOCK | abi.SOCK_CLOEXEC)
    if type_ & ~(0xF | abi.SOCK_NONBLOCK | abi.SOCK_CLOEXEC):
        raise SyscallError(EINVAL)
    return type_ & 0xF, flags


def sys_socket(task, family, type_, protocol):
    """socket(2): AF_UNIX (in Python), AF_INET/AF_INET6/AF_NETLINK(NETLINK_ROUTE) on the host stack."""
    stype, flags = _split_type(type_)
    family, proto = s32(family), s32(protocol)
    if not 0 <= family < 46:
        raise SyscallError(EAFNOSUPPORT)
    sock = _new_socket(task, family, stype, proto, flags)
    try:
        return _install(task, sock, flags)
    except SyscallError:
        sock.close()
        raise


def sys_socketpair(task, family, type_, protocol, sv):
    """socketpair(2): AF_UNIX only, as Linux."""
    stype, flags = _split_type(type_)
    family, proto = s32(family), s32(protocol)
    cfg = task.kernel.config
    if cfg is not None and family == abi.AF_UNIX and family not in cfg.socket_families:
        raise SyscallError(EAFNOSUPPORT)
    if family != abi.AF_UNIX:
        raise SyscallError(EOPNOTSUPP if family in (abi.AF_INET, abi.AF_INET6) else EAFNOSUPPORT)
    if stype not in (abi.SOCK_STREAM, abi.SOCK_DGRAM, abi.SOCK_SEQPACKET):
        raise SyscallError(ESOCKTNOSUPPORT)
    if proto not in (0, abi.AF_UNIX):
        raise SyscallError(EPROTONOSUPPORT)
    from umiak.kernel.net.unix import socketpair
    a, b = socketpair(task.kernel, task, stype, flags)
    fa = _install(task, a, flags)
    try:
        fb = _install(task, b, flags)
    except SyscallError:
        task.fds.close(fa)
        b.close()
        raise
    try:
        task.mm.write(sv, struct.pack("<ii", fa, fb))
    except SyscallError:
        task.fds.close(fa)
        task.fds.close(fb)
        raise
    return 0


# -- connections -------------------------------------------------------------------------------

def sys_bind(task, fd, addr, addrlen):
    """bind(2)"""
    sock = _sock(task, fd)
    raw = _read_addr(task, addr, addrlen)
    if not raw:
        raise SyscallError(EINVAL)
    sock.bind(task, raw)
    return 0


def sys_listen(task, fd, backlog):
    """listen(2)"""
    sock = _sock(task, fd)
    backlog = s32(backlog)
    sock.listen(min(backlog, 4096) if backlog >= 0 else 4096)
    return 0


def sys_accept4(task, fd, addr, addrlen, flags):
    """accept4(2)"""
    flags = s32(flags)
    if flags & ~(abi.SOCK_CLOEXEC | abi.SOCK_NONBLOCK):
        raise SyscallError(EINVAL)
    sock = _sock(task, fd)
    if addr and addrlen and s32(task.mm.read_u32(addrlen)) < 0:
        raise SyscallError(EINVAL)
    if len(task.fds.files) >= task.fds.limit:
        raise SyscallError(EMFILE)
    new, peer = _wait_op(task, sock, POLLIN, lambda: sock.accept(task, flags), _nonblock(sock), sock.rcvtimeo)
    try:
        nfd = _install(task, new, flags)
    except SyscallError:
        new.close()
        raise
    try:
        _write_addr(task, addr, addrlen, peer)
    except SyscallError:
        task.fds.close(nfd)
        raise
    return nfd


def sys_accept(task, fd, addr, addrlen):
    """accept(2)"""
    return sys_accept4(task, fd, addr, addrlen, 0)


def sys_connect(task, fd, addr, addrlen):
    """connect(2): a blocking connect waits for the host's handshake (SO_SNDTIMEO: then EINPROGRESS)."""
    sock = _sock(task, fd)
    raw = _read_addr(task, addr, addrlen)
    if not raw:
        raise SyscallError(EINVAL)
    try:
        sock.connect(task, raw)
        return 0
    except SyscallError as e:
        if e.errno != EINPROGRESS or _nonblock(sock):
            raise
    deadline = None if sock.sndtimeo is None else time.monotonic() + sock.sndtimeo
    while not sock.poll_mask() & (POLLOUT | POLLERR | POLLHUP):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise SyscallError(EINPROGRESS)
        wait_for(task, [(sock, POLLOUT)], left)
    err = sock.connect_result()
    if err:
        raise SyscallError(err)
    return 0


def sys_getsockname(task, fd, addr, addrlen):
    """getsockname(2)"""
    sock = _sock(task, fd)
    _write_addr(task, addr, addrlen, sock.getsockname())
    return 0


def sys_getpeername(task, fd, addr, addrlen):
    """getpeername(2)"""
    sock = _sock(task, fd)
    _write_addr(task, addr, addrlen, sock.getpeername())
    return 0


def sys_shutdown(task, fd, how):
    """shutdown(2)"""
    sock = _sock(task, fd)
    how = s32(how)
    if how not in (abi.SHUT_RD, abi.SHUT_WR, abi.SHUT_RDWR):
        raise SyscallError(EINVAL)
    sock.shutdown(how)
    return 0


# -- options ----------------------------------------------------------------------------------------

def sys_setsockopt(task, fd, level, optname, optval, optlen):
    """setsockopt(2): SO_RCVTIMEO/SO_SNDTIMEO are kept here (they are wait deadlines);
    other options go to the socket (the host's for host sockets)."""
    sock = _sock(task, fd)
    level, name, n = s32(level), s32(optname), s32(optlen)
    if n < 0:
        raise SyscallError(EINVAL)
    value = task.mm.read(optval, min(n, 4096)) if n else b""
    if level == abi.SOL_SOCKET and name in (abi.SO_RCVTIMEO, abi.SO_SNDTIMEO, SO_RCVTIMEO_NEW, SO_SNDTIMEO_NEW):
        t = timeval_seconds(value)
        if name in (abi.SO_RCVTIMEO, SO_RCVTIMEO_NEW):
            sock.rcvtimeo = t
        else:
            sock.sndtimeo = t
        return 0
    sock.setsockopt(task, level, name, value)
    return 0


def sys_getsockopt(task, fd, level, optname, optval, optlen):
    """getsockopt(2)"""
    sock = _sock(task, fd)
    level, name = s32(level), s32(optname)
    n = s32(task.mm.read_u32(optlen))
    if n < 0:
        raise SyscallError(EINVAL)
    if level == abi.SOL_SOCKET and name in (abi.SO_RCVTIMEO, abi.SO_SNDTIMEO, SO_RCVTIMEO_NEW, SO_SNDTIMEO_NEW):
        out = timeval_bytes(sock.rcvtimeo if name in (abi.SO_RCVTIMEO, SO_RCVTIMEO_NEW) else sock.sndtimeo)
    else:
        out = sock.getsockopt(task, level, name, n)
    out = out[:n]
    if out:
        task.mm.write(optval, out)
    task.mm.write_u32(optlen, len(out))
    return 0


# -- data ----------------------------------------------------------------------------------------------

def _send(task, sock, data: bytes, cmsgs: list, flags: int, dest: bytes | None) -> int:
    """Send as Linux: a blocking stream send goes on until all is sent (or a signal after some)."""
    nonblock = _nonblock(sock, flags)
    stream = sock.type == abi.SOCK_STREAM
    sent = 0
    try:
        while True:
            chunk = data[sent:] if sent else data
            try:
                n = _wait_op(task, sock, POLLOUT, lambda chunk=chunk, cmsgs=cmsgs: sock.sendmsg(task, chunk, cmsgs,
                                                                                                 flags, dest),
                             nonblock, sock.sndtimeo)
            except SyscallError as e:
                if sent and e.errno in (EAGAIN, EINTR, ERESTARTSYS):
                    return sent
                raise
            sent += n
            cmsgs = []
            if not stream or nonblock or sent >= len(data):
                return sent
    except SyscallError as e:
        if e.errno == EPIPE and not flags & abi.MSG_NOSIGNAL:
            sigpipe(sock)
        raise


def _recv(task, sock, n: int, flags: int, controllen: int, want_addr: bool):
    """(data, addr, control, msg_flags, full length); MSG_WAITALL loops on stream sockets."""
    nonblock = _nonblock(sock, flags)
    got = _wait_op(task, sock, POLLIN, lambda: sock.recvmsg(task, n, flags, controllen, want_addr),
                   nonblock, sock.rcvtimeo)
    if (flags & abi.MSG_WAITALL and sock.type == abi.SOCK_STREAM and not flags & abi.MSG_PEEK
            and not nonblock and got[0] and len(got[0]) < n):
        parts, total = [got[0]], len(got[0])
        while total < n:
            try:
                more = _wait_op(task, sock, POLLIN, lambda left=n - total: sock.recvmsg(task, left, flags, 0, False),
                                False, sock.rcvtimeo)[0]
            except SyscallError:
                break
            if not more:
                break
            parts.append(more)
            total += len(more)
        data = b"".join(parts)
        got = (data, got[1], got[2], got[3], len(data))
    return got


def _gather(task, vecs) -> bytes:
    return b"".join(task.mm.read(base, ln) for base, ln in vecs if ln)


def _scatter(task, vecs, data: bytes) -> None:
    pos = 0
    for base, ln in vecs:
        if pos >= len(data):
            break
        if ln:
            task.mm.write(base, data[pos:pos + ln])
            pos += ln


def _iovecs(task, iov, iovlen):
    from umiak.kernel.syscalls.rw import _iovecs
    return _iovecs(task, iov, iovlen)


def sys_sendto(task, fd, buf, length, flags, addr, addrlen):
    """sendto(2)"""
    sock = _sock(task, fd)
    flags = s32(flags)
    length = min(length, 0x7FFFF000)
    if sock.type == abi.SOCK_STREAM:
        length = min(length, MAX_SEND)
    data = task.mm.read(buf, length) if length else b""
    dest = _read_addr(task, addr, addrlen) if addr else None
    return _send(task, sock, data, [], flags, dest or None)


def sys_recvfrom(task, fd, buf, length, flags, addr, addrlen):
    """recvfrom(2)"""
    sock = _sock(task, fd)
    flags = s32(flags)
    if addr and addrlen and s32(task.mm.read_u32(addrlen)) < 0:
        raise SyscallError(EINVAL)
    n = min(length, 0x7FFFF000)
    data, src, _, mflags, full = _recv(task, sock, n, flags, 0, bool(addr))
    if data:
        task.mm.write(buf, data)
    if addr and src is not None:
        _write_addr(task, addr, addrlen, src)
    if flags & abi.MSG_TRUNC and sock.type != abi.SOCK_STREAM:
        return full
    return len(data)


def _sendmsg(task, sock, msg: int, flags: int) -> int:
    name, namelen, iov, iovlen, control, controllen, _ = task.mm.read_struct(msg, MSGHDR)
    if namelen > SOCKADDR_MAX:
        raise SyscallError(EINVAL)
    vecs = _iovecs(task, iov, iovlen)
    if controllen > (1 << 20):
        raise SyscallError(EINVAL)   # Linux: ENOBUFS past sysctl_optmem_max; EINVAL is close enough
    cmsgs = parse_cmsgs(task.mm.read(control, controllen)) if control and controllen else []
    dest = task.mm.read(name, namelen) if name and namelen else None
    data = _gather(task, vecs)
    return _send(task, sock, data, cmsgs, flags, dest)


def sys_sendmsg(task, fd, msg, flags):
    """sendmsg(2)"""
    sock = _sock(task, fd)
    return _sendmsg(task, sock, msg, s32(flags))


def _recvmsg(task, sock, msg: int, flags: int) -> int:
    name, namelen, iov, iovlen, control, controllen, _ = task.mm.read_struct(msg, MSGHDR)
    vecs = _iovecs(task, iov, iovlen)
    total = sum(ln for _, ln in vecs)
    if s32(namelen) < 0:
        raise SyscallError(EINVAL)
    data, src, ctrl, mflags, full = _recv(task, sock, total, flags, controllen if control else 0, bool(name))
    _scatter(task, vecs, data)
    if full > len(data) and sock.type != abi.SOCK_STREAM:
        mflags |= abi.MSG_TRUNC
    out_namelen = 0
    if name and src:
        task.mm.write(name, src[:namelen])
        out_namelen = len(src)
    if ctrl:
        task.mm.write(control, ctrl)
    task.mm.write_u32(msg + 8, out_namelen)
    task.mm.write_u64(msg + 40, len(ctrl))
    task.mm.write_u32(msg + 48, (mflags | flags & abi.MSG_CMSG_CLOEXEC) & 0xFFFFFFFF)
    if flags & abi.MSG_TRUNC and sock.type != abi.SOCK_STREAM:
        return full
    return len(data)


def sys_recvmsg(task, fd, msg, flags):
    """recvmsg(2)"""
    sock = _sock(task, fd)
    return _recvmsg(task, sock, msg, s32(flags))


def _mmsg(task, msgvec, vlen, one) -> int:
    """The loop of sendmmsg/recvmmsg: one(header) -> (length, last) per message, the
    length into msg_len; an error after the first message ends the batch with the
    count so far, as Linux does."""
    done = 0
    for i in range(min(vlen & 0xFFFFFFFF, UIO_MAXIOV)):
        hdr = msgvec + i * MMSGHDR_SIZE
        try:
            n, last = one(hdr)
        except SyscallError:
            if done:
                break
            raise
        task.mm.write_u32(hdr + 56, n)
        done += 1
        if last:
            break
    return done


def sys_sendmmsg(task, fd, msgvec, vlen, flags):
    """sendmmsg(2)"""
    sock = _sock(task, fd)
    flags = s32(flags)
    return _mmsg(task, msgvec, vlen, lambda hdr: (_sendmsg(task, sock, hdr, flags), False))


def sys_recvmmsg(task, fd, msgvec, vlen, flags, timeout):
    """recvmmsg(2): the timeout is checked between messages, as Linux."""
    sock = _sock(task, fd)
    flags = s32(flags)
    deadline = None
    if timeout:
        sec, nsec = task.mm.read_struct(timeout, abi.TIMESPEC)
        if s32(sec) < 0 or nsec >= 1_000_000_000:
            raise SyscallError(EINVAL)
        deadline = time.monotonic() + sec + nsec / 1e9

    def one(hdr):
        nonlocal flags
        n = _recvmsg(task, sock, hdr, flags)
        if flags & MSG_WAITFORONE:
            flags |= abi.MSG_DONTWAIT
        return n, deadline is not None and time.monotonic() >= deadline
    return _mmsg(task, msgvec, vlen, one)

