"""A configurable kernel: Kconfig profiles and .config files decide what the kernel has.

Every profile runs real programs compared with native Linux; a syscall a config
removes gives the configured outcome; a left-out component is never imported;
the Kconfig tools (defconfig, olddefconfig, set, menuconfig in tmux, guiconfig
under Xvfb) work on real files.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from harness import assert_same, build, compare, run_native, run_umiak, umiak_env

PROFILES = ["full", "minimal", "server", "kvm", "emu", "debug"]
PYTHON = "/usr/bin/python3"


pytestmark = pytest.mark.usefixtures("private_cache")   # conftest.py


def umiak(*args, cwd=None, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "umiak", *args], capture_output=True, text=True,
                          env=env or umiak_env(), cwd=cwd, timeout=timeout)


def one_line_failure(r) -> str:
    """The error line of a failed umiak command (status 125, one `umiak: ...` line)."""
    assert r.returncode == 125, f"status {r.returncode}\n{r.stdout}\n{r.stderr}"
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("umiak: ") and "Traceback" not in r.stderr, r.stderr
    return lines[0]


# Profiles without some platform (the rest have both).
PROFILE_PLATFORMS = {"kvm": ("kvm",), "emu": ("emu",), "minimal": ("kvm",)}


def profile_platform(profile: str, platform: str):
    if platform not in PROFILE_PLATFORMS.get(profile, (platform,)):
        pytest.skip(f"the {profile} profile has no {platform} platform (tested in test_platform_left_out)")


def write(path, text: str) -> str:
    with open(path, "w") as f:
        f.write(text)
    return str(path)


# -- every profile boots and runs its programs ----------------------------------

def compare_profile(platform: str, profile: str, argv: list) -> None:
    """Run natively and under the profile's kernel: the same stdout, stderr and status
    (debug is verbose: its first stderr line names the platform, and is checked apart, as is
    the exitless path's summary and the count of exits before the first write)."""
    native = run_native(argv)
    r = run_umiak(platform, argv, options=["--profile", profile])
    if profile == "debug":
        first, _, rest = r.stderr.partition(b"\n")
        assert first.startswith(b"umiak: platform "), r.describe()
        r.stderr = b"".join(line for line in rest.splitlines(keepends=True)
                            if not line.startswith(b"umiak: exitless: ")
                            and b" VM exits before the first write " not in line)
    assert_same(native, r)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("link", ["glibc-static", "glibc-dynamic"])
def test_profile_runs_hello(platform, profile, link):
    profile_platform(profile, platform)
    compare_profile(platform, profile, [build("hello", link)])


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_runs_ls_and_python(platform, profile, tmp_path):
    profile_platform(profile, platform)
    for name in ("b.txt", "a.txt", "c"):
        (tmp_path / name).write_text(name)
    compare_profile(platform, profile, ["/bin/ls", str(tmp_path)])
    compare_profile(platform, profile, [PYTHON, "-c", "import sys; print(sum(range(10)), sys.argv)"])


# -- what a program meets when a syscall is not in its kernel -----------------------

@pytest.mark.parametrize("policy", ["enosys", "eperm", "kill"])
def test_absent_syscall_policy(platform, policy, tmp_path):
    prog = build("config_absent", "glibc-static")
    cfg = write(tmp_path / "absent.config",
                f"# CONFIG_SYSCALL_FLOCK is not set\nCONFIG_ABSENT_SYSCALL_{policy.upper()}=y\n")
    native = run_native([prog])
    assert b"flock: 0 ok\n" in native.stdout, native.describe()
    r = run_umiak(platform, [prog], options=["--config", cfg])
    if policy == "kill":
        # Dies at flock like a seccomp kill: what came before it, status 128+SIGSYS.
        assert r.status == 159, r.describe()
        assert r.stdout == native.stdout.split(b"flock:")[0], r.describe()
        assert r.stderr.splitlines()[-1] == b"Bad system call", r.describe()
        assert b"syscall flock is not in this kernel" in r.stderr, r.describe()
        return
    errno = policy.upper().encode()
    want = native.stdout.replace(b"flock: 0 ok", b"flock: -1 " + errno)
    assert (r.status, r.stdout) == (0, want), r.describe()
    # Warned once, and listed at exit.
    assert r.stderr.count(b"syscall flock is not in this kernel: returning -" + errno) == 1, r.describe()
    assert r.stderr.splitlines()[-1].startswith(b"umiak: ") and b"flock (1x)" in r.stderr, r.describe()


def test_strace_marks_absent_calls(platform, tmp_path):
    prog = build("config_absent", "glibc-static")
    cfg = write(tmp_path / "absent.config", "# CONFIG_SYSCALL_FLOCK is not set\n")
    r = run_umiak(platform, [prog], options=["--config", cfg, "--strace", "--trace", "flock,eventfd2"])
    lines = [ln for ln in r.stderr.decode().splitlines() if ln.startswith(("flock", "eventfd2"))]
    assert len(lines) == 2, r.describe()
    assert lines[0].startswith("flock(3, LOCK_SH)") and lines[0].endswith(
        "= -1 ENOSYS (Function not implemented) <not in this kernel>"), lines
    assert "not in this kernel" not in lines[1], lines


# -- left-out components ------------------------------------------------------------

MODULES_PROBE = r"""
import sys
from umiak.cli import main
status = main(sys.argv[1:])
import json
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("umiak", "kconfiglib", "menuconfig")))))
sys.exit(status)
"""


def imported(*run_args) -> list[str]:
    """The modules `umiak run RUN_ARGS` imported by the time it ended (in a fresh interpreter)."""
    r = subprocess.run([sys.executable, "-c", MODULES_PROBE, "run", *run_args], capture_output=True,
                       text=True, env=umiak_env(), timeout=120)
    assert r.returncode == 0, r
    return json.loads(r.stdout.splitlines()[-1])


def test_minimal_imports_no_networking_procfs_or_tracing(platform):
    profile_platform("minimal", platform)
    hello = str(build("hello", "glibc-dynamic"))
    full = imported(f"--platform={platform}", "--profile", "full", hello)
    debug = imported(f"--platform={platform}", "--profile", "debug", hello)   # imports every module at start
    minimal = imported(f"--platform={platform}", "--profile", "minimal", hello)
    left_out = ("umiak.kernel.net", "umiak.kernel.syscalls.net", "umiak.kernel.vfs.procfs", "umiak.trace")
    # Other kernels import them (so the check below can fail); minimal never does.
    assert "umiak.kernel.vfs.procfs" in full and "umiak.kernel.syscalls.net" in debug, (full, debug)
    assert [m for m in minimal if m.startswith(left_out)] == [], minimal


def test_no_config_is_todays_kernel_without_kconfiglib(platform, tmp_path):
    """No config: the full kernel, and nothing of the config machinery beyond its cheap parser stub;
    a config already resolved once starts without kconfiglib too."""
    hello = str(build("hello", "glibc-static"))
    mods = imported(f"--platform={platform}", "--no-snapshot-cache", hello)   # glibc's start, run
    assert not [m for m in mods if m.startswith(("kconfiglib", "umiak.config"))], mods
    assert "umiak.kernel.vfs.procfs" in mods
    # A file no run has resolved yet (the comment makes its hash new).
    cfg = write(tmp_path / "c.config", f"# {tmp_path}\n# CONFIG_EPOLL is not set\n")
    first = imported(f"--platform={platform}", "--config", cfg, hello)
    again = imported(f"--platform={platform}", "--config", cfg, hello)
    assert "kconfiglib" in first, first       # resolved once...
    assert "kconfiglib" not in again and "umiak.config.build" not in again, again   # ...then frozen


def test_modular_net_is_imported_on_first_socket(platform, tmp_path):
    cfg = write(tmp_path / "m.config", "CONFIG_NET=m\n# CONFIG_SYSCALLS_ON_FIRST_USE is not set\n")
    hello = str(build("hello", "glibc-static"))
    assert "umiak.kernel.syscalls.net" not in imported(f"--platform={platform}", "--config", cfg, hello)
    code = "import socket; a, b = socket.socketpair(); a.send(b'hi'); print(b.recv(2))"
    compare(platform, [PYTHON, "-c", code], options=["--config", cfg])


def test_processes_left_out(platform, tmp_path):
    """Without CONFIG_PROCESSES fork, vfork and posix_spawn get the configured errno, and the
    fork, wait and pidfd modules are never imported."""
    prog = str(build("config_procs", "glibc-dynamic"))
    native = run_native([prog])
    assert native.stdout == b"fork: ok, child status 7\nvfork: ok, child status 8\nposix_spawn: ok, status 0\n"
    fork_code = ("umiak.kernel.syscalls.fork", "umiak.kernel.syscalls.wait", "umiak.kernel.syscalls.pidfd")
    assert set(fork_code[:2]) <= set(imported(f"--platform={platform}", "--profile", "full", prog))
    for errno in ("ENOSYS", "EAGAIN"):
        text = "# CONFIG_PROCESSES is not set\n" + ("CONFIG_PROCESSES_ABSENT_EAGAIN=y\n" if errno == "EAGAIN" else "")
        cfg = write(tmp_path / f"{errno}.config", text)
        r = run_umiak(platform, [prog], options=["--config", cfg])
        assert r.status == 0 and r.stdout == f"fork: {errno}\nvfork: {errno}\nposix_spawn: {errno}\n".encode(), \
            r.describe()
        assert b"new processes are not in this kernel (CONFIG_PROCESSES is not set): clone returns -" \
            + errno.encode() in r.stderr, r.describe()
        assert r.stderr.splitlines()[-1].startswith(f"umiak: syscalls not in this kernel returned -{errno}: ".encode())
    mods = imported(f"--platform={platform}", "--config", cfg, prog)
    assert [m for m in mods if m.startswith(fork_code)] == [], mods
    # an app kernel recorded from a run that made processes (glibc's fork is a clone) keeps them
    rec = tmp_path / "rec.config"
    assert run_umiak(platform, [prog], options=[f"--record-config={rec}"]).stdout == native.stdout
    assert "CONFIG_PROCESSES=y" in rec.read_text()
    assert_same(native, run_umiak(platform, [prog], options=["--config", str(rec)]))


def test_fcntl_locks_left_out(platform, tmp_path):
    prog = build("config_procs", "glibc-static")
    native = compare(platform, [prog, "locks"])
    assert native.stdout.startswith(b"F_SETLK: ok\nF_GETLK: ok, unlocked\n"), native.describe()
    cfg = write(tmp_path / "nolocks.config", "# CONFIG_FCNTL_LOCKS is not set\n")
    r = run_umiak(platform, [prog, "locks"], options=["--config", cfg])
    # as a Linux built without CONFIG_FILE_LOCKING
    assert (r.status, r.stdout) == (0, b"F_SETLK: EACCES\nF_GETLK: EINVAL\nF_OFD_SETLK: EACCES\nF_OFD_GETLK: EINVAL\n"), \
        r.describe()


def test_modular_file_systems_are_made_at_first_use(platform, tmp_path):
    """PROCFS, SYSFS and DEVFS `m`: mounted, but their modules imported only when a program
    looks inside; then they behave as built in."""
    cfg = write(tmp_path / "m.config", "CONFIG_PROCFS=m\nCONFIG_SYSFS=m\nCONFIG_DEVFS=m\n")
    hello = str(build("hello", "glibc-dynamic"))   # (static glibc reads /proc/self/exe: a first use)
    mods = imported(f"--platform={platform}", "--config", cfg, hello)
    assert "umiak.kernel.vfs.procfs" not in mods and "umiak.kernel.vfs.devfs" not in mods, mods
    code = ("import os\nprint(open('/proc/self/comm').read().strip(), os.path.isdir('/sys/devices/system/cpu'))\n"
            "print(open('/dev/zero', 'rb').read(3))\n"
            "print(sorted(l.split()[1] for l in open('/proc/mounts') if l.split()[1] in ('/proc', '/sys', '/dev')))\n")
    r = subprocess.run([sys.executable, "-c", MODULES_PROBE, "run", f"--platform={platform}", "--config", cfg,
                        PYTHON, "-c", code], capture_output=True, env=umiak_env(), timeout=120)
    *out, mods = r.stdout.decode().splitlines()
    assert r.returncode == 0 and r.stderr == b"", r
    assert out[:2] == ["python3 True", "b'\\x00\\x00\\x00'"], out
    assert out[2] == "['/dev', '/proc', '/sys']", out
    assert {"umiak.kernel.vfs.procfs", "umiak.kernel.vfs.devfs"} <= set(json.loads(mods)), mods


def test_proc_absent_without_procfs(platform):
    profile_platform("minimal", platform)
    compare_ls = run_umiak(platform, ["/bin/ls", "-d", "/proc", "/etc"], options=["--profile", "minimal"])
    assert compare_ls.status == 2, compare_ls.describe()
    assert compare_ls.stdout == b"/etc\n", compare_ls.describe()
    assert compare_ls.stderr == b"/bin/ls: cannot access '/proc': No such file or directory\n", \
        compare_ls.describe()


def test_socket_family_left_out_gives_eafnosupport(platform, tmp_path):
    cfg = write(tmp_path / "no6.config", "# CONFIG_NET_INET6 is not set\n")
    code = ("import socket\nfor f in (socket.AF_INET, socket.AF_INET6):\n"
            "    try:\n        socket.socket(f).close(); print(f.name, 'ok')\n"
            "    except OSError as e:\n        print(f.name, e.errno)\n")
    r = run_umiak(platform, [PYTHON, "-c", code], options=["--config", cfg])
    assert (r.status, r.stdout) == (0, b"AF_INET ok\nAF_INET6 97\n"), r.describe()   # 97: EAFNOSUPPORT


def test_options_of_left_out_components_are_refused(platform):
    hello = str(build("hello", "glibc-static"))
    for opts, sym in ((["--strace"], "STRACE"), (["--syscall-summary"], "SYSCALL_SUMMARY"),
                      (["--net=private"], "NET"), (["-v", "/tmp:/mnt"], "VOLUMES")):
        r = umiak("run", f"--platform={platform}", "--profile", "minimal", *opts, hello)
        assert f"(CONFIG_{sym} is not set)" in one_line_failure(r), (opts, r.stderr)


def test_full_profile_has_strace_and_summary(platform):
    r = run_umiak(platform, [str(build("hello", "glibc-static"))],
                  options=["--profile", "full", "--syscall-summary", "--strace", "--trace", "write"])
    assert r.status == 0 and r.stdout == b"hello, world\n", r.describe()
    assert b'write(1, "hello, world\\n", 13)' in r.stderr and b"% time" in r.stderr, r.describe()


def test_server_profile_refuses_strace(platform):
    r = umiak("run", f"--platform={platform}", "--profile", "server", "--strace", str(build("hello", "glibc-static")))
    assert one_line_failure(r) == "umiak: --strace is not in this kernel (CONFIG_STRACE is not set)"


def test_private_network_mode_left_out(tmp_path):
    cfg = write(tmp_path / "n.config", "# CONFIG_NET_MODE_PRIVATE is not set\n")
    r = umiak("run", "--config", cfg, "--net=private", "/bin/true")
    assert one_line_failure(r) == "umiak: --net=private is not in this kernel (CONFIG_NET_MODE_PRIVATE is not set)"


def test_platform_left_out():
    r = umiak("run", "--profile", "kvm", "--platform=emu", "/bin/true")
    assert one_line_failure(r) == "umiak: platform emu is not in this kernel (CONFIG_PLATFORM_EMU is not set)"
    r = umiak("run", "--profile", "emu", "--platform=kvm", "/bin/true")
    assert one_line_failure(r) == "umiak: platform kvm is not in this kernel (CONFIG_PLATFORM_KVM is not set)"


def test_values_reach_the_kernel(platform, tmp_path):
    cfg = write(tmp_path / "v.config", "CONFIG_PIPE_BUFFER_SIZE=8192\nCONFIG_FD_LIMIT=200\n"
                                       "CONFIG_MAX_THREADS=77\nCONFIG_GUEST_MEMORY_MB=300\n")
    code = ("import fcntl, os, resource\nr, w = os.pipe()\nprint(fcntl.fcntl(r, 1032))\n"   # F_GETPIPE_SZ
            "print(resource.getrlimit(resource.RLIMIT_NOFILE))\n"
            "print(open('/proc/sys/kernel/threads-max').read().strip())\n"
            "print([l.split()[1] for l in open('/proc/meminfo') if l.startswith('MemTotal')][0])\n")
    r = run_umiak(platform, [PYTHON, "-c", code], options=["--config", cfg])
    out = r.stdout.decode().splitlines()
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]   # umiak's own hard limit, as the program's
    assert r.status == 0 and out[:3] == ["8192", f"(200, {hard})", "77"], r.describe()
    assert 250 * 1024 < int(out[3]) <= 300 * 1024, r.describe()


