"""Snapshots (umiak.snapshot): `umiak snapshot --at entry|ready` then `umiak run --restore`
must give what the program gives natively: the snapshot run prints what came before the
point, the restored run the rest, with the native exit status. Also: many restores of one
file, a refused pipe, corrupt files, kvm <-> emu, /proc/self/maps and auxv of a restored
program, and the prelinked cache (hits, invalidation by a changed library)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import platform_problems
from harness import GUEST_ENV, REPO, Result, _run, assert_same, build, run_native, umiak_env

EXIT_UMIAK_FAILURE = 125


def _env_opts(env=None) -> list[str]:
    return [f"--env={k}={v}" for k, v in (GUEST_ENV if env is None else env).items()]


def snapshot(platform: str, argv, out, at: str, options=(), env=None) -> Result:
    cmd = [sys.executable, "-m", "umiak", "snapshot", "-o", str(out), f"--at={at}", f"--platform={platform}",
           *_env_opts(env), *options, "--", *map(str, argv)]
    return _run(cmd, env=umiak_env())


def restore(platform: str, snap, options=()) -> Result:
    cmd = [sys.executable, "-m", "umiak", "run", f"--platform={platform}", "--restore", str(snap), *options]
    return _run(cmd, env=umiak_env())


def snapshot_and_restore(platform: str, argv, tmp_path, at: str = "entry", restore_on: str | None = None,
                         count: int = 1, env=None, options=()) -> None:
    """Native output == the snapshot run's output + the restored run's (each of count restores);
    options are the snapshot run's (e.g. --cpu=baseline)."""
    native = run_native(argv, env=env)
    snap = tmp_path / "prog.snap"
    first = snapshot(platform, argv, snap, at, options=options, env=env)
    assert first.status == 0, first.describe()
    assert snap.exists()
    opts = ["--restore-count", str(count)] if count > 1 else []
    second = restore(restore_on or platform, snap, opts)
    rest_out = native.stdout[len(first.stdout):]
    assert native.stdout.startswith(first.stdout), first.describe()
    combined = Result(second.status, first.stdout + second.stdout[:len(rest_out)], first.stderr + second.stderr,
                      second.argv)
    assert_same(native, combined)
    assert second.stdout == rest_out * count, second.describe()


def test_guest_state_survives(platform, variant, tmp_path):
    snapshot_and_restore(platform, [build("snapshot_ready", variant)], tmp_path, "ready")


def test_from_the_first_syscall(platform, variant, tmp_path):
    """--at syscall: the program is stopped at its first system call, before it is made (the
    snapshot run prints nothing); each restore makes that call itself and runs to the end."""
    snapshot_and_restore(platform, [build("snapshot_ready", variant)], tmp_path, "syscall", count=2)


def test_guest_from_entry_many_restores(platform, tmp_path):
    snapshot_and_restore(platform, [build("snapshot_ready", "glibc-dynamic")], tmp_path, "entry", count=3)


@pytest.mark.parametrize("kind", ["pipe", "socket"])
def test_pipe_and_socket_refused(platform, tmp_path, kind):
    r = snapshot(platform, [build("snapshot_ready", "glibc-dynamic"), kind], tmp_path / "p.snap", "ready")
    assert r.status == EXIT_UMIAK_FAILURE, r.describe()
    assert r.stderr.decode().splitlines()[-1].startswith(f"umiak: cannot snapshot: fd 3 is a {kind}"), r.describe()
    assert not (tmp_path / "p.snap").exists()


