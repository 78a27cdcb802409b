"""The runtime's commands (one function each, called by cli.main with the parsed flags).

Only create and exec read a bundle or start a proxy: the others (start, state, kill,
delete, called for every container) import no more than the state directory needs."""

import json
import os
import signal
import sys
import time

from typing import TYPE_CHECKING

from umiak.oci import OciError
from umiak.oci.state import State, parse_signal, proc_start_time, send_console


if TYPE_CHECKING:
    from umiak.oci.bundle import Process


def _hooks(bundle_path: str) -> dict:
    from umiak.oci import bundle
    try:
        return bundle.load(bundle_path).hooks
    except OciError:
        return {}


def _spawn(target, process, console_socket: str | None) -> int:
    """Fork a proxy; wait until it is ready (its first report: "ok" or why not); hand the
    terminal's master to the engine. Returns its pid."""
    if process.terminal and not console_socket:
        raise OciError("process.terminal is set: --console-socket is needed")
    r, w = os.pipe()
    master = tty = None
    if process.terminal:
        master, tty = os.openpty()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:   # the proxy; the target never returns
        try:
            os.close(r)
            if master is not None:
                os.close(master)
            target(w, tty)
        finally:
            os._exit(125)
    os.close(w)
    if tty is not None:
        os.close(tty)
    chunks = []
    while True:
        data = os.read(r, 4096)
        if not data:
            break
        chunks.append(data)
    os.close(r)
    msg = b"".join(chunks).decode(errors="replace")
    try:
        if msg != "ok":
            os.waitpid(pid, 0)
            raise OciError(msg or "the proxy ended before it was ready")
        if master is not None:
            send_console(console_socket or "", master)
    except BaseException:
        _kill_and_wait(pid)
        raise
    finally:
        if master is not None:
            os.close(master)
    return pid


def _kill_and_wait(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        _wait_gone([pid], 5)


def _wait_gone(pids: list[int], timeout: float) -> None:
    """Until these processes have ended (someone else reaps them: the shim)."""
    deadline = time.monotonic() + timeout
    while any(proc_start_time(p) is not None for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)


def _write_pid_file(path: str | None, pid: int) -> None:
    if path:
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(str(pid))
        os.replace(tmp, path)


def _run_hooks(hooks: dict, names: tuple[str, ...], state: dict, must: bool = True) -> None:
    """OCI hooks (e.g. Docker's libnetwork-setkey at prestart): the state JSON on stdin."""
    import subprocess
    for name in names:
        for h in hooks.get(name) or []:
            path = h.get("path") if isinstance(h, dict) else None
            if not path:
                continue
            args = h.get("args") or [path]
            env = dict(e.partition("=")[::2] for e in h.get("env") or [])
            try:
                res = subprocess.run(args, executable=path, input=json.dumps(state).encode(), env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=h.get("timeout"))
            except (OSError, subprocess.TimeoutExpired) as e:
                if must:
                    raise OciError(f"{name} hook {path}: {e}") from None
                continue
            if res.returncode != 0 and must:
                err = res.stderr.decode(errors="replace").strip().splitlines()
                raise OciError(f"{name} hook {path} failed (status {res.returncode})" + (f": {err[-1]}" if err else ""))


def cmd_create(g, a) -> int:
    from umiak.oci import bundle
    b = bundle.load(a.bundle, g.platform)
    if b.process.terminal and not a.console_socket:
        raise OciError("process.terminal is set: --console-socket is needed")
    st = State.create(g.root, a.id, b.path, b.annotations)
    pid = 0
    try:
        from umiak.oci.proxy import run_init
        pid = _spawn(lambda w, tty: run_init(st, b, w, tty), b.process, a.console_socket)
        st.data.update(pid=pid, starttime=proc_start_time(pid))
        st.save()
        _run_hooks(b.hooks, ("prestart", "createRuntime"), st.oci_state())
        _write_pid_file(a.pid_file, pid)   # last: containerd takes create as done once it is there
    except BaseException:
        if pid:
            _kill_and_wait(pid)
        st.remove()
        raise
    return 0


def cmd_start(g, a) -> int:
    st = State.load(g.root, a.id)
    status = st.status()
    if status != "created":
        raise OciError(f"cannot start a container that is {status}")
    reader, _ = st.call({"op": "start"})
    reader.s.close()
    st.data["started"] = True
    st.save()
    _run_hooks(_hooks(st.data["bundle"]), ("poststart",), st.oci_state(), must=False)
    return 0


def cmd_state(g, a) -> int:
    print(json.dumps(State.load(g.root, a.id).oci_state(), indent=2))
    return 0


def cmd_kill(g, a) -> int:
    st = State.load(g.root, a.id)
    signo = parse_signal(a.signal)
    if not st.alive():
        if a.all:
            return 0
        raise OciError("container not running")
    st.signal_all(signo, execs_too=a.all)
    return 0


def cmd_delete(g, a) -> int:
    try:
        st = State.load(g.root, a.id)
    except OciError:
        if a.force:
            return 0
        raise
    status = st.status()
    if status in ("running", "paused") and not a.force:
        raise OciError(f"cannot delete container {a.id} that is not stopped: {status}")
    pids = ([st.pid] if st.alive() else []) + st.exec_pids()
    if pids:
        st.signal_all(signal.SIGKILL)
        _wait_gone(pids, 10)
    _run_hooks(_hooks(st.data["bundle"]), ("poststop",), st.oci_state(), must=False)
    st.remove()
    return 0


def _exec_process(a) -> "Process":
    from umiak.oci import bundle as bundles
    if a.process:
        try:
            with open(a.process) as f:
                return bundles.parse_process(json.load(f), "exec process")
        except (OSError, ValueError) as e:
            raise OciError(f"--process {a.process}: {e}") from None
    if not a.command:
        raise OciError("exec: no command given (use --process FILE or ID COMMAND...)")
    uid, _, gid = (a.user or "0:0").partition(":")
    try:
        user = {"uid": int(uid), "gid": int(gid or uid)}
    except ValueError:
        raise OciError(f"exec: bad --user {a.user!r} (use numeric UID:GID)") from None
    env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", *a.env]
    return bundles.parse_process({"args": a.command, "env": env, "cwd": a.cwd or "/", "user": user,
                                  "terminal": a.tty}, "exec process")


def cmd_exec(g, a) -> int:
    st = State.load(g.root, a.id)
    status = st.status()
    if status not in ("running", "created"):
        raise OciError(f"cannot exec in a container that is {status}")
    p = _exec_process(a)
    from umiak.oci.proxy import exec_proxy
    pid = _spawn(lambda w, tty: exec_proxy(st, p, w, tty), p, a.console_socket)
    st.add_exec(pid)
    _write_pid_file(a.pid_file, pid)
    if a.detach:
        return 0
    _, wstatus = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wstatus) & 0xFF


