"""The network of one VM: its mode, where its host sockets are made, published ports.

    host     (default) sockets are made in umiak's own network namespace: the guest
             shares the host's interfaces, /etc/resolv.conf and /etc/hosts are the host's.
    private  a network namespace of the VM's own with a loopback interface, and the
             ports given with -p HOST:GUEST[/udp] forwarded from the host's 127.0.0.1
             (or ADDR:HOST:GUEST[/udp]); nothing else is reachable either way.
    none     a network namespace with only its loopback.

A network namespace belongs to a thread on Linux (unshare(CLONE_NEWNET) changes
the calling thread only) and a socket to the namespace it was made in. umiak
starts a small helper process (`nshelper.py`) that enters a new network
namespace (as root, or inside a new user namespace when unprivileged user
namespaces are allowed), brings its loopback up and makes sockets on request,
handing them back over a socketpair with SCM_RIGHTS; every later operation on
such a socket works from any umiak thread. In the private modes the guest's
/etc/resolv.conf names no server (nothing outside is reachable, so lookups fail
at once instead of timing out) and /etc/hosts maps localhost.
"""

import os
import socket as _socket
import threading

from umiak.errors import UmiakError

RESOLV_CONF = b"# umiak --net=private|none: no name server is reachable\noptions attempts:1 timeout:1\n"
HOSTS = (b"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
         b"127.0.1.1\t%s\n")


def parse_publish(spec: str) -> tuple[str, int, int, str]:
    """'8080:80', '8080:80/udp', '127.0.0.2:8080:80' -> (host addr, host port, guest port, proto)."""
    proto = "tcp"
    if "/" in spec:
        spec, proto = spec.rsplit("/", 1)
        if proto not in ("tcp", "udp"):
            raise ValueError(f"bad -p protocol {proto!r} (tcp or udp)")
    parts = spec.rsplit(":", 2)
    try:
        if len(parts) == 2:
            return "127.0.0.1", int(parts[0]), int(parts[1]), proto
        if len(parts) == 3:
            return parts[0].strip("[]"), int(parts[1]), int(parts[2]), proto
    except ValueError:
        pass
    raise ValueError(f"bad -p {spec!r}: expected HOST:GUEST[/udp] or ADDR:HOST:GUEST[/udp]")


def namespace_problem() -> str | None:
    """Why a private network namespace cannot be made here (None if it can)."""
    if os.geteuid() == 0:
        return None
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            if int(f.read()) == 0:
                return "user namespaces are disabled (user.max_user_namespaces=0)"
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/sys/kernel/unprivileged_userns_clone") as f:
            if f.read().strip() == "0":
                return "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0)"
    except OSError:
        pass
    return None


class NetStack:
    def __init__(self, options, warn=None):
        self.mode = options.net
        self.publish = list(options.publish)
        self.hostname = options.hostname
        self.warn = warn or (lambda msg: None)
        self.unix_names: dict = {}           # AF_UNIX names of the VM (see unix.py)
        self._ns = None
        self._lock = threading.Lock()
        self._forwarders: list = []
        self._started = False
        self._probe = None

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.mode == "host":
            return
        self._namespace()
        if self.mode == "private":
            from umiak.kernel.net.forward import Forwarder
            for spec in self.publish:
                addr, hport, gport, proto = parse_publish(spec) if isinstance(spec, str) else spec
                self._forwarders.append(Forwarder(self, addr, hport, gport, proto, self.warn))

    def _namespace(self):
        if self._ns is None:
            problem = namespace_problem()
            if problem:
                raise UmiakError(f"--net={self.mode} needs root or user namespaces: {problem}")
            from umiak.kernel.net.nshelper import Helper
            self._ns = Helper()
        return self._ns

    def host_socket(self, family: int, stype: int, proto: int) -> _socket.socket:
        """A non-blocking, close-on-exec host socket in the VM's namespace."""
        from umiak.kernel.errors import SyscallError
        if not self._started:
            self.start()
        if self.mode == "host":
            try:
                return _socket.socket(family, stype | _socket.SOCK_NONBLOCK | _socket.SOCK_CLOEXEC, proto)
            except OSError as e:
                raise SyscallError(e.errno or 22) from None
        with self._lock:
            return self._namespace().socket(family, stype, proto)

    def probe_fd(self) -> int:
        """A host datagram socket of the VM's namespace, for interface ioctls."""
        if self._probe is None:
            self._probe = self.host_socket(_socket.AF_INET, _socket.SOCK_DGRAM, 0)
        return self._probe.fileno()

    def etc_files(self) -> dict[str, bytes]:
        """Guest files that differ from the host's in this mode (mounted over /etc)."""
        if self.mode == "host":
            return {}
        return {"/etc/resolv.conf": RESOLV_CONF, "/etc/hosts": HOSTS % self.hostname.encode()}

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        for f in self._forwarders:
            f.close()
        self._forwarders.clear()
        if self._ns is not None:
            self._ns.close()
            self._ns = None


__all__ = ["NetStack", "parse_publish", "namespace_problem"]
