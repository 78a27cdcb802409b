"""Published ports of --net=private: a host socket on the host side, relayed to the guest's
port on the loopback of the VM's namespace.

TCP: a listening socket on the host; each accepted connection gets a socket made in
the namespace, connected to 127.0.0.1:GUEST, and one relay thread copying both ways
(half-closes are passed on with shutdown). UDP: one host socket; each client address
gets its own namespace socket connected to the guest port, and replies go back to
that client. Threads are daemons and end when the stack closes.
"""

import selectors
import socket
import threading
from typing import cast

IDLE_UDP = 120.0     # seconds a UDP client mapping lives without traffic


class Forwarder:
    def __init__(self, stack, addr: str, hport: int, gport: int, proto: str, warn):
        self.stack, self.gport, self.proto, self.warn = stack, gport, proto, warn
        self.closed = False
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self.family = family
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        self.lsock = socket.socket(family, kind | socket.SOCK_CLOEXEC)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.lsock.bind((addr, hport))
        except OSError as e:
            self.lsock.close()
            from umiak.errors import UmiakError
            raise UmiakError(f"-p {addr}:{hport}:{gport}/{proto}: cannot bind the host port: {e.strerror}") from None
        if proto == "tcp":
            self.lsock.listen(128)
            target = self._accept_loop
        else:
            target = self._udp_loop
        self.thread = threading.Thread(target=target, name=f"umiak-publish-{hport}", daemon=True)
        self.thread.start()

    def _guest_socket(self, kind: int) -> socket.socket:
        s = self.stack.host_socket(socket.AF_INET, kind, 0)
        s.setblocking(True)
        return s

    def _accept_loop(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                if self.closed:
                    return
                continue
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        try:
            inner = self._guest_socket(socket.SOCK_STREAM)
            inner.settimeout(10)
            inner.connect(("127.0.0.1", self.gport))
            inner.settimeout(None)
        except Exception:  # noqa: BLE001 - the guest does not listen: reset the client
            conn.close()
            return
        sel = selectors.DefaultSelector()
        ends = {conn: inner, inner: conn}
        for s in ends:
            sel.register(s, selectors.EVENT_READ)
        open_ = 2
        try:
            while open_ and not self.closed:
                for key, _ in sel.select(0.5):
                    src = cast(socket.socket, key.fileobj)   # only sockets are registered
                    try:
                        data = src.recv(1 << 16)
                    except OSError:
                        data = b""
                    if data:
                        try:
                            ends[src].sendall(data)
                        except OSError:
                            return
                    else:
                        sel.unregister(src)
                        open_ -= 1
                        try:
                            ends[src].shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
        finally:
            sel.close()
            conn.close()
            inner.close()

    def _udp_loop(self) -> None:
        import time
        sel = selectors.DefaultSelector()
        sel.register(self.lsock, selectors.EVENT_READ)
        clients: dict = {}          # client address -> [inner socket, last use]
        back: dict = {}             # inner socket -> client address
        try:
            while not self.closed:
                for key, _ in sel.select(0.5):
                    s = cast(socket.socket, key.fileobj)
                    try:
                        if s is self.lsock:
                            data, peer = s.recvfrom(1 << 16)
                            ent = clients.get(peer)
                            if ent is None:
                                inner = self._guest_socket(socket.SOCK_DGRAM)
                                inner.connect(("127.0.0.1", self.gport))
                                ent = clients[peer] = [inner, 0.0]
                                back[inner] = peer
                                sel.register(inner, selectors.EVENT_READ)
                            ent[1] = time.monotonic()
                            ent[0].send(data)
                        else:
                            data = s.recv(1 << 16)
                            self.lsock.sendto(data, back[s])
                    except OSError:
                        pass
                now = time.monotonic()
                for peer, (inner, last) in list(clients.items()):
                    if now - last > IDLE_UDP:
                        sel.unregister(inner)
                        inner.close()
                        del clients[peer], back[inner]
        finally:
            for inner, _ in clients.values():
                inner.close()
            sel.close()

    def close(self) -> None:
        self.closed = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        self.thread.join(timeout=2)
