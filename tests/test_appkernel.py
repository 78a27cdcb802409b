"""App-specific kernels: `umiak config app` (static analysis, traced runs, exploration),
`umiak run --record-config`, CONFIG_SYSCALLS_STUB/FAKE, and the exported ABI lists.

Real programs (/bin/ls, sqlite3, python3 -c, a busybox applet, a static C program) get
their own kernel from each source; their workload under that kernel matches native
Linux; the static set is an upper bound of what the traced run used; a call outside
the kernel gets the configured answer; bad input is one `umiak:` line and status 125.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

from harness import assert_same, build, run_native, run_umiak, umiak_command, umiak_env

PYTHON = "/usr/bin/python3"
BUSYBOX = shutil.which("busybox")


pytestmark = pytest.mark.usefixtures("private_cache")   # conftest.py


def umiak(*args, timeout=300, cwd=None):
    return subprocess.run([sys.executable, "-m", "umiak", *args], capture_output=True,
                          env=umiak_env(), timeout=timeout, cwd=cwd)


def present(config: str) -> set[str]:
    """The syscalls a .config has (CONFIG_SYSCALL_X=y)."""
    from umiak.kernel.syscalls.table import NUMBERS
    with open(config) as f:
        names = {m.group(1).lower() for m in re.finditer(r"^CONFIG_SYSCALL_(\w+)=[ym]$", f.read(), re.M)}
    return names & set(NUMBERS)   # not CONFIG_SYSCALL_SUMMARY


def one_line_failure(r) -> str:
    err = r.stderr.decode()
    assert r.returncode == 125, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("umiak: "), err
    assert "Traceback" not in err
    return lines[0]


def static_c() -> list[str]:
    return [str(build("appkernel", "glibc-static"))]


def programs():
    out = [
        pytest.param(lambda: ["/bin/ls", "-la", "--time-style=+%Y", "/usr/share/common-licenses"], id="ls"),
        pytest.param(lambda: ["/usr/bin/sqlite3", ":memory:",
                              "create table t(a, b); insert into t values (1, 'x'), (2, 'y');"
                              " select sum(a), group_concat(b) from t;"], id="sqlite3"),
        pytest.param(lambda: [PYTHON, "-c", "import os; print(sorted(os.listdir('/usr/share/common-licenses'))[:3],"
                                            " sum(range(100)))"], id="python3-c"),
        pytest.param(lambda: [BUSYBOX, "sha256sum", "/etc/os-release"], id="busybox-sha256sum"),
        pytest.param(static_c, id="static-c"),
    ]
    return out


def need(argv):
    if not os.path.exists(argv[0]):
        pytest.skip(f"{argv[0]} is not installed")


@pytest.mark.parametrize("argv_of", programs())
def test_app_kernels_run_the_workload_as_linux(platform, argv_of, tmp_path):
    argv = argv_of()
    need(argv)
    native = run_native(argv)
    assert native.status == 0, native.describe()
    # static + traced: the static set must cover everything the run used
    both = tmp_path / "both.config"
    r = umiak("config", "app", f"--platform={platform}", "-o", str(both), "--", *argv)
    assert r.returncode == 0, r.stderr.decode()
    assert b"did not find" not in r.stderr, r.stderr.decode()   # the static set is an upper bound
    assert r.stdout == native.stdout   # the traced run is the program itself, under the full kernel
    static = tmp_path / "static.config"
    r = umiak("config", "app", "--static-only", "-o", str(static), "--", *argv)
    assert r.returncode == 0, r.stderr.decode()
    traced = tmp_path / "traced.config"
    run = run_umiak(platform, argv, options=[f"--record-config={traced}"])
    assert_same(native, run)
    s, t = present(str(static)), present(str(traced))
    assert t and t <= s, f"traced but not found statically: {sorted(t - s)}"
    with open(static) as f:
        text = f.read()
    assert text.startswith(f"# App-specific kernel for: {' '.join(argv)}\n")
    assert re.search(r"^# Syscalls: static \d+ \(\d+ unresolved sites\)", text, re.M)
    assert re.search(r"^# openat: static: \S+", text, re.M)   # where each call was found
    for cfg in (static, traced, both):   # the program under its own kernel
        assert_same(native, run_umiak(platform, argv, options=[f"--config={cfg}"]))


def test_a_call_outside_the_app_kernel_gets_the_configured_answer(platform, tmp_path):
    prog = static_c()[0]
    cfg = tmp_path / "app.config"
    r = umiak("config", "app", "--no-static", f"--platform={platform}", "-o", str(cfg), "--", prog)
    assert r.returncode == 0, r.stderr.decode()
    assert {"flock", "uname"}.isdisjoint(present(str(cfg)))
    native = run_native([prog, "outside"])
    assert native.stdout.endswith(b"flock: ok\nuname: ok\n")
    out = run_umiak(platform, [prog, "outside"], options=[f"--config={cfg}"])
    assert out.status == 0
    assert out.stdout == native.stdout.replace(b": ok", b": ENOSYS")
    # the refused calls are listed at exit, so a user sees why the program failed
    assert out.stderr.endswith(b"umiak: syscalls not in this kernel returned -ENOSYS: flock (1x), uname (1x)\n"), \
        out.stderr
    # the same config with CONFIG_ABSENT_SYSCALL=kill: death by SIGSYS at the first one
    r = umiak("config", "set", "--config", str(cfg), "ABSENT_SYSCALL_KILL=y")
    assert r.returncode == 0, r.stderr.decode()
    out = run_umiak(platform, [prog, "outside"], options=[f"--config={cfg}"])
    assert out.status == 159 and out.stdout == native.stdout.split(b"flock")[0], out.describe()


def test_record_config_is_an_ordinary_config(platform, tmp_path):
    prog = static_c()[0]
    cfg = tmp_path / "observed.config"
    run = run_umiak(platform, [prog], options=[f"--record-config={cfg}"])
    assert run.status == 0, run.describe()
    used = present(str(cfg))
    assert {"openat", "read", "write", "getdents64", "unlink", "exit_group"} <= used, used
    assert "flock" not in used and "socket" not in used
    with open(cfg) as f:
        text = f.read()
    assert "# CONFIG_NET is not set" in text and "# CONFIG_EPOLL is not set" in text
    assert "# CONFIG_SYSFS is not set" in text   # no /sys path was opened
    assert re.search(r"^# Method: umiak run --record-config", text, re.M)
    # savedefconfig shrinks it, olddefconfig keeps it (kconfiglib reads it as any .config)
    r = umiak("config", "savedefconfig", "--config", str(cfg), "-o", str(tmp_path / "min"))
    assert r.returncode == 0, r.stderr.decode()
    assert os.path.getsize(tmp_path / "min") < os.path.getsize(cfg)
    r = umiak("config", "olddefconfig", "--config", str(cfg))
    assert r.returncode == 0 and present(str(cfg)) == used
    r = umiak("config", "show", "--config", str(cfg))
    assert r.returncode == 0 and f"syscalls:   {len(used)} of".encode() in r.stdout, r.stdout


def test_explore_classifies_needed_stub_fake(platform, tmp_path):
    if platform != "kvm":
        pytest.skip("exploration reruns the program dozens of times: kvm only")
    prog = static_c()[0]
    traced, explored = tmp_path / "traced.config", tmp_path / "explored.config"
    assert umiak("config", "app", "--no-static", "--platform=kvm", "-o", str(traced), "--", prog).returncode == 0
    r = umiak("config", "app", "--explore", "--platform=kvm", "-o", str(explored), "--", prog, timeout=600)
    assert r.returncode == 0, r.stderr.decode()
    with open(explored) as f:
        text = f.read()
    m = re.search(r"^# Syscalls: static (\d+) .*traced (\d+); needed (\d+), stub (\d+), fake (\d+)", text, re.M)
    assert m, text[:600]
    static_n, traced_n, needed, stub, fake = map(int, m.groups())
    assert needed == len(present(str(explored))) and needed + stub + fake == traced_n
    assert needed < len(present(str(traced))) <= static_n
    assert {"write", "exit_group"} <= present(str(explored))
    lists = dict(re.findall(r'^CONFIG_SYSCALLS_(STUB|FAKE)="([^"]*)"', text, re.M))
    assert len(lists.get("STUB", "").split()) == stub and len(lists.get("FAKE", "").split()) == fake
    # the program passes under the explored kernel, all stubs and fakes at once, silently
    assert_same(run_native([prog]), run_umiak("kvm", [prog], options=[f"--config={explored}"]))


def test_explore_with_a_check_command(platform, tmp_path):
    if platform != "kvm":
        pytest.skip("exploration reruns the program dozens of times: kvm only")
    cfg = tmp_path / "ls.config"
    r = umiak("config", "app", "--explore", "--platform=kvm", "--check", 'grep -q "^common-licenses$"',
              "-o", str(cfg), "--", "/bin/ls", "/usr/share", timeout=600)
    assert r.returncode == 0, r.stderr.decode()
    out = run_umiak("kvm", ["/bin/ls", "/usr/share"], options=[f"--config={cfg}"])
    assert b"\ncommon-licenses\n" in out.stdout


def test_stub_and_fake_lists(platform, tmp_path):
    prog = str(build("config_absent", "glibc-static"))
    cfg = tmp_path / "c.config"
    cfg.write_text('CONFIG_SYSCALLS_FAKE="flock"\nCONFIG_SYSCALLS_STUB="eventfd2"\n')
    out = run_umiak(platform, [prog], options=[f"--config={cfg}"])
    assert out.status == 0 and out.stdout == b"open: ok\nflock: 0 ok\neventfd: ENOSYS\n", out.describe()
    assert out.stderr == b""   # expected answers: no warning, nothing listed at exit
    cfg.write_text('CONFIG_SYSCALLS_FAKE="flock nosuchcall"\n')
    line = one_line_failure(subprocess.run([sys.executable, "-m", "umiak", "run", f"--config={cfg}", prog],
                                           capture_output=True, env=umiak_env()))
    assert "nosuchcall" in line


def test_static_sources_and_unresolved_sites(tmp_path):
    r = umiak("config", "app", "--static-only", "--sources", "-o", str(tmp_path / "ls.config"), "--", "/bin/ls")
    assert r.returncode == 0, r.stderr.decode()
    err = r.stderr.decode()
    assert re.search(r"^openat: libc\.so\.6 \S+ <- .*(/bin/ls|ld\.so)", err, re.M), err
    m = re.search(r"^(\d+) syscalls from (\d+) sites in 5 files; (\d+) sites with a number that is not a constant",
                  err, re.M)
    assert m, err
    found = int(m.group(1))
    from umiak.kernel.syscalls.table import SYSCALLS
    assert 20 < found < len(SYSCALLS) * 0.6   # libc linked is not libc used


def test_elf_closure_matches_ld_so():
    from umiak import elfdeps
    for prog in ("/bin/ls", "/usr/bin/sqlite3", PYTHON):
        if not os.path.exists(prog):
            continue
        got = {os.path.realpath(p) for p, _ in elfdeps.closure(prog)}
        out = subprocess.run(["/lib64/ld-linux-x86-64.so.2", "--list", prog], capture_output=True, text=True).stdout
        want = {os.path.realpath(m) for m in re.findall(r"(/\S+) \(0x", out)}
        assert got == want | {os.path.realpath(prog)}, (prog, got ^ want)
        rows = elfdeps.closure(prog)
        assert rows[0] == (prog, "") and all(by for _, by in rows[1:])


def test_missing_library_and_not_elf(tmp_path):
    lib_c = tmp_path / "lib.c"
    lib_c.write_text("int answer(void) { return 42; }\n")
    main_c = tmp_path / "main.c"
    main_c.write_text("int answer(void);\nint main(void) { return answer() == 42 ? 0 : 1; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "libanswer.so"), str(lib_c)], check=True)
    subprocess.run(["gcc", "-o", str(tmp_path / "prog"), str(main_c), f"-L{tmp_path}", "-lanswer",
                    "-Wl,-rpath,$ORIGIN"], check=True)
    from umiak import elfdeps
    assert (str(tmp_path / "libanswer.so"), str(tmp_path / "prog")) in elfdeps.closure(str(tmp_path / "prog"))
    os.unlink(tmp_path / "libanswer.so")
    line = one_line_failure(umiak("config", "app", "--static-only", "-o", str(tmp_path / "x"), "--",
                                  str(tmp_path / "prog")))
    assert "libanswer.so (needed by" in line and "not found" in line
    line = one_line_failure(umiak("config", "app", "-o", str(tmp_path / "x"), "--", "/etc/passwd"))
    assert line == "umiak: /etc/passwd: not an ELF program"
    assert not (tmp_path / "x").exists()


def test_a_crash_during_tracing_writes_no_config(platform, tmp_path):
    prog = static_c()[0]
    r = umiak("config", "app", "--no-static", f"--platform={platform}", "-o", str(tmp_path / "x"), "--", prog, "crash")
    assert r.returncode == 125
    # the program's own run shows as it would (the shell's message), then one line of umiak's
    assert r.stderr.decode().splitlines() == [
        "Segmentation fault", f"umiak: {prog} crashed during tracing (killed by SIGSEGV); no config written"]
    assert not (tmp_path / "x").exists()


def test_timeout_ends_the_traced_run(platform, tmp_path):
    cfg = tmp_path / "sleep.config"
    r = umiak("config", "app", "--no-static", "--timeout=3", f"--platform={platform}", "-o", str(cfg), "--",
              "/bin/sleep", "30", timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    assert "clock_nanosleep" in present(str(cfg)) or "nanosleep" in present(str(cfg))


def test_exported_abi_lists_match_the_code(monkeypatch):
    from umiak.config import abi
    assert abi.drift() == [], "\n".join(abi.drift()) + "\n(regenerate: python -m umiak.config.abi --write)"
    lists = abi.checked_in()
    assert "syscall openat" in lists["CORE"] and "ioctl TCGETS 0x5401" in lists["CORE"]
    assert "family AF_UNIX 1" in lists["NET_UNIX"] and "file /proc/<pid>/maps" in lists["PROCFS"]
    # drift is caught both ways: an entry without a handler, a handler without an entry
    doctored = {k: list(v) for k, v in lists.items()}
    doctored["CORE"].remove("syscall openat")
    doctored["EPOLL"].append("syscall epoll_frobnicate")
    monkeypatch.setattr(abi, "checked_in", lambda: doctored)
    found = abi.drift()
    assert any("syscall openat is in the code but not in" in d for d in found)
    assert any("epoll_frobnicate is listed" in d for d in found)


def test_config_abi_prints_what_a_config_exports(tmp_path):
    r = umiak("config", "abi")
    assert r.returncode == 0
    full = r.stdout.decode().splitlines()
    assert "syscall epoll_wait" in full and "family AF_INET6 10" in full
    r = umiak("config", "abi", "--profile", "minimal")
    assert r.returncode == 0
    mini = r.stdout.decode().splitlines()
    assert "syscall epoll_wait" not in mini and not any(x.startswith(("family", "file /proc")) for x in mini)
    assert "syscall openat" in mini and set(mini) < set(full)


# -- real servers and a Go program -----------------------------------------------------------
# Each gets its kernel from static analysis alone and from a traced run alone (ended by
# Ctrl-C, as a user ends it); under each kernel its workload answers as it does natively.
# Static configs are made once per module (static analysis does not depend on the platform).

REDIS, NGINX = "/usr/bin/redis-server", "/usr/sbin/nginx"


def redis_argv(port: int, tmp) -> list[str]:
    return [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(tmp)]


def redis_workload(port: int) -> list[str]:
    def cli(*args):
        r = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, timeout=30)
        return r.stdout.decode().strip()
    return [cli("PING"), cli("SET", "k", "v"), cli("GET", "k"), cli("INCR", "n"), cli("INCR", "n"),
            cli("LPUSH", "l", "a", "b"), cli("LRANGE", "l", "0", "-1")]


# (not test_net's: its `pid /dev/null` is fine in the guest, but nginx run natively as root
# unlinks its pid file at exit, and the host's /dev/null with it)
NGINX_CONF = """daemon off; master_process off; worker_processes 1; user root; pid {tmp}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  server {{ listen 127.0.0.1:{port}; root {tmp}/www; }}
}}
"""


def nginx_argv(port: int, tmp) -> list[str]:
    www = tmp / "www"
    www.mkdir(exist_ok=True)
    (www / "index.html").write_bytes(b"<h1>umiak app kernel</h1>\n")
    os.chmod(tmp, 0o755)
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(port=port, tmp=tmp))
    return [NGINX, "-e", "stderr", "-c", str(conf)]


def nginx_workload(port: int) -> list[str]:
    out = []
    for name in ("index.html", "missing"):
        r = subprocess.run(["curl", "-sS", "--max-time", "30", "-w", " %{http_code}",
                            f"http://127.0.0.1:{port}/{name}"], capture_output=True, timeout=60)
        out.append(r.stdout.decode().split("<hr>")[0])
    return out


SERVERS = {"redis": (REDIS, ("redis-cli",), redis_argv, redis_workload),
           "nginx": (NGINX, ("curl",), nginx_argv, nginx_workload)}


def serve(cmd: list[str], port: int, workload) -> tuple[list[str], int, bytes]:
    """Start cmd, run the workload once the port answers, then Ctrl-C (SIGINT) it:
    (the workload's answers, the exit status, stdout and stderr)."""
    import signal

    from test_net import wait_port
    proc = subprocess.Popen(cmd, env=umiak_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_port(port, proc, timeout=120)
        answers = workload(port)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return answers, proc.returncode, out + err


_STATIC: dict[str, str] = {}


def static_config(name: str, argv: list[str], directory) -> str:
    """The --static-only config of a program, made once per module (the first one of a
    big closure takes tens of seconds; the per-file cache makes the rest quick)."""
    if name not in _STATIC:
        path = str(directory / f"{name}.static.config")
        r = umiak("config", "app", "--static-only", "-o", path, "--", *argv)
        assert r.returncode == 0, r.stderr.decode()
        _STATIC[name] = path
    return _STATIC[name]


def redis_save(port: int) -> list[str]:
    """SAVE (fsync) and BGSAVE (fork): calls a traced run of redis_workload never made."""
    return [subprocess.run(["redis-cli", "-p", str(port), cmd], capture_output=True, timeout=30).stdout.decode().strip()
            for cmd in ("SAVE", "BGSAVE")]


def _server(server: str, tmp_path):
    """(a free port, the server's argv on it, its workload); skipped without its tools."""
    from test_net import free_port
    prog, tools, make_argv, workload = SERVERS[server]
    for t in (prog, *tools):
        if shutil.which(t) is None:
            pytest.skip(f"{t} is not installed")
    port = free_port()
    return port, make_argv(port, tmp_path), workload


@pytest.mark.parametrize("server", list(SERVERS))
def test_server_app_kernels(platform, server, tmp_path, tmp_path_factory):
    """Under its static and its traced kernel the workload answers as natively; redis's SAVE
    and BGSAVE, outside the traced kernel, fail as on a Linux without fsync and fork, and the
    refused calls are listed at exit."""
    port, argv, workload = _server(server, tmp_path)
    want, status, _ = serve(argv, port, workload)
    assert status == 0 and want[0], (want, status)
    static = static_config(server, argv, tmp_path_factory.getbasetemp())
    traced = str(tmp_path / "traced.config")
    got, status, err = serve([sys.executable, "-m", "umiak", "config", "app", "--no-static", f"--platform={platform}",
                              "-o", traced, "--", *argv], port, workload)
    assert (got, status) == (want, 0), err.decode()
    s, t = present(static), present(traced)
    assert t and t <= s, f"traced but not found statically: {sorted(t - s)}"
    assert len(t) < len(s) < 200, (len(t), len(s))
    got, status, err = serve(umiak_command(platform, argv, [f"--config={static}"]), port, workload)
    assert (got, status) == (want, 0), err.decode()
    assert b"not in this kernel" not in err, err.decode()

    def outside(p):
        return workload(p) + (redis_save(p) if server == "redis" else [])
    got, status, err = serve(umiak_command(platform, argv, [f"--config={traced}"]), port, outside)
    assert (got[:len(want)], status) == (want, 0), err.decode()
    text = err.decode()   # (redis logs to stdout, umiak to stderr)
    if server != "redis":
        assert "not in this kernel" not in text, text
        return
    assert got[len(want):] == ["ERR", "ERR"], (got, text)
    assert "Write error saving DB on disk(fsync): Function not implemented" in text, text
    assert "Can't save in background: fork: Function not implemented" in text, text
    assert re.search(r"^umiak: syscalls not in this kernel returned -ENOSYS: .*fsync \(1x\)", text, re.M), text


def test_go_app_kernel(platform, tmp_path, tmp_path_factory):
    """A static Go program: its syscalls go through Go's own wrappers (syscall.Syscall with the
    number in rax), which static analysis follows; under its own kernel it prints as on Linux."""
    from test_runtimes import go_build
    argv = [str(go_build("go", cgo=False))]
    native = run_native(argv)
    static = static_config("go", argv, tmp_path_factory.getbasetemp())
    with open(static) as f:
        m = re.search(r"^# Syscalls: static (\d+) \((\d+) unresolved sites\)", f.read(), re.M)
    assert m and int(m.group(2)) <= 3, m   # the wrappers' own sites are not counted as unresolved
    traced = tmp_path / "traced.config"
    run = run_umiak(platform, argv, options=[f"--record-config={traced}"])
    assert_same(native, run)
    s, t = present(static), present(str(traced))
    assert {"openat", "read", "getrlimit"} <= s   # only reached through syscall.Syscall / RawSyscall
    assert t and t <= s, f"traced but not found statically: {sorted(t - s)}"
    # Under its static kernel (the upper bound) it prints as on Linux. One traced run is not a
    # bound for Go: its runtime makes timing-dependent calls (a read of its wakeup pipe in one
    # run of five under load), so the traced set is only checked to be inside the static one.
    assert_same(native, run_umiak(platform, argv, options=[f"--config={static}"]))


def test_dlopened_libraries(platform, tmp_path):
    """python3 loading a C library with ctypes (itself the C extension _ctypes): static analysis
    says it cannot see what dlopen loads; the traced run finds the libraries and their calls."""
    if platform != "kvm":
        pytest.skip("the recording does not depend on the platform: kvm only (CI time)")
    lib = tmp_path / "libprobe.so"
    (tmp_path / "probe.c").write_text("#include <sys/personality.h>\n"
                                      "int probe(void) { return personality(0xffffffff); }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(lib), str(tmp_path / "probe.c")], check=True)
    argv = [PYTHON, "-c", "import ctypes, sys; print(ctypes.CDLL(sys.argv[1]).probe())", str(lib)]
    native = run_native(argv)
    assert native.stdout == b"0\n", native.describe()
    static = tmp_path / "static.config"
    r = umiak("config", "app", "--static-only", "-o", str(static), "--", *argv)
    assert r.returncode == 0, r.stderr.decode()
    assert re.match(r"umiak: dlopen is reachable \(libc\.so\.6 dlopen <- .*python3.*\): libraries loaded at run "
                    r"time are not in this analysis", r.stderr.decode()), r.stderr.decode()
    assert "personality" not in present(str(static))
    both = tmp_path / "both.config"
    r = umiak("config", "app", f"--platform={platform}", "-o", str(both), "--", *argv)
    assert r.returncode == 0 and r.stdout == native.stdout, r.stderr.decode()
    err = r.stderr.decode()
    m = re.search(r"^umiak: the traced run used calls static analysis did not find: (.*) \(it loaded \d+ "
                  r"libraries with dlopen: (.*)\)$", err, re.M)
    assert m and "personality" in m.group(1).split(), err
    libs = m.group(2).split()
    assert str(lib) in libs and any("/_ctypes." in p for p in libs), libs
    text = both.read_text()
    assert re.search(r"^# Loaded with dlopen in the traced run: .*libprobe\.so", text, re.M), text[:800]
    assert "# Static analysis cannot see libraries loaded with dlopen (reachable: " in text
    assert "personality" in present(str(both))
    assert_same(native, run_umiak(platform, argv, options=[f"--config={both}"]))
    # the static kernel lacks the library's call: it gets the configured answer, listed at exit
    out = run_umiak(platform, argv, options=[f"--config={static}"])
    assert out.stdout == b"-1\n" and b"returned -ENOSYS: personality (1x)" in out.stderr, out.describe()


def test_compat_table_is_generated_from_the_abi_data(tmp_path):
    """docs/compat.md is what `umiak config abi --markdown` writes; a README section between
    the markers is replaced in place."""
    from umiak.config import abi
    from umiak.kernel.syscalls.table import SYSCALLS
    doc = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "compat.md")
    with open(doc, encoding="utf-8") as f:
        text = f.read()
    assert abi.markdown() in text, \
        f"docs/compat.md drifted from the ABI data (regenerate: {abi.COMPAT_COMMAND})"
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| ([^|]+) \|", text, re.M)
    assert len(rows) == len(SYSCALLS) and ("257", "openat", "full") in rows
    assert "| `TCGETS` | 0x5401 | CORE |" in text and "| `AF_UNIX` | 1 | NET_UNIX |" in text
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{abi.BEGIN}\nold table\n{abi.END}\nafter\n")
    r = umiak("config", "abi", "--markdown", "--profile", "minimal", "-o", str(readme))
    assert r.returncode == 0, r.stderr.decode()
    new = readme.read_text()
    assert new.startswith("# x\n\nbefore\n" + abi.BEGIN) and new.endswith(abi.END + "\nafter\n")
    assert "old table" not in new and "| 232 | `epoll_wait` | not in this kernel | EPOLL |" in new
    line = one_line_failure(umiak("config", "abi", "-o", str(readme)))
    assert line == "umiak: config abi: -o goes with --markdown"


# -- exploring a server: Loupe's method with a real client as the check ------------------------
# The check is the workload run against the server (redis-cli, curl), its answers compared with
# those it gets from the server run natively. A full exploration of redis or nginx is ~70 trials
# (2-5 min here); the test explores a subset chosen to hit every class, on kvm only (the
# classification does not depend on the platform, the trials' time does), ~40 s per server.

WORK = {
    "redis": ('until [ "$(redis-cli -p {port} PING 2>/dev/null)" = PONG ]; do i=$((i+1)); [ $i -gt 200 ] && exit 3;'
              ' sleep 0.05; done\n'
              'for c in "SET k v" "GET k" "INCR n" "INCR n" "RPUSH l a b" "LRANGE l 0 -1"; do\n'
              '  redis-cli -p {port} $c || exit 4\ndone\n'),
    "nginx": ('until curl -s -o /dev/null http://127.0.0.1:{port}/; do i=$((i+1)); [ $i -gt 200 ] && exit 3;'
              ' sleep 0.05; done\n'
              'for p in index.html missing; do\n'
              '  curl -sS --max-time 10 -w " %{{http_code}}\\n" http://127.0.0.1:{port}/$p || exit 4\ndone\n'),
}
# the calls tried: needed, stubbable and fakeable ones (by a full exploration), none that hangs
SUBSET = {"redis": "socket,getrandom,sysinfo,setsockopt,chdir",
          "nginx": "socket,getrandom,sysinfo,setsockopt,uname"}
STRACE_LINE = r"^(?:\[pid +\d+\] )?{name}\(.*\) += {answer}(?: .*)? <not in this kernel>$"


def native_answers(server: str, argv: list[str], port: int, work) -> bytes:
    """The workload's output against the server run natively (then Ctrl-C'd)."""
    import signal

    from test_net import wait_port
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc, timeout=30)
        out = subprocess.run(["sh", str(work)], capture_output=True, timeout=60)
        assert out.returncode == 0, out
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out.stdout


@pytest.mark.parametrize("server", list(SERVERS))
def test_explore_a_server_with_its_client(platform, server, tmp_path):
    """`config app --explore --serve --check` with the server's real client: the explored kernel
    serves the workload with the native answers; its stubbed and faked calls are answered -ENOSYS
    and 0 (--strace shows each); a needed call taken out makes the check fail, and is listed."""
    if platform != "kvm":
        pytest.skip("exploration reruns the server dozens of times: kvm only (CI time)")
    port, argv, _ = _server(server, tmp_path)
    work = tmp_path / "work.sh"
    work.write_text(WORK[server].format(port=port))
    want = tmp_path / "want"
    want.write_bytes(native_answers(server, argv, port, work))
    assert want.read_bytes().count(b"\n") >= 2, want.read_bytes()
    check = f'[ "$(sh {work})" = "$(cat {want})" ]'
    cfg = tmp_path / "explored.config"
    r = umiak("config", "app", "--explore", "--serve", "--check", check, "--explore-only", SUBSET[server],
              "--no-static", "--platform=kvm", "-o", str(cfg), "--", *argv, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    text = cfg.read_text()
    m = re.search(r"^# Syscalls: traced (\d+); needed (\d+), stub (\d+), fake (\d+)", text, re.M)
    assert m, text[:800]
    traced_n, needed, stub, fake = map(int, m.groups())
    lists = {k: v.split() for k, v in re.findall(r'^CONFIG_SYSCALLS_(STUB|FAKE)="([^"]*)"', text, re.M)}
    from umiak.kernel.syscalls.table import SYSCALLS
    lacking = {e[0] for e in SYSCALLS.values() if not e[1]}   # stubs already (rseq)
    tried = set(SUBSET[server].split(","))
    assert set(lists["STUB"]) - lacking | set(lists["FAKE"]) <= tried   # the others stay needed
    assert lists["STUB"] and lists["FAKE"] and {"socket", "epoll_create"} <= present(str(cfg))
    assert (len(lists["STUB"]), len(lists["FAKE"]), needed + stub + fake) == (stub, fake, traced_n)
    assert needed == len(present(str(cfg))) < traced_n

    # the workload under the explored kernel, with --strace: the native answers, and each
    # stubbed / faked call answered as configured
    got, _, output = serve(umiak_command("kvm", argv, [f"--config={cfg}", "--strace"]), port,
                           lambda _port: subprocess.run(["sh", str(work)], capture_output=True, timeout=60))
    assert (got.returncode, got.stdout) == (0, want.read_bytes()), got
    trace = output.decode(errors="replace")
    # (a stub's fallback may use calls the traced run never made, refused and listed at exit:
    # redis's OpenSSL, with getrandom stubbed, tries shmget, uname and /dev/random with
    # pselect6; the trial of that stub passed with them refused, as here)
    for name in set(lists["STUB"]) - lacking:
        assert re.search(STRACE_LINE.format(name=name, answer=r"-1 ENOSYS \(Function not implemented\)"),
                         trace, re.M), (name, trace[-3000:])
    for name in lists["FAKE"]:
        assert re.search(STRACE_LINE.format(name=name, answer="(?:0+|0x0)"), trace, re.M), (name, trace[-3000:])

    # a needed call taken out: the check fails, and the refused call is listed at exit
    import signal
    r = umiak("config", "set", "--config", str(cfg), "SYSCALL_EPOLL_CREATE=n")
    assert r.returncode == 0, r.stderr.decode()
    assert "epoll_create" not in present(str(cfg))
    proc = subprocess.Popen(umiak_command("kvm", argv, [f"--config={cfg}"]), env=umiak_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        failed = subprocess.run(["sh", "-c", check], capture_output=True, timeout=60)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert failed.returncode != 0
    assert re.search(r"^umiak: syscalls not in this kernel returned -ENOSYS: .*epoll_create \(\d+x\)",
                     (out + err).decode(), re.M), (out + err).decode()[-2000:]


def test_a_config_for_one_program_runs_another(platform, tmp_path):
    """/bin/ls's traced kernel used for python3: python3 still runs, to its own failure (not
    umiak's), and the calls it was refused are listed at exit, so a user sees why."""
    cfg = tmp_path / "ls.config"
    ls = ["/bin/ls", "/usr/share/common-licenses"]
    assert run_umiak(platform, ls, options=[f"--record-config={cfg}"]).status == 0
    mine = present(str(cfg))
    out = run_umiak(platform, [PYTHON, "-c", "import os; print(os.getcwd())"], options=[f"--config={cfg}"])
    assert out.status not in (0, 125), out.describe()   # python3's own failure, not umiak's
    err = out.stderr.decode()
    m = re.search(r"^umiak: syscalls not in this kernel returned -ENOSYS: (.*)\n\Z", err, re.M)
    assert m, out.describe()
    refused = {re.fullmatch(r"(\w+) \((\d+)x\)", c).group(1) for c in m.group(1).split(", ")}
    assert refused and refused.isdisjoint(mine), (refused, mine)
    for name in refused:   # each also warned when it was first refused
        assert f"umiak: syscall {name} is not in this kernel: returning -ENOSYS\n" in err


def test_explore_puts_back_all_but_the_culprit(monkeypatch, tmp_path):
    """When the whole app kernel fails (calls stubbable one at a time but not together), calls
    are made needed from the last until it passes; then all but the last of those are tried
    back at once, so one culprit does not make its innocent neighbours needed. (In-process:
    trials and configs are replaced by a rule over the stub and fake lists.)"""
    from umiak import config
    from umiak.config import app, build, explore

    def lists(text: str) -> dict[str, set[str]]:
        return {k: set(v.split()) for k, v in re.findall(r'^CONFIG_SYSCALLS_(STUB|FAKE)="([^"]*)"', text, re.M)}

    def works(text: str) -> bool:
        got = lists(text)
        stub, fake = got.get("STUB", set()), got.get("FAKE", set())
        return ("read" not in stub | fake and not {"fcntl", "futex"} & stub
                and not {"fcntl", "futex"} <= fake)   # fcntl and futex fakeable, not both

    class Trials:
        def __init__(self, *args):
            self.runs, self.elapsed, self.baseline = 0, 0.0, None

        def scale_limit(self, *durations):
            pass

        def run(self, fragment):
            self.runs += 1
            return fragment

        def run_config(self, cfg):
            with open(cfg) as f:
                return f.read()

        def passes(self, text):
            return works(text)

    def write(facts, path):
        ex = facts.explored or {}
        with open(path, "w") as f:
            for kind in ("stub", "fake"):
                f.write(f'CONFIG_SYSCALLS_{kind.upper()}="{" ".join(n for n, k in ex.items() if k == kind)}"\n')

    class Recorder:
        def syscall_names(self):
            return {n: 1 for n in ("read", "fcntl", "getuid", "futex", "gettid")}
    monkeypatch.setattr(explore, "Trials", Trials)
    monkeypatch.setattr(app, "write_app_config", write)
    monkeypatch.setattr(build, "freeze", lambda path: {"symbols": {"SYSCALLS_STUB": "", "SYSCALLS_FAKE": ""}})
    monkeypatch.setattr(config, "store", lambda data, frozen: None)
    said: list[str] = []
    result = explore.explore(["prog"], Recorder(), progress=said.append)
    assert result == {"read": "needed", "fcntl": "fake", "getuid": "stub", "futex": "needed", "gettid": "stub"}
    assert said[-1] == "futex cannot be faked together with the others: needed", said
