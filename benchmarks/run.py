"""umiak benchmarks: one run on this machine, one table per topic, a targets summary.

    python3 benchmarks/run.py                  all sections (about 2-3 minutes)
    python3 benchmarks/run.py dynamic threads  only some sections (the names below)
    UMIAK_SRC=/path/to/src python3 benchmarks/run.py   measure another copy of umiak

Columns: native, umiak on each platform (kvm, emu), qemu-user (`qemu-x86_64`) and
gVisor's `runsc --rootless --network=none do`; a peer that is not installed shows
"not installed". Every figure is measured in this run; "(1.23x)" after a figure
is its ratio to native, and the last column compares umiak kvm with the peers.
Times inside guests are measured by the guest itself (clock_gettime), so start-up
is excluded from per-call, per-iteration and throughput rows; "whole process"
rows time the command from fork to exit, interpreter start-up included.

Sections:
  syscalls  raw VM-exit cost, getppid per call, static hello (in-process and whole
          process), CPU loop and sort versus native
  dynamic  dynamic hello and `python3 -c pass` (whole process, in-process, VM exits
          per start), read() throughput of a 256 MiB file in 64 KiB chunks
  threads  two CPU-bound threads versus one, futex ping-pong, Go hello start-up
  fds     16,000 fds installed and closed: the fd table alone (in-process) and a guest
          program's open/dup and close calls
  processes  fork+exec+wait per second, a pipeline, fork of 256 MiB touched, 200 small commands
  snapshots  (issue 16) in-process starts from snapshots: dynamic hello and python3 -c pass
          from an --at entry snapshot, python3 from an --at ready one, 100 restores of
          one snapshot in one process (restores per second)
  exitless  (issue 15) getppid, read() throughput and futex ping-pong with the exitless path
          forced on (with and without rewritten syscall sites) beside plain exits, native and
          runsc, with the CPU each call costs
  start   (issues 16 and 11) static hello in-process and whole process, dynamic hello and
          python3 -c pass whole process, each under the full kernel and --profile minimal on kvm
          and emu, beside `python3 -c pass` alone; `umiak config size` of both

Guest programs (benchmarks/guest/*.c, *.go) are compiled at benchmark time into
benchmarks/.build (a cache keyed by source and flags). Progress goes to stderr.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
# UMIAK_SRC=DIR measures another copy of umiak's src/ (e.g. a clean `git archive` of HEAD
# while the work tree is mid-edit); the default is this checkout's.
SRC = Path(os.environ.get("UMIAK_SRC") or HERE.parent / "src").resolve()
GUEST = HERE / "guest"
BUILD = HERE / ".build"
sys.path.insert(0, str(SRC))

ENV = dict(os.environ, PYTHONPATH=str(SRC) + (os.pathsep + os.environ["PYTHONPATH"]
                                              if os.environ.get("PYTHONPATH") else ""))
# Whole-process start-up is measured as a user meets it: with Python's bytecode cache
# (an environment that sets PYTHONDONTWRITEBYTECODE recompiles umiak on every start).
ENV.pop("PYTHONDONTWRITEBYTECODE", None)
UMIAK = [sys.executable, "-m", "umiak", "run"]
RUNSC = shutil.which("runsc")
QEMU = shutil.which("qemu-x86_64")
GO = shutil.which("go")

KINDS = ["native", "kvm", "emu", "qemu", "runsc"]
HEADERS = ["", "native", "umiak kvm", "umiak emu", "qemu-user", "runsc", "umiak kvm vs qemu / runsc"]

# Work sizes, chosen so that each measurement takes about a second or less.
RAW_EXITS = 20_000          # in RAW_CHUNKS chunks; the fastest chunk's mean is reported
RAW_CHUNKS = 5
GETPPID_N = {"native": 1_000_000, "kvm": 20_000, "emu": 200_000, "qemu": 1_000_000, "runsc": 20_000}
XORSHIFT_N = 200_000_000
SORT_N = 2_000_000
READ_MIB = 256

THREAD_ITERS = {"native": 150_000_000, "kvm": 150_000_000, "emu": 20_000_000,
                "qemu": 100_000_000, "runsc": 150_000_000}
FDS_N = 16_000              # fds open at once (the guest raises RLIMIT_NOFILE to fit)
PINGPONG_N = {"native": 100_000, "kvm": 1_000, "emu": 5_000, "qemu": 20_000, "runsc": 1_500}

RESULTS: dict[str, object] = {}   # figures the targets section reads


@contextmanager
def read_file():
    """A directory (for a read-only volume) holding READ_MIB MiB of random bytes; removed after."""
    tmpdir = tempfile.mkdtemp(prefix="umiak-bench-", dir="/tmp")
    data = os.path.join(tmpdir, "data")
    try:
        with open(data, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(READ_MIB):
                f.write(chunk)
        yield tmpdir, data
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- building guest programs -----------------------------------------------------------
def build_c(name: str, static: bool = True, extra: tuple[str, ...] = ()) -> Path:
    """Compile guest/NAME.c into the cache (once per source and flags)."""
    src = GUEST / f"{name}.c"
    flags = ["-O2", *(["-static"] if static else []), *extra]
    key = hashlib.sha256(src.read_bytes() + " ".join(flags).encode()).hexdigest()[:10]
    out = BUILD / f"{name}-{'static' if static else 'dyn'}-{key}"
    if not out.exists():
        BUILD.mkdir(exist_ok=True)
        tmp = out.with_suffix(".tmp")
        subprocess.run(["gcc", *flags, "-o", str(tmp), str(src)], check=True)
        tmp.rename(out)
    return out


def build_go(name: str) -> Path | None:
    """A static Go program (CGO_ENABLED=0) from guest/NAME.go, or None without Go."""
    if GO is None:
        return None
    src = GUEST / f"{name}.go"
    key = hashlib.sha256(src.read_bytes()).hexdigest()[:10]
    out = BUILD / f"{name}-go-{key}"
    if not out.exists():
        BUILD.mkdir(exist_ok=True)
        env = dict(os.environ, CGO_ENABLED="0", GO111MODULE="off", GOCACHE=str(BUILD / "gocache"),
                   GOPATH=str(BUILD / "gopath"))
        note(f"  building {src.name} with {GO}")
        subprocess.run([GO, "build", "-o", str(out), str(src)], check=True, env=env)
    return out


# -- running programs under each kind ---------------------------------------------------
def runner(kind: str, volumes: tuple[str, ...] = ()) -> list[str] | None:
    """Command prefix that runs a program under `kind`, or None if that peer is not installed."""
    if kind == "native":
        return []
    if kind in ("kvm", "emu"):
        return [*UMIAK, f"--platform={kind}", *(a for v in volumes for a in ("-v", f"{v}:{v}:ro"))]
    if kind == "qemu":
        return [QEMU] if QEMU else None   # Debian's qemu-user finds / as the dynamic prefix
    if kind == "runsc":
        return [RUNSC, "--rootless", "--network=none", "do"] if RUNSC else None
    raise ValueError(kind)


def run_cmd(kind: str, argv: list[str], timeout: float = 300, volumes: tuple[str, ...] = ()) -> str:
    """Run argv under `kind` (stdin from /dev/null: runsc upsets a terminal); return its stdout."""
    p = subprocess.run([*runner(kind, volumes), *argv], capture_output=True, text=True, env=ENV,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        lines = p.stderr.strip().splitlines() or ["?"]
        # The telling line: a Go runtime's "fatal error", umiak's "internal error", else the last.
        msg = next((ln for ln in lines if "fatal error" in ln or "internal error" in ln), lines[-1])
        raise RuntimeError(f"status {p.returncode}: {msg.strip()[:60]}")
    return p.stdout


def first_float(kind: str, argv: list[str], **kw) -> float:
    return float(run_cmd(kind, argv, **kw).split()[0])


def whole_process_ms(kind: str, argv: list[str], runs: int = 7, expect: str = "") -> float:
    """Median wall time of the whole command, fork to exit."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = run_cmd(kind, argv, timeout=120)
        times.append(time.perf_counter() - t0)
        if expect not in out:
            raise RuntimeError(f"unexpected output {out[:30]!r}")
    return statistics.median(times) * 1e3


