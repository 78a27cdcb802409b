"""A helper process living in the VM's own network namespace (--net=private|none).

unshare(CLONE_NEWNET) moves only the calling thread, and a user namespace
cannot be entered by a process that already runs threads (as umiak does), so
a small separate Python process enters the namespaces, brings `lo` up and then
makes sockets on request: umiak sends (family, type, protocol) on a seqpacket
socketpair and gets back an errno and, on success, the socket as SCM_RIGHTS.
The helper exits when umiak closes its end (or dies: PR_SET_PDEATHSIG).
"""

import socket
import struct
import subprocess
import sys

from umiak.errors import UmiakError

CHILD = r"""
import ctypes, fcntl, os, socket, struct, sys
chan = socket.socket(fileno=int(sys.argv[1]))
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(1, 9, 0, 0, 0)                          # PR_SET_PDEATHSIG, SIGKILL
CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000
flags = CLONE_NEWNET if os.geteuid() == 0 else CLONE_NEWNET | CLONE_NEWUSER
if libc.unshare(flags) != 0:
    chan.send(b"unshare: " + os.strerror(ctypes.get_errno()).encode())
    sys.exit(1)
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ifr = fcntl.ioctl(s, 0x8913, struct.pack("16sH22x", b"lo", 0))      # SIOCGIFFLAGS
    fl = struct.unpack_from("H", ifr, 16)[0] | 0x1 | 0x40                # IFF_UP | IFF_RUNNING
    fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", fl))            # SIOCSIFFLAGS
    s.close()
except OSError as e:
    chan.send(b"loopback: " + e.strerror.encode())
    sys.exit(1)
chan.send(b"ok")
while True:
    try:
        req = chan.recv(12)
    except OSError:
        break
    if len(req) != 12:
        break
    family, stype, proto = struct.unpack("<iii", req)
    try:
        s = socket.socket(family, stype | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, proto)
    except OSError as e:
        chan.send(struct.pack("<i", e.errno or 22))
        continue
    chan.sendmsg([struct.pack("<i", 0)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("<i", s.fileno()))])
    s.close()
"""


class Helper:
    """umiak's end of the namespace helper."""

    def __init__(self):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", CHILD, str(b.fileno())],
                                         pass_fds=[b.fileno()], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            b.close()
        self.chan = a
        a.settimeout(20)
        try:
            msg = a.recv(512)
        except OSError as e:
            msg = f"no answer ({e})".encode()
        if msg != b"ok":
            self.close()
            raise UmiakError("cannot make a network namespace: "
                             + (msg.decode(errors="replace") or "the helper exited")
                             + " (--net=private|none need root or unprivileged user namespaces)")
        a.settimeout(None)

    def socket(self, family: int, stype: int, proto: int) -> socket.socket:
        from umiak.kernel.errors import SyscallError
        self.chan.send(struct.pack("<iii", family, stype, proto))
        msg, anc, _, _ = self.chan.recvmsg(4, socket.CMSG_SPACE(4), socket.MSG_CMSG_CLOEXEC)
        if len(msg) != 4:
            raise SyscallError(105)   # ENOBUFS: the helper is gone
        err = struct.unpack("<i", msg)[0]
        if err:
            raise SyscallError(err)
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                return socket.socket(fileno=struct.unpack_from("<i", data)[0])
        raise SyscallError(105)

    def close(self) -> None:
        try:
            self.chan.close()
        finally:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
