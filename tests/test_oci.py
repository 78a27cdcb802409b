"""umiak as an OCI runtime (umiak.oci), each check compared with the same under runc.

Two layers, each on one platform (the first usable of $UMIAK_TEST_PLATFORMS, kvm
first: the runtime's part does not depend on it, and the time budget is small):
  * the runtime driven directly, as containerd's shim drives it (a small subreaper
    script runs create/start/kill/exec/delete and reaps the pid-file's process);
  * real Docker: a private dockerd (own data-root, exec-root and socket; no bridge,
    no iptables) with `umiak` registered as a runtime, images made by `docker import`
    of a local rootfs, and `ctr run --runc-binary` on its containerd; skipped when
    Docker is not installed.
Both need root (namespaces, mounts) and a static busybox (Debian: busybox-static).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import harness

REPO = harness.REPO
TIMEOUT = 90


def _static_busybox() -> str | None:
    path = shutil.which("busybox")
    if path is None:
        return None
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    return None if b"ld-linux" in head else path   # a dynamic busybox names its interpreter


def _need_root_and_busybox() -> str:
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces and mounts, as runc does)")
    bb = _static_busybox()
    if bb is None:
        pytest.skip("needs a static busybox (Debian: apt-get install busybox-static)")
    return bb


def _make_rootfs(root: Path, busybox: str, probe: Path, dynamic: Path | None = None) -> None:
    """busybox and its applets, the static probe as /probe, the dynamic one (with its
    libraries at their paths) as /dyn/probe."""
    for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "dyn"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    for a in ("sh", "ls", "cat", "echo", "id", "hostname", "sleep", "true", "touch", "pwd", "kill", "wc", "nc", "ps", "grep", "mv"):
        (root / "bin" / a).symlink_to("busybox")
    shutil.copy(probe, root / "probe")
    if dynamic is not None:
        shutil.copy(dynamic, root / "dyn" / "probe")
        out = subprocess.run(["ldd", str(dynamic)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            parts = line.split()
            lib = parts[2] if len(parts) > 2 and parts[1] == "=>" else parts[0]
            if lib.startswith("/"):
                dest = root / lib.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(os.path.realpath(lib), dest)


def _wrapper(path: Path, platform: str) -> Path:
    """What an engine registers: `umiak oci` of the tree under test."""
    path.write_text(f'#!/bin/sh\nPYTHONPATH={REPO / "src"} exec {sys.executable} -m umiak oci '
                    f'--platform={platform} "$@"\n')
    path.chmod(0o755)
    return path


def _one_platform() -> str:
    """The first usable platform of those asked for (kvm first)."""
    from conftest import platform_problems
    wanted = [p for p in os.environ.get("UMIAK_TEST_PLATFORMS", "kvm,emu").split(",") if p]
    for name in wanted:
        if platform_problems().get(name, "unknown") is None:
            return name
    pytest.skip(f"no usable platform among {wanted}")


def test_terminal_job_control_under_umiak_run(platform):
    """On a terminal (script(1) gives one): isatty, tcgetattr (the kernel's 36-byte termios,
    not glibc's 60) and tcsetpgrp as natively; what -t containers and shells need."""
    if shutil.which("script") is None:
        pytest.skip("needs script (util-linux)")
    probe = str(harness.build("oci_probe", "glibc-static"))
    native = harness._run(["script", "-qec", f"{probe} tty", "/dev/null"])
    cmd = " ".join(harness.umiak_command(platform, [probe, "tty"]))
    umiak = harness._run(["script", "-qec", cmd, "/dev/null"], env=harness.umiak_env())
    assert (umiak.status, umiak.stdout) == (native.status, native.stdout), f"{umiak.describe()}\n{native.describe()}"
    assert b"tcsetpgrp 0, foreground is ours 1" in native.stdout


# -- the runtime driven directly, as a shim does -------------------------------------------

# A minimal shim: a subreaper (the pid-file's process is ours to reap once `create` has
# ended), running runtime commands; the container's stdio is this script's.
MINI_SHIM = r'''
import ctypes, json, os, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER
runtime, steps, results = json.loads(sys.argv[1]), json.loads(sys.argv[2]), open(sys.argv[3], "w")
pid = None
def note(**kw):
    results.write(json.dumps(kw) + "\n"); results.flush()
for step in steps:
    if step[0] == "sleep":
        time.sleep(step[1])
    elif step[0] == "wait":
        _, st = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(st)
        note(step="wait", status=128 - code if code < 0 else code)   # as containerd reports it
    elif step[0] == "hostkill":   # as the shim ends an exec: kill(2) on its pid-file's pid
        os.kill(int(open(step[1]).read()), int(step[2]))
        os.waitpid(int(open(step[1]).read()), 0)
    elif step[0] == "stdout-size":
        note(step="stdout-size", size=os.fstat(1).st_size)
    elif step[0] in ("create", "exec"):
        r = subprocess.run(runtime + step, stdin=subprocess.DEVNULL if step[0] == "create" else None)
        note(step=step[0], rc=r.returncode)
        if step[0] == "create" and r.returncode == 0:
            pid = int(open(step[step.index("--pid-file") + 1]).read())
    else:
        r = subprocess.run(runtime + step, capture_output=True, text=True)
        note(step=step[0], rc=r.returncode, out=r.stdout)
'''


@dataclass
class Direct:
    tmp: Path
    bundle: Path

    def config(self, args: list[str], **extra) -> None:
        """A config.json as `runc spec` writes it (no terminal), running args."""
        spec = {
            "ociVersion": "1.0.2", "root": {"path": "rootfs", "readonly": False}, "hostname": "oci-test",
            "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args, "cwd": "/",
                        "env": ["PATH=/bin", "FOO=bar"], "noNewPrivileges": True,
                        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                       {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                       {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                       {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                        "options": ["nosuid", "noexec", "nodev", "ro"]}],
            "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
                      "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]},
        }
        for k, v in extra.items():
            spec[k] = v
        (self.bundle / "config.json").write_text(json.dumps(spec))

    def run(self, runtime: list[str], steps: list[list]) -> tuple[list[dict], bytes, bytes]:
        """The steps through the mini shim; (results, container stdout, stderr)."""
        res = self.tmp / "results"
        out, err = self.tmp / "out", self.tmp / "err"
        with open(out, "wb") as o, open(err, "wb") as e:
            p = subprocess.run([sys.executable, "-c", MINI_SHIM, json.dumps(runtime), json.dumps(steps), str(res)],
                               stdout=o, stderr=e, stdin=subprocess.DEVNULL, cwd=self.bundle, timeout=TIMEOUT,
                               env={**harness.umiak_env(), "PYTHONPATH": str(REPO / "src")})
        assert p.returncode == 0, err.read_bytes()
        return [json.loads(line) for line in res.read_text().splitlines()], out.read_bytes(), err.read_bytes()


@pytest.fixture(scope="module")
def direct_env():
    bb = _need_root_and_busybox()
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed (Debian: apt-get install runc), nothing to compare with")
    tmp = Path(tempfile.mkdtemp(prefix="uod", dir="/tmp"))
    bundle = tmp / "bundle"
    _make_rootfs(bundle / "rootfs", bb, harness.build("oci_probe", "glibc-static"))
    yield tmp, bundle
    shutil.rmtree(tmp, ignore_errors=True)


def _runtimes(tmp: Path, platform: str) -> dict[str, list[str]]:
    return {"umiak": [str(_wrapper(tmp / f"umiak-oci-{platform}", platform)), "--root", str(tmp / "root-umiak"),
                      "--log", str(tmp / "log-umiak.json"), "--log-format", "json"],
            "runc": ["runc", "--root", str(tmp / "root-runc"), "--log", str(tmp / "log-runc.json"),
                     "--log-format", "json"]}


def _both(direct_env, args, steps, **extra):
    """The steps (the container id written as "ID") under umiak and under runc."""
    tmp, bundle = direct_env
    d = Direct(tmp, bundle)
    d.config(args, **extra)
    out = {}
    for name, rt in _runtimes(tmp, _one_platform()).items():
        cid = f"t{os.getpid()}-{name}"
        out[name] = d.run(rt, [[cid if a == "ID" else a for a in st] for st in steps])
    return out


def _create(pidfile: str) -> list:
    return ["create", "--bundle", ".", "--pid-file", pidfile, "ID"]


def test_direct_create_waits_for_start_then_status(direct_env):
    """The program does not run before `start`; state says created, then running; the
    proxy's exit is the program's status, and `delete` frees the id."""
    tmp = direct_env[0]
    out = _both(direct_env, ["sh", "-c", "echo ran $FOO $(hostname) $(pwd); echo err >&2; exit 3"],
                [_create(str(tmp / "pid")), ["sleep", 0.5], ["stdout-size"], ["state", "ID"], ["start", "ID"], ["wait"],
                 ["state", "ID"], ["delete", "ID"], ["state", "ID"]])
    for name, (results, _out, _err) in out.items():
        states = [json.loads(r["out"])["status"] if r["rc"] == 0 else None for r in results if r["step"] == "state"]
        assert states == ["created", "stopped", None], (name, results)
        assert [r["size"] for r in results if r["step"] == "stdout-size"] == [0]
    assert out["umiak"][1:] == out["runc"][1:]
    assert [r.get("status") for r in out["umiak"][0]] == [r.get("status") for r in out["runc"][0]]
    assert [r["status"] for r in out["umiak"][0] if r["step"] == "wait"] == [3]


def test_direct_signals_and_exec(direct_env):
    """kill: pid 1 gets the signals it has a handler for (USR1 with no handler is dropped,
    as for a container's init); exec runs a second program in the same container with
    its own stdio and status; kill TERM ends it through its trap."""
    tmp = direct_env[0]
    script = ('trap "echo got usr2" USR2; trap "echo term; exit 0" TERM; echo up; '
              'while true; do sleep 0.1; done')
    out = _both(direct_env, ["sh", "-c", script],
                [_create(str(tmp / "pid")), ["start", "ID"], ["sleep", 1.0], ["kill", "ID", "USR1"],
                 ["kill", "ID", "USR2"], ["sleep", 0.5],
                 ["exec", "--pid-file", str(tmp / "exec.pid"), "ID", "/probe", "exit", "7"],
                 ["exec", "--env", "FOO=baz", "ID", "sh", "-c", "echo exec $FOO; exit 5"],
                 ["kill", "ID", "TERM"], ["wait"], ["delete", "ID"]])
    for name, (results, _out, stderr) in out.items():
        assert [r["rc"] for r in results if r["step"] == "exec"] == [7, 5], (name, results, stderr)
    assert out["umiak"][1:] == out["runc"][1:]
    assert out["umiak"][1] == b"up\ngot usr2\nexec baz\nterm\n"
    assert [r.get("status") for r in out["umiak"][0]] == [r.get("status") for r in out["runc"][0]]


def test_direct_exec_ends_with_its_proxy(direct_env):
    """The shim ends an exec by SIGKILL to its pid: the process in the VM goes too."""
    tmp = direct_env[0]
    pf = str(tmp / "exec.pid")
    out = _both(direct_env, ["sleep", "100"],
                [_create(str(tmp / "pid")), ["start", "ID"],
                 ["exec", "--detach", "--pid-file", pf, "ID", "sleep", "999"], ["sleep", 0.5],
                 ["exec", "ID", "sh", "-c", "ps -o args | grep -c '^sleep 999'"],
                 ["hostkill", pf, "9"], ["sleep", 0.5],
                 ["exec", "ID", "sh", "-c", "ps -o args | grep -c '^sleep 999'"],
                 ["delete", "--force", "ID"], ["wait"]])
    assert out["umiak"][1:] == out["runc"][1:]
    assert out["umiak"][1] == b"1\n0\n"


def test_direct_crash_and_delete_force(direct_env):
    """A crash is 139; `delete --force` of a running container ends its VM and frees the id."""
    tmp = direct_env[0]
    out = _both(direct_env, ["/probe", "crash"],
                [_create(str(tmp / "pid")), ["start", "ID"], ["wait"], ["delete", "ID"]])
    assert [r.get("status") for r in out["umiak"][0]] == [r.get("status") for r in out["runc"][0]]
    assert [r for r in out["umiak"][0] if r["step"] == "wait"][0]["status"] == 139
    out = _both(direct_env, ["sleep", "100"],
                [_create(str(tmp / "pid")), ["start", "ID"], ["delete", "--force", "ID"], ["wait"], ["state", "ID"]])
    for name, (results, _, _) in out.items():
        assert [r.get("rc", r.get("status")) for r in results] == [0, 0, 0, 137, 1], (name, results)


def test_direct_network_namespace_path(direct_env):
    """linux.namespaces network with a path (as containerd gives a pod's): the VM's sockets
    are made in that namespace, so the guest reaches a server listening only there."""
    if shutil.which("ip") is None:
        pytest.skip("needs ip (Debian: iproute2)")
    tmp = direct_env[0]
    ns = f"uo{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c",
             "import socket; s = socket.create_server(('127.0.0.1', 47123)); print('up', flush=True)\n"
             "for _ in range(2):\n c, _ = s.accept(); c.sendall(b'hello from the namespace\\n'); c.close()"],
            stdout=subprocess.PIPE)
        assert server.stdout is not None and server.stdout.readline() == b"up\n"
        out = _both(direct_env, ["nc", "127.0.0.1", "47123"],
                    [_create(str(tmp / "pid")), ["start", "ID"], ["wait"], ["delete", "ID"]],
                    linux={"namespaces": [{"type": "network", "path": f"/run/netns/{ns}"},
                                          *({"type": t} for t in ("pid", "uts", "mount", "ipc"))]})
        server.wait(30)
    finally:
        subprocess.run(["ip", "netns", "delete", ns])
    assert out["umiak"][1:] == out["runc"][1:]
    assert out["umiak"][1] == b"hello from the namespace\n"


