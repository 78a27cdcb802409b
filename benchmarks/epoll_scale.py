"""epoll with 1k, 2k, 4k and 8k descriptors (issue 19): per-operation times natively and in umiak.

    python3 benchmarks/epoll_scale.py [--platform kvm] [--sizes 1000,2000,4000,8000]

The guest (guest/epoll_scale.c) registers N eventfds with one epoll instance and times
EPOLL_CTL_ADD, EPOLL_CTL_MOD and EPOLL_CTL_DEL per descriptor, and a round of
write + epoll_wait + read that finds the one ready eventfd among N. O(1) operations
keep their time as N doubles; an O(N) one doubles with it. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
ENV = dict(os.environ, PYTHONPATH=str(SRC) + (os.pathsep + os.environ["PYTHONPATH"]
                                              if os.environ.get("PYTHONPATH") else ""))


def run(argv: list[str]) -> list[float]:
    out = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=900, check=True).stdout
    return [float(x) for x in out.split()[1:]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platform", default="kvm")
    ap.add_argument("--sizes", default="1000,2000,4000,8000")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "epoll_scale"
        subprocess.run(["gcc", "-O2", "-static", "-o", str(exe), str(HERE / "guest" / "epoll_scale.c")], check=True)
        print("| fds | ctl ADD µs (native / umiak) | ctl MOD µs | ctl DEL µs | write+epoll_wait+read µs |")
        print("|---:|---:|---:|---:|---:|")
        for n in (int(s) for s in args.sizes.split(",")):
            nat = run([str(exe), str(n)])
            umk = run([sys.executable, "-m", "umiak", "run", f"--platform={args.platform}", str(exe), str(n)])
            cols = [f"{nat[i]:.1f} / {umk[i]:.0f}" for i in (0, 1, 3, 2)]
            print(f"| {n} | " + " | ".join(cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
