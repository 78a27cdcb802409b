"""Kernel size and start time per kernel config (issue 11: a configurable kernel).

    python3 benchmarks/kconfig.py [--runs N]

1. `umiak config size` for every shipped profile beside the kernel with no config:
   syscalls present, components y/m/n, modules, umiak source lines and bytecode, host
   RSS at the first guest instruction, and the start time to it (from the interpreter's
   start; best of N).
2. `umiak run` of a dynamic hello (ld.so is read through the VFS before its first
   instruction, so the file systems a config has are built), whole process (fork to exit, median and best of N,
   peak RSS) for no config, full and minimal.
3. In-process: `Machine(kernel_config=...).run()` in a fresh interpreter: the first
   run (imports included) and the median of the next ones.

Measured with Python's bytecode cache, as users meet it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = Path(os.environ.get("UMIAK_SRC") or HERE.parent / "src").resolve()
sys.path.insert(0, str(SRC))
ENV = dict(os.environ, PYTHONPATH=str(SRC))
ENV.pop("PYTHONDONTWRITEBYTECODE", None)
ENV.pop("KCONFIG_CONFIG", None)
CONFIGS = [("(none)", []), ("full", ["--profile", "full"]), ("minimal", ["--profile", "minimal"])]

IN_PROCESS = r"""
import sys, time
from umiak import Machine
from umiak.config import load
cfg = load(profile=sys.argv[1]) if sys.argv[1] != "-" else None
m = Machine(kernel_config=cfg, prewarm=False)
times = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    r = m.run_captured([sys.argv[2]])
    times.append(time.perf_counter() - t)
    assert r.status == 0, r
print(*times)
"""


def hello() -> str:
    out = HERE / ".build" / "kconfig-hello-dynamic"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["gcc", "-O1", "-o", str(out), str(HERE / "guest" / "hello.c")], check=True)
    return str(out)


def whole_process(prog: str, runs: int) -> dict:
    """label -> (wall ms list, peak RSS MB list) of `umiak run CFG prog`, fork to exit; the
    configs take turns in every round, so a load that drifts meets each alike."""
    cmds = {label: [sys.executable, "-m", "umiak", "run", *cfg_args, prog] for label, cfg_args in CONFIGS}
    for cmd in cmds.values():
        subprocess.run(cmd, env=ENV, stdout=subprocess.DEVNULL, check=True)   # warm the caches
    out: dict = {label: ([], []) for label in cmds}
    for _ in range(runs):
        for label, cmd in cmds.items():
            t = time.perf_counter()
            p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL)
            _, status, ru = os.wait4(p.pid, 0)
            out[label][0].append((time.perf_counter() - t) * 1000)
            out[label][1].append(ru.ru_maxrss / 1024)
            assert status == 0, status
    return out


def in_process(profile: str, prog: str, runs: int) -> tuple[float, float]:
    """(first run s, median of the later runs s) of Machine.run in one fresh interpreter."""
    r = subprocess.run([sys.executable, "-c", IN_PROCESS, profile, prog, str(runs + 1)], env=ENV,
                       capture_output=True, text=True, check=True)
    vals = [float(x) for x in r.stdout.split()]
    return vals[0], statistics.median(vals[1:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    prog = hello()
    print("## umiak config size (dynamic hello)\n", flush=True)
    subprocess.run([sys.executable, "-m", "umiak", "config", "size", "--program", prog, "--runs", str(args.runs)],
                   env=ENV, check=True)
    print("\n## umiak run, whole process (dynamic hello; configs alternate)\n")
    print(f"{'config':8}  {'median ms':>9}  {'best ms':>7}  {'peak RSS MB':>11}")
    rows = whole_process(prog, args.runs)
    for label, (ms, rss) in rows.items():
        print(f"{label:8}  {statistics.median(ms):9.1f}  {min(ms):7.1f}  {min(rss):11.1f}", flush=True)
    (fm, fr), (mm, mr) = rows["full"], rows["minimal"]
    print(f"minimal vs full: {100 * (1 - statistics.median(mm) / statistics.median(fm)):.1f}% less time (median), "
          f"{100 * (1 - min(mm) / min(fm)):.1f}% (best), {min(fr) - min(mr):.1f} MB less peak RSS")
    print("\n## Machine.run in-process (dynamic hello)\n")
    print(f"{'config':8}  {'first run ms':>12}  {'later runs ms':>13}")
    for label, profile in (("(none)", "-"), ("full", "full"), ("minimal", "minimal")):
        first, later = in_process(profile, prog, args.runs)
        print(f"{label:8}  {first * 1000:12.1f}  {later * 1000:13.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