# -- the Kconfig tools on real files -----------------------------------------------

def test_defconfig_olddefconfig_savedefconfig_and_set(tmp_path):
    dot = str(tmp_path / ".config")
    r = umiak("config", "defconfig", "minimal", cwd=tmp_path)
    assert r.returncode == 0, r
    text = open(dot).read()
    assert "# CONFIG_NET is not set" in text and "CONFIG_SYSCALL_READ=y" in text and "# CONFIG_STRACE is not set" in text
    # An old .config: symbols added since (here: removed lines) get their defaults.
    old = [ln for ln in text.splitlines()
           if not ln.startswith(("CONFIG_SYSCALL_WRITE=", "CONFIG_FD_LIMIT=", "# CONFIG_STRACE "))]
    write(dot, "\n".join(old) + "\n")
    r = umiak("config", "olddefconfig", cwd=tmp_path)
    assert r.returncode == 0, r
    new = open(dot).read()
    assert "CONFIG_SYSCALL_WRITE=y" in new and "CONFIG_FD_LIMIT=0" in new and "CONFIG_STRACE=y" in new
    assert "# CONFIG_NET is not set" in new   # what the old file said stays
    r = umiak("config", "set", "STRACE=n", "CONFIG_NET=m", "FD_LIMIT=64", cwd=tmp_path)
    assert r.returncode == 0, r
    new = open(dot).read()
    assert "# CONFIG_STRACE is not set" in new and "CONFIG_NET=m" in new and "CONFIG_FD_LIMIT=64" in new
    r = umiak("config", "savedefconfig", "-o", "min.defconfig", cwd=tmp_path)
    assert r.returncode == 0, r
    mini = open(tmp_path / "min.defconfig").read()
    assert "CONFIG_NET=m" in mini and "CONFIG_SYSCALL_READ" not in mini   # defaults are left out
    r = umiak("config", "show", cwd=tmp_path)
    assert r.returncode == 0 and "modular:" in r.stdout, r
    modular = next(ln for ln in r.stdout.splitlines() if ln.startswith("modular:"))
    assert "NET" in modular.split(), r.stdout


