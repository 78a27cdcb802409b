"""AF_UNIX sockets, written in Python: stream, datagram and seqpacket.

One VM runs one program, so every AF_UNIX peer is inside the VM: there is no
need for host sockets, and Python objects let SCM_RIGHTS pass the guest's own
File objects (a pipe, an eventfd, another socket) as Linux passes struct file.

Names: an abstract name (sun_path starting with NUL) lives in a table of the
VM, never the host's. Binding to a path makes an S_IFSOCK inode there through
the guest's VFS, as Linux (mode 0777 & ~umask; EADDRINUSE if the name exists;
on a writable volume a stream socket's name is a real host AF_UNIX socket that
host programs connect to: unixhost.py hands those connections to the listener). The table keys a path-bound socket by
that inode's (st_dev, st_ino): connect and sendto resolve the path through the
VFS like any file (symlinks included), so unlink frees the name, a rebind makes
a new inode, and close leaves the file behind (ECONNREFUSED), as on Linux. A
path that is not a socket gives ECONNREFUSED; the guest never reaches the host's
AF_UNIX sockets.
"""

import stat as _stat
from collections import deque
from typing import TYPE_CHECKING

from umiak.kernel import abi
from umiak.kernel.abi import (POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP, POLLRDNORM, POLLWRNORM, SCM_CREDENTIALS,
                              SCM_RIGHTS, SO_PEERGROUPS, UCRED)
from umiak.kernel.errors import (EADDRINUSE, EAGAIN, ECONNREFUSED, ECONNRESET, EINVAL, EISCONN, EMSGSIZE, ENOENT,
                                 ENOMEM, ENOPROTOOPT, ENOTCONN, EOPNOTSUPP, EPERM, EPIPE, SyscallError)
from umiak.kernel.frames import BufferCharge
from umiak.kernel.net.base import Socket, build_cmsg

if TYPE_CHECKING:
    import socket

BUF_SIZE = 212992          # Linux's default SO_SNDBUF/SO_RCVBUF (net.core.*mem_default)
MAX_DGRAM_QLEN = 512       # net.unix.max_dgram_qlen
SCM_MAX_FD = 253
UNIX_PATH_MAX = 108


class Msg:
    """One sent unit: bytes plus what travels with them."""

    __slots__ = ("data", "files", "creds", "sender")

    def __init__(self, data: bytes, files, creds, sender: bytes):
        self.data = data
        self.files = files        # list of File or None
        self.creds = creds        # (pid, uid, gid)
        self.sender = sender      # the sender's name (datagram recvfrom)


def _release(files) -> None:
    """A message's files leave flight (received or never to be): drop the message's
    reference on each; a file no descriptor refers to then closes."""
    for f in files:
        f.decref()


def _creds(task):
    if task is None:
        return (0, 0, 0)
    c = task.process.creds
    return (task.process.pid, c.euid, c.egid)


