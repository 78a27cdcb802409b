"""The host processes that stand for a container's processes, as containerd's shim expects.

The init proxy (run_init) is the process whose pid goes to --pid-file at `create`:
it runs the VM itself, so it holds the container's stdio (or the terminal's
replica), exits with the guest's status (128+N for a signal) and ends the VM when
it is killed. It loads the program, then waits for `start` on its control socket
(the program does not run before). Signals sent to it go to the guest's pid 1 by
the rules for a container's init: a signal pid 1 has no handler for is dropped
(only SIGKILL, which ends the proxy, always works), and what the terminal sends
(Ctrl-C, a resize) goes to the guest as a terminal would send it.

The control socket also serves `exec`: the exec proxy (exec_proxy, a child of
`umiak oci exec`) sends its stdio fds and the process spec; the VM starts a new
guest process (Kernel.spawn_process), and the proxy relays the signals it gets and
exits with that process's status.
"""

import fcntl
import os
import signal
import struct
import termios
import threading

from umiak.kernel.abi import CLONE_NEWNET, SI_KERNEL
from umiak.oci.bundle import Bundle, OciError, home_of, parse_process
from umiak.oci.state import Reader, State, listen, send_msg

# Signals relayed to the guest; the others are the host's to handle (faults, job control,
# SIGPIPE of the proxy's own writes, SIGCHLD).
FORWARDED = set(range(1, 32)) - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGPIPE, signal.SIGTTIN,
                                 signal.SIGTTOU, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL,
                                 signal.SIGTRAP, signal.SIGSYS}


def take_terminal(tty: int, size: tuple[int, int] | None) -> None:
    """Make tty this (new) session's controlling terminal and 0, 1, 2."""
    os.setsid()
    fcntl.ioctl(tty, termios.TIOCSCTTY, 0)
    if size and size[0] and size[1]:
        fcntl.ioctl(tty, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    for i in (0, 1, 2):
        os.dup2(tty, i)
    if tty > 2:
        os.close(tty)


def close_fds(keep: set[int]) -> None:
    """Close what the engine leaked to us (containerd's shim passes a socket as fd 3)."""
    lo = 3
    for fd in sorted(k for k in keep if k >= 3) + [1 << 20]:
        if fd > lo:
            os.closerange(lo, fd)
        lo = fd + 1


def _libc():
    import ctypes
    return ctypes.CDLL(None, use_errno=True)


def enter_netns(netns: str) -> None:
    """The VM's sockets are host sockets: make them in the container's network namespace
    (a path given by containerd), or a new one with its loopback up. Single-threaded only
    (namespaces are per thread; the VM's threads are made after this)."""
    import ctypes
    libc = _libc()
    if netns == "new":
        if libc.unshare(CLONE_NEWNET) != 0:
            raise OciError(f"a network namespace: {os.strerror(ctypes.get_errno())}")
        _loopback_up()
        return
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OciError(f"network namespace {netns}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


def _loopback_up() -> None:
    import socket
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | IFF_UP))


def _options(b: Bundle):
    from umiak.options import RunOptions
    kconfig = None
    if b.config is not None:
        from umiak.config import load
        kconfig = load(b.config, None)
    mem = b.memory or getattr(kconfig, "guest_memory", 1 << 30)
    p = b.process
    opts = RunOptions(mem_size=mem, platform=b.platform, env=dict(p.env), cwd=p.cwd, hostname=b.hostname,
                      prewarm=False, net="host", volumes=list(b.volumes), root=b.root, tmpfs=list(b.tmpfs),
                      uid=p.uid, gid=p.gid, kernel_config=kconfig,
                      cpus=b.cpus, max_threads=b.pids or getattr(kconfig, "max_threads", 4096))
    opts.extra["exact_env"] = True   # the bundle's environment, nothing of the host's
    opts.extra["identity_files"] = False   # /etc/passwd, hosts...: the image's and the engine's mounts
    return opts


def apply_process(kernel, proc, p) -> None:
    """What of a process spec the loader does not set: groups, umask, rlimits."""
    from umiak.kernel import abi
    proc.creds.groups = list(p.groups)
    if p.umask is not None:
        proc.umask = p.umask & 0o777
    for res, (soft, hard) in p.rlimits.items():
        proc.rlimits[res] = [soft, hard]
        if res == abi.RLIMIT_NOFILE:
            proc.fds.limit = min(soft, 1 << 20)