def test_config_errors_are_one_line(tmp_path):
    bad = write(tmp_path / "bad.config", "CONFIG_NO_SUCH_SYMBOL=y\n")
    line = one_line_failure(umiak("run", "--config", bad, "/bin/true"))
    assert "undefined symbol NO_SUCH_SYMBOL" in line and "bad.config:1" in line, line
    malformed = write(tmp_path / "malformed.config", "CONFIG_STRACE=y\nthis is not kconfig\n")
    line = one_line_failure(umiak("run", "--config", malformed, "/bin/true"))
    assert "malformed.config:2" in line and "malformed line" in line, line
    line = one_line_failure(umiak("config", "olddefconfig", "--config", malformed))
    assert "malformed line" in line, line
    line = one_line_failure(umiak("config", "set", "NO_SUCH=y", "--config", str(tmp_path / "x.config")))
    assert line == "umiak: config set: unknown symbol NO_SUCH", line
    line = one_line_failure(umiak("config", "set", "STRACE=maybe", "--config", str(tmp_path / "x.config")))
    assert "STRACE" in line, line
    assert "unknown profile 'nope'" in one_line_failure(umiak("run", "--profile", "nope", "/bin/true"))
    env = dict(umiak_env(), KCONFIG_CONFIG=str(tmp_path / "missing.config"))
    assert "missing.config: No such file" in one_line_failure(umiak("run", "/bin/true", env=env))