def test_direct_hostname_of_a_joined_uts_namespace(direct_env):
    """No hostname in the spec: a joined UTS namespace's (a pod's), else the host's."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux)")
    tmp = direct_env[0]
    holder = subprocess.Popen(["unshare", "--uts", "sh", "-c", "hostname uo-pod-name && echo up && exec sleep 60"],
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"up\n"
        steps = [_create(str(tmp / "pid")), ["start", "ID"], ["wait"], ["delete", "ID"]]
        namespaces = [{"type": t} for t in ("pid", "network", "ipc", "mount")]
        joined = _both(direct_env, ["hostname"], steps, hostname="",
                       linux={"namespaces": [*namespaces, {"type": "uts", "path": f"/proc/{holder.pid}/ns/uts"}]})
        host = _both(direct_env, ["hostname"], steps, hostname="", linux={"namespaces": namespaces})
    finally:
        holder.kill()
        holder.wait()
    assert joined["umiak"][1:] == joined["runc"][1:] and joined["umiak"][1] == b"uo-pod-name\n"
    assert host["umiak"][1:] == host["runc"][1:] and host["umiak"][1] == os.uname().nodename.encode() + b"\n"


def test_direct_kernel_config_annotation(direct_env, tmp_path):
    """dev.umiak.config selects the guest kernel: one without procfs has no /proc."""
    rt = _runtimes(tmp_path, _one_platform())["umiak"]
    d = Direct(tmp_path, direct_env[1])
    steps = [["create", "--bundle", ".", "--pid-file", str(tmp_path / "pid"), "cfg"], ["start", "cfg"], ["wait"],
             ["delete", "cfg"]]
    d.config(["sh", "-c", "ls -d /proc"])
    full = d.run(rt, steps)
    minimal = REPO / "src" / "umiak" / "config" / "profiles" / "minimal.defconfig"
    d.config(["sh", "-c", "ls -d /proc"], annotations={"dev.umiak.config": str(minimal)})
    small = d.run(rt, steps)
    assert full[1] == b"/proc\n" and [r.get("status") for r in full[0]][2] == 0
    assert small[1] == b"" and b"/proc: No such file or directory" in small[2]
    assert [r.get("status") for r in small[0]][2] == 1


def _leftovers(root: Path) -> list[str]:
    return os.listdir(root) if root.exists() else []


def test_direct_bad_bundles_leave_nothing(direct_env, tmp_path):
    """A mount type umiak cannot honour or a missing rootfs fails at create with one JSON
    error line in --log, status 1, and nothing under --root."""
    tmp, bundle = direct_env
    rt = _runtimes(tmp_path, _one_platform())["umiak"]
    d = Direct(tmp_path, bundle)
    d.config(["true"], mounts=[{"destination": "/mnt", "type": "nfs", "source": "server:/x"}])
    results, _, _ = d.run(rt, [["create", "--bundle", ".", "--pid-file", str(tmp_path / "pid"), "bad1"]])
    assert results[0]["rc"] == 1
    lines = [json.loads(line) for line in (tmp_path / "log-umiak.json").read_text().splitlines()]
    assert lines[-1]["level"] == "error" and "type 'nfs' is not supported" in lines[-1]["msg"]
    assert _leftovers(tmp_path / "root-umiak") == []
    d.config(["true"], root={"path": "no-such-rootfs"})
    results, _, _ = d.run(rt, [["create", "--bundle", ".", "--pid-file", str(tmp_path / "pid"), "bad2"]])
    assert results[0]["rc"] == 1
    assert "no-such-rootfs: no such directory" in (tmp_path / "log-umiak.json").read_text().splitlines()[-1]
    assert _leftovers(tmp_path / "root-umiak") == [] and not (tmp_path / "pid").exists()
    d.config(["/no/such/program"])
    results, _, _ = d.run(rt, [["create", "--bundle", ".", "--pid-file", str(tmp_path / "pid"), "bad3"]])
    assert results[0]["rc"] == 1 and _leftovers(tmp_path / "root-umiak") == []
    results, _, _ = d.run(rt, [["delete", "--force", "never-made"], ["state", "never-made"]])
    assert [r["rc"] for r in results] == [0, 1]


# -- real Docker --------------------------------------------------------------------------

@dataclass
class Docker:
    work: Path
    sock: Path
    wrapper: Path
    platform: str

    def cmd(self, *args: str) -> list[str]:
        return ["docker", "-H", f"unix://{self.sock}", *args]

    def run(self, *args: str, input: bytes | None = None, timeout: float = TIMEOUT) -> harness.Result:
        return harness._run(self.cmd(*args), input=input, timeout=timeout)

    def both(self, *args: str, image: str = "uo:local", input: bytes | None = None) -> dict[str, harness.Result]:
        """`docker run --rm --network=none --runtime=R ARGS... IMAGE CMD...` for umiak and runc;
        args are options until "--", then the command."""
        i = args.index("--")
        out = {}
        for rt in ("umiak", "runc"):
            out[rt] = self.run("run", "--rm", "--network=none", f"--runtime={rt}", *args[:i], image, *args[i + 1:],
                               input=input)
        return out


def _same(res: dict[str, harness.Result]) -> harness.Result:
    u, r = res["umiak"], res["runc"]
    assert (u.status, u.stdout, u.stderr) == (r.status, r.stdout, r.stderr), \
        f"umiak:\n{u.describe()}\nrunc:\n{r.describe()}"
    return u


def _processes_under(path: Path) -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if str(path).encode() in f.read():
                        pids.append(int(d))
            except OSError:
                pass
    return [p for p in pids if p != os.getpid()]


def _unmount_under(path: Path) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for mp in reversed(points):
        if mp.startswith(str(path) + "/"):
            subprocess.run(["umount", "-l", mp], capture_output=True)


@pytest.fixture(scope="module")
def docker():
    bb = _need_root_and_busybox()
    for tool in ("dockerd", "docker", "containerd", "ctr", "runc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: apt-get install docker.io)")
    plat = _one_platform()
    work = Path(tempfile.mkdtemp(prefix="uo", dir="/tmp"))   # short: socket paths live under it
    d = Docker(work, work / "d.sock", _wrapper(work / "umiak-oci", plat), plat)
    (work / "daemon.json").write_text(json.dumps({"runtimes": {"umiak": {"path": str(d.wrapper)}}}))
    log = open(work / "dockerd.log", "wb")
    daemon = subprocess.Popen(
        ["dockerd", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
         "--bridge=none", "--storage-driver=overlay2", "--data-root", str(work / "data"), "--exec-root",
         str(work / "x"), "--pidfile", str(work / "dockerd.pid"), "-H", f"unix://{d.sock}",
         "--config-file", str(work / "daemon.json")],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(d.cmd("info"), capture_output=True).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not start:\n{(work / 'dockerd.log').read_text()[-3000:]}")
            time.sleep(0.2)
        rootfs = work / "rootfs"
        _make_rootfs(rootfs, bb, harness.build("oci_probe", "glibc-static"),
                     harness.build("oci_probe", "glibc-dynamic"))
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(work / "rootfs.tar"), "."], check=True)
        r = d.run("import", "-c", "ENV PATH=/bin", "-c", 'CMD ["/bin/sh"]', str(work / "rootfs.tar"), "uo:local")
        assert r.status == 0, r.describe()
        yield d
    finally:
        subprocess.run(["sh", "-c", f"docker -H unix://{d.sock} ps -aq | xargs -r docker -H unix://{d.sock} rm -f"],
                       capture_output=True, timeout=120)
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        deadline = time.monotonic() + 15   # the shims go up to a second after dockerd
        while _processes_under(work) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in _processes_under(work):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        _unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)
        try:
            os.rmdir("/run/containerd/runc/uo")   # ctr's --root for namespace uo, when empty
        except OSError:
            pass


def test_docker_exit_codes_and_output(docker):
    """stdout, stderr and status of a shell, a static and a dynamic program; a crash is 139."""
    res = _same(docker.both("--", "sh", "-c", "echo out; echo err >&2; /probe hello; /dyn/probe hello; exit 3"))
    assert res.status == 3 and res.stdout == b"out\nhello from /probe\nhello from /dyn/probe\n"
    assert _same(docker.both("--", "/probe", "crash")).status == 139


def test_docker_stdin(docker):
    assert _same(docker.both("-i", "--", "wc", "-c", input=b"x" * 100000)).stdout.strip() == b"100000"


def test_docker_terminal(docker):
    """-t: the program's stdio is a terminal (its master went over the console socket)."""
    res = {}
    for rt in ("umiak", "runc"):
        cmd = " ".join(docker.cmd("run", "--rm", "-t", "--network=none", f"--runtime={rt}", "uo:local",
                                  "/probe", "tty"))
        res[rt] = harness._run(["script", "-qec", cmd, "/dev/null"], timeout=TIMEOUT)
    assert res["umiak"].stdout == res["runc"].stdout and res["umiak"].status == res["runc"].status == 0, \
        f"{res['umiak'].describe()}\n{res['runc'].describe()}"
    assert b"fd 0: isatty 1 tcgetattr 0" in res["umiak"].stdout
    assert b"tcsetpgrp 0, foreground is ours 1" in res["umiak"].stdout