def run_init(st: State, b: Bundle, ready_w: int, tty: int | None) -> None:
    """The init proxy (a child of `create`): never returns."""
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)   # every thread made from now on too
    ready = [False]

    def report(msg: str) -> None:
        if not ready[0]:
            ready[0] = True
            try:
                os.write(ready_w, msg.encode()[:4000])
                os.close(ready_w)
            except OSError:
                pass
    status = 125
    try:
        if tty is not None:
            take_terminal(tty, b.process.console_size)
        close_fds({ready_w})
        if b.netns is not None:
            enter_netns(b.netns)
        for k in ("TERM", "LANG", "LC_ALL", "TZ"):   # nothing of the engine's environment reaches the guest
            os.environ.pop(k, None)
        opts = _options(b)

        def started(kernel, task) -> None:
            apply_process(kernel, task.process, b.process)
            if b.readonly:   # the root (and the /tmp over it) as read-only as runc makes them
                for path in ("/", "/tmp"):
                    m = kernel.vfs.mounts.get(path)
                    if m is not None and (path == "/" or "/tmp" not in b.tmpfs):
                        m.readonly = True
            go = threading.Event()
            listener = listen(st.ctl_path)
            threading.Thread(target=_serve, args=(listener, kernel, go), name="umiak-oci-ctl", daemon=True).start()
            threading.Thread(target=_relay_host_signals, args=(kernel,), name="umiak-oci-signals",
                             daemon=True).start()
            report("ok")
            go.wait()

        opts.extra["started"] = started
        from umiak.machine import Machine
        err = open(st.log_path, "a", buffering=1)
        status = Machine(opts).run(b.process.args, err_out=err)
        err.flush()
    except BaseException as e:  # noqa: BLE001 - the reason goes to `create`, or to the VM's log
        msg = str(e) if isinstance(e, OciError) else _describe(e)
        if not ready[0]:
            report(exec_error(b.process.args[0], msg))
        else:   # umiak itself failed under a running program: say so where the user looks too
            line = f"umiak: {msg}\n"
            try:
                os.write(2, line.encode())
                with open(st.log_path, "a") as f:
                    f.write(line)
            except OSError:
                pass
    finally:
        report("umiak: the VM ended before it was ready")
        os._exit(status & 0xFF)


def exec_error(name: str, msg: str) -> str:
    """umiak's "NAME: No such file or directory" in runc's words, which engines read (Docker
    makes "no such file or directory" and "executable file not found" status 127, and
    "permission denied" 126)."""
    prefix = f"{name}: "
    if not msg.startswith(prefix):
        return msg
    why = msg[len(prefix):]
    if why == "command not found":
        return f'exec: "{name}": executable file not found in $PATH'
    return f'exec: "{name}": {why[:1].lower()}{why[1:]}'


def _describe(e: BaseException) -> str:
    from umiak.errors import UmiakError
    if isinstance(e, UmiakError):
        return str(e)
    return f"internal error: {type(e).__name__}: {e}"


def _relay_host_signals(kernel) -> None:
    """Signals to the init proxy -> the guest. From a terminal (si_code SI_KERNEL: Ctrl-C,
    hangup, resize) as a terminal sends them; from kill(2) to pid 1 as to a container's
    init, which gets only the signals it has a handler for."""
    from umiak.kernel import abi
    from umiak.kernel.signals import make_siginfo, send
    while True:
        info = signal.sigwaitinfo(FORWARDED)
        signo = info.si_signo
        with kernel.lock:
            init = kernel.processes.get(1)
            if init is None or init.zombie or init.exiting:
                continue
            if info.si_code == SI_KERNEL:
                kernel.host_signal(signo, make_siginfo(signo, SI_KERNEL))
            elif init.sigactions.get(signo, (abi.SIG_DFL,))[0] != abi.SIG_DFL:
                send(kernel, init, signo, make_siginfo(signo, 0))


def _serve(listener, kernel, go: threading.Event) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_client, args=(conn, kernel, go), name="umiak-oci-client", daemon=True).start()


