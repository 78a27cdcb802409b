"""Sequential reads from an ext4 image versus the host path (issue 13, the ext4 driver).

    python3 benchmarks/ext4.py [--size-mb 256] [--runs 3] [--platform kvm]

A file of random bytes (256 MiB by default) is read with read(2) in 64 KiB chunks by
benchmarks/guest/read_file.c (timed inside the guest, so start-up is excluded):
natively, under umiak through the host root (HostFS), and under umiak with an ext4 image
holding the same file as the root (Ext4FS under the overlay). Best of N runs, MB/s, and
the image/host ratio (the issue asks for at most 1.5x slower). The page cache is warm
for all three (the file and the image are read once first), so this measures umiak's
read path, not the disk.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = Path(os.environ.get("UMIAK_SRC") or HERE.parent / "src").resolve()
sys.path.insert(0, str(SRC))


def build(work: Path) -> Path:
    out = work / "read_file"
    subprocess.run(["gcc", "-O1", "-static", "-o", str(out), str(HERE / "guest" / "read_file.c")], check=True)
    return out


def mbps(stdout: bytes, size: int) -> float:
    rate, total = stdout.split()
    assert int(total) == size, (total, size)
    return float(rate)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--platform", default="auto")
    args = ap.parse_args()
    from umiak.machine import Machine
    from umiak.options import RunOptions
    size = args.size_mb << 20
    with tempfile.TemporaryDirectory(prefix="umiak-bench-ext4-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        prog = build(work)
        stage = work / "stage"
        (stage / "bin").mkdir(parents=True)
        big = stage / "big"
        with open(big, "wb") as f:
            for _ in range(args.size_mb):
                f.write(os.urandom(1 << 20))
        subprocess.run(["cp", str(prog), str(stage / "bin" / "read_file")], check=True)
        image = work / "bench.img"
        subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "4096", "-d", str(stage), str(image),
                        f"{args.size_mb + 64}M"], check=True, stdout=subprocess.DEVNULL)
        for p in (big, image):                       # a warm host page cache for both
            with open(p, "rb") as f:
                while f.read(8 << 20):
                    pass
        results: dict[str, list[float]] = {"native": [], "host path": [], "image": []}
        host = Machine(RunOptions(platform=args.platform, prewarm=False))
        img = Machine(RunOptions(platform=args.platform, prewarm=False, image_root=str(image)))
        for _ in range(args.runs):
            r = subprocess.run([str(prog), str(big)], capture_output=True, check=True)
            results["native"].append(mbps(r.stdout, size))
            r = host.run_captured([str(prog), str(big)])
            assert r.status == 0, r
            results["host path"].append(mbps(r.stdout, size))
            r = img.run_captured(["/bin/read_file", "/big"])
            assert r.status == 0, r
            results["image"].append(mbps(r.stdout, size))
        host.close()
        img.close()
    print(f"sequential read of {args.size_mb} MiB in 64 KiB chunks, best of {args.runs} "
          f"(platform {args.platform}):")
    best = {k: max(v) for k, v in results.items()}
    for k, v in best.items():
        print(f"  {k:10s} {v:9.1f} MB/s")
    ratio = best["host path"] / best["image"]
    print(f"  image is {ratio:.2f}x the host path's time (limit 1.5x)")
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