class UnixSocket(Socket):
    family = abi.AF_UNIX

    def __init__(self, kernel, sock_type: int, flags: int):
        super().__init__(flags, kernel)
        self.kernel = kernel
        self.type = sock_type
        self.name = b""            # sun_path as bound (b"" unnamed; b"\0..." abstract)
        self.key: tuple | None = None   # key in the VM's name table
        self.peer: "UnixSocket | None" = None
        self.rx: deque[Msg] = deque()
        self.rx_bytes = 0
        self.listening = False
        self.backlog: deque = deque()   # UnixSockets (and HostSockets of host clients)
        self.max_backlog = 0
        self.shut_rd = False       # no more receiving (own SHUT_RD or the peer's SHUT_WR/close)
        self.shut_wr = False
        self.peer_gone = False     # a connected peer closed
        self.connecting_failed = False
        self.passcred = False
        self.peercred = (0, 0, 0)
        self.sndbuf = BUF_SIZE
        self.rcvbuf = BUF_SIZE
        self.closed = False
        self.err = 0
        self.reuse = 0
        self.blocked: set = set()   # senders that found this socket's queue full
        self.host_listener: "socket.socket | None" = None   # a stream socket bound on a volume: its host socket (unixhost.py)
        self._bridge = None         # the thread accepting host clients (unixhost.py)
        self.charged = BufferCharge()   # guest frames for the receive queue (frames.BufferCharge)

    # -- readiness -------------------------------------------------------------------
    def _conn(self) -> bool:
        return self.type != abi.SOCK_DGRAM

    def _space(self) -> bool:
        p = self.peer
        if p is None or p.closed:
            return True
        if self.type == abi.SOCK_DGRAM and len(p.rx) >= MAX_DGRAM_QLEN:
            return False
        return p.rx_bytes < p.rcvbuf

    def poll_mask(self) -> int:
        if self.closed:
            return 0              # released: epoll forgets it (Linux drops it from every epoll set)
        if self.listening:
            return POLLIN | POLLRDNORM if self.backlog else 0
        m = 0
        if self.rx:
            m |= POLLIN | POLLRDNORM
        if self.shut_rd:
            m |= POLLIN | POLLRDNORM | POLLRDHUP
        if self.shut_rd and self.shut_wr:
            m |= POLLHUP
        if self.err:
            m |= POLLERR
        if self._conn():
            if self.peer is None and not self.peer_gone:
                return m            # not connected: never writable
            if self.peer_gone:
                m |= POLLOUT | POLLWRNORM
            elif self._space():
                m |= POLLOUT | POLLWRNORM
        elif self._space():
            m |= POLLOUT | POLLWRNORM
        return m

    def _changed(self) -> None:
        self.waitq.notify()

    def available(self) -> int:
        if self.listening:
            raise SyscallError(EINVAL)
        if self.type == abi.SOCK_STREAM:
            return self.rx_bytes
        return len(self.rx[0].data) if self.rx else 0

    def outq(self) -> int:
        p = self.peer
        return p.rx_bytes if p is not None and self.type == abi.SOCK_STREAM else 0

    # -- names -------------------------------------------------------------------------
    def _names(self) -> dict:
        from umiak.kernel.net import vm_stack
        return vm_stack(self.kernel).unix_names

    def _make_inode(self, task, path: bytes):
        """bind to a path: create its socket inode in the VFS; the table key of that inode."""
        import os
        from umiak.kernel.syscalls.fdutil import owner_of
        from umiak.kernel.vfs.permissions import fs_op, may_create
        assert self.kernel is not None
        vfs = self.kernel.vfs
        text = os.fsdecode(path)
        parent, name, kind = vfs.resolve_parent(task, abi.AT_FDCWD, text)
        if kind != 0 or text.endswith("/"):
            raise SyscallError(EINVAL)
        try:
            vfs.child(parent, name)
        except SyscallError as e:
            if e.errno != ENOENT:
                raise
        else:
            raise SyscallError(EADDRINUSE)
        mknod = fs_op(parent, "mknod")
        may_create(task, parent)
        umask = task.process.umask if task is not None else 0o022
        mknod(name, abi.S_IFSOCK | (0o777 & ~umask), 0, owner=owner_of(task) if task is not None else None)
        node = vfs.child(parent, name).node
        if self.type == abi.SOCK_STREAM:
            from umiak.kernel.net.unixhost import host_listener
            self.host_listener = host_listener(parent.node, name)
            if self.host_listener is not None:
                node = vfs.child(parent, name).node      # the host socket file that replaced it
        st = node.stat()
        return ("ino", st.st_dev, st.st_ino)

    def _lookup(self, task, path: bytes) -> "UnixSocket | None":
        """The socket bound to sun_path: abstract by name; a path through the VFS to its inode."""
        if path[:1] == b"\0":
            return self._names().get(("@", path))
        import os
        from umiak.kernel.vfs.permissions import check_access
        assert self.kernel is not None
        loc = self.kernel.vfs.resolve(task, abi.AT_FDCWD, os.fsdecode(path), True)
        st = loc.node.stat()
        if not _stat.S_ISSOCK(st.st_mode):
            raise SyscallError(ECONNREFUSED)
        check_access(task, loc, abi.W_OK)
        return self._names().get(("ino", st.st_dev, st.st_ino))

    @staticmethod
    def decode(addr: bytes) -> bytes:
        """sockaddr_un -> sun_path bytes (a path stops at its NUL; abstract names keep all)."""
        if len(addr) < 2 or int.from_bytes(addr[:2], "little") != abi.AF_UNIX:
            raise SyscallError(EINVAL)
        path = addr[2:2 + UNIX_PATH_MAX]
        if path[:1] != b"\0":
            path = path.split(b"\0", 1)[0]
        return path

    def _sockaddr(self, name: bytes) -> bytes:
        head = abi.AF_UNIX.to_bytes(2, "little")
        if not name:
            return head
        return head + name + (b"\0" if name[:1] != b"\0" else b"")

    def bind(self, task, addr: bytes) -> None:
        if len(addr) < 2 or int.from_bytes(addr[:2], "little") != abi.AF_UNIX:
            raise SyscallError(EINVAL)
        if self.name:
            raise SyscallError(EINVAL)
        names = self._names()
        if len(addr) == 2:                      # autobind: an abstract name of 5 hex digits
            n = 0
            while ("@", b"\0%05x" % n) in names:
                n += 1
            path = b"\0%05x" % n
        else:
            path = self.decode(addr)
            if not path:
                raise SyscallError(EINVAL)
        if path[:1] == b"\0":
            key = ("@", path)
            if key in names:
                raise SyscallError(EADDRINUSE)
        else:
            key = self._make_inode(task, path)   # a new inode: an older entry with its numbers is stale
        names[key] = self
        self.name, self.key = path, key

    def _autobind(self, task) -> None:
        if not self.name:
            self.bind(task, abi.AF_UNIX.to_bytes(2, "little"))

    def listen(self, backlog: int) -> None:
        if self.type == abi.SOCK_DGRAM:
            raise SyscallError(EOPNOTSUPP)
        if self.peer is not None or self.peer_gone:
            raise SyscallError(EINVAL)
        if not self.name:
            raise SyscallError(EINVAL)
        self.listening = True
        self.max_backlog = max(1, min(backlog, 4096)) if backlog >= 0 else 4096
        task = self.kernel.current_task()
        self.peercred = _creds(task)
        if self.host_listener is not None:
            from umiak.kernel.net.unixhost import start_bridge
            start_bridge(self, self.max_backlog)

    def accept(self, task, flags: int):
        if not self.listening:
            raise SyscallError(EINVAL)
        if not self.backlog:
            raise SyscallError(EAGAIN)
        s = self.backlog.popleft()
        s.flags = abi.O_RDWR | (flags & abi.O_NONBLOCK)
        self._changed()
        p = getattr(s, "peer", None)           # a HostSocket (a host client, unixhost.py) has none
        return s, self._sockaddr(p.name if p is not None else b"")

    def connect(self, task, addr: bytes) -> None:
        if len(addr) >= 2 and int.from_bytes(addr[:2], "little") == abi.AF_UNSPEC and self.type == abi.SOCK_DGRAM:
            self.peer = None
            return
        path = self.decode(addr)
        if not path:
            raise SyscallError(EINVAL)
        if self.listening:
            raise SyscallError(EINVAL)
        if self._conn() and (self.peer is not None or self.peer_gone):
            raise SyscallError(EISCONN)
        target = self._lookup(task, path)
        if target is None or target.closed or target.type != self.type:
            raise SyscallError(ECONNREFUSED)
        if self.passcred:
            self._autobind(task)
        if self.type == abi.SOCK_DGRAM:
            self.peer = target
            self._changed()
            return
        if not target.listening:
            raise SyscallError(ECONNREFUSED)
        if len(target.backlog) >= target.max_backlog:
            if self.flags & abi.O_NONBLOCK:
                raise SyscallError(EAGAIN)
            # A blocking connect waits for the listener to accept (or go away), as on Linux.
            q = target.waitq
            entry = q.add(task)
            try:
                task.wait(lambda: len(target.backlog) < target.max_backlog or target.closed
                          or not target.listening)
            finally:
                q.remove(entry)
            if target.closed or not target.listening:
                raise SyscallError(ECONNREFUSED)
        srv = UnixSocket(self.kernel, self.type, 0)
        srv.name = target.name
        srv.peer, self.peer = self, srv
        srv.peercred = _creds(task)
        srv.passcred = target.passcred
        self.peercred = target.peercred
        target.backlog.append(srv)
        target._changed()
        self._changed()

    def getsockname(self) -> bytes:
        return self._sockaddr(self.name)

    def getpeername(self) -> bytes:
        p = self.peer
        if p is None:
            raise SyscallError(ENOTCONN)
        return self._sockaddr(p.name)

    def shutdown(self, how: int) -> None:
        if how not in (abi.SHUT_RD, abi.SHUT_WR, abi.SHUT_RDWR):
            raise SyscallError(EINVAL)
        if self._conn() and self.peer is None and not self.peer_gone:
            raise SyscallError(ENOTCONN)
        p = self.peer
        if how in (abi.SHUT_RD, abi.SHUT_RDWR):
            self.shut_rd = True
            if p is not None and self._conn():
                p.shut_wr = True
        if how in (abi.SHUT_WR, abi.SHUT_RDWR):
            self.shut_wr = True
            if p is not None and self._conn():
                p.shut_rd = True
        self._changed()
        if p is not None:
            p._changed()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.host_listener is not None:
            from umiak.kernel.net.unixhost import stop_bridge
            stop_bridge(self)
        names = self._names() if self.key is not None else {}
        if self.key is not None and names.get(self.key) is self:
            del names[self.key]
        for s in self.backlog:               # connections never accepted: their clients see a reset
            s.close()
        self.backlog.clear()
        p = self.peer
        if p is not None and self._conn():
            p.peer_gone = True
            p.shut_rd = p.shut_wr = True
            if self.rx:
                p.err = ECONNRESET           # unread data: the peer sees a reset, as Linux
            p.peer = None
            p._changed()
        self.peer = None
        for m in self.rx:
            if m.files:
                _release(m.files)
        self.rx.clear()
        self.charged.release(self.kernel)
        self.rx_bytes = 0
        self._changed()

    # -- data -----------------------------------------------------------------------------
    def sendmsg(self, task, data: bytes, cmsgs: list, flags: int, addr: bytes | None = None) -> int:
        files, creds = None, None
        for level, typ, body in cmsgs:
            if level != abi.SOL_SOCKET:
                raise SyscallError(EINVAL)
            if typ == SCM_RIGHTS:
                fds = [int.from_bytes(body[i:i + 4], "little", signed=True) for i in range(0, len(body) - 3, 4)]
                if len(fds) > SCM_MAX_FD:
                    raise SyscallError(EINVAL)
                files = (files or []) + [task.fds.get(fd) for fd in fds]
            elif typ == SCM_CREDENTIALS:
                if len(body) < UCRED.size:
                    raise SyscallError(EINVAL)
                pid, uid, gid = UCRED.unpack_from(body)
                mine = _creds(task)
                if task is not None and task.process.creds.euid != 0 and (pid, uid, gid) != mine:
                    raise SyscallError(EPERM)
                creds = (pid, uid, gid)
            else:
                raise SyscallError(EINVAL)
        if self.type == abi.SOCK_DGRAM:
            if addr is not None:
                target = self._lookup(task, self.decode(addr))
                if target is None or target.closed or target.type != self.type:
                    raise SyscallError(ECONNREFUSED)
            else:
                target = self.peer
                if target is None:
                    raise SyscallError(ENOTCONN)
                if target.closed:
                    raise SyscallError(ECONNREFUSED)
            if self.shut_wr:
                raise SyscallError(EPIPE)
            if len(data) > self.sndbuf:
                raise SyscallError(EMSGSIZE)
            if len(target.rx) >= MAX_DGRAM_QLEN or target.rx_bytes + len(data) > target.rcvbuf and target.rx:
                target.blocked.add(self)
                raise SyscallError(EAGAIN)
        else:
            if addr is not None and self.peer is None and not self.peer_gone:
                raise SyscallError(EOPNOTSUPP if self.type == abi.SOCK_STREAM else ENOTCONN)
            if self.shut_wr or self.peer_gone:
                raise SyscallError(EPIPE)
            target = self.peer
            if target is None:
                raise SyscallError(ENOTCONN)
            if target.shut_rd and target.peer is self and target.closed:
                raise SyscallError(EPIPE)
            if self.type == abi.SOCK_SEQPACKET and len(data) > self.sndbuf:
                raise SyscallError(EMSGSIZE)
            room = target.rcvbuf - target.rx_bytes
            if room <= 0 or (self.type == abi.SOCK_SEQPACKET and room < len(data) and target.rx):
                target.blocked.add(self)
                raise SyscallError(EAGAIN)
            if self.type == abi.SOCK_STREAM:
                data = data[:room]
        # The queue is guest RAM: a stream send is cut to what fits, a message is all or ENOMEM.
        fits = target.charged.cover(self.kernel, target.rx_bytes + len(data), target.rx_bytes,
                                    "socket sends") - target.rx_bytes
        if fits < len(data):
            if self.type != abi.SOCK_STREAM:
                raise SyscallError(ENOMEM)
            data = data[:fits]
        if (target.passcred or self.passcred) and creds is None:
            creds = _creds(task)
        if files:
            for f in files:      # each file in flight is held open by the message
                f.incref()
        target.rx.append(Msg(bytes(data), files, creds or _creds(task), self.name))
        target.rx_bytes += len(data)
        target._changed()
        return len(data)

    def recvmsg(self, task, n: int, flags: int, controllen: int, want_addr: bool = False):
        if self.listening:
            raise SyscallError(EINVAL)
        if self._conn() and self.peer is None and not self.peer_gone and not self.rx:
            if self.type == abi.SOCK_STREAM or not self.shut_rd:
                raise SyscallError(ENOTCONN if self.type == abi.SOCK_SEQPACKET else EINVAL)
        if not self.rx:
            if self.err:
                e, self.err = self.err, 0
                raise SyscallError(e)
            if self.shut_rd or (self._conn() and self.peer_gone):
                return b"", b"" if want_addr else None, b"", 0, 0
            raise SyscallError(EAGAIN)
        peek = flags & abi.MSG_PEEK
        if self.type == abi.SOCK_STREAM:
            return self._recv_stream(task, n, flags, controllen, want_addr)
        m = self.rx[0]
        if not peek:
            self.rx.popleft()
            self.rx_bytes -= len(m.data)
            self._after_read()
        mflags = abi.MSG_TRUNC if len(m.data) > n else 0
        control, cflags = self._control(task, m, controllen, flags, peek)
        addr = self._from(m.sender) if want_addr else None
        return m.data[:n], addr, control, mflags | cflags, len(m.data)

    def _recv_stream(self, task, n: int, flags: int, controllen: int, want_addr: bool):
        peek = flags & abi.MSG_PEEK
        out, got, first, i = [], 0, None, 0
        rx = self.rx
        while i < len(rx) and got < n:
            m = rx[i]
            if first is not None and (m.files or (self.passcred and m.creds != first.creds)):
                break                         # ancillary data ends a read, as Linux's skb boundary
            if first is None:
                first = m
            take = m.data[:n - got]
            out.append(take)
            got += len(take)
            if peek:
                i += 1
            else:
                if len(take) == len(m.data):
                    rx.popleft()
                else:
                    m.data = m.data[len(take):]
                self.rx_bytes -= len(take)
            if first.files:
                break
        control, cflags = self._control(task, first, controllen, flags, peek) if first is not None else (b"", 0)
        if not peek:
            self._after_read()
        sender = first.sender if first is not None else b""
        data = b"".join(out)
        return data, (self._from(sender) if want_addr else None), control, cflags, len(data)

    def _from(self, name: bytes) -> bytes:
        """The source address recvfrom reports: nothing for an unnamed sender, as Linux."""
        return self._sockaddr(name) if name else b""

    def _after_read(self) -> None:
        p = self.peer
        if p is not None:
            p._changed()
        self._changed()
        if self.blocked:
            for s in self.blocked:
                s._changed()
            self.blocked.clear()

    def _control(self, task, m: Msg, controllen: int, flags: int, peek: int) -> tuple[bytes, int]:
        """The control messages of a received Msg: credentials, then the files (installed now)."""
        out, mflags = b"", 0
        if self.passcred and m.creds is not None:
            c = build_cmsg(abi.SOL_SOCKET, SCM_CREDENTIALS, UCRED.pack(*m.creds))
            if len(out) + len(c) - 4 <= controllen:
                out += c
            else:
                mflags |= abi.MSG_CTRUNC
        if m.files:
            files = m.files
            if not peek:
                m.files = None
            room = (controllen - len(out) - 16) // 4
            take = files[:max(0, room)]
            if len(take) < len(files):
                mflags |= abi.MSG_CTRUNC
            fds = []
            cloexec = bool(flags & abi.MSG_CMSG_CLOEXEC)
            for f in take:
                try:
                    fds.append(task.fds.install(f, cloexec=cloexec))
                except SyscallError:     # EMFILE: the rest are dropped, as Linux
                    mflags |= abi.MSG_CTRUNC
                    break
            if not peek:
                _release(files)
            if fds:
                out += build_cmsg(abi.SOL_SOCKET, SCM_RIGHTS, b"".join(fd.to_bytes(4, "little") for fd in fds))
        if len(out) > controllen:
            out = out[:controllen]
        return out, mflags

    # -- options ---------------------------------------------------------------------------
    def setsockopt(self, task, level: int, name: int, value: bytes) -> None:
        if level != abi.SOL_SOCKET:
            raise SyscallError(EOPNOTSUPP if level in (abi.SOL_TCP, abi.SOL_IP) else ENOPROTOOPT)
        if len(value) < 4:
            raise SyscallError(EINVAL)
        v = int.from_bytes(value[:4], "little", signed=True)
        if name == abi.SO_PASSCRED:
            self.passcred = bool(v)
        elif name in (abi.SO_SNDBUF, 32):
            self.sndbuf = max(4608, min(v, 1 << 24) * 2)
        elif name in (abi.SO_RCVBUF, 33):
            self.rcvbuf = max(2304, min(v, 1 << 24) * 2)
        elif name in (abi.SO_REUSEADDR, abi.SO_REUSEPORT, abi.SO_KEEPALIVE, abi.SO_LINGER,
                      abi.SO_RCVLOWAT, abi.SO_SNDLOWAT, abi.SO_BROADCAST, 29, 35, 0x25):
            self.reuse = v
        else:
            raise SyscallError(ENOPROTOOPT)

    def getsockopt(self, task, level: int, name: int, size: int) -> bytes:
        if level != abi.SOL_SOCKET:
            raise SyscallError(EOPNOTSUPP if level in (abi.SOL_TCP, abi.SOL_IP) else ENOPROTOOPT)

        def i32(v):
            return int(v).to_bytes(4, "little", signed=True)
        if name == abi.SO_PEERCRED:
            if self.peer is None and not self.peer_gone and not self.listening:
                return UCRED.pack(0, 0xFFFFFFFF, 0xFFFFFFFF)
            return UCRED.pack(*self.peercred)
        if name == SO_PEERGROUPS:
            return b""
        vals = {abi.SO_TYPE: self.type, abi.SO_DOMAIN: abi.AF_UNIX, abi.SO_PROTOCOL: 0,
                abi.SO_ERROR: self.err, abi.SO_PASSCRED: int(self.passcred), abi.SO_SNDBUF: self.sndbuf,
                abi.SO_RCVBUF: self.rcvbuf, abi.SO_ACCEPTCONN: int(self.listening),
                abi.SO_REUSEADDR: 0, abi.SO_KEEPALIVE: 0, abi.SO_RCVLOWAT: 1, abi.SO_SNDLOWAT: 1,
                abi.SO_LINGER: None}
        if name not in vals:
            raise SyscallError(ENOPROTOOPT)
        if name == abi.SO_ERROR:
            self.err = 0
        if name == abi.SO_LINGER:
            return bytes(8)
        return i32(vals[name])


def socketpair(kernel, task, sock_type: int, flags: int) -> tuple[UnixSocket, UnixSocket]:
    a, b = UnixSocket(kernel, sock_type, flags), UnixSocket(kernel, sock_type, flags)
    a.peer, b.peer = b, a
    a.peercred = b.peercred = _creds(task)
    return a, b


__all__ = ["UnixSocket", "socketpair"]