def cmd_ps(g, a) -> int:
    st = State.load(g.root, a.id)
    pids = ([st.pid] if st.alive() else []) + st.exec_pids()
    if a.format == "json":
        print(json.dumps(pids))
    else:
        print("PID")
        for pid in pids:
            print(pid)
    return 0


def cmd_pause(g, a) -> int:
    st = State.load(g.root, a.id)
    if st.status() != "running":
        raise OciError(f"cannot pause a container that is {st.status()}")
    st.signal_all(signal.SIGSTOP)   # the whole VM stops: every vCPU, timer and proxy
    st.data["paused"] = True
    st.save()
    return 0


def cmd_resume(g, a) -> int:
    st = State.load(g.root, a.id)
    if st.status() != "paused":
        raise OciError(f"cannot resume a container that is {st.status()}")
    st.data["paused"] = False
    st.save()
    st.signal_all(signal.SIGCONT)
    return 0


def cmd_update(g, a) -> int:
    """Resources are accepted and kept; a running VM's RAM is fixed at create (its limit)."""
    st = State.load(g.root, a.id)
    resources: dict = {}
    if a.resources:
        try:
            text = sys.stdin.read() if a.resources == "-" else open(a.resources).read()
            resources = json.loads(text or "{}")
        except (OSError, ValueError) as e:
            raise OciError(f"update: bad resources: {e}") from None
    st.data["resources"] = resources
    st.save()
    return 0


def cmd_features(g, a) -> int:
    print(json.dumps({
        "ociVersionMin": "1.0.0", "ociVersionMax": "1.0.2",
        "hooks": ["prestart", "createRuntime", "poststart", "poststop"],
        "mountOptions": ["bind", "rbind", "ro", "rw", "rprivate", "private", "nosuid", "nodev", "noexec"],
        "linux": {"namespaces": ["network", "mount", "pid", "uts", "ipc", "user", "cgroup"],
                  "capabilities": [], "cgroup": {"v1": False, "v2": False, "systemd": False},
                  "seccomp": {"enabled": False}, "apparmor": {"enabled": False}, "selinux": {"enabled": False}},
        "annotations": {"dev.umiak.platform": "kvm, emu or auto", "dev.umiak.config": "a kernel .config file"},
    }, indent=2))
    return 0