def test_docker_user_workdir_hostname_env(docker):
    _same(docker.both("-u", "1000:100", "-w", "/tmp", "--hostname", "boat", "-e", "FOO=b a r", "--",
                      "sh", "-c", "id; pwd; hostname; cat /etc/hostname; echo \"$FOO\"; /probe ids; "
                      "env | grep -E '^(HOME|PATH|FOO|HOSTNAME|TERM)=' | sort"))


def test_docker_read_only_and_volume(docker):
    """--read-only (the root and its /tmp); a -v bind mount whose writes reach the host; a
    read-only one that refuses them."""
    vol = Path(tempfile.mkdtemp(prefix="uov", dir="/tmp"))
    try:
        res = {}
        for rt in ("umiak", "runc"):
            res[rt] = docker.run("run", "--rm", "--network=none", f"--runtime={rt}", "--read-only", "-v", f"{vol}:/v",
                                 "-v", f"{vol}:/r:ro", "uo:local", "sh", "-c",
                                 f"touch /x; echo $?; touch /tmp/y; echo $?; echo {rt} > /v/f; cat /r/f; "
                                 "echo x > /r/new; echo $?")
            assert (vol / "f").read_text() == f"{rt}\n" and not (vol / "new").exists()
            res[rt].stdout = res[rt].stdout.replace(rt.encode(), b"RUNTIME")
        assert _same(res).stdout == b"1\n1\nRUNTIME\n1\n"
    finally:
        shutil.rmtree(vol, ignore_errors=True)


