"""Network benchmarks: servers in umiak against the same servers natively (and in runsc).

    python benchmarks/net.py [--quick] [--platform=kvm]

Rows: redis-server with `redis-benchmark -t set,get -P 16` and `-P 1`, nginx with
`wrk -d 10s --latency` (or `ab` when wrk is missing). Columns: requests per second
natively, under umiak with every syscall a VM exit (UMIAK_EXITLESS=n, on kvm), under umiak
as it runs by default (the exitless path where it pays; its ratio to native), under gVisor's
`runsc --network=host`
when it runs here, p99 latency, and the VM exits per request under umiak: the
server runs with --syscall-summary, so every syscall exit is counted by the
kernel; the busiest calls show where the exits go. Everything listens on
127.0.0.1 only, with bounded request counts and durations.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
ENV = dict(os.environ, PYTHONPATH=str(SRC) + (os.pathsep + os.environ["PYTHONPATH"]
                                              if os.environ.get("PYTHONPATH") else ""))
RUNSC = shutil.which("runsc")

NGINX_CONF = """daemon off; master_process off; worker_processes 1; user root; pid {pid};
error_log stderr error;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; keepalive_requests 1000000;
  client_body_temp_path /tmp; proxy_temp_path /tmp; fastcgi_temp_path /tmp; uwsgi_temp_path /tmp; scgi_temp_path /tmp;
  server {{ listen 127.0.0.1:{port}; root {root}; }} }}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc, timeout: float = 30) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def prefix(kind: str, platform: str) -> list[str] | None:
    if kind == "native":
        return []
    if kind in ("umiak", "exits"):
        return [sys.executable, "-m", "umiak", "run", f"--platform={platform}", "--syscall-summary"]
    if kind == "runsc":
        return [RUNSC, "--rootless", "--network=host", "do"] if RUNSC else None
    raise ValueError(kind)


class Server:
    """A server under `kind`; stop() returns its stderr (the syscall summary for umiak)."""

    def __init__(self, kind: str, platform: str, argv: list[str], port: int):
        pre = prefix(kind, platform)
        self.proc = None
        if pre is None:
            return
        self.err = tempfile.TemporaryFile()
        env = dict(ENV, UMIAK_EXITLESS="n") if kind == "exits" else ENV
        self.proc = subprocess.Popen([*pre, *argv], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        if not wait_port(port, self.proc):
            self.stop()
            self.proc = None

    def stop(self) -> str:
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.seek(0)
        return self.err.read().decode(errors="replace")


def exits(summary: str) -> tuple[int, str]:
    """(total syscalls, the three busiest) from a --syscall-summary table."""
    total, rows = 0, []
    for line in summary.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1] == "total":
            total = int(parts[3])
        elif len(parts) >= 5 and re.match(r"^\d+\.\d+$", parts[0]) and parts[3].isdigit():
            rows.append((int(parts[3]), parts[-1]))
    rows.sort(reverse=True)
    return total, ", ".join(f"{n} {c}" for c, n in rows[:3])


