"""umiak benchmarks: one run on this machine, one table.

    python benchmarks/run.py            (about 1-3 minutes)

Rows: the raw VM-exit round trip (a guest that loops on `syscall`, driven through
the platform API, and for KVM also through a bare ctypes KVM_RUN loop), getppid
per call, static hello in-process and as a whole process, a CPU-bound loop and a
memory-heavy sort. Columns: native, umiak on each platform, qemu-user, gVisor's
runsc. Times inside guests are measured by the guest itself (clock_gettime), so
start-up is excluded from the per-call and per-iteration rows.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(SRC))

ENV = dict(os.environ, PYTHONPATH=str(SRC) + (os.pathsep + os.environ["PYTHONPATH"]
                                              if os.environ.get("PYTHONPATH") else ""))
UMIAK = [sys.executable, "-m", "umiak", "run"]
RUNSC = shutil.which("runsc")
QEMU = shutil.which("qemu-x86_64")

# Iteration counts, chosen so that each measurement takes about a second.
GETPPID_N = {"native": 1_000_000, "kvm": 20_000, "emu": 200_000, "qemu": 1_000_000, "runsc": 20_000}
XORSHIFT_N = 200_000_000
SORT_N = 10_000_000
RAW_EXITS = 20_000


def build(tmp: Path, name: str) -> Path:
    out = tmp / name
    subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(HERE / "guest" / f"{name}.c")],
                   check=True)
    return out


def runner(kind: str) -> list[str] | None:
    """Command prefix that runs a static program under `kind`, or None if unavailable."""
    if kind == "native":
        return []
    if kind in ("kvm", "emu"):
        return [*UMIAK, f"--platform={kind}"]
    if kind == "qemu":
        return [QEMU] if QEMU else None
    if kind == "runsc":
        return [RUNSC, "--rootless", "--network=none", "do"] if RUNSC else None
    raise ValueError(kind)


def guest_output(kind: str, argv: list[str]) -> str | None:
    prefix = runner(kind)
    if prefix is None:
        return None
    p = subprocess.run([*prefix, *argv], capture_output=True, text=True, env=ENV, timeout=600)
    if p.returncode != 0:
        msg = (p.stderr.strip().splitlines() or ["?"])[-1]
        raise RuntimeError(f"status {p.returncode}: {msg[:60]}")
    return p.stdout.split()[0]


def whole_process_ms(kind: str, prog: Path, runs: int = 7) -> float | None:
    prefix = runner(kind)
    if prefix is None:
        return None
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run([*prefix, str(prog)], capture_output=True, env=ENV, timeout=120)
        times.append(time.perf_counter() - t0)
        if p.returncode != 0:
            raise RuntimeError(f"status {p.returncode}")
    return statistics.median(times) * 1e3


def in_process_ms(platform: str, prog: Path, runs: int = 20) -> float:
    from umiak import Machine
    m = Machine(platform=platform, mem_size=256 << 20)
    null = os.open(os.devnull, os.O_RDWR)
    quiet = open(os.devnull, "w")  # umiak's own warnings
    times = []
    try:
        for i in range(runs + 2):
            t0 = time.perf_counter()
            status = m.run([str(prog)], stdio=(null, null, null), err_out=quiet)
            dt = time.perf_counter() - t0
            if status != 0:
                raise RuntimeError(f"status {status}")
            if i >= 2:  # the first runs import modules
                times.append(dt)
    finally:
        os.close(null)
        quiet.close()
    return statistics.median(times) * 1e3


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
        t0 = time.perf_counter()
        for _ in range(RAW_EXITS):
            vcpu.run()
            vcpu.set_syscall_result(0)
        return (time.perf_counter() - t0) / RAW_EXITS * 1e6
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
        t0 = time.perf_counter()
        for _ in range(RAW_EXITS):
            ioctl(fd, run, None)
            if pvm:  # under PVM the host returns for the stub (see platform/kvm/machine.py)
                regs[RIP] = regs[RCX]
                regs[RFLAGS] = regs[R11]
            q[dirty] |= 1
        return (time.perf_counter() - t0) / RAW_EXITS * 1e6
    finally:
        plat.close()


def attempt(fn, *args):
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - a failing cell is reported, the table goes on
        return f"failed ({str(e).strip()[:50]})"


def fmt(value, unit: str, native=None) -> str:
    if value is None:
        return "not installed"
    if isinstance(value, str):
        return value
    text = f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    if isinstance(native, float) and native > 0:
        text += f" ({value / native:.2f}x)"
    return text


def main() -> int:
    from umiak.platform import available_platforms
    usable = {name: problem is None for name, problem in available_platforms().items()}
    kinds = ["native", "kvm", "emu", "qemu", "runsc"]
    headers = ["", "native", "umiak kvm", "umiak emu", "qemu-user", "runsc"]

    def per_kind(fn, *args):
        out = {}
        for k in kinds:
            if k in usable and not usable[k]:
                out[k] = "unavailable"
            elif runner(k) is None:
                out[k] = None
            else:
                out[k] = attempt(fn, k, *args)
            print(f"  {fn.__name__} {k}: {out[k]}", file=sys.stderr)
        return out

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        progs = {n: build(tmp, n) for n in ("getppid_loop", "xorshift", "sort_ints", "hello")}
        print("measuring (about two minutes)...", file=sys.stderr)

        raw = {k: (attempt(raw_exit_us, k) if usable.get(k) else "unavailable") for k in ("kvm", "emu")}
        rows.append(["VM-exit round trip, platform API (us)", "-", fmt(raw["kvm"], "us"),
                     fmt(raw["emu"], "us"), "-", "-"])
        ctypes_raw = attempt(raw_kvm_run_us) if usable.get("kvm") else "unavailable"
        rows.append(["VM-exit round trip, bare ctypes KVM_RUN (us)", "-", fmt(ctypes_raw, "us"), "-", "-", "-"])

        def getppid_ns(kind):
            return float(guest_output(kind, [str(progs["getppid_loop"]), str(GETPPID_N[kind])]))
        g = per_kind(getppid_ns)
        cells = [fmt(g[k] / 1000 if isinstance(g[k], float) else g[k], "us",
                     g["native"] / 1000 if isinstance(g["native"], float) else None) for k in kinds]
        rows.append(["getppid per call (us)", *cells])
        share = {k: (g[k] / 1000 - raw[k] if isinstance(g[k], float) and isinstance(raw[k], float) else None)
                 for k in ("kvm", "emu")}
        rows.append(["  Python kernel's share above raw exit (us)", "-",
                     fmt(share["kvm"], "us") if share["kvm"] is not None else "-",
                     fmt(share["emu"], "us") if share["emu"] is not None else "-", "-", "-"])

        inproc = {k: (attempt(in_process_ms, k, progs["hello"]) if usable.get(k) else "unavailable")
                  for k in ("kvm", "emu")}
        rows.append(["static hello, in-process Machine.run (ms)", "-", fmt(inproc["kvm"], "ms"),
                     fmt(inproc["emu"], "ms"), "-", "-"])
        w = per_kind(whole_process_ms, progs["hello"])
        rows.append(["static hello, whole process (ms)",
                     *[fmt(w[k], "ms", w["native"]) for k in kinds]])

        def xorshift_ns(kind):
            return float(guest_output(kind, [str(progs["xorshift"]), str(XORSHIFT_N)]))
        x = per_kind(xorshift_ns)
        rows.append(["xorshift loop (ns/iter, x native)", *[fmt(x[k], "ns", x["native"]) for k in kinds]])

        def sort_s(kind):
            return float(guest_output(kind, [str(progs["sort_ints"]), str(SORT_N)]))
        s = per_kind(sort_s)
        rows.append([f"qsort {SORT_N // 1_000_000}M ints (s, x native)", *[fmt(s[k], "s", s["native"]) for k in kinds]])

    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    from umiak.platform.kvm.device import flavour
    print(f"\nhost: {os.cpu_count()} cpus, kvm flavour {flavour() if usable.get('kvm') else 'n/a'}, "
          f"python {sys.version.split()[0]}; (Nx) = ratio to native")
    return 0


if __name__ == "__main__":
    sys.exit(main())