def test_docker_memory_limit(docker):
    """--memory: within it a program runs; past it the OOM killer ends it (137)."""
    _same(docker.both("--memory=64m", "--memory-swap=64m", "--", "/probe", "alloc", "16"))
    assert _same(docker.both("--memory=64m", "--memory-swap=64m", "--", "/probe", "alloc", "200")).status == 137


def test_docker_detached_exec_logs_kill_top_stop(docker):
    script = ('trap "echo got usr1" USR1; trap "echo term; exit 0" TERM; echo started; '
              'while true; do sleep 0.1; done')
    seen = {}
    for rt in ("umiak", "runc"):
        name = f"uo-d-{rt}"
        r = docker.run("run", "-d", "--name", name, "--network=none", f"--runtime={rt}", "uo:local", "sh", "-c", script)
        assert r.status == 0, r.describe()
        deadline = time.monotonic() + 30
        while b"started" not in docker.run("logs", name).stdout and time.monotonic() < deadline:
            time.sleep(0.2)
        e1 = docker.run("exec", name, "sh", "-c", "echo in exec $HOME $PATH; echo e >&2; exit 4")
        e2 = docker.run("exec", "-i", name, "cat", input=b"through exec\n")
        e3 = docker.run("exec", "-u", "1000:100", "-w", "/tmp", "-e", "FOO=x", name, "/dyn/probe", "ids")
        top = docker.run("top", name)
        assert top.status == 0 and len(top.stdout.splitlines()) >= 2, top.describe()
        assert docker.run("kill", "-s", "USR1", name).status == 0
        time.sleep(1)
        t0 = time.monotonic()
        stop = docker.run("stop", "-t", "20", name)
        took = time.monotonic() - t0
        code = docker.run("inspect", "-f", "{{.State.ExitCode}}", name).stdout
        logs = docker.run("logs", name)
        docker.run("rm", "-f", name)
        assert stop.status == 0 and took < 15, (rt, took, stop.describe())   # by SIGTERM, not after the grace
        seen[rt] = ((e1.status, e1.stdout, e1.stderr), (e2.status, e2.stdout), code, logs.stdout, logs.stderr,
                    (e3.status, e3.stdout, e3.stderr))
    assert seen["umiak"] == seen["runc"]
    assert seen["umiak"][3] == b"started\ngot usr1\nterm\n"


