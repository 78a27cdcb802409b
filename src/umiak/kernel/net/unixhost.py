"""AF_UNIX stream sockets bound on a writable volume, reachable from the host.

A guest server listening on a path in a volume (PostgreSQL's /data/.s.PGSQL.5432,
a Docker-style API socket) is meant for host clients: its name on the host is a
real AF_UNIX socket, bound where the VFS made the socket inode. One daemon thread
accepts host connections and, under the kernel lock, queues each one on the guest
listener as a HostSocket (the host fd, polled on the host like any host socket),
so accept/poll/epoll/fork in the guest see one listener with two kinds of clients.
Guest clients still connect in Python (unix.py): their key is the same inode.
"""

import os
import socket
import threading


def host_listener(parent, name: str) -> "socket.socket | None":
    """Replace the socket inode just made at parent/name (a HostNode) by a bound host
    socket with the same mode and owner; None where that is impossible (not a volume)."""
    from umiak.kernel.vfs.hostfs import HostNode
    if not isinstance(parent, HostNode):
        return None
    try:
        dirfd = parent._dirfd()
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        path = f"/proc/self/fd/{dirfd}/{name}"
        if len(os.fsencode(path)) >= 108:
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    except OSError:
        return None
    try:
        os.unlink(name, dir_fd=dirfd)
        sock.bind(path)
        os.chmod(path, st.st_mode & 0o7777)
        try:
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dirfd, follow_symlinks=False)
        except OSError:
            pass
    except OSError:
        sock.close()
        return None
    return sock


def start_bridge(listener, backlog: int) -> None:
    """listen(2) on the host socket too, and accept its clients in a daemon thread."""
    ls = listener.host_listener
    if listener._bridge is not None:
        return
    ls.listen(backlog)
    t = threading.Thread(target=_accept_loop, args=(listener, ls), name="umiak-unix-bridge", daemon=True)
    listener._bridge = t
    t.start()


def _accept_loop(listener, ls: socket.socket) -> None:
    from umiak.kernel.net.host import HostSocket
    kernel = listener.kernel
    while True:
        try:
            conn, _ = ls.accept()
        except OSError:
            if listener.closed:
                return
            continue
        conn.setblocking(False)
        with kernel.lock:
            if listener.closed or not listener.listening:
                conn.close()
                return
            listener.backlog.append(HostSocket(kernel, conn, 0))
            listener._changed()


def stop_bridge(listener) -> None:
    """The listener is released: stop accepting (shutdown wakes the thread's accept).
    Called with the kernel lock held, so the thread is not joined."""
    ls, listener.host_listener = listener.host_listener, None
    try:
        ls.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    ls.close()
