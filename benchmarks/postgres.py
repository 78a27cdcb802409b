"""PostgreSQL 15 natively and in umiak: initdb, `pgbench -i`, then `pgbench -T` TPS.

    python benchmarks/postgres.py [--quick] [--platform=kvm] [--seconds N] [--clients N]

Each kind gets its own fresh cluster (initdb as uid 65534 in a temporary directory),
a server whose unix socket is in that directory (-k, no TCP), and pgbench from the
host through that socket: umiak runs initdb and postgres with `--user=65534:65534`
and the directory as a volume. Rows: initdb seconds, `pgbench -i` seconds, TPS and
failed transactions of a -T run (the issue asks for 30 s; --quick is 5 s) with one
and with --clients connections, and TPS as a share of native. (gVisor is left out:
`runsc do` keeps writes in its overlay and its --network=host server did not answer
host clients here.)
Needs root and the Debian packages postgresql-15 and postgresql-client-15.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
ENV = dict(os.environ, PYTHONPATH=str(SRC) + (os.pathsep + os.environ["PYTHONPATH"]
                                              if os.environ.get("PYTHONPATH") else ""), LANG="C", TZ="UTC")
PGBIN = "/usr/lib/postgresql/15/bin"
NOBODY = 65534


class Kind:
    """How one kind runs a PostgreSQL program on data directory `data` (host path `host`)."""

    def __init__(self, name: str, platform: str, host: Path):
        self.name, self.host = name, host
        if name == "native":
            self.data = str(host)
            self.pre = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        elif name == "umiak":
            self.data = "/data"
            self.pre = [sys.executable, "-m", "umiak", "run", f"--platform={platform}", f"--user={NOBODY}:{NOBODY}",
                        "-v", f"{host}:/data", "-e", "LANG=C", "-e", "TZ=UTC"]
        self.conn = ["-h", str(host), "-U", "nobody"]

    def server_argv(self) -> list[str]:
        return [*self.pre, f"{PGBIN}/postgres", "-D", f"{self.data}/pg", "-k", self.data, "-c", "listen_addresses="]


def timed(argv: list[str], timeout: float = 600) -> tuple[float, subprocess.CompletedProcess]:
    t = time.monotonic()
    r = subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return time.monotonic() - t, r


def bench(name: str, platform: str, seconds: int, clients: int) -> dict | None:
    base = Path(tempfile.mkdtemp(prefix=f"umiak-pgbench-{name}-"))
    os.chmod(base, 0o755)
    host = base / "d"
    host.mkdir()
    os.chown(host, NOBODY, NOBODY)
    k = Kind(name, platform, host)
    row: dict = {"kind": name if name != "umiak" else f"umiak {platform}"}
    server = None
    try:
        row["initdb"], r = timed([*k.pre, f"{PGBIN}/initdb", "-D", f"{k.data}/pg"])
        if r.returncode != 0:
            print(f"{name}: initdb failed: {r.stderr.strip()[-300:]}", file=sys.stderr)
            return None
        log = open(host / "server.log", "wb")
        server = subprocess.Popen(k.server_argv(), env=ENV, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        end = time.monotonic() + 120
        while subprocess.run([f"{PGBIN}/pg_isready", "-q", *k.conn]).returncode != 0:
            if server.poll() is not None or time.monotonic() > end:
                print(f"{name}: the server did not start:\n{(host / 'server.log').read_text()[-600:]}", file=sys.stderr)
                return None
            time.sleep(0.2)
        pgb = [f"{PGBIN}/pgbench", *k.conn, "postgres"]
        row["init"], r = timed([pgb[0], "-i", "-q", *pgb[1:]])
        if r.returncode != 0:
            print(f"{name}: pgbench -i failed: {r.stderr.strip()[-300:]}", file=sys.stderr)
            return None
        for c in sorted({1, clients}):
            _, r = timed([pgb[0], "-T", str(seconds), "-c", str(c), "-j", str(min(c, 2)), *pgb[1:]],
                         timeout=seconds * 4 + 60)
            tps = re.search(r"tps = ([\d.]+)", r.stdout)
            failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
            row[f"tps{c}"] = float(tps.group(1)) if tps else 0.0
            row[f"failed{c}"] = int(failed.group(1)) if failed else -1
        return row
    finally:
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5-second pgbench runs")
    ap.add_argument("--platform", default="kvm")
    ap.add_argument("--seconds", type=int, default=None, help="pgbench -T (default 30, 5 with --quick)")
    ap.add_argument("--clients", type=int, default=4, help="connections of the second run")
    a = ap.parse_args()
    if os.geteuid() != 0 or not os.path.exists(f"{PGBIN}/postgres") or not shutil.which("pgbench"):
        print("needs root and PostgreSQL 15 (Debian: postgresql-15 postgresql-client-15)", file=sys.stderr)
        return 1
    seconds = a.seconds or (5 if a.quick else 30)
    kinds = ["native", "umiak"]
    rows = [r for r in (bench(k, a.platform, seconds, a.clients) for k in kinds) if r]
    if not rows:
        return 1
    native = next((r for r in rows if r["kind"] == "native"), None)
    cs = sorted({1, a.clients})
    head = f"{'':12} {'initdb s':>9} {'pgbench -i s':>13}" + "".join(
        f" {f'TPS c={c}':>10} {'failed':>7} {'vs native':>9}" for c in cs)
    print(f"PostgreSQL 15, pgbench -T {seconds}, scale 1, unix socket")
    print(head)
    for r in rows:
        line = f"{r['kind']:12} {r['initdb']:9.1f} {r['init']:13.1f}"
        for c in cs:
            share = f"{r[f'tps{c}'] / native[f'tps{c}']:.1%}" if native and native[f"tps{c}"] else "-"
            line += f" {r[f'tps{c}']:10.1f} {r[f'failed{c}']:7d} {share:>9}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