def _ctr(docker) -> list[str]:
    """ctr on dockerd's containerd, namespace "uo", with the test image imported."""
    addr = str(docker.work / "x" / "containerd" / "containerd.sock")
    ctr = ["ctr", "-a", addr, "-n", "uo"]
    if b"uo:local" not in subprocess.run([*ctr, "images", "ls", "-q"], capture_output=True).stdout:
        save = subprocess.run(docker.cmd("save", "uo:local"), capture_output=True, timeout=TIMEOUT)
        imp = subprocess.run([*ctr, "images", "import", "-"], input=save.stdout, capture_output=True,
                             timeout=TIMEOUT)
        assert imp.returncode == 0, imp.stderr
    return ctr


def test_ctr_run_runc_binary(docker):
    """The same image straight through containerd (`ctr run --runc-binary`)."""
    ctr = _ctr(docker)
    image = "docker.io/library/uo:local"
    res = {}
    for rt, extra in (("umiak", ["--runc-binary", str(docker.wrapper)]), ("runc", [])):
        res[rt] = harness._run([*ctr, "run", "--rm", *extra, image, f"uo-ctr-{rt}", "sh", "-c",
                                "echo hi from ctr; /probe ids; exit 6"], timeout=TIMEOUT)
    _same(res)
    assert res["umiak"].status == 6