def test_at_signal(platform, tmp_path):
    """SIGUSR2 to `umiak snapshot --at signal` takes the snapshot while the program computes."""
    import signal
    import time
    prog = build("snapshot_ready", "glibc-static")
    snap = tmp_path / "sig.snap"
    cmd = [sys.executable, "-m", "umiak", "snapshot", "-o", str(snap), "--at=signal", f"--platform={platform}",
           *_env_opts(), "--", str(prog), "spin"]
    p = subprocess.Popen(cmd, env=umiak_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"spinning\n"
        time.sleep(0.2)
        p.send_signal(signal.SIGUSR2)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert (p.returncode, out, err) == (0, b"", b"")
    r = restore(platform, snap)
    assert (r.status, r.stdout, r.stderr) == (5, b"done\n", b""), r.describe()


def test_corrupt_and_foreign_files_refused(tmp_path):
    snap = tmp_path / "ok.snap"
    platform = next((p for p, problem in platform_problems().items() if problem is None), None)
    if platform is None:
        pytest.skip("no platform")
    r = snapshot(platform, [build("snapshot_ready", "glibc-static")], snap, "ready")
    assert r.status == 0, r.describe()
    data = snap.read_bytes()
    bad = tmp_path / "bad.snap"
    for blob, words in ((b"not a snapshot at all", "not a umiak snapshot"),
                        (data[:len(data) // 2], "truncated or corrupt"),
                        (data[:-100] + bytes(100), "checksum"),
                        (data[:8] + (99).to_bytes(4, "little") + data[12:], "snapshot format 99")):
        bad.write_bytes(blob)
        r = restore(platform, bad)
        assert r.status == EXIT_UMIAK_FAILURE and r.stdout == b"", r.describe()
        lines = r.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith("umiak: ") and words in lines[0], r.describe()


def _both_platforms():
    usable = [p for p, problem in platform_problems().items() if problem is None]
    wanted = os.environ.get("UMIAK_TEST_PLATFORMS")
    if wanted:
        usable = [p for p in usable if p in wanted.split(",")]
    if not {"kvm", "emu"} <= set(usable):
        pytest.skip("needs both kvm and emu")


def test_kvm_to_emu(tmp_path):
    _both_platforms()
    # musl picks no CPU-specific code at start (glibc's ifuncs chosen on the KVM CPU may
    # use instructions the software CPU lacks: see umiak.snapshot).
    variant = "musl-static" if shutil.which("musl-gcc") else "glibc-static"
    snapshot_and_restore("kvm", [build("snapshot_ready", variant)], tmp_path, "ready", restore_on="emu")


def test_emu_to_kvm(tmp_path):
    _both_platforms()
    # glibc's ld.so sizes its lazy-binding XSAVE area for the CPU it started on: a dynamic
    # glibc program moves between platforms only when both CPUs have the same features
    # (as under --cpu=baseline: tests/test_cpu_model.py).
    snapshot_and_restore("emu", [build("snapshot_ready", "glibc-static")], tmp_path, "ready", restore_on="kvm")


def test_maps_and_auxv_match_a_normal_start(platform, tmp_path):
    prog = build("snapshot_ready", "glibc-dynamic")
    normal = _run([sys.executable, "-m", "umiak", "run", f"--platform={platform}", "--no-aslr", *_env_opts(),
                   str(prog), "maps"], env=umiak_env())
    assert normal.status == 0, normal.describe()
    snap = tmp_path / "m.snap"
    r = snapshot(platform, [prog, "maps"], snap, "entry", options=["--no-aslr"])
    assert r.status == 0 and r.stdout == b"", r.describe()
    restored = restore(platform, snap)
    assert restored.status == 0, restored.describe()
    assert restored.stdout == normal.stdout
    assert b"[vdso]" in restored.stdout and b"auxv 9 " in restored.stdout   # AT_ENTRY


# -- real programs from an entry snapshot ---------------------------------------------------
def _need(path: str) -> str:
    if not os.path.exists(path):
        pytest.skip(f"{path} is not installed")
    return path


@pytest.mark.parametrize("argv", [
    ["/bin/ls", "-la", "/usr/share/common-licenses"],
    ["/usr/bin/sqlite3", ":memory:", "select 6*7, sqlite_version() is not null;"],
    ["/usr/bin/perl", "-e", "print join(',', map { $_ * 2 } 1..5), qq(\\n)"],
], ids=["ls", "sqlite3", "perl"])
def test_debian_programs_from_entry(platform, tmp_path, argv):
    _need(argv[0])
    snapshot_and_restore(platform, argv, tmp_path, "entry")


def test_python3_ready(platform, tmp_path):
    _need("/usr/bin/python3")
    if platform == "emu":
        pytest.skip("CPython's start takes seconds on the software CPU; kvm covers this")
    code = ("import ctypes, json, sqlite3; print('imported'); import sys; sys.stdout.flush(); "
            "ctypes.CDLL(None).syscall(0x554d0001); print(json.dumps({'n': 1})); sys.exit(3)")
    snapshot_and_restore(platform, ["/usr/bin/python3", "-c", code], tmp_path, "ready", count=2)


def test_go_from_entry(platform, tmp_path):
    sys.path.insert(0, str(REPO / "tests"))
    from test_runtimes import go_build
    snapshot_and_restore(platform, [go_build("go", cgo=False)], tmp_path, "entry")


def test_program_that_never_reaches_the_point(platform, tmp_path):
    r = snapshot(platform, [build("snapshot_ready", "glibc-static"), "maps"], tmp_path / "n.snap", "ready")
    assert r.status == EXIT_UMIAK_FAILURE, r.describe()
    assert r.stderr.decode().splitlines()[-1] == \
        "umiak: the program ended (status 0) before the snapshot point (ready)", r.describe()


def test_marker_is_a_no_op_in_a_normal_run(platform):
    prog = build("snapshot_ready", "glibc-static")
    native = run_native([prog])
    r = _run([sys.executable, "-m", "umiak", "run", f"--platform={platform}", *_env_opts(), str(prog)],
             env=umiak_env())
    assert_same(native, r)


# -- the prelinked cache -------------------------------------------------------------------------
def _cached_run(platform, argv, cache_dir, extra=()) -> Result:
    env = dict(umiak_env(), XDG_CACHE_HOME=str(cache_dir))
    cmd = [sys.executable, "-m", "umiak", "run", f"--platform={platform}", "--snapshot-cache", *_env_opts(),
           *extra, *map(str, argv)]
    return _run(cmd, env=env)


def test_cache_hits_and_lists(platform, tmp_path):
    prog = build("snapshot_ready", "glibc-dynamic")
    native = run_native([prog])
    for _ in range(3):
        assert_same(native, _cached_run(platform, [prog], tmp_path))
    env = dict(umiak_env(), XDG_CACHE_HOME=str(tmp_path))
    ls = subprocess.run([sys.executable, "-m", "umiak", "cache", "ls"], env=env, capture_output=True, text=True)
    assert ls.returncode == 0 and str(prog) in ls.stdout and "hits 2" in ls.stdout, ls.stdout + ls.stderr
    pr = subprocess.run([sys.executable, "-m", "umiak", "cache", "prune"], env=env, capture_output=True, text=True)
    assert pr.returncode == 0 and pr.stdout.strip() == "removed 1 cached snapshot", pr.stdout + pr.stderr


def test_cache_keys_on_the_kernel_config(platform, tmp_path):
    """A configured kernel (--profile) gets the cache too, with entries of its own: the
    same program under two kernels is two entries, each hit by its own kernel's runs."""
    prog = build("snapshot_ready", "glibc-dynamic")
    native = run_native([prog])
    for _ in range(2):
        for extra in ((), ("--profile", "server")):
            assert_same(native, _cached_run(platform, [prog], tmp_path, extra))
    env = dict(umiak_env(), XDG_CACHE_HOME=str(tmp_path))
    ls = subprocess.run([sys.executable, "-m", "umiak", "cache", "ls"], env=env, capture_output=True, text=True)
    assert ls.returncode == 0 and ls.stdout.count(str(prog)) == 2 and ls.stdout.count("hits 1") == 2, \
        ls.stdout + ls.stderr


def test_cache_invalidated_by_a_changed_library(platform, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    (tmp_path / "lib.c").write_text('const char *word(void) { return "first"; }\n')
    (tmp_path / "main.c").write_text('#include <stdio.h>\nconst char *word(void);\n'
                                     'int main(void) { puts(word()); return 0; }\n')
    lib = tmp_path / "libword.so"

    def make_lib(text: str) -> None:
        (tmp_path / "lib.c").write_text(f'const char *word(void) {{ return "{text}"; }}\n')
        tmp = tmp_path / "libword.so.new"
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(tmp), str(tmp_path / "lib.c")], check=True)
        os.replace(tmp, lib)

    make_lib("first")
    prog = tmp_path / "prog"
    subprocess.run(["gcc", "-o", str(prog), str(tmp_path / "main.c"), f"-L{tmp_path}", "-lword",
                    f"-Wl,-rpath,{tmp_path}"], check=True)
    cache = tmp_path / "cache"
    for _ in range(2):
        r = _cached_run(platform, [prog], cache)
        assert (r.status, r.stdout) == (0, b"first\n"), r.describe()
    make_lib("second")
    r = _cached_run(platform, [prog], cache)
    assert (r.status, r.stdout, r.stderr) == (0, b"second\n", b""), r.describe()
    r = _cached_run(platform, [prog], cache)
    assert (r.status, r.stdout) == (0, b"second\n"), r.describe()


def test_second_restore_starts_in_few_exits(platform, tmp_path):
    """The first restore notes the pages it faults in; the next maps them at once: a dynamic
    program from an entry snapshot then makes at most 5 exits before its first write."""
    prog = build("hello", "glibc-dynamic")
    native = run_native([prog])
    snap = tmp_path / "x.snap"
    assert snapshot(platform, [prog], snap, "entry").status == 0
    r = restore(platform, snap, ["--verbose", "--restore-count", "2"])
    assert (r.status, r.stdout) == (native.status, native.stdout * 2), r.describe()
    counts = [int(line.split()[1]) for line in r.stderr.decode().splitlines()
              if line.endswith(")") and "VM exits before the first write" in line]
    assert len(counts) == 2 and counts[1] <= 5 and counts[1] < counts[0], r.describe()


STATIC_KINDS = ["glibc-static", "glibc-static-pie", "musl-static"]


@pytest.mark.parametrize("kind", ["glibc-dynamic", *STATIC_KINDS])
def test_cache_draws_randomness_per_run(platform, tmp_path, kind):
    """Runs started from one cached snapshot each get their own AT_RANDOM and stack canary,
    the canary made from AT_RANDOM as the C library makes it, as at every normal start."""
    prog = build("canary", kind)
    outs = []
    for _ in range(3):
        r = _cached_run(platform, [prog], tmp_path)
        assert r.status == 0 and r.stdout.endswith(b"derived yes\n"), r.describe()
        outs.append(r.stdout)
    assert len(set(outs)) == 3, outs
    env = dict(umiak_env(), XDG_CACHE_HOME=str(tmp_path))
    ls = subprocess.run([sys.executable, "-m", "umiak", "cache", "ls"], env=env, capture_output=True, text=True)
    assert "hits 2" in ls.stdout, ls.stdout + ls.stderr


@pytest.mark.parametrize("kind", STATIC_KINDS)
def test_cache_starts_static_programs_at_their_init(platform, tmp_path, kind):
    """A static C program is cached at its _init (its C runtime's start done): later runs,
    restored from it, give native's output."""
    prog = build("snapshot_ready", kind)
    native = run_native([prog])
    for _ in range(3):
        assert_same(native, _cached_run(platform, [prog], tmp_path))
    env = dict(umiak_env(), XDG_CACHE_HOME=str(tmp_path))
    ls = subprocess.run([sys.executable, "-m", "umiak", "cache", "ls"], env=env, capture_output=True, text=True)
    assert ls.returncode == 0 and "hits 2" in ls.stdout and str(prog) in ls.stdout, ls.stdout + ls.stderr


CLOCK_IN_A_CONSTRUCTOR = r"""
#include <stdio.h>
#include <time.h>
static struct timespec at;
__attribute__((constructor)) static void early(void) { clock_gettime(CLOCK_MONOTONIC, &at); }
int main(void) { printf("%lld.%09ld\n", (long long)at.tv_sec, at.tv_nsec); return 0; }
"""


def test_cache_of_a_static_program_runs_its_constructors_again(platform, tmp_path):
    """A static program's snapshot is taken at its _init, before its constructors: one that
    reads the (vDSO) clock reads it anew in every run restored from the cache, and a
    restored start makes at most 2 VM exits before its first write."""
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    (tmp_path / "c.c").write_text(CLOCK_IN_A_CONSTRUCTOR)
    prog = tmp_path / "clock"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(prog), str(tmp_path / "c.c")], check=True)
    cache = tmp_path / "cache"
    runs = [_cached_run(platform, [prog], cache, ["--verbose"]) for _ in range(3)]
    for r in runs:
        assert r.status == 0 and len(r.stdout.split(b".")) == 2, r.describe()
    assert len({r.stdout for r in runs}) == 3, [r.stdout for r in runs]
    exits = [int(line.split()[1]) for r in runs for line in r.stderr.decode().splitlines()
             if "VM exits before the first write" in line]
    assert len(exits) == 3 and exits[2] <= 2 < exits[0], [r.stderr for r in runs]