@contextmanager
def counting_exits():
    """Count what stops each vCPU (syscalls, faults, interrupts) by wrapping the kernel:
    every task's vcpu.run is wrapped as its loop starts, and Kernel.handle_fault counts
    the faults Python serves. Shadow-page faults the host KVM handles itself are not seen.
    counts.py lists the times each task spent in Python between two runs of its vCPU
    (serving the exit), counts.run the times inside vcpu.run (guest code plus the round trip)."""
    from umiak.kernel.kernel import Kernel
    from umiak.platform import ExitKind
    counts = Counter()
    counts.py, counts.run = [], []
    orig_loop, orig_fault = Kernel._loop, Kernel.handle_fault

    def _loop(self, task):
        vcpu = task.vcpu
        inner, clock = vcpu.run, time.perf_counter
        last = None

        def run():
            nonlocal last
            t0 = clock()
            if last is not None:
                counts.py.append(t0 - last)
            kind = inner()
            last = clock()
            counts.run.append(last - t0)
            counts[ExitKind(kind).name.lower()] += 1
            return kind
        vcpu.run = run   # an instance attribute: _loop binds vcpu.run once
        try:
            return orig_loop(self, task)
        finally:
            vars(vcpu).pop("run", None)

    def handle_fault(self, task):
        counts["handle_fault"] += 1
        return orig_fault(self, task)

    Kernel._loop, Kernel.handle_fault = _loop, handle_fault
    try:
        yield counts
    finally:
        Kernel._loop, Kernel.handle_fault = orig_loop, orig_fault


@contextmanager
def exitless_mode(mode: str | dict | None):
    """UMIAK_EXITLESS=mode (or these variables) for the in-process runs inside (None: as it was)."""
    env = {"UMIAK_EXITLESS": mode} if isinstance(mode, str) else dict(mode or {})
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def in_process(platform: str, argv: list[str], runs: int, expect: bytes = b"",
               recycle: bool = True, exitless: str | dict | None = None, cache: bool = False) -> tuple[float, Counter]:
    """Median ms of Machine(platform).run_captured(argv) after one warm-up run,
    and the exits counted during that warm-up run. recycle=False: a fresh VM each run;
    exitless: UMIAK_EXITLESS for these runs; cache: the prelinked snapshot cache on."""
    with exitless_mode(exitless):
        return _in_process(platform, argv, runs, expect, recycle, cache)


def _in_process(platform: str, argv: list[str], runs: int, expect: bytes, recycle: bool,
                cache: bool) -> tuple[float, Counter]:
    from umiak import Machine
    m = Machine(platform=platform, mem_size=512 << 20, extra={"recycle": recycle, "snapshot_cache": cache})
    times = []
    for i in range(runs + 1):
        if i == 0:
            with counting_exits() as counts:
                r = m.run_captured(argv)
        else:
            t0 = time.perf_counter()
            r = m.run_captured(argv)
            times.append(time.perf_counter() - t0)
        if r.status != 0 or expect not in r.stdout:
            raise RuntimeError(f"status {r.status}: {r.stderr.decode(errors='replace').strip()[-60:]}")
    return statistics.median(times) * 1e3, counts