def test_kconfig_config_env_is_honoured(tmp_path):
    cfg = write(tmp_path / "k.config", "# CONFIG_STRACE is not set\n")
    env = dict(umiak_env(), KCONFIG_CONFIG=cfg)
    r = umiak("run", "--strace", "/bin/true", env=env)
    assert "CONFIG_STRACE is not set" in one_line_failure(r)


def test_profiles_listed():
    r = umiak("config", "profiles")
    assert r.returncode == 0, r
    names = [ln.split()[0] for ln in r.stdout.splitlines()]
    assert sorted(names) == sorted(PROFILES), r.stdout


def test_syscall_menu_is_generated_from_the_table():
    from umiak.config.build import syscalls_kconfig_text
    from umiak.kernel.syscalls.table import SYSCALLS
    text = syscalls_kconfig_text()
    for e in SYSCALLS.values():
        sym = f"config SYSCALL_{e[0].upper()}\n"
        assert (sym in text) == bool(e[1]), e          # every implemented syscall, nothing else
    assert "config SYSCALL_SOCKET\n\tbool \"socket (41)\"\n\tdefault y\n\tdepends on NET\n" in text
    for family in {e[1] for e in SYSCALLS.values() if e[1]}:
        assert f'menu "{family} (umiak.kernel.syscalls.{family})"' in text