def test_docker_exec_tty_pause_update(docker):
    """exec -t (the exec's terminal over the console socket), pause/unpause (the VM stops
    and goes on) and update --memory are accepted as runc's are."""
    seen = {}
    for rt in ("umiak", "runc"):
        name = f"uo-p-{rt}"
        r = docker.run("run", "-d", "--name", name, "--network=none", f"--runtime={rt}", "uo:local",
                       "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/m; mv /tmp/m /tmp/n; sleep 0.1; done")
        assert r.status == 0, r.describe()
        cmd = " ".join(docker.cmd("exec", "-t", name, "/probe", "tty"))
        tty = harness._run(["script", "-qec", cmd, "/dev/null"], timeout=TIMEOUT)
        pause = docker.run("pause", name)
        state = docker.run("inspect", "-f", "{{.State.Status}}", name).stdout
        unpause = docker.run("unpause", name)
        time.sleep(0.5)
        after = docker.run("exec", name, "cat", "/tmp/n")
        upd = docker.run("update", "--memory=512m", "--memory-swap=512m", name)
        docker.run("rm", "-f", name)
        assert after.status == 0 and int(after.stdout) > 0, after.describe()
        seen[rt] = (tty.status, tty.stdout, pause.status, state, unpause.status, upd.status)
    assert seen["umiak"] == seen["runc"]
    assert b"fd 1: isatty 1 tcgetattr 0" in seen["umiak"][1] and seen["umiak"][3] == b"paused\n"
    assert b"tcsetpgrp 0, foreground is ours 1" in seen["umiak"][1]