def test_cache_of_a_go_program(platform, tmp_path):
    sys.path.insert(0, str(REPO / "tests"))
    from test_runtimes import go_build
    prog = go_build("go", cgo=False)
    native = run_native([prog])
    for _ in range(3):
        assert_same(native, _cached_run(platform, [prog], tmp_path))


NO_LIBC = """
    .globl _start
_start: mov $1, %eax
        mov $1, %edi
        lea msg(%rip), %rsi
        mov $5, %edx
        syscall
        mov $60, %eax
        mov $3, %edi
        syscall
msg:    .ascii "no C\\n"
"""


def test_cache_leaves_out_a_program_without_a_c_runtime(platform, tmp_path):
    """A static program whose first system call is not a C runtime's start (its own code ran
    before it) is marked uncacheable and runs the normal way, every time."""
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    (tmp_path / "p.s").write_text(NO_LIBC)
    prog = tmp_path / "nolibc"
    subprocess.run(["gcc", "-nostdlib", "-static", "-o", str(prog), str(tmp_path / "p.s")], check=True)
    native = run_native([prog])
    assert (native.status, native.stdout) == (3, b"no C\n")
    cache = tmp_path / "cache"
    for _ in range(3):
        assert_same(native, _cached_run(platform, [prog], cache))
    env = dict(umiak_env(), XDG_CACHE_HOME=str(cache))
    ls = subprocess.run([sys.executable, "-m", "umiak", "cache", "ls"], env=env, capture_output=True, text=True)
    assert ls.returncode == 0 and ls.stdout.strip() == "(1 program start marked uncacheable)", ls.stdout + ls.stderr