def test_size_table():
    r = umiak("config", "size", "--profile", "minimal", "--profile", "full", "--runs", "1", "--json",
              timeout=300)
    assert r.returncode == 0, r
    rows = {row["config"]: row for row in json.loads(r.stdout)}
    mini, full = rows["minimal"], rows["full"]
    assert mini["syscalls"] < full["syscalls"] and mini["umiak_modules"] < full["umiak_modules"], rows
    assert mini["umiak_lines"] < full["umiak_lines"] and mini["umiak_bytecode"] < full["umiak_bytecode"], rows
    assert mini["net_modules"] == [], rows
    assert not mini["kconfiglib"] and not full["kconfiglib"], rows
    assert 5 << 20 < mini["rss"] < 1 << 30 and 0 < mini["start"] < 60, rows


# -- the menus, driven for real ------------------------------------------------------------

def test_menuconfig_in_tmux(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    session = f"umiak-kconfig-{os.getpid()}"
    tmux = ["tmux", "-L", session, "-f", "/dev/null"]   # a server of its own: others' tmux never interfere
    env = umiak_env()
    cmd = (f"cd {tmp_path} && PYTHONPATH={env['PYTHONPATH']} XDG_CACHE_HOME={os.environ['XDG_CACHE_HOME']} "
           f"{sys.executable} -m umiak config menuconfig; echo $? > {tmp_path}/status; sleep 60")
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True)

    def screen() -> str:
        return subprocess.run([*tmux, "capture-pane", "-t", session, "-p"], capture_output=True,
                              text=True).stdout

    def wait_for(text: str, timeout: float = 30) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = screen()
            if text in s:
                return s
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared:\n{screen()}")

    def keys(*k):
        subprocess.run([*tmux, "send-keys", "-t", session, *k], check=True)
    try:
        wait_for("umiak kernel configuration")
        keys("/")
        wait_for("Jump to")
        keys("STRACE")
        wait_for("STRACE(=y)")
        keys("Enter")
        wait_for("[*] strace (--strace")
        keys("Space")
        wait_for("[ ] strace (--strace")
        keys("S")
        wait_for("Filename to save")
        keys("Enter")
        wait_for("Configuration saved to")
        keys("Enter")
        keys("Q")
        end = time.monotonic() + 30
        while not (tmp_path / "status").exists() and time.monotonic() < end:
            time.sleep(0.2)
        assert (tmp_path / "status").read_text().strip() == "0", screen()
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    text = (tmp_path / ".config").read_text()
    assert "# CONFIG_STRACE is not set\n" in text and "CONFIG_SYSCALL_SUMMARY=y\n" in text
    r = umiak("run", "--config", str(tmp_path / ".config"), "--strace", "/bin/true")
    assert "CONFIG_STRACE is not set" in one_line_failure(r)