def _client(conn, kernel, go: threading.Event) -> None:
    r = Reader(conn)
    try:
        msg = r.next(want_fds=3)
        op = (msg or {}).get("op")
        if op == "start":
            go.set()
            send_msg(conn, {"ok": True})
        elif op == "exec" and msg is not None:
            _exec(conn, r, kernel, msg)
        else:
            send_msg(conn, {"error": f"unknown request {op!r}"})
    except OSError:
        pass
    finally:
        for fd in r.fds:   # the new process has its own duplicates; or it never started
            try:
                os.close(fd)
            except OSError:
                pass
        conn.close()


def _exec(conn, r: Reader, kernel, msg: dict) -> None:
    """Start the requested process in this VM; relay signals to it; report its exit."""
    from umiak.errors import UmiakError
    from umiak.kernel.signals import make_siginfo, send
    from umiak.machine import _load_from_guest
    if len(r.fds) != 3:
        send_msg(conn, {"error": "exec: stdin, stdout and stderr must come with the request"})
        return
    try:
        p = parse_process(msg.get("process"), "exec process")
        p.env.setdefault("HOME", home_of(kernel.options.root or "/", p.uid))
    except OciError as e:
        send_msg(conn, {"error": str(e)})
        return
    try:
        stdio = tuple(os.dup(fd) for fd in r.fds)
        try:
            with kernel.lock:
                argv_b = [os.fsencode(a) for a in p.args]
                image, exe, argv_b, execfn = _load_from_guest(kernel, p.args[0], argv_b, p.env.get("PATH"))
                envp = [os.fsencode(f"{k}={v}") for k, v in p.env.items()]
                proc = kernel.spawn_process(image, exe, argv_b, envp, execfn, stdio, p.cwd, p.uid, p.gid, p.groups)
                apply_process(kernel, proc, p)
        except BaseException:
            for fd in stdio:
                os.close(fd)
            raise
    except UmiakError as e:
        send_msg(conn, {"error": f"exec failed: {exec_error(p.args[0], str(e))}"})
        return
    except Exception as e:  # noqa: BLE001 - one line for the user
        send_msg(conn, {"error": f"exec failed: {_describe(e)}"})
        return
    send_msg(conn, {"pid": proc.pid})

    def relay() -> None:
        while True:
            try:
                m = r.next()
            except OSError:
                m = None
            # Its proxy gone (SIGKILLed, as the shim ends an exec): the process goes with it.
            signo = signal.SIGKILL if m is None else m.get("signal")
            if isinstance(signo, int) and 0 < signo < 65:
                with kernel.lock:
                    if not proc.zombie and not proc.exiting:
                        send(kernel, proc, signo, make_siginfo(signo, 0))
            if m is None:
                return
    threading.Thread(target=relay, name="umiak-oci-exec-signals", daemon=True).start()
    proc.done.wait()
    send_msg(conn, {"exit": proc.exit_status})


def exec_proxy(st: State, p, ready_w: int, tty: int | None) -> None:
    """The exec proxy (a child of `exec`): never returns."""
    status = 125
    ready = False
    try:
        if tty is not None:
            take_terminal(tty, p.console_size)
        close_fds({ready_w})
        reader, reply = st.call({"op": "exec", "process": p.to_json()}, fds=[0, 1, 2])
        # The guest has the stdio now: ours must not keep the engine's pipes open past its end.
        null = os.open(os.devnull, os.O_RDWR)
        for i in (0, 1, 2):
            os.dup2(null, i)
        os.close(null)
        sock = reader.s

        def forward(signo, frame) -> None:
            try:
                send_msg(sock, {"signal": signo})
            except OSError:
                pass
        for signo in FORWARDED:
            signal.signal(signo, forward)
        os.write(ready_w, b"ok")
        os.close(ready_w)
        ready = True
        while True:
            m = reader.next()
            if m is None:   # the VM ended under it: as a process the container's end killed
                status = 128 + signal.SIGKILL
                break
            if "exit" in m:
                status = int(m["exit"])
                break
    except BaseException as e:  # noqa: BLE001 - the reason goes to `exec`
        if not ready:
            try:
                os.write(ready_w, _describe(e).encode()[:4000])
            except OSError:
                pass
    os._exit(status & 0xFF)