def test_docker_create_error_is_shown(docker):
    """A program that is not there: create fails, the runtime's error line is what docker
    prints, and the status is runc's (127)."""
    res = docker.both("--", "/no/such/program")
    assert res["umiak"].status == res["runc"].status == 127, res["umiak"].describe()
    assert b"/no/such/program" in res["umiak"].stderr and b"OCI runtime create failed" in res["umiak"].stderr
    codes = {}
    for rt in ("umiak", "runc"):
        name = f"uo-e-{rt}"
        assert docker.run("run", "-d", "--name", name, "--network=none", f"--runtime={rt}", "uo:local",
                          "sleep", "100").status == 0
        codes[rt] = (docker.run("exec", name, "/no/such/program").status, docker.run("exec", name, "nothere").status)
        docker.run("rm", "-f", name)
    assert codes["umiak"] == codes["runc"]


def test_docker_bridge_network_and_published_port(docker):
    """A user-defined bridge network: Docker's prestart hook (libnetwork-setkey) moves the
    container's interface into the VM's network namespace, so -p reaches the guest."""
    import socket
    net = docker.run("network", "create", "uo-net")
    if net.status != 0:
        pytest.skip(f"no bridge networks here: {net.stderr.decode(errors='replace').strip()}")
    try:
        got = {}
        for port, rt in ((47211, "umiak"), (47212, "runc")):
            name = f"uo-n-{rt}"
            r = docker.run("run", "-d", "--name", name, "--network=uo-net", "-p", f"127.0.0.1:{port}:8080",
                           f"--runtime={rt}", "uo:local", "sh", "-c",
                           "while true; do echo hello over the bridge | nc -l -p 8080; done")
            assert r.status == 0, r.describe()
            deadline = time.monotonic() + 30
            data = b""
            while time.monotonic() < deadline and not data:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                        data = s.recv(100)
                except OSError:
                    time.sleep(0.3)
            got[rt] = data
            docker.run("rm", "-f", name)
    finally:
        docker.run("network", "rm", "uo-net")
    assert got["umiak"] == got["runc"] == b"hello over the bridge\n"