def raw_exit_us(platform: str) -> float:
    """A guest `syscall; jmp .-2` loop, answered with set_syscall_result only (no kernel)."""
    from umiak.platform import ExitKind, open_platform
    plat = open_platform(platform, 64 << 20)
    try:
        code_pa, stack_pa = plat.usable[0], plat.usable[0] + 4096
        plat.ram[code_pa:code_pa + 4] = bytes.fromhex("0f05ebfc")  # syscall; jmp back to it
        plat.map_page(0x400000, code_pa, 1 | 4)
        plat.map_page(0x7FF000, stack_pa, 1 | 2)
        vcpu = plat.create_vcpu(0x400000, 0x800000 - 64)
        for _ in range(100):  # warm up: shadow page faults, first translations
            assert vcpu.run() == ExitKind.SYSCALL, vcpu.error
            vcpu.set_syscall_result(0)
        best = float("inf")
        for _ in range(RAW_CHUNKS):   # the fastest chunk: other load on the machine only adds
            t0 = time.perf_counter()
            for _ in range(RAW_EXITS // RAW_CHUNKS):
                vcpu.run()
                vcpu.set_syscall_result(0)
            best = min(best, (time.perf_counter() - t0) / (RAW_EXITS // RAW_CHUNKS) * 1e6)
        return best
    finally:
        plat.close()


def raw_kvm_run_us() -> float:
    """The same guest loop with nothing but a ctypes KVM_RUN ioctl and three sync-regs stores."""
    from umiak.platform import ExitKind, open_platform
    from umiak.platform.base import R11, RCX, RFLAGS, RIP
    from umiak.platform.kvm import api
    plat = open_platform("kvm", 64 << 20)
    try:
        code_pa, stack_pa = plat.usable[0], plat.usable[0] + 4096
        plat.ram[code_pa:code_pa + 4] = bytes.fromhex("0f05ebfc")
        plat.map_page(0x400000, code_pa, 1 | 4)
        plat.map_page(0x7FF000, stack_pa, 1 | 2)
        vcpu = plat.create_vcpu(0x400000, 0x800000 - 64)
        for _ in range(100):
            assert vcpu.run() == ExitKind.SYSCALL, vcpu.error
            vcpu.set_syscall_result(0)
        libc = ctypes.CDLL(None, use_errno=True)
        ioctl = libc.ioctl
        ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)
        fd, regs, q, dirty = vcpu.fd, vcpu._regs, vcpu._q, vcpu._dirty
        pvm = plat.flavour == "pvm"
        run = api.KVM_RUN
        best = float("inf")
        for _ in range(RAW_CHUNKS):
            t0 = time.perf_counter()
            for _ in range(RAW_EXITS // RAW_CHUNKS):
                ioctl(fd, run, None)
                if pvm:  # under PVM the host returns for the stub (see platform/kvm/machine.py)
                    regs[RIP] = regs[RCX]
                    regs[RFLAGS] = regs[R11]
                q[dirty] |= 1
            best = min(best, (time.perf_counter() - t0) / (RAW_EXITS // RAW_CHUNKS) * 1e6)
        return best
    finally:
        plat.close()


# -- tables ----------------------------------------------------------------------------
class Ctx:
    """What every section shares: which umiak platforms work here and the raw exit costs."""

    def __init__(self):
        from umiak.platform import available_platforms
        self.usable = {name: problem is None for name, problem in available_platforms().items()}
        self.raw = self.per_platform(raw_exit_us)
        self.raw_ctypes = attempt(raw_kvm_run_us) if self.usable.get("kvm") else "unavailable"

    def per_platform(self, fn, *args) -> dict:
        """fn(platform, *args) for kvm and emu, "unavailable" where the platform is not."""
        return {k: (attempt(fn, k, *args) if self.usable.get(k) else "unavailable") for k in ("kvm", "emu")}

    def per_kind(self, label: str, fn, kinds=KINDS) -> dict:
        """fn(kind) for each kind; a cell that cannot be measured holds a short reason."""
        out = {}
        for k in KINDS:
            if k not in kinds:
                out[k] = "-"
            elif k in self.usable and not self.usable[k]:
                out[k] = "unavailable"
            elif runner(k) is None:
                out[k] = None
            else:
                out[k] = attempt(fn, k)
            note(f"  {label} {k}: {out[k]}")
        return out


def attempt(fn, *args):
    try:
        return fn(*args)
    except subprocess.TimeoutExpired:
        return "failed (timed out)"
    except Exception as e:  # noqa: BLE001 - a failing cell is reported, the table goes on
        return f"failed ({str(e).strip()[:50]})"


def num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def fmt(value, unit: str, native=None) -> str:
    if value is None:
        return "not installed"
    if isinstance(value, str):
        return value
    text = f"{value:.3g} {unit}" if abs(value) < 100 else f"{value:.0f} {unit}"
    if num(native) and native > 0:
        text += f" ({ratio(value / native)})"
    return text


def ratio(r: float) -> str:
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"


def peers(v: dict, higher_is_better: bool = False) -> str:
    """umiak kvm relative to qemu-user and runsc, phrased so that >1x means umiak is better."""
    parts = []
    for k in ("qemu", "runsc"):
        a, b = v.get("kvm"), v.get(k)
        if num(a) and num(b) and a > 0 and b > 0:
            r = a / b if higher_is_better else b / a
            parts.append(ratio(r))
        else:
            parts.append("-")
    return " / ".join(parts)


def row(label: str, v: dict, unit: str, higher_is_better: bool = False, scale: float = 1.0) -> list[str]:
    s = {k: (x * scale if num(x) else x) for k, x in v.items()}
    return [label, *[fmt(s[k], unit, s["native"]) for k in KINDS], peers(s, higher_is_better)]


def print_table(title: str, rows: list[list[str]], notes: list[str] = (), headers: list[str] = HEADERS) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)) + " |"  # noqa: E731
    print(f"\n## {title}\n")
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    for n in notes:
        print(f"  {n}")
    sys.stdout.flush()


def ms_of(inproc: dict, k: str):
    v = inproc.get(k)
    return v[0] if isinstance(v, tuple) else v


def exits_cell(inproc: dict, k: str, ctx: Ctx) -> str:
    """'S sys + F flt = N exits, ~X ms at raw cost' for one in-process measurement."""
    v = inproc.get(k)
    if not isinstance(v, tuple):
        return v if isinstance(v, str) else "-"
    c = v[1]
    total = sum(n for key, n in c.items() if key != "handle_fault")
    text = f"{c['syscall']} sys + {c['fault']} flt"
    other = total - c["syscall"] - c["fault"]
    if other:
        text += f" + {other} other"
    text += f" = {total}"
    if num(ctx.raw.get(k)):
        text += f" (~{total * ctx.raw[k] / 1e3:.3g} ms)"
    return text


# -- syscalls: syscall cost, static start, compute ------------------------------------------
def section_syscalls(ctx: Ctx) -> None:
    progs = {n: build_c(n) for n in ("getppid_loop", "xorshift", "sort_ints", "hello")}
    rows = [["one VM exit, platform API", "-", fmt(ctx.raw["kvm"], "us"), fmt(ctx.raw["emu"], "us"), "-", "-", "-"],
            ["one VM exit, bare ctypes KVM_RUN", "-", fmt(ctx.raw_ctypes, "us"), "-", "-", "-", "-"]]

    def getppid_us(k):   # best of 3 runs, as the raw exit is the best of its chunks
        return min(first_float(k, [str(progs["getppid_loop"]), str(GETPPID_N[k])]) for _ in range(3)) / 1e3
    g = ctx.per_kind("getppid", getppid_us)
    rows.append(row("getppid per call (best of 3)", g, "us"))
    for k in ("kvm", "emu"):   # again, right after getppid: the share is a small difference of two noisy figures
        if ctx.usable.get(k) and num(ctx.raw[k]):
            again = attempt(raw_exit_us, k)
            ctx.raw[k] = min(ctx.raw[k], again) if num(again) else ctx.raw[k]
    rows[0][2:4] = [fmt(ctx.raw["kvm"], "us"), fmt(ctx.raw["emu"], "us")]
    share = {k: (g[k] - ctx.raw[k] if num(g[k]) and num(ctx.raw[k]) else "-") for k in ("kvm", "emu")}
    rows.append(["  minus one raw exit (Python's share, by difference)", "-", fmt(share["kvm"], "us"),
                 fmt(share["emu"], "us"), "-", "-", "-"])

    def python_share_us(k):
        """Direct: time in Python between two vCPU runs, per exit, over an in-process getppid loop
        (every call an exit: UMIAK_EXITLESS=n)."""
        from umiak import Machine
        with counting_exits() as c, exitless_mode("n"):
            r = Machine(platform=k, mem_size=256 << 20).run_captured(
                [str(progs["getppid_loop"]), str(GETPPID_N[k] // 2)])
        if r.status != 0:
            raise RuntimeError(f"status {r.status}")
        return statistics.median(c.py) * 1e6, statistics.median(c.run) * 1e6
    direct = ctx.per_platform(python_share_us)
    note(f"  python share direct: {direct}")
    part = lambda k, i: fmt(direct[k][i], "us") if isinstance(direct[k], tuple) else fmt(direct[k], "us")  # noqa: E731
    RESULTS["share_us"] = direct["kvm"][0] if isinstance(direct["kvm"], tuple) else direct["kvm"]
    rows.append(["  Python's share, timed between vCPU runs (median)", "-", part("kvm", 0), part("emu", 0), "-", "-", "-"])
    rows.append(["  time inside vcpu.run per exit (median, same run)", "-", part("kvm", 1), part("emu", 1), "-", "-", "-"])

    inproc = ctx.per_platform(in_process, [str(progs["hello"])], 20, b"hello")
    RESULTS["inproc_hello_ms"] = ms_of(inproc, "kvm")
    rows.append(["static hello, in-process run_captured", "-", fmt(ms_of(inproc, "kvm"), "ms"),
                 fmt(ms_of(inproc, "emu"), "ms"), "-", "-", "-"])
    cached = ctx.per_platform(in_process, [str(progs["hello"])], 20, b"hello", True, None, True)
    RESULTS["inproc_hello_cached_ms"] = ms_of(cached, "kvm")
    rows.append(["  the same, from the snapshot cache (taken at its _init)", "-", fmt(ms_of(cached, "kvm"), "ms"),
                 fmt(ms_of(cached, "emu"), "ms"), "-", "-", "-"])
    if ctx.usable.get("kvm"):
        fresh = attempt(in_process, "kvm", [str(progs["hello"])], 20, b"hello", False)
        rows.append(["  the same, each on a fresh VM (not recycled)", "-", fmt(ms_of({"kvm": fresh}, "kvm"), "ms"),
                     "-", "-", "-", "-"])
    rows.append(["  VM exits per start (~ at raw exit cost)", "-", exits_cell(inproc, "kvm", ctx),
                 exits_cell(inproc, "emu", ctx), "-", "-", "-"])
    w = ctx.per_kind("static hello whole process", lambda k: whole_process_ms(k, [str(progs["hello"])], expect="hello"))
    rows.append(row("static hello, whole process", w, "ms"))
    print_table("syscalls: system calls and static start-up (lower is better)", rows, [
        "(Nx) = ratio to native; last column: how many times faster umiak kvm is than qemu-user / runsc.",
        "Python's share by difference = getppid per call minus one raw VM exit through the same platform API",
        "(each the best of several tries): noisy under load. Timed between vCPU runs = in-process, the median",
        "time each exit spends in Python from vcpu.run() returning to the next call (includes ~0.2 us of the",
        "timing wrapper); the target uses this one. Time inside vcpu.run: the exit's round trip (and the",
        "guest's few instructions) in a real program, to compare with the raw exit of a 4-byte loop."])

    x = ctx.per_kind("xorshift", lambda k: first_float(k, [str(progs["xorshift"]), str(XORSHIFT_N)]))
    s = ctx.per_kind("qsort", lambda k: first_float(k, [str(progs["sort_ints"]), str(SORT_N)]))
    RESULTS["cpu_ratio"] = x["native"] / x["kvm"] if num(x["native"]) and num(x["kvm"]) else x["kvm"]
    print_table("syscalls: compute, timed inside the guest (lower is better)", [
        row("xorshift integer loop, per iteration", x, "ns"),
        row(f"qsort of {SORT_N // 1_000_000}M ints", s, "s")])


# -- dynamic: dynamic programs, file reads ------------------------------------------------
def section_dynamic(ctx: Ctx) -> None:
    hello_dyn = build_c("hello", static=False)
    reader = build_c("read_file")
    python = ["/usr/bin/python3", "-c", "pass"]
    rows = []
    w = ctx.per_kind("dynamic hello whole process", lambda k: whole_process_ms(k, [str(hello_dyn)], expect="hello"))
    rows.append(row("dynamic hello (gcc, no -static), whole process", w, "ms"))
    if os.path.exists(python[0]):
        p = ctx.per_kind("python3 -c pass whole process", lambda k: whole_process_ms(k, python, runs=5))
    else:
        p = {k: "no /usr/bin/python3" for k in KINDS}
    rows.append(row("/usr/bin/python3 -c pass, whole process", p, "ms"))

    for label, argv, runs, expect in (("dynamic hello", [str(hello_dyn)], 10, b"hello"),
                                      ("python3 -c pass", python, 3, b"")):
        ip = {}
        for k in ("kvm", "emu"):
            ip[k] = attempt(in_process, k, argv, runs, expect) if ctx.usable.get(k) else "unavailable"
            note(f"  {label} in-process {k}: {ip[k]}")
        rows.append([f"{label}, in-process run_captured", "-", fmt(ms_of(ip, "kvm"), "ms"),
                     fmt(ms_of(ip, "emu"), "ms"), "-", "-", "-"])
        rows.append(["  VM exits per start (~ at raw exit cost)", "-", exits_cell(ip, "kvm", ctx),
                     exits_cell(ip, "emu", ctx), "-", "-", "-"])
    print_table("dynamic: dynamic programs start-up (lower is better)", rows, [
        "In-process: median of Machine(platform=...).run_captured(argv) after one warm-up run, in which",
        "the exits were counted (sys = syscalls, flt = faults served in Python; KVM's own shadow-page",
        "faults are not seen). (~ ms) = exits x the raw exit cost measured above: the floor for that start."])

    with read_file() as (tmpdir, data):
        r = ctx.per_kind("read MB/s", lambda k: first_float(k, [str(reader), data], volumes=(tmpdir,)))
    print_table("dynamic: file reads (higher is better)", [
        row(f"read() of a {READ_MIB} MiB file in 64 KiB chunks", r, "MB/s", higher_is_better=True)], [
        "MB/s = 10^6 bytes per second, timed inside the guest; the file is in the host's page cache.",
        "umiak sees it through a read-only volume (-v DIR:DIR:ro)."])


# -- threads: threads, futexes, Go ---------------------------------------------------------
def section_threads(ctx: Ctx) -> None:
    work = build_c("threads_work", extra=("-pthread",))
    pingpong = build_c("futex_pingpong", extra=("-pthread",))

    def scaling(k):
        """Best of three alternating runs of 1 and 2 threads; throughput ratio 2t/1t."""
        n = str(THREAD_ITERS[k])
        t1 = t2 = float("inf")
        sums = set()
        for _ in range(3):
            a = run_cmd(k, [str(work), "1", n]).split()
            b = run_cmd(k, [str(work), "2", n]).split()
            t1, t2 = min(t1, float(a[0])), min(t2, float(b[0]))
            sums.add((a[1], b[1]))
        if len(sums) != 1:
            raise RuntimeError("checksums differ between runs")
        return (t1, t2, 2 * t1 / t2)

    sc = ctx.per_kind("threads", scaling)
    cell = lambda v, i, unit: fmt(v[i], unit) if isinstance(v, tuple) else fmt(v, unit)  # noqa: E731
    speed = {k: (v[2] if isinstance(v, tuple) else v) for k, v in sc.items()}
    RESULTS["threads_kvm"], RESULTS["threads_native"] = speed["kvm"], speed["native"]
    rows = [["1 thread, N iterations (s)", *[cell(sc[k], 0, "s") for k in KINDS], "-"],
            ["2 threads, N iterations each (s)", *[cell(sc[k], 1, "s") for k in KINDS], "-"],
            ["throughput 2 threads / 1 thread", *[ratio(speed[k]) if num(speed[k]) else fmt(speed[k], "")
                                                 for k in KINDS], "-"]]
    print_table("threads: two CPU-bound threads versus one (higher is better, 2.0x is ideal on 2 cores)", rows, [
        "N = " + ", ".join(f"{k} {THREAD_ITERS[k] // 1_000_000}M" for k in KINDS)
        + " xorshift iterations per thread; best of 3 runs each."])

    pp = ctx.per_kind("futex ping-pong", lambda k: first_float(k, [str(pingpong), str(PINGPONG_N[k])], timeout=60))
    go = build_go_cell()
    if isinstance(go, Path):
        g = ctx.per_kind("go hello whole process", lambda k: whole_process_ms(k, [str(go)], runs=5, expect="hello"))
        gi = {k: (attempt(in_process, k, [str(go)], 1, b"hello") if k == "kvm" and ctx.usable.get(k)
                  else "-") for k in ("kvm", "emu")}
        note(f"  go exits kvm: {gi['kvm']}")
    else:
        g = {k: go for k in KINDS}
        gi = {}
    print_table("threads: futexes and a Go program", [
        row("futex ping-pong, round trips per second", pp, "/s", higher_is_better=True),
        row("static Go hello (CGO_ENABLED=0), whole process", g, "ms"),
        ["  VM exits per start (~ at raw exit cost)", "-", exits_cell(gi, "kvm", ctx), "-", "-", "-", "-"]], [
        "Ping-pong: raw FUTEX_WAIT/FUTEX_WAKE between two threads, rounds: "
        + ", ".join(f"{k} {PINGPONG_N[k]}" for k in KINDS) + " (higher is better).",
        "Go hello: lower is better; the last column is >1x where umiak kvm is better."])


def build_go_cell():
    try:
        return build_go("hello") or "go not installed"
    except Exception as e:  # noqa: BLE001
        return f"build failed ({str(e)[:40]})"


# -- fds: the descriptor table at 16,000 open fds -------------------------------------------
def fdtable_ms(n: int = FDS_N, runs: int = 3) -> tuple[float, float]:
    """Best-of-runs ms to install n distinct files into an in-process FdTable, then close
    them all (each File closed at its last reference): umiak's Python alone, no guest."""
    from umiak.kernel.files import FdTable, File
    best_in = best_out = float("inf")
    for _ in range(runs):
        t = FdTable(limit=1 << 20)
        files = [File() for _ in range(n)]
        t0 = time.perf_counter()
        fds = [t.install(f) for f in files]
        t1 = time.perf_counter()
        for fd in fds:
            t.close(fd)
        t2 = time.perf_counter()
        if fds != list(range(n)) or t.files:
            raise RuntimeError("the fd table gave unexpected numbers")
        best_in, best_out = min(best_in, t1 - t0), min(best_out, t2 - t1)
    return best_in * 1e3, best_out * 1e3


def section_fds(ctx: Ctx) -> None:
    prog = build_c("many_fds")
    inproc = attempt(fdtable_ms)
    note(f"  in-process FdTable: {inproc}")
    if isinstance(inproc, tuple):
        RESULTS["fds_s"] = (inproc[0] + inproc[1]) / 1e3
    cell = lambda v, i: fmt(v[i], "ms") if isinstance(v, tuple) else fmt(v, "ms")  # noqa: E731
    rows = [[f"FdTable: install {FDS_N:,} files (in-process)", "-", cell(inproc, 0), "-", "-", "-", "-"],
            [f"FdTable: close {FDS_N:,} fds (in-process)", "-", cell(inproc, 1), "-", "-", "-", "-"]]

    def guest(k):
        out = run_cmd(k, [str(prog), str(FDS_N)], timeout=120).split()
        return float(out[0]), float(out[1])
    g = ctx.per_kind("many fds", guest)
    for i, what in enumerate((f"open/dup {FDS_N:,} fds", f"close {FDS_N:,} fds")):
        rows.append(row(f"guest: {what}, timed inside", {k: (v[i] if isinstance(v, tuple) else v)
                                                        for k, v in g.items()}, "ms"))
    print_table("fds: 16,000 open descriptors (lower is better)", rows, [
        "In-process: the fd table alone (pure Python, the same on every platform), best of 3.",
        f"Guest: benchmarks/guest/many_fds.c raises RLIMIT_NOFILE, makes {FDS_N // 2:,} eventfds each dup'ed once,",
        "then closes all in opening order; each call is one VM exit under umiak."])


# -- processes: fork, exec, wait (issue 10) -------------------------------------------------
SPAWN_N = {"native": 2000, "kvm": 200, "emu": 200, "qemu": 200, "runsc": 100}
FORK_MIB = 256
FORK_RUNS = 5


def section_processes(ctx: Ctx) -> None:
    bench, true = build_c("fork_bench"), build_c("true")
    sp = ctx.per_kind("fork+exec+wait", lambda k: first_float(k, [str(bench), "spawn", str(SPAWN_N[k]), str(true)]))
    RESULTS["spawn_kvm"], RESULTS["spawn_runsc"] = sp["kvm"], sp["runsc"]
    pipe = ["/bin/sh", "-c", "seq 200000 | sort -n | tail -1"]
    pl = ctx.per_kind("sh pipeline", lambda k: whole_process_ms(k, pipe, runs=3, expect="200000"))
    script = ["/bin/sh", "-c", "i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done; echo ok"]
    sc = ctx.per_kind("200 commands", lambda k: whole_process_ms(k, script, runs=1, expect="ok"))

    def big(k):   # the median of FORK_RUNS processes, each figure on its own
        outs = [run_cmd(k, [str(bench), "big", str(FORK_MIB)], timeout=300).split() for _ in range(FORK_RUNS)]
        return statistics.median(float(o[0]) for o in outs), statistics.median(float(o[1]) for o in outs)
    bg = ctx.per_kind("fork of 256 MiB", big, kinds=("native", "kvm", "emu", "qemu", "runsc"))
    RESULTS["fork256_kvm"] = bg["kvm"][0] if isinstance(bg["kvm"], tuple) else bg["kvm"]
    first = {k: (v[0] if isinstance(v, tuple) else v) for k, v in bg.items()}
    second = {k: (v[1] if isinstance(v, tuple) else v) for k, v in bg.items()}
    print_table("processes: fork, exec, wait", [
        row("fork + execve(static true) + waitpid, per second", sp, "/s", higher_is_better=True),
        row("sh -c 'seq 200000 | sort -n | tail -1', whole process", pl, "ms"),
        row("sh script running 200 commands (/bin/true), whole process", sc, "ms"),
        row(f"fork() of a process with {FORK_MIB} MiB touched", first, "ms"),
        row("  then a child writes 1% of those pages and exits", second, "ms")], [
        "Rates and fork times are timed inside the guest; spawns: " + ", ".join(f"{k} {n}" for k, n in SPAWN_N.items()),
        f"Fork of {FORK_MIB} MiB: the median of {FORK_RUNS} processes.",
        "Whole process: fork of umiak (Python start-up included) to its exit."])


# -- issue 16: snapshots --------------------------------------------------------------------
def take_snapshot(platform: str, argv: list[str], at: str):
    """A snapshot of argv at `at`, taken in-process (umiak.snapshot.point)."""
    from umiak import Machine
    from umiak.snapshot.point import SnapshotPoint
    got = []
    point = SnapshotPoint(at, got.append)
    r = Machine(platform=platform, mem_size=512 << 20, prewarm=False,
                extra={"snapshot_hook": point}).run_captured(argv)
    if not got:
        raise RuntimeError(f"no snapshot: status {r.status} {point.error or ''}")
    return got[0]


def restored(platform: str, snap, runs: int, expect: bytes = b"", recycle: bool = True,
             exitless: str | None = None) -> tuple[float, Counter]:
    """in_process() for a snapshot: median ms of a restore that runs to the end, and its exits.
    recycle=False: each run on a fresh VM (built in the background), as before VMs were recycled."""
    with exitless_mode(exitless):
        return _restored(platform, snap, runs, expect, recycle)


def _restored(platform: str, snap, runs: int, expect: bytes, recycle: bool) -> tuple[float, Counter]:
    from umiak import Machine
    m = Machine(platform=platform, mem_size=512 << 20, extra={"restore": snap, "recycle": recycle})
    times = []
    with m:
        for i in range(runs + 1):
            if i == 0:
                with counting_exits() as counts:
                    r = m.run_captured(["(snapshot)"])
            else:
                t0 = time.perf_counter()
                r = m.run_captured(["(snapshot)"])
                times.append(time.perf_counter() - t0)
            if r.status != 0 or expect not in r.stdout:
                raise RuntimeError(f"status {r.status}: {r.stderr.decode(errors='replace').strip()[-60:]}")
    return statistics.median(times) * 1e3, counts


def restores_per_second(platform: str, snap, n: int = 100) -> float:
    from umiak import Machine
    with Machine(platform=platform, mem_size=512 << 20, extra={"restore": snap}) as m:
        m.run_captured(["(snapshot)"])
        t0 = time.perf_counter()
        for _ in range(n):
            if m.run_captured(["(snapshot)"]).status != 0:
                raise RuntimeError("a restore failed")
        return n / (time.perf_counter() - t0)


def section_snapshots(ctx: Ctx) -> None:
    hello_dyn = build_c("hello", static=False)
    python = "/usr/bin/python3"
    ready = [python, "-c", "import ctypes; ctypes.CDLL(None).syscall(0x554d0001)"]
    rows = []
    cases = [("dynamic hello", [str(hello_dyn)], "entry", 10, b"hello", "snap_hello_ms")]
    if os.path.exists(python):
        cases += [("python3 -c pass", [python, "-c", "pass"], "entry", 3, b"", "snap_py_entry_ms"),
                  ("python3 -c pass", ready, "ready", 5, b"", "snap_py_ready_ms")]
    rates = {}
    for label, argv, at, runs, expect, key in cases:
        normal, snap, fresh, xl = {}, {}, {}, {}
        for k in ("kvm", "emu"):
            if not ctx.usable.get(k):
                normal[k] = snap[k] = fresh[k] = xl[k] = "unavailable"
                continue
            normal[k] = attempt(in_process, k, argv, runs, expect)
            s = attempt(take_snapshot, k, argv, at)
            snap[k] = attempt(restored, k, s, runs, expect) if not isinstance(s, str) else s
            fresh[k] = attempt(restored, k, s, runs, expect, False) if not isinstance(s, str) else s
            xl[k] = "-"
            if k == "kvm":
                xl[k] = attempt(restored, k, s, runs, expect, True, "n") if not isinstance(s, str) else s
            if label == "dynamic hello" and not isinstance(s, str):
                rates[k] = attempt(restores_per_second, k, s)
            note(f"  {label} {at} {k}: normal {normal[k]}, restored {snap[k]}")
        if key:
            RESULTS[key] = ms_of(snap, "kvm")
        rows.append([f"{label}, normal start, in-process", "-", fmt(ms_of(normal, "kvm"), "ms"),
                     fmt(ms_of(normal, "emu"), "ms"), "-", "-", "-"])
        rows.append([f"  from an --at {at} snapshot", "-", fmt(ms_of(snap, "kvm"), "ms"),
                     fmt(ms_of(snap, "emu"), "ms"), "-", "-", "-"])
        rows.append(["    the same, each on a fresh VM (not recycled)", "-", fmt(ms_of(fresh, "kvm"), "ms"),
                     fmt(ms_of(fresh, "emu"), "ms"), "-", "-", "-"])
        rows.append(["    the same, every syscall a VM exit (UMIAK_EXITLESS=n)", "-", fmt(ms_of(xl, "kvm"), "ms"),
                     "-", "-", "-", "-"])
        rows.append(["  VM exits, normal start", "-", exits_cell(normal, "kvm", ctx), exits_cell(normal, "emu", ctx),
                     "-", "-", "-"])
        rows.append(["  VM exits, first restore (later ones map its faulted pages at once)", "-", exits_cell(snap, "kvm", ctx), exits_cell(snap, "emu", ctx),
                     "-", "-", "-"])
    RESULTS["restores_per_s"] = rates.get("kvm", "not measured")
    rows.append(["100 restores of the dynamic hello snapshot, per second", "-", fmt(rates.get("kvm", "-"), "/s"),
                 fmt(rates.get("emu", "-"), "/s"), "-", "-", "-"])
    print_table("snapshots: starts from snapshots, in-process (lower is better)", rows, [
        "Normal start: Machine.run_captured(argv). From a snapshot: Machine(extra={'restore': snap}),",
        "the snapshot taken in-process at the program's AT_ENTRY (entry) or at the marker syscall (ready);",
        "each run on the VM the one before left, recycled (Platform.recycle: its shadow entries stay where the",
        "run maps the same pages again). Exits counted as in issue 3 (the restore's lazily mapped pages are faults)."])


# -- targets -----------------------------------------------------------------------------
# -- start: the path from `umiak run` to the first guest instruction, minimal vs full ----------
START_PROFILES = ("full", "minimal")


def start_whole_ms(platform: str, profile: str, argv: list[str], runs: int = 9, expect: str = "") -> float:
    """Median wall time of `umiak run --platform P [--profile minimal] ARGV`, fork to exit."""
    cfg = [] if profile == "full" else ["--profile", profile]   # full: no config at all, the default kernel
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run([*UMIAK, f"--platform={platform}", *cfg, *argv], capture_output=True, text=True,
                           env=ENV, timeout=120, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
        if p.returncode != 0 or expect not in p.stdout:
            raise RuntimeError(f"status {p.returncode}: {p.stderr.strip()[-60:]}")
    return statistics.median(times) * 1e3


def start_inproc_ms(platform: str, profile: str, argv: list[str], runs: int = 20, expect: bytes = b"") -> float:
    """Median ms of Machine(...).run_captured(argv) after a warm-up run, with the profile's kernel."""
    from umiak import Machine
    from umiak.config import load
    cfg = None if profile == "full" else load(profile=profile)
    with Machine(platform=platform, mem_size=256 << 20, kernel_config=cfg) as m:
        times = []
        for i in range(runs + 1):
            t0 = time.perf_counter()
            r = m.run_captured(argv)
            if i:
                times.append(time.perf_counter() - t0)
            if r.status != 0 or expect not in r.stdout:
                raise RuntimeError(f"status {r.status}: {r.stderr.decode(errors='replace').strip()[-60:]}")
    return statistics.median(times) * 1e3


_PAIRED_WHOLE = r"""
import json, os, subprocess, sys, tempfile, time
cmds, pairs, expect = json.loads(sys.argv[1])
whole = {k: [] for k in cmds}
peak = {k: [] for k in cmds}
for cmd in cmds.values():   # warm: bytecode, the frozen config, the snapshot cache
    subprocess.run(cmd, capture_output=True, check=True, stdin=subprocess.DEVNULL)
for _ in range(pairs):
    for label, cmd in cmds.items():
        with tempfile.TemporaryFile() as out:
            t0 = time.perf_counter()
            p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            _, status, ru = os.wait4(p.pid, 0)
            whole[label].append((time.perf_counter() - t0) * 1e3)
            peak[label].append(ru.ru_maxrss / 1024)
            out.seek(0)
            text = out.read().decode(errors="replace")
        if os.waitstatus_to_exitcode(status) != 0 or expect not in text:
            sys.exit(f"status {status}: {text.strip()[-60:]}")
print(json.dumps([whole, peak]))
"""


def start_paired(platform: str, argv: list[str], pairs: int = 20, expect: str = "") -> dict:
    """minimal against the default kernel, both ways, runs alternating (a drifting load meets
    both alike): whole-process wall ms and in-process run_captured ms. Each gives the two
    medians, the median of the pairs' differences (minimal - full) and how many pairs
    minimal won, so a difference smaller than the noise shows as such."""
    from umiak import Machine
    from umiak.config import load
    cmds = {"full": [*UMIAK, f"--platform={platform}", *argv],
            "minimal": [*UMIAK, f"--platform={platform}", "--profile", "minimal", *argv]}
    # The runs are started from a fresh small interpreter: a child's peak RSS counts what it had
    # before its exec, and this process has held guest RAM of earlier sections.
    got = subprocess.run([sys.executable, "-c", _PAIRED_WHOLE, json.dumps([cmds, pairs, expect])], env=ENV,
                         capture_output=True, text=True, timeout=600, check=False, stdin=subprocess.DEVNULL)
    if got.returncode != 0:
        raise RuntimeError(got.stderr.strip()[-60:])
    whole, peak = json.loads(got.stdout)
    inproc: dict[str, list[float]] = {"full": [], "minimal": []}
    machines = {"full": Machine(platform=platform, mem_size=256 << 20),
                "minimal": Machine(platform=platform, mem_size=256 << 20, kernel_config=load(profile="minimal"))}
    try:
        for i in range(2 * pairs + 1):
            for label, m in machines.items():
                t0 = time.perf_counter()
                r = m.run_captured(argv)
                if i:
                    inproc[label].append((time.perf_counter() - t0) * 1e3)
                if r.status != 0 or expect.encode() not in r.stdout:
                    raise RuntimeError(f"status {r.status}")
    finally:
        for m in machines.values():
            m.close()

    def summary(d: dict[str, list[float]]) -> tuple[float, float, float, int, int]:
        diffs = [b - a for a, b in zip(d["full"], d["minimal"], strict=True)]
        return (statistics.median(d["full"]), statistics.median(d["minimal"]), statistics.median(diffs),
                sum(x < 0 for x in diffs), len(diffs))
    return {"whole": summary(whole), "inproc": summary(inproc), "peak": summary(peak)}


def interpreter_ms(runs: int = 15) -> float:
    """The floor of any `umiak run`: this Python starting and exiting (`python3 -c pass`)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=ENV, check=True, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def section_start(ctx: Ctx) -> None:
    hello, hello_dyn = build_c("hello"), build_c("hello", static=False)
    python = ["/usr/bin/python3", "-c", "pass"]
    cols = [("kvm", "full"), ("kvm", "minimal"), ("emu", "full")]   # the minimal profile has no emu
    headers = ["", *(f"umiak {k} {prof}" for k, prof in cols)]

    def cells(fn, *args, **kw) -> list[str]:
        out = []
        for k, prof in cols:
            v = attempt(lambda: fn(k, prof, *args, **kw)) if ctx.usable.get(k) else "unavailable"  # noqa: B023
            note(f"  start {fn.__name__} {k} {prof}: {v}")
            out.append(v)
        return out
    floor = attempt(interpreter_ms)
    inproc = cells(start_inproc_ms, [str(hello)], expect=b"hello")
    whole = cells(start_whole_ms, [str(hello)], expect="hello")
    dyn = cells(start_whole_ms, [str(hello_dyn)], expect="hello")
    dyn_in = cells(start_inproc_ms, [str(hello_dyn)], expect=b"hello")
    have_py = os.path.exists(python[0])
    py = cells(start_whole_ms, python, runs=5) if have_py else ["no /usr/bin/python3"] * len(cols)
    py_in = cells(start_inproc_ms, python, runs=3) if have_py else ["no /usr/bin/python3"] * len(cols)
    over = [(w - floor if num(w) and num(floor) else "-") for w in whole]
    RESULTS["whole_hello_over_python_ms"] = over[0]
    rows = [["static hello, in-process run_captured", *(fmt(v, "ms") for v in inproc)],
            ["static hello, whole process (umiak run)", *(fmt(v, "ms") for v in whole)],
            [f"  minus `python3 -c pass` alone ({fmt(floor, 'ms')})", *(fmt(v, "ms") for v in over)],
            ["dynamic hello, whole process", *(fmt(v, "ms") for v in dyn)],
            ["dynamic hello, in-process", *(fmt(v, "ms") for v in dyn_in)],
            ["/usr/bin/python3 -c pass, whole process", *(fmt(v, "ms") for v in py)],
            ["/usr/bin/python3 -c pass, in-process", *(fmt(v, "ms") for v in py_in)]]
    print_table("start: start-up, the full kernel versus the minimal profile (lower is better)", rows, [
        "full = no --profile (the default kernel); minimal = --profile minimal (kvm only: it leaves emu out).",
        "Whole process: median wall time of",
        "`python3 -m umiak run --platform=P [--profile minimal] PROGRAM`, bytecode cache warm, interpreter start-up",
        "included; the row below subtracts this Python's own `-c pass` (the target: within 40 ms of it).",
        "In-process: median of Machine(platform=P, kernel_config=...).run_captured after one warm-up run."],
        headers=headers)
    if not ctx.usable.get("kvm"):
        return
    prows = []
    for name, argv in (("static hello", [str(hello)]), ("dynamic hello", [str(hello_dyn)])):
        got = attempt(lambda argv=argv: start_paired("kvm", argv, pairs=40, expect="hello"))
        for how in ("whole", "inproc", "peak"):
            if not isinstance(got, dict):
                prows.append([f"{name}, {how}", str(got), "", "", ""])
                continue
            full, mini, diff, won, n = got[how]
            unit = "MB" if how == "peak" else "ms"
            note(f"  start paired {name} {how}: full {full:.2f} minimal {mini:.2f} diff {diff:.2f} won {won}/{n}")
            label = {"whole": "whole process", "inproc": "in-process", "peak": "whole process, peak RSS"}[how]
            prows.append([f"{name}, {label}", f"{full:.1f} {unit}", f"{mini:.1f} {unit}",
                          f"{diff:+.2f} {unit} ({100 * diff / full:+.1f}%)", f"{won}/{n}"])
    print_table("start: minimal versus the default kernel, runs alternating (kvm)", prows, [
        "Whole process: `umiak run [--profile minimal] PROGRAM`, fork to exit; in-process: run_captured of two",
        "Machines in one interpreter. Medians; 'minimal - full' is the median of the pairs' differences, and",
        "'pairs won' how many alternating pairs the minimal kernel was the faster (or smaller) of."],
        headers=["", "full (default)", "minimal", "minimal - full", "pairs won"])

    from umiak.config.size import measure
    size_rows = []
    for prof in START_PROFILES:
        fig = attempt(measure, [] if prof == "full" else ["--profile", prof], str(hello), 3)
        note(f"  config size {prof}: {fig if isinstance(fig, str) else 'ok'}")
        if isinstance(fig, str):
            size_rows.append([prof, fig, "-", "-", "-", "-", "-", "-", "-"])
            continue
        size_rows.append([prof, str(fig["umiak_modules"]), str(fig["umiak_lines"]), str(fig["modules"]),
                          f"{fig['rss'] / (1 << 20):.1f} MB", f"{fig['start'] * 1e3:.0f} ms", f"{fig['cpu'] * 1e3:.0f} ms",
                          str(fig.get("exit_umiak_modules", "-")), str(fig.get("exit_umiak_lines", "-"))])
    print_table("start: kernel size at the first guest instruction (umiak config size)", size_rows, [
        "`umiak config size` of the static hello (best of 3 runs): umiak's modules and source lines imported,",
        "all modules, host RSS, wall time from the interpreter's start and its CPU time, all at the moment the",
        "program's first instruction is about to run; then umiak's modules and lines by the run's end."],
        headers=["kernel", "umiak modules", "umiak lines", "all modules", "RSS", "start", "CPU",
                 "umiak modules at exit", "umiak lines at exit"])


# -- exitless: the shared-memory syscall path (issue 15) ------------------------------------
XL_MODES = {"kvm": {"UMIAK_EXITLESS": "n"}, "kvm exitless auto": {"UMIAK_EXITLESS": "auto"}, "kvm exitless": {"UMIAK_EXITLESS": "y"},
            "kvm exitless, --no-rewrite": {"UMIAK_EXITLESS": "y", "UMIAK_REWRITE": "n"}}
XL_KINDS = ["native", *XL_MODES, "runsc"]


def timed_cmd(kind: str, argv: list[str], extra_env: dict | None = None, volumes: tuple[str, ...] = ()) -> tuple[str, float]:
    """(stdout, CPU seconds the command used: user + system of it and its children)."""
    import resource
    kind_runner = runner("kvm" if kind.startswith("kvm") else kind, volumes)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([*kind_runner, *argv], capture_output=True, text=True, env=dict(ENV, **(extra_env or {})),
                       timeout=300, stdin=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"status {p.returncode}: {(p.stderr.strip().splitlines() or ['?'])[-1][:60]}")
    return p.stdout, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def section_exitless(ctx: Ctx) -> None:
    """getppid, reads and futex ping-pong with the exitless path forced on (with and without
    rewritten syscall sites) beside plain exits, native and runsc; CPU per call beside."""
    getppid = build_c("getppid_loop")
    reader = build_c("read_file")
    pingpong = build_c("futex_pingpong", extra=("-pthread",))
    n = {"native": 1_000_000, "runsc": 20_000}

    def cells(fn) -> dict:
        out = {}
        for k in XL_KINDS:
            usable = ctx.usable.get("kvm") if k.startswith("kvm") else runner(k) is not None
            out[k] = attempt(fn, k) if usable else ("unavailable" if k.startswith("kvm") else None)
            note(f"  {fn.__name__} {k}: {out[k]}")
        return out

    def getppid_call(k):
        """(µs per call timed inside, best of 3; CPU µs per call from 3N minus N calls)."""
        env = XL_MODES.get(k, {})
        calls = n.get(k, 20_000)
        best = min(float(timed_cmd(k, [str(getppid), str(calls)], env)[0].split()[0]) for _ in range(3)) / 1e3
        cpu1 = timed_cmd(k, [str(getppid), str(calls)], env)[1]
        cpu3 = timed_cmd(k, [str(getppid), str(3 * calls)], env)[1]
        return best, max(0.0, (cpu3 - cpu1) / (2 * calls) * 1e6)

    with read_file() as (tmpdir, data):
        def read_mb_s(k):
            out, cpu = timed_cmd(k, [str(reader), data], XL_MODES.get(k, {}), volumes=(tmpdir,))
            return float(out.split()[0]), cpu / (READ_MIB * 16) * 1e6   # CPU µs per 64 KiB read
        g = cells(getppid_call)
        r = cells(read_mb_s)

    def pingpong_s(k):
        rounds = PINGPONG_N.get(k, PINGPONG_N["kvm"])
        out, cpu = timed_cmd(k, [str(pingpong), str(rounds)], XL_MODES.get(k, {}))
        return float(out.split()[0]), cpu / rounds * 1e6
    p = cells(pingpong_s)

    def python_ms(k):
        if k not in XL_MODES:
            return "-"   # in-process: umiak's only
        return in_process("kvm", ["/usr/bin/python3", "-c", "pass"], 5, b"", exitless=XL_MODES[k], cache=True)[0]
    py = cells(python_ms) if os.path.exists("/usr/bin/python3") else {}
    RESULTS["xl_py_ms"] = py.get("kvm exitless auto", "not measured")
    first = lambda v, k: v[k][0] if isinstance(v.get(k), tuple) else v.get(k)  # noqa: E731
    RESULTS["xl_getppid_us"] = first(g, "kvm exitless")
    for key, v in (("xl_read_vs_runsc", r), ("xl_pingpong_vs_runsc", p)):
        best, peer = max((x for x in (first(v, m) for m in XL_MODES) if num(x)), default=None), first(v, "runsc")
        RESULTS[key] = best / peer if num(best) and num(peer) else f"runsc: {peer}"
    part = lambda v, i, unit: fmt(v[i], unit) if isinstance(v, tuple) else fmt(v, unit)  # noqa: E731
    headers = ["", *XL_KINDS]
    print_table("exitless: system calls without VM exits (UMIAK_EXITLESS)", [
        ["getppid per call (best of 3)", *[part(g[k], 0, "us") for k in XL_KINDS]],
        ["  CPU per call (all threads: vCPU, poller, host)", *[part(g[k], 1, "us") for k in XL_KINDS]],
        [f"read() of {READ_MIB} MiB in 64 KiB chunks (MB/s, higher is better)", *[part(r[k], 0, "") for k in XL_KINDS]],
        ["  CPU per read, start-up included", *[part(r[k], 1, "us") for k in XL_KINDS]],
        ["futex ping-pong, round trips per second (higher is better)", *[part(p[k], 0, "") for k in XL_KINDS]],
        ["  CPU per round trip, start-up included", *[part(p[k], 1, "us") for k in XL_KINDS]],
        ["python3 -c pass in-process, prelinked snapshot cache (ms)", *[fmt(py.get(k, "-"), "ms") for k in XL_KINDS]],
    ], ["kvm = plain VM exits (UMIAK_EXITLESS=n); exitless = the stub and the host poller forced on, with",
        "rewritten syscall sites (`mov $nr,%eax; syscall`, glibc's syscall() and read()); auto = the same where it pays (a core to spare, costly",
        "exits; UMIAK_EXITLESS=auto, the default); --no-rewrite = the stub entered by `syscall` (UMIAK_REWRITE=n).",
        "CPU = user + system time of the command and its children: the poller's spinning counts."], headers=headers)


def print_targets() -> None:
    def verdict(value, ok) -> str:
        return "met" if ok(value) else "MISSED"

    def show_threads(v) -> str:
        n = RESULTS.get("threads_native")
        if not num(n):
            return f"{v:.2f}x"
        return f"{v:.2f}x (native now {n:.2f}x: umiak keeps {v / n:.0%} of native's scaling)"

    targets = [
        ("CPU loop (xorshift) under umiak kvm", "cpu_ratio", ">= 0.95x native speed",
         lambda v: f"{v:.2f}x native speed", lambda v: v >= 0.95),
        ("static hello, in-process (kvm)", "inproc_hello_ms", "<= 3 ms",
         lambda v: f"{v:.3g} ms", lambda v: v <= 3),
        ("static hello, in-process from the snapshot cache (kvm)", "inproc_hello_cached_ms", "<= 3 ms",
         lambda v: f"{v:.3g} ms", lambda v: v <= 3),
        ("Python's share of a syscall above the raw exit (kvm)", "share_us", "<= 3 us",
         lambda v: f"{v:.3g} us (timed between vCPU runs)", lambda v: v <= 3),
        ("2 threads vs 1 under umiak kvm", "threads_kvm", ">= 1.8x", show_threads, lambda v: v >= 1.8),
        (f"{FDS_N:,} fds installed and closed, in-process FdTable", "fds_s", "< 1 s",
         lambda v: f"{v * 1e3:.3g} ms", lambda v: v < 1),
        (f"fork of {FORK_MIB} MiB touched (kvm)", "fork256_kvm", "< 20 ms",
         lambda v: f"{v:.3g} ms", lambda v: v < 20),
        ("fork+exec+wait (kvm) vs runsc", "spawn_ratio", "within 3x of runsc",
         lambda v: f"{v:.2f}x runsc's rate", lambda v: v >= 1 / 3),
        ("dynamic hello from a prelinked snapshot (kvm)", "snap_hello_ms", "<= 5 ms",
         lambda v: f"{v:.3g} ms", lambda v: v <= 5),
        ("python3 -c pass from an entry snapshot (kvm)", "snap_py_entry_ms", "<= 40 ms",
         lambda v: f"{v:.3g} ms", lambda v: v <= 40),
        ("python3 -c pass from a ready snapshot (kvm)", "snap_py_ready_ms", "<= 10 ms",
         lambda v: f"{v:.3g} ms", lambda v: v <= 10),
        ("python3 -c pass in-process, exitless and the prelinked cache (kvm)", "xl_py_ms", "<= 40 ms",
         lambda v: f"{v:.3g} ms", lambda v: v <= 40),
        ("restores of one snapshot in one process (kvm)", "restores_per_s", ">= 100 per second",
         lambda v: f"{v:.3g} per second", lambda v: v >= 100),
        ("umiak run of a static hello over python3 -c pass (kvm)", "whole_hello_over_python_ms", "<= 40 ms",
         lambda v: f"{v:.3g} ms", lambda v: v <= 40),
        ("getppid, exitless with rewritten sites (kvm)", "xl_getppid_us", "<= 5 us",
         lambda v: f"{v:.3g} us", lambda v: v <= 5),
        ("read() of 256 MiB (kvm, the best mode) vs runsc", "xl_read_vs_runsc", ">= 1x runsc",
         lambda v: f"{v:.2f}x runsc", lambda v: v >= 1),
        ("futex ping-pong (kvm, the best mode) vs runsc", "xl_pingpong_vs_runsc", ">= 1x runsc",
         lambda v: f"{v:.2f}x runsc", lambda v: v >= 1),
    ]
    if num(RESULTS.get("spawn_kvm")) and num(RESULTS.get("spawn_runsc")):
        RESULTS["spawn_ratio"] = RESULTS["spawn_kvm"] / RESULTS["spawn_runsc"]
    elif "spawn_kvm" in RESULTS:
        RESULTS["spawn_ratio"] = f"runsc: {RESULTS.get('spawn_runsc')}"
    rows = []
    for name, key, goal, show, ok in targets:
        v = RESULTS.get(key, "not measured (section not run)")
        if num(v):
            rows.append([name, goal, show(v), verdict(v, ok)])
        else:
            rows.append([name, goal, str(v), "-"])
    head = ["target", "goal", "measured", "verdict"]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |"  # noqa: E731
    print("\n## Targets\n")
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


SECTIONS = {"syscalls": section_syscalls, "dynamic": section_dynamic, "threads": section_threads, "fds": section_fds,
            "processes": section_processes, "snapshots": section_snapshots, "start": section_start,
            "exitless": section_exitless}
# The first sections were named after the issues that asked for them.
OLD_NAMES = {"2": "syscalls", "3": "dynamic", "4": "threads"}


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    wanted = []
    for a in argv:
        name = a if a in SECTIONS else OLD_NAMES.get(a.removeprefix("issue"), a)
        if name not in SECTIONS:
            print(f"usage: {sys.argv[0]} [{' '.join(SECTIONS)}]...", file=sys.stderr)
            return 2
        wanted.append(name)
    wanted = [s for s in SECTIONS if s in wanted] or list(SECTIONS)
    started = time.perf_counter()
    note(f"sections: {', '.join(wanted)}; measuring the raw exit cost...")
    ctx = Ctx()
    from umiak.platform.kvm.device import flavour
    load = os.getloadavg()
    print(f"# umiak benchmarks ({', '.join(wanted)})\n")
    print(f"host: {os.cpu_count()} cpus, kvm flavour {flavour() if ctx.usable.get('kvm') else 'n/a'}, "
          f"python {sys.version.split()[0]}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start")
    print(f"peers: qemu-user {QEMU or 'not installed'}, runsc {RUNSC or 'not installed'}, go {GO or 'not installed'}")
    print(f"raw cost of one VM exit (measured at start): kvm {fmt(ctx.raw['kvm'], 'us')} (bare ctypes KVM_RUN {fmt(ctx.raw_ctypes, 'us')}), "
          f"emu {fmt(ctx.raw['emu'], 'us')}")
    for name in wanted:
        note(f"{name}...")
        try:
            SECTIONS[name](ctx)
        except Exception as e:  # noqa: BLE001 - e.g. no gcc; the other sections still run
            print(f"\n## {name}: failed: {type(e).__name__}: {e}")
    print_targets()
    load = os.getloadavg()
    print(f"\nwhole run {time.perf_counter() - started:.0f} s; load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