def test_guiconfig_under_xvfb(tmp_path):
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (apt-get install xvfb xauth)")
    grab = shutil.which("import") or shutil.which("xwd")
    if grab is None:
        pytest.skip("no screenshot tool (apt-get install imagemagick, or x11-apps for xwd)")
    try:
        import tkinter  # noqa: F401
    except ImportError:
        pytest.skip("Tk is not installed (python3-tk)")
    shot = tmp_path / ("guiconfig.png" if grab.endswith("import") else "guiconfig.xwd")
    capture = f"import -window root {shot}" if grab.endswith("import") else f"xwd -root -silent -out {shot}"
    script = (f"{sys.executable} -m umiak config guiconfig & P=$!; "
              f"for i in $(seq 100); do xwininfo -root -tree 2>/dev/null | grep -q 'umiak kernel configuration' "
              f"&& break; sleep 0.2; done; sleep 1; {capture}; kill $P; wait $P; true")
    r = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "sh", "-c", script],
                       capture_output=True, text=True, env=umiak_env(), cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r
    assert "Traceback" not in r.stderr, r.stderr
    assert shot.exists() and shot.stat().st_size > 10000, (r, shot)
    print(f"guiconfig screenshot: {shot}")


def test_loader_options(platform, tmp_path):
    """Without LOADER_DYNAMIC a dynamic program is refused (static ones run); without
    BINFMT_SCRIPT a #! script is; without VDSO the program gets no AT_SYSINFO_EHDR."""
    cfg = write(tmp_path / "l.config", "# CONFIG_LOADER_DYNAMIC is not set\n# CONFIG_BINFMT_SCRIPT is not set\n")
    line = one_line_failure(umiak("run", f"--platform={platform}", "--config", cfg,
                                  str(build("hello", "glibc-dynamic"))))
    assert line.endswith("dynamic programs are not in this kernel (CONFIG_LOADER_DYNAMIC is not set)"), line
    compare(platform, [build("hello", "glibc-static")], options=["--config", cfg])
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    line = one_line_failure(umiak("run", f"--platform={platform}", "--config", cfg, str(script)))
    assert line == f"umiak: {script}: #! scripts are not in this kernel (CONFIG_BINFMT_SCRIPT is not set)", line
    code = "import ctypes; print(ctypes.CDLL(None).getauxval(33) != 0)"   # AT_SYSINFO_EHDR
    novdso = write(tmp_path / "v.config", "# CONFIG_VDSO is not set\n")
    with_vdso = run_umiak(platform, [PYTHON, "-c", code])
    without = run_umiak(platform, [PYTHON, "-c", code], options=["--config", novdso])
    assert (with_vdso.stdout, without.stdout) == (b"True\n", b"False\n"), (with_vdso.describe(), without.describe())


def test_values_reach_the_vm_in_process(platform, tmp_path):
    """The embedding API takes a frozen config too; the emu time slice and the fault-around
    maximum reach the platform and the address space."""
    from umiak import Machine
    from umiak.config import load
    cfg = load(config=write(tmp_path / "s.config", "CONFIG_EMU_TIME_SLICE_US=1500\nCONFIG_FAULT_AROUND_MAX_PAGES=64\n"))
    with_slice = platform == "emu"
    m = Machine(kernel_config=cfg, platform=platform, prewarm=False)
    r = m.run_captured([str(build("hello", "glibc-static"))])
    assert (r.status, r.stdout) == (0, b"hello, world\n"), r
    k = m.last_kernel
    assert k.processes[1].mm.fault_chunk_max == 64
    if with_slice:
        assert k.platform.slice == 0.0015
