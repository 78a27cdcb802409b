"""Escape attempts: a hostile guest (tests/guest/escape_attempts.c) tries to reach outside
the VM's view, and each attempt fails as it would for a program in a Linux container.

The expected lines are written beside each attempt here. The program is NEVER run
natively (as root it would kill every process of the machine). The signal attempts,
and the umiak run around them, run inside a host PID namespace (`unshare --pid --fork
--mount-proc`) together with a victim process that an escaped kill(-1) would end.
"""

from __future__ import annotations

import os
import pty
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness import build, run_umiak, umiak_command, umiak_env

SECRET = "HOST SECRET"


def program() -> Path:
    return build("escape_attempts", "glibc-static")


@pytest.fixture
def jail(tmp_path):
    """--root with the program, a writable and a read-only volume, and a secret beside
    them on the host (what every path attempt goes for)."""
    root, vol, ro = tmp_path / "root", tmp_path / "vol", tmp_path / "ro"
    for d in (root, vol, ro, root / "inside"):
        d.mkdir()
    (tmp_path / "secret").write_text(SECRET + "\n")
    shutil.copy(program(), root / "escape")
    (root / "inside" / "ok").write_text("ROOT\n")
    (vol / "f").write_text("VOLUME\n")
    (ro / "file").write_text("READ-ONLY\n")
    os.symlink("../secret", vol / "out")
    os.symlink("../../secret", vol / "deep")
    os.symlink(str(tmp_path / "secret"), vol / "hostabs")
    os.symlink("..", vol / "updir")
    options = ["--root", str(root), "-v", f"{vol}:/vol", "-v", f"{ro}:/ro:ro"]
    return tmp_path, options


def attempt(platform, options, *args, cwd=None) -> list[str]:
    r = run_umiak(platform, ["/escape", *map(str, args)], options=options, cwd=cwd, env={"PATH": "/"})
    assert r.status == 0 and not r.stderr, r.describe()
    return r.stdout.decode().splitlines()


PATHS = """\
dotdot: ENOENT
host path: ENOENT
/.. is /: yes
volume dotdot: ENOENT
volume symlink relative: ENOENT
volume symlink deep: ENOENT
volume symlink host absolute: ENOENT
volume dir symlink: ENOENT
planted symlink: ENOENT
/proc/self/root: /
via /proc/self/root: ENOENT
/proc/self/cwd: /vol
via /proc/self/cwd: ENOENT
relative from a volume: ENOENT
via an fd of /proc/self/cwd: ENOENT"""


def test_paths_stay_inside_root_and_volumes(platform, jail):
    tmp, options = jail
    assert attempt(platform, options, "paths", tmp / "secret") == PATHS.splitlines()
    # The symlink the guest planted is on the host, pointing where the guest pointed it.
    assert os.readlink(tmp / "vol" / "planted") == "../secret"


def test_symlink_race_between_check_and_open(platform, jail):
    """A guest process flips /vol/race between a directory and .. (on the host: the
    secret's directory) while another opens /vol/race/secret 1000 times."""
    tmp, options = jail
    assert attempt(platform, options, "race") == ["race: host 0, guest seen"]


OPENAT2 = """\
BENEATH ..: EXDEV
BENEATH symlink out: EXDEV
BENEATH absolute: EXDEV
IN_ROOT ..: ENOENT
IN_ROOT ../f: ok
IN_ROOT symlink deep: ENOENT
NO_SYMLINKS: ELOOP
NO_MAGICLINKS: ELOOP
NO_XDEV: EXDEV"""


def test_openat2_resolve_flags(platform, jail):
    tmp, options = jail
    assert attempt(platform, options, "openat2") == OPENAT2.splitlines()


LINKS = """\
link ro->rw: EXDEV
link in ro: EROFS
link rw->tmp: EXDEV
rename vol->tmp: EXDEV
rename ro->vol: EXDEV
renameat2 exchange vol/tmp: EXDEV
write ro: EROFS"""


def test_links_and_renames_across_mounts(platform, jail):
    tmp, options = jail
    assert attempt(platform, options, "links") == LINKS.splitlines()
    assert (tmp / "ro" / "file").read_text() == "READ-ONLY\n"
    assert sorted(p.name for p in (tmp / "ro").iterdir()) == ["file"]
    assert (tmp / "vol" / "f").read_text() == "VOLUME\n"


# TIOCSCTTY succeeds as on Linux for a session leader whose controlling terminal this
# already is (umiak's terminal is pid 1's, for job control): it changes only the VM's
# own session state, never the host terminal's (stty -g below is unchanged).
TTY = [f"{name}: {'ok' if name == 'TIOCSCTTY' else 'failed'}"
       for name in ("TIOCSTI", "TIOCCONS", "TIOCSCTTY", "TIOCLINUX", "TIOCVHANGUP",
                    "KDSETMODE", "TIOCSETD", "VT_ACTIVATE", "TIOCSTI /dev/tty")]