def test_cache_invalidated_by_a_changed_static_program(platform, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    prog = tmp_path / "prog"

    def make(word: str) -> None:
        (tmp_path / "p.c").write_text(f'#include <stdio.h>\nint main(void) {{ puts("{word}"); return 0; }}\n')
        subprocess.run(["gcc", "-static", "-o", str(tmp_path / "prog.new"), str(tmp_path / "p.c")], check=True)
        os.replace(tmp_path / "prog.new", prog)

    make("first")
    cache = tmp_path / "cache"
    for _ in range(2):
        r = _cached_run(platform, [prog], cache)
        assert (r.status, r.stdout) == (0, b"first\n"), r.describe()
    make("second")
    for _ in range(2):
        r = _cached_run(platform, [prog], cache)
        assert (r.status, r.stdout, r.stderr) == (0, b"second\n", b""), r.describe()


def test_restores_into_a_recycled_vm_find_the_snapshot_not_the_last_run(platform, tmp_path):
    """--restore-count runs each restore on the VM the one before ran on (Machine: its
    frames still hold what that run wrote after the snapshot): every restore must find
    the zero pages zero and the written ones as they were at the snapshot."""
    snapshot_and_restore(platform, [build("snapshot_scratch", "glibc-dynamic")], tmp_path, "ready", count=4)