def redis_row(kind, platform, pipeline: int, n: int):
    port = free_port()
    srv = Server(kind, platform, ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no"], port)
    if srv.proc is None:
        return None
    try:
        out = subprocess.run(["redis-benchmark", "-p", str(port), "-n", str(n), "-P", str(pipeline),
                              "-t", "set,get", "--csv"], capture_output=True, text=True, timeout=900).stdout
    finally:
        summary = srv.stop()
    res = {}
    for line in out.splitlines():
        f = [x.strip('"') for x in line.split(",")]
        if f and f[0] in ("SET", "GET"):
            res[f[0]] = (float(f[1]), float(f[6]))     # rps, p99 ms
    total, busiest = exits(summary)
    return res, total, busiest


def nginx_row(kind, platform, root: Path, seconds: int):
    port = free_port()
    conf = root.parent / f"nginx-{kind}.conf"
    # natively nginx unlinks its pid file at exit: never name /dev/null there (in the VM the
    # root is read-only and nginx cannot write a pid file anywhere else)
    pid = "/dev/null" if kind == "umiak" else str(root.parent / f"nginx-{kind}.pid")
    conf.write_text(NGINX_CONF.format(port=port, root=root, pid=pid))
    srv = Server(kind, platform, ["/usr/sbin/nginx", "-e", "stderr", "-c", str(conf)], port)
    if srv.proc is None:
        return None
    try:
        url = f"http://127.0.0.1:{port}/index.html"
        if shutil.which("wrk"):
            out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", url],
                                 capture_output=True, text=True, timeout=seconds + 60).stdout
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
            p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)] if m else float("nan")
            reqs = int(re.search(r"(\d+) requests in", out).group(1))
        else:
            out = subprocess.run(["ab", "-q", "-k", "-n", "20000", "-c", "16", url], capture_output=True,
                                 text=True, timeout=600).stdout
            rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
            p99 = float(re.search(r"99%\s+(\d+)", out).group(1))
            reqs = 20000
    finally:
        summary = srv.stop()
    total, busiest = exits(summary)
    return rps, p99, reqs, total, busiest


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--platform", default="kvm")
    ap.add_argument("--quick", action="store_true", help="fewer requests (about a minute in all)")
    args = ap.parse_args()
    n16, n1, secs = (20000, 5000, 3) if args.quick else (100000, 100000, 10)
    kinds = ["native"] + (["exits"] if args.platform == "kvm" else []) + ["umiak"] + (["runsc"] if RUNSC else [])
    print(f"{'benchmark':28} " + " ".join(f"{k + ' req/s':>14}" for k in kinds)
          + f" {'umiak/native':>12} {'p99 ms (nat/umiak)':>19} {'calls/req':>9}  busiest calls under umiak")
    if shutil.which("redis-benchmark") and os.path.exists("/usr/bin/redis-server"):
        for pipeline, n in ((16, n16), (1, n1)):
            rows = {k: redis_row(k, args.platform, pipeline, n) for k in kinds}
            for test in ("SET", "GET"):
                vals = {k: (r[0].get(test) if r else None) for k, r in rows.items()}
                u = rows.get("umiak")
                per_req = (u[1] / (2 * n)) if u and u[1] else float("nan")   # the server served SET and GET
                nat, um = vals.get("native"), vals.get("umiak")
                print(f"{f'redis -P {pipeline} {test}':28} "
                      + " ".join(f"{v[0]:>14.0f}" if v else f"{'n/a':>14}" for v in vals.values())
                      + f" {um[0] / nat[0] if nat and um else float('nan'):>12.3f}"
                      + f" {(f'{nat[1]:.2f}/{um[1]:.2f}' if nat and um else 'n/a'):>19}"
                      + f" {per_req:>9.2f}  {u[2] if u else ''}")
    else:
        print("redis: not installed (apt-get install redis-server redis-tools)")
    if os.path.exists("/usr/sbin/nginx"):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "www"
            root.mkdir()
            (root / "index.html").write_bytes(b"x" * 612)
            os.chmod(tmp, 0o755)
            rows = {k: nginx_row(k, args.platform, root, secs) for k in kinds}
            nat, um = rows.get("native"), rows.get("umiak")
            print(f"{'nginx wrk 612 B, 16 conns':28} "
                  + " ".join(f"{r[0]:>14.0f}" if r else f"{'n/a':>14}" for r in rows.values())
                  + f" {um[0] / nat[0] if nat and um else float('nan'):>12.3f}"
                  + f" {(f'{nat[1]:.2f}/{um[1]:.2f}' if nat and um else 'n/a'):>19}"
                  + f" {(um[3] / um[2]) if um and um[2] else float('nan'):>9.2f}  {um[4] if um else ''}")
    else:
        print("nginx: not installed (apt-get install nginx-light)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