def test_terminal_ioctls_cannot_inject_or_take_the_host_terminal(platform):
    """stdin is a pseudo-terminal of the test: nothing the guest tries puts input into it
    or changes its line discipline."""
    master, slave = pty.openpty()
    try:
        before = subprocess.run(["stty", "-g"], stdin=slave, capture_output=True).stdout
        cmd = umiak_command(platform, [program(), "tty"])
        proc = subprocess.run(cmd, stdin=slave, capture_output=True, env=umiak_env(), timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.decode().splitlines() == TTY
        os.set_blocking(slave, False)
        with pytest.raises(BlockingIOError):
            injected = os.read(slave, 100)
            raise AssertionError(f"input injected into the host terminal: {injected!r}")
        after = subprocess.run(["stty", "-g"], stdin=slave, capture_output=True).stdout
        assert after == before
    finally:
        os.close(master)
        os.close(slave)


KILL = """\
/proc/victim/fd: ENOENT
/proc/victim/environ: ENOENT
kill victim: ESRCH
kill -victim: ESRCH
kill -1 alone: ESRCH
pids 2..1023 that exist: 0
kill -1 with a child: ok
child: killed by SIGTERM
kill -1 SIGKILL with none left: ESRCH
caller: alive"""


def test_signals_never_leave_the_vm(platform, tmp_path):
    """In a host PID namespace with a victim (sleep) beside umiak: the guest's kill(-1,
    SIGKILL) spares the caller and never reaches the victim or umiak itself."""
    if os.geteuid() != 0 or subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root for unshare --pid (a host PID namespace)")
    cmd = " ".join(map(str, umiak_command(platform, [program(), "kill", "$victim"])))
    script = (f"sleep 60 & victim=$!\n{cmd}\necho status $?\n"
              "kill -0 $victim && echo victim alive\nkill $victim\n")
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script],
                          capture_output=True, env=umiak_env(), timeout=90, cwd=tmp_path)
    assert proc.stdout.decode().splitlines() == KILL.splitlines() + ["status 0", "victim alive"], \
        proc.stderr.decode()


MEMORY = [f"read {a}: SIGSEGV, write: SIGSEGV" for a in (
    "0", "0x1000", "0x100000", "0x200000", "0x800000000000", "0xffff800000000000", "0xffff888000000000",
    "0xfffffe0000000000", "0xffffffff80000000", "0xffffffffff600000", "0xfffffffffffff000")] + """\
vdso read: accessible, write: SIGSEGV
process_vm_readv kernel half: EFAULT
/proc/self/mem unmapped: EIO
/dev/mem: ENOENT
/dev/kmem: ENOENT
mmap kernel half: ENOMEM""".splitlines()


def test_memory_outside_the_guest_mappings(platform):
    """Low pages where a kernel might keep page tables, the kernel half, vsyscall, the
    vDSO written: each a SIGSEGV; no device or call reaches physical memory."""
    r = run_umiak(platform, [program(), "memory"])
    assert r.status == 0, r.describe()
    lines = r.stdout.decode().splitlines()
    # umiak has no /proc/<pid>/mem (ENOENT on open); Linux's is there and says EIO.
    lines = [ln.replace("unmapped: ENOENT", "unmapped: EIO") for ln in lines]
    assert lines == MEMORY


VDSO = r"""
import sys
from umiak import Machine
with Machine(platform=sys.argv[1], mem_size=128 << 20) as m:
    for _ in range(2):
        r = m.run_captured([sys.argv[2], "vdso"])
        sys.stdout.write(r.stdout.decode() + r.stderr.decode() + f"status {r.status}\n")
"""


def test_vdso_written_is_private_to_the_process(platform):
    """The vDSO made writable (Linux allows it: a private copy of the page) and written:
    the next VM of the same Machine sees the original; a fork child sees its copy."""
    proc = subprocess.run([sys.executable, "-c", VDSO, platform, str(program())], capture_output=True,
                          env=umiak_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    one = ["vdso marker: absent", "mprotect vdso writable: ok", "write: written",
           "child sees: the write (a copy of the page)", "status 0"]
    assert proc.stdout.decode().splitlines() == one + one


def test_net_none_cannot_reach_host_loopback(platform):
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(1)
        port = tcp.getsockname()[1]
        udp.bind(("127.0.0.1", port))
        r = run_umiak(platform, [program(), "net", port], options=["--net=none"])
        assert r.status == 0, r.describe()
        # The VM's network namespace has its own loopback (as `docker --network=none`): the
        # datagram goes there, and never to the host's socket (checked below).
        assert r.stdout.decode().splitlines() == ["connect host loopback: failed", "udp to host loopback: sent"]
        tcp.setblocking(False)
        udp.setblocking(False)
        with pytest.raises(BlockingIOError):
            tcp.accept()
        with pytest.raises(BlockingIOError):
            udp.recv(10)
    finally:
        tcp.close()
        udp.close()


def test_host_fds_are_not_reachable_by_number(platform):
    """umiak's own fds (the VM, its memory, the terminal's duplicates) are not the guest's."""
    r = run_umiak(platform, [program(), "fds"])
    assert r.status == 0, r.describe()
    assert r.stdout.decode().splitlines() == ["open fds: 0 1 2", "/proc/self/fd: 4 entries (one is the listing's own)",
                                              "fd 1000: EBADF"]


PROC = ["/proc pids: 1"] + [f"{f}: secret absent, python absent" for f in (
    "/proc/1/cmdline", "/proc/1/environ", "/proc/self/environ", "/proc/1/status", "/proc/self/maps",
    "/proc/self/mountinfo", "/proc/mounts", "/proc/self/cgroup")] + [
    "getenv secret: absent", "/proc/self/exe: the guest program"]


def test_proc_shows_no_host_process(platform):
    """The host's environment (a secret in umiak's own) and umiak's command line (python)
    are nowhere in the guest's /proc."""
    env = dict(umiak_env(), UMIAK_ESCAPE_SECRET="h0st-s3cr3t-value")
    cmd = umiak_command(platform, [program(), "proc"])
    proc = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().splitlines() == PROC


def test_attempts_are_never_run_natively():
    """The guard of this file's rule: no test here calls run_native or compare."""
    text = Path(__file__).read_text()
    assert "run_" + "native(" not in text and "compare" + "(" not in text
    assert sys.executable