def test_ctr_pod_shaped_network(docker):
    """Two containers as a pod's: the second joins the first's network namespace by path
    (/proc/<pid>/ns/net, as CRI gives the pause container's), and reaches its server on
    127.0.0.1 there; both with the CRI annotations a pod's containers carry."""
    ctr = _ctr(docker)
    image = "docker.io/library/uo:local"
    got = {}
    for rt, extra in (("umiak", ["--runc-binary", str(docker.wrapper)]), ("runc", [])):
        sbx = f"uo-sbx-{rt}"
        r = harness._run([*ctr, "run", "-d", *extra, "--annotation", "io.kubernetes.cri.container-type=sandbox",
                          image, sbx, "sh", "-c", "while true; do echo hello pod | nc -l -p 8081; done"])
        assert r.status == 0, r.describe()
        try:
            tasks = harness._run([*ctr, "task", "ls"]).stdout.decode().split("\n")
            pid = next(line.split()[1] for line in tasks if line.startswith(sbx + " "))
            deadline, out = time.monotonic() + 30, None
            while time.monotonic() < deadline:
                out = harness._run([*ctr, "run", "--rm", *extra, "--with-ns", f"network:/proc/{pid}/ns/net",
                                    "--annotation", "io.kubernetes.cri.container-type=container",
                                    "--annotation", f"io.kubernetes.cri.sandbox-id={sbx}", image, f"uo-c-{rt}",
                                    "nc", "127.0.0.1", "8081"])
                if out.stdout:
                    break
                time.sleep(0.3)
            got[rt] = (out.status, out.stdout) if out else None
        finally:
            harness._run([*ctr, "task", "kill", "-s", "SIGKILL", sbx])
            time.sleep(0.5)
            harness._run([*ctr, "task", "delete", "-f", sbx])
            harness._run([*ctr, "containers", "rm", sbx])
    assert got["umiak"] == got["runc"] == (0, b"hello pod\n")


def _interactive(cmd: list[str], lines: list[bytes], prompt: bytes = b"# ") -> tuple[int, bytes]:
    """Run cmd on a new terminal; at each prompt type the next line. (status, all output)."""
    import pty
    import select
    pid, master = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    out, todo, deadline = b"", list(lines), time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 1)
            if not r:
                continue
            try:
                data = os.read(master, 4096)
            except OSError:   # EIO: the other side is closed
                break
            if not data:
                break
            out += data
            if todo and out.rstrip(b"\x1b[6n").endswith(prompt):
                os.write(master, todo.pop(0))
    finally:
        os.close(master)
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st), out


def test_docker_interactive_shell(docker):
    """docker run -it: an interactive shell with job control on the container's terminal."""
    res = {}
    for rt in ("umiak", "runc"):
        res[rt] = _interactive(docker.cmd("run", "--rm", "-it", "--network=none", f"--runtime={rt}", "uo:local", "sh"),
                               [b"echo hi-$((1+2))\n", b"sleep 0.2; exit 7\n"])
    assert res["umiak"] == res["runc"]
    assert res["umiak"][0] == 7 and b"hi-3" in res["umiak"][1]
