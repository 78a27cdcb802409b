"""App-specific kernels (issue 12): syscalls per program, full / static / traced / needed.

    python3 benchmarks/appkernel.py [--no-explore] [--platform kvm]

For each program and workload: the syscalls the full kernel implements, those static
analysis finds in the ELF closure (and how many sites it could not resolve), those a
traced run used, and after exploration those needed (stub and fake beside), the time
each step took, and whether the static set missed anything the run used. Prints a
Markdown table (the README's), with Loupe's published counts where it has the program.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = Path(os.environ.get("UMIAK_SRC") or HERE.parent / "src").resolve()
sys.path.insert(0, str(SRC))

# Loupe (loupedb a076cf9, benchmark workloads): used / required / static, where it has the program.
LOUPE = {"sqlite3": "29 / 11 / 83"}


def programs(tmp: Path) -> list[tuple[str, list[str]]]:
    c = tmp / "hello.c"
    c.write_text('#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n')
    subprocess.run(["gcc", "-static", "-O2", "-o", str(tmp / "hello-static"), str(c)], check=True)
    out = [("ls", ["/bin/ls", "-la", "/usr/share/common-licenses"]),
           ("sqlite3", ["/usr/bin/sqlite3", ":memory:", "create table t(a); insert into t values (1), (2);"
                                                        " select sum(a) from t;"]),
           ("python3 -c", ["/usr/bin/python3", "-c", "import json; print(json.dumps({'a': [1, 2]}))"]),
           ("static C hello", [str(tmp / "hello-static")])]
    bb = shutil.which("busybox")
    if bb:
        out.insert(3, ("busybox sha256sum", [bb, "sha256sum", "/etc/os-release"]))
    return out


def count(config: str) -> tuple[int, dict[str, int]]:
    from umiak.kernel.syscalls.table import NUMBERS
    text = Path(config).read_text()
    present = {m.lower() for m in re.findall(r"^CONFIG_SYSCALL_(\w+)=y$", text, re.M)} & set(NUMBERS)
    head = re.search(r"^# Syscalls: (.*)$", text, re.M)
    nums: dict[str, int] = {}
    if head:
        for key in ("static", "traced", "needed", "stub", "fake"):
            m = re.search(rf"{key} (\d+)", head.group(1))
            if m:
                nums[key] = int(m.group(1))
        m = re.search(r"\((\d+) unresolved sites\)", head.group(1))
        if m:
            nums["unresolved"] = int(m.group(1))
    return len(present), nums


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-explore", action="store_true")
    ap.add_argument("--platform", default="kvm")
    args = ap.parse_args()
    from umiak.kernel.syscalls.table import SYSCALLS
    full = sum(1 for e in SYSCALLS.values() if e[1])
    env = dict(os.environ, PYTHONPATH=str(SRC))
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, argv in programs(tmp):
            cfg = tmp / "x.config"
            t0 = time.monotonic()
            r = subprocess.run([sys.executable, "-m", "umiak", "config", "app", f"--platform={args.platform}",
                                "-o", str(cfg), "--", *argv], capture_output=True, env=env)
            t_both = time.monotonic() - t0
            if r.returncode:
                print(f"{name}: {r.stderr.decode().strip()}", file=sys.stderr)
                continue
            missed = "yes: " + r.stderr.decode().split("did not find: ")[1].split("\n")[0] \
                if b"did not find" in r.stderr else "never"
            _, nums = count(str(cfg))
            needed = stub = fake = "—"
            t_ex = 0.0
            if not args.no_explore:
                t0 = time.monotonic()
                r = subprocess.run([sys.executable, "-m", "umiak", "config", "app", "--explore", "--no-static",
                                    f"--platform={args.platform}", "-o", str(cfg), "--", *argv],
                                   capture_output=True, env=env)
                t_ex = time.monotonic() - t0
                if r.returncode == 0:
                    _, ex = count(str(cfg))
                    needed, stub, fake = ex.get("needed"), ex.get("stub"), ex.get("fake")
                else:
                    print(f"{name} explore: {r.stderr.decode().strip()}", file=sys.stderr)
            rows.append((name, full, nums.get("static"), nums.get("unresolved"), nums.get("traced"), needed, stub,
                         fake, missed, LOUPE.get(name, "—"), t_both, t_ex))
    print("| program (workload) | full kernel | static (unresolved sites) | traced | needed | stub | fake "
          "| static missed a traced call | Loupe used / required / static | time static+traced / explore |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (name, f, s, u, t, n, st, fk, miss, loupe, tb, te) in rows:
        print(f"| {name} | {f} | {s} ({u}) | {t} | {n} | {st} | {fk} | {miss} | {loupe} | {tb:.1f} s / {te:.0f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
