"""umiak.oci without a VM: config.json -> run options, the runtime's command line and errors.

In-process (bundle, signals, the global flags) and as `python -m umiak oci` for what an
engine sees: exit status 1 and a JSON error line in --log, nothing left under --root.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from umiak.oci import bundle
from umiak.oci.bundle import OciError
from umiak.oci.cli import _split_globals
from umiak.oci.state import parse_signal

SRC = Path(__file__).resolve().parents[2] / "src"


def _bundle(tmp_path: Path, **spec) -> Path:
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    base = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "process": {"args": ["/bin/sh"], "env": ["PATH=/bin", "A=b=c"], "cwd": "/"}}
    base.update(spec)
    (tmp_path / "config.json").write_text(json.dumps(base))
    return tmp_path


def test_docker_shaped_config(tmp_path):
    """What Docker writes: binds become volumes (ro kept), the guest's own file systems are
    left to it, a tmpfs elsewhere is a tmpfs, memory is the VM's RAM, rlimits and user kept."""
    (tmp_path / "hosts").write_text("")
    b = bundle.load(str(_bundle(
        tmp_path, hostname="h1", root={"path": "rootfs", "readonly": True},
        process={"args": ["sh", "-c", "x"], "env": ["PATH=/bin", "A=b=c"], "cwd": "/w", "terminal": True,
                 "user": {"uid": 1000, "gid": 100, "additionalGids": [5, 6], "umask": 18},
                 "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}], "noNewPrivileges": True,
                 "consoleSize": {"height": 24, "width": 80}},
        mounts=[{"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]},
                {"destination": "/run", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/etc/hosts", "type": "bind", "source": str(tmp_path / "hosts"),
                 "options": ["rbind", "rprivate"]},
                {"destination": "/data", "source": str(tmp_path), "options": ["rbind", "ro"]}],
        linux={"resources": {"memory": {"limit": 256 << 20}, "cpu": {"quota": 150000, "period": 100000},
                             "pids": {"limit": 50}},
               "namespaces": [{"type": "network"}]},
        annotations={"dev.umiak.platform": "emu"})))
    assert (b.root, b.readonly, b.hostname, b.platform, b.memory, b.netns) == \
        (str(tmp_path / "rootfs"), True, "h1", "emu", 256 << 20, "new")
    assert b.volumes == [(str(tmp_path / "hosts"), "/etc/hosts", False), (str(tmp_path), "/data", True)]
    assert b.tmpfs == ["/run"] and (b.cpus, b.pids) == (2, 50)
    p = b.process
    assert (p.args, p.env, p.cwd, p.uid, p.gid, p.groups, p.umask, p.terminal, p.console_size) == \
        (["sh", "-c", "x"], {"PATH": "/bin", "A": "b=c", "HOME": "/"}, "/w", 1000, 100, [5, 6], 18, True, (24, 80))
    assert p.rlimits == {7: (100, 200)} and p.no_new_privileges


@pytest.mark.parametrize("spec, words", [
    ({"mounts": [{"destination": "/m", "type": "nfs", "source": "s:/x"}]}, "type 'nfs' is not supported"),
    ({"root": {"path": "nope"}}, "nope: no such directory"),
    ({"root": {}}, "root.path is missing"),
    ({"process": {"args": []}}, "process.args must be a non-empty list"),
    ({"process": {"args": ["x"], "cwd": "rel"}}, "must be an absolute path"),
    ({"process": {"args": ["x"], "rlimits": [{"type": "RLIMIT_BOGUS"}]}}, "unknown limit 'RLIMIT_BOGUS'"),
    ({"mounts": [{"destination": "/m", "type": "bind", "source": "/no/such/dir"}]}, "no such file or directory"),
    ({"annotations": {"dev.umiak.platform": "xen"}}, "use kvm, emu or auto"),
    ({"linux": {"namespaces": [{"type": "network", "path": "/no/such/ns"}]}}, "network namespace /no/such/ns"),
])
def test_refused_bundles(tmp_path, spec, words):
    with pytest.raises(OciError, match=words.replace("(", r"\(").replace(".", r"\.")):
        bundle.load(str(_bundle(tmp_path, **spec)))


def test_global_flags_and_signals():
    g, rest = _split_globals(["--systemd-cgroup", "--root", "/r", "--log=/l", "--log-format", "json",
                              "--debug", "kill", "--all", "c1", "9"])
    assert (g.root, g.log, g.log_format, rest) == ("/r", "/l", "json", ["kill", "--all", "c1", "9"])
    assert [parse_signal(s) for s in ("9", "KILL", "SIGTERM", "usr1")] == [9, 9, 15, 10]
    with pytest.raises(OciError):
        parse_signal("SIGNOPE")


def _oci(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "umiak", "oci", "--root", str(tmp_path / "root"), "--log",
                           str(tmp_path / "log.json"), "--log-format", "json", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_errors_are_json_lines_and_leave_nothing(tmp_path):
    (tmp_path / "b").mkdir()
    b = _bundle(tmp_path / "b", mounts=[{"destination": "/m", "type": "9p", "source": "x"}])
    r = _oci(tmp_path, "create", "--bundle", str(b), "--pid-file", str(tmp_path / "pid"), "c1")
    assert r.returncode == 1 and "type '9p' is not supported" in r.stderr
    last = json.loads((tmp_path / "log.json").read_text().splitlines()[-1])
    assert last["level"] == "error" and "type '9p' is not supported" in last["msg"]
    assert not (tmp_path / "pid").exists()
    assert not (tmp_path / "root").exists() or os.listdir(tmp_path / "root") == []
    assert _oci(tmp_path, "delete", "--force", "c1").returncode == 0   # gone already: fine with --force
    for cmd in (["state", "c1"], ["start", "c1"], ["kill", "c1", "9"], ["delete", "c1"], ["bogus"]):
        r = _oci(tmp_path, *cmd)
        assert r.returncode == 1, (cmd, r)
        assert json.loads((tmp_path / "log.json").read_text().splitlines()[-1])["level"] == "error"
    features = json.loads(_oci(tmp_path, "features").stdout)
    assert features["ociVersionMax"] == "1.0.2"


def test_home_from_the_images_passwd(tmp_path):
    """No HOME in the spec: the user's home in the image's /etc/passwd, else / (runc's rule)."""
    (tmp_path / "rootfs" / "etc").mkdir(parents=True)
    (tmp_path / "rootfs" / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n")
    for uid, home in ((0, "/root"), (1000, "/home/u"), (5, "/")):
        b = bundle.load(str(_bundle(tmp_path, process={"args": ["x"], "user": {"uid": uid, "gid": 0}})))
        assert b.process.env["HOME"] == home
    b = bundle.load(str(_bundle(tmp_path, process={"args": ["x"], "env": ["HOME=/h"], "user": {"uid": 1000}})))
    assert b.process.env["HOME"] == "/h"
