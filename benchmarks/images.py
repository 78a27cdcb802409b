"""Images (issue 13): build time, image size and closure size per image; start of an image run.

    python3 benchmarks/images.py [--runs N] [--no-deb]

1. `umiak build` of a static hello, /bin/ls, sqlite3, python3 with its standard library
   (--add /usr/lib/python3.11), redis-server from --deb (debs cached after the first
   build): wall time (best of N), image size on disk (apparent and allocated) and the
   bytes of the files in it (the closure).
2. `umiak run ls.img` versus `umiak run /bin/ls` (whole process, median and best of N).
3. os.walk of /usr/lib/python3.11 in the guest's python3: from the python3 image versus
   from the host's file system (the same tree).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = Path(os.environ.get("UMIAK_SRC") or HERE.parent / "src").resolve()
ENV = dict(os.environ, PYTHONPATH=str(SRC))
ENV.pop("PYTHONDONTWRITEBYTECODE", None)
UMIAK = [sys.executable, "-m", "umiak"]


def timed(argv, runs: int, **kw) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        proc = subprocess.run(argv, env=ENV, capture_output=True, **kw)
        out.append(time.perf_counter() - t)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{argv}: status {proc.returncode}\n{proc.stderr.decode()[-2000:]}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-deb", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="umiak-bench-"))
    hello = tmp / "hello"
    subprocess.run(["gcc", "-static", "-O1", "-o", hello, HERE.parent / "tests" / "guest" / "hello.c"], check=True)
    builds = [("hello", [str(hello)]), ("ls", ["/bin/ls"]), ("sqlite3", ["/usr/bin/sqlite3"]),
              ("python3", ["/usr/bin/python3", "--add", "/usr/lib/python3.11:/usr/lib/python3.11"])]
    if not a.no_deb:
        builds.append(("redis-deb", ["--deb", "redis-server"]))
    print(f"{'image':16} {'build s':>8} {'image MB':>9} {'alloc MB':>9} {'files MB':>9} {'files':>6} {'libs':>5}")
    for name, args in builds:
        img = tmp / (name + ".img")
        t = timed([*UMIAK, "build", "-q", "-o", str(img), *args], a.runs)
        meta = json.loads(subprocess.run([*UMIAK, "inspect", "--json", str(img)], env=ENV,
                                         capture_output=True, check=True).stdout)
        st = img.stat()
        print(f"{name:16} {min(t):8.2f} {st.st_size / 1e6:9.1f} {st.st_blocks * 512 / 1e6:9.1f} "
              f"{meta['content_bytes'] / 1e6:9.1f} {meta['files']:6} {len(meta['libraries']):5}")
    print()
    ls_img = tmp / "ls.img"
    for label, argv in (("umiak run /bin/ls /", [*UMIAK, "run", "/bin/ls", "/"]),
                        ("umiak run ls.img /", [*UMIAK, "run", str(ls_img), "/"])):
        timed(argv, 1)
        t = timed(argv, max(a.runs, 5))
        print(f"{label:24} median {statistics.median(t) * 1000:7.1f} ms  best {min(t) * 1000:7.1f} ms")
    py_img = tmp / "python3.img"
    if py_img.exists():
        # The image has no find: python3 walks the tree with os.walk in both places
        # (the image's / is mostly the stdlib; on the host, the stdlib itself).
        code = "import os\nprint(sum(len(d) + len(f) for _, d, f in os.walk('/usr/lib/python3.11')))"
        n_img = subprocess.run([*UMIAK, "run", str(py_img), "-c", code], env=ENV, capture_output=True).stdout
        n_host = subprocess.run([*UMIAK, "run", "/usr/bin/python3", "-c", code], env=ENV, capture_output=True).stdout
        t_img = timed([*UMIAK, "run", str(py_img), "-c", code], a.runs)
        t_host = timed([*UMIAK, "run", "/usr/bin/python3", "-c", code], a.runs)
        print(f"os.walk of /usr/lib/python3.11 ({n_img.decode().strip()} entries in the image, "
              f"{n_host.decode().strip()} on the host), whole run: image best {min(t_img):.2f} s, "
              f"host best {min(t_host):.2f} s")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
