"""A container's files under --root: <root>/<id>/ holds

    state.json   id, bundle, annotations, the proxy's pid (and its start time, so a reused
                 pid is not taken for it), started / paused
    ctl.sock     the proxy's control socket: `start`, and `exec` of a new process
    execs/<pid>  one empty file per exec proxy (for `ps` and `kill --all`)
    umiak.log    umiak's own messages for this VM (warnings; never the container's stderr)

Status is computed, not stored: a proxy that is gone means "stopped", whoever ended it.
"""

import json
import os
from typing import TYPE_CHECKING

from umiak.oci import OciError

if TYPE_CHECKING:
    import socket

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-")


def valid_id(cid: str) -> bool:
    """runc's rule: letters, digits and _.+- (not first), so an id is one directory name."""
    return 0 < len(cid) <= 1024 and cid[0].isascii() and cid[0].isalnum() and set(cid) <= _ID_CHARS


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks after boot); None when there is no such process
    or it is a zombie (it has ended; its parent has not reaped it yet)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


class State:
    def __init__(self, root: str, cid: str):
        if not valid_id(cid):
            raise OciError(f"invalid container id {cid!r}")
        self.root, self.id = root, cid
        self.dir = os.path.join(root, cid)
        self.data: dict = {}

    # -- files --------------------------------------------------------------------
    @property
    def file(self) -> str:
        return os.path.join(self.dir, "state.json")

    @property
    def ctl_path(self) -> str:
        return os.path.join(self.dir, "ctl.sock")

    @property
    def log_path(self) -> str:
        return os.path.join(self.dir, "umiak.log")

    @classmethod
    def create(cls, root: str, cid: str, bundle: str, annotations: dict) -> "State":
        st = cls(root, cid)
        os.makedirs(root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(st.dir, 0o711)
        except FileExistsError:
            raise OciError(f"container with id {cid} already exists") from None
        os.mkdir(os.path.join(st.dir, "execs"), 0o711)
        st.data = {"id": cid, "bundle": bundle, "annotations": annotations, "pid": 0, "starttime": None,
                   "started": False, "paused": False}
        st.save()
        return st

    @classmethod
    def load(cls, root: str, cid: str) -> "State":
        st = cls(root, cid)
        try:
            with open(st.file) as f:
                st.data = json.load(f)
        except FileNotFoundError:
            raise OciError(f"container {cid} does not exist") from None
        except (OSError, ValueError) as e:
            raise OciError(f"container {cid}: bad state file: {e}") from None
        return st

    def save(self) -> None:
        tmp = self.file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.file)

    def remove(self) -> None:
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- processes ----------------------------------------------------------------
    @property
    def pid(self) -> int:
        return int(self.data.get("pid") or 0)

    def alive(self) -> bool:
        pid = self.pid
        return pid > 0 and proc_start_time(pid) is not None and proc_start_time(pid) == self.data.get("starttime")

    def status(self) -> str:
        if not self.pid:
            return "creating"
        if not self.alive():
            return "stopped"
        if self.data.get("paused"):
            return "paused"
        return "running" if self.data.get("started") else "created"

    def add_exec(self, pid: int) -> None:
        with open(os.path.join(self.dir, "execs", f"{pid}.{proc_start_time(pid)}"), "w"):
            pass

    def exec_pids(self) -> list[int]:
        """The exec proxies still alive (files of ended ones are removed)."""
        out = []
        d = os.path.join(self.dir, "execs")
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            pid, _, start = name.partition(".")
            if pid.isdigit() and str(proc_start_time(int(pid))) == start:
                out.append(int(pid))
            else:
                try:
                    os.unlink(os.path.join(d, name))
                except OSError:
                    pass
        return out

    def signal_all(self, signo: int, execs_too: bool = True) -> None:
        pids = ([self.pid] if self.alive() else []) + (self.exec_pids() if execs_too else [])
        for pid in pids:
            try:
                os.kill(pid, signo)
            except ProcessLookupError:
                pass

    def oci_state(self) -> dict:
        status = self.status()
        return {"ociVersion": "1.0.2", "id": self.id, "status": status,
                "pid": self.pid if status != "stopped" else 0, "bundle": self.data.get("bundle", ""),
                "annotations": self.data.get("annotations") or {}}

    # -- the control socket --------------------------------------------------------
    def call(self, request: dict, fds=()) -> tuple["Reader", dict]:
        """Send one request to the proxy (with fds by SCM_RIGHTS); its reader and first reply."""
        s = connect(self.ctl_path)
        send_msg(s, request, fds)
        r = Reader(s)
        reply = r.next()
        if reply is None:
            s.close()
            raise OciError(f"container {self.id}: its VM ended")
        if "error" in reply:
            s.close()
            raise OciError(reply["error"])
        return r, reply


def _short(path: str) -> tuple[str, int]:
    """A unix socket path may have 107 bytes: name it through /proc/self/fd of its directory."""
    fd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{os.path.basename(path)}", fd


def listen(path: str) -> "socket.socket":
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    short, fd = _short(path)
    try:
        s.bind(short)
    finally:
        os.close(fd)
    s.listen(16)
    return s


def connect(path: str) -> "socket.socket":
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        short, fd = _short(path)
    except OSError as e:
        s.close()
        raise OciError(f"{path}: {e.strerror}") from None
    try:
        s.connect(short)
    except OSError as e:
        s.close()
        raise OciError(f"the container's VM does not answer ({e.strerror})") from None
    finally:
        os.close(fd)
    return s


def send_msg(s: "socket.socket", msg: dict, fds=()) -> None:
    import socket
    data = json.dumps(msg).encode() + b"\n"
    if fds:
        socket.send_fds(s, [data], list(fds))
    else:
        s.sendall(data)


class Reader:
    """JSON lines from a stream socket; the first read may carry fds (SCM_RIGHTS)."""

    def __init__(self, s: "socket.socket"):
        self.s, self.buf = s, b""
        self.fds: list[int] = []

    def next(self, want_fds: int = 0) -> dict | None:
        """The next message; None at EOF."""
        while b"\n" not in self.buf:
            if want_fds:
                import socket
                data, fds, _flags, _addr = socket.recv_fds(self.s, 65536, want_fds)
                self.fds.extend(fds)
                want_fds = 0
            else:
                data = self.s.recv(65536)
            if not data:
                return None
            self.buf += data
        line, _, self.buf = self.buf.partition(b"\n")
        try:
            msg = json.loads(line)
        except ValueError:
            return None
        return msg if isinstance(msg, dict) else None


def send_console(sock_path: str, master: int) -> None:
    """Hand a terminal's master to the engine (--console-socket), as runc does."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sock_path)
        socket.send_fds(s, [b"/dev/ptmx"], [master])
    except OSError as e:
        raise OciError(f"console socket {sock_path}: {e.strerror}") from None
    finally:
        s.close()


def parse_signal(text: str) -> int:
    """'9', 'KILL', 'SIGKILL' -> 9 (any case)."""
    import signal
    t = text.upper()
    if t.isdigit():
        n = int(t)
    else:
        name = t if t.startswith("SIG") else "SIG" + t
        n = int(getattr(signal, name, 0)) if not name.startswith("SIG_") else 0
    if not 0 < n < 65:
        raise OciError(f"unknown signal {text!r}")
    return n
