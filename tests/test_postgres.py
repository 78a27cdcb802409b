"""PostgreSQL 15 in the VM (issue 19): initdb on a volume under --user, the server in
the VM with its unix socket in the volume, psql and pgbench from the host; and the
kernel pieces it needed, each compared with Linux (files a --user process makes on a
volume are its own; a stream socket bound in a volume is reachable from the host).

The PostgreSQL tests run on kvm only: initdb alone executes billions of guest
instructions (~30 s on kvm), far beyond the CI budget on Unicorn. They need the
Debian packages postgresql-15 (initdb, postgres) and postgresql-client-15 (psql,
pgbench), and root (postgres refuses root; the guest runs as uid 65534).
"""

import os
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from harness import GUEST_ENV, Result, assert_same, build, run_native, run_umiak, umiak_command, umiak_env

PGBIN = "/usr/lib/postgresql/15/bin"
NOBODY = 65534


def _owned_dir(path) -> str:
    path.mkdir()
    os.chown(path, NOBODY, NOBODY)
    return str(path)


@pytest.fixture
def open_tmp():
    """A directory uid 65534 can reach (pytest's tmp_path lies under a 0700 directory)."""
    d = tempfile.mkdtemp(prefix="umiak-pg-")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (to become uid 65534 natively and to chown on the volume)")


# -- kernel pieces ------------------------------------------------------------------

def test_volume_files_belong_to_the_user(platform, variant, open_tmp):
    tmp_path = open_tmp
    need_root()
    exe = build("volume_owner", variant)
    native = run_native([exe, _owned_dir(tmp_path / "n")])
    umiak = run_umiak(platform, [exe, "/vol"], options=["-v", f"{_owned_dir(tmp_path / 'u')}:/vol"])
    assert b"open in 0700 dir: ok" in native.stdout
    assert_same(native, umiak)


def _serve(cmd: list[str], env, host_sock: str) -> tuple[Result, list[bytes]]:
    """Start the socket server, talk to it from this (host) process twice, collect all."""
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    replies = []
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        first = proc.stdout.readline() if ready else b""
        assert first == b"ready\n", (first, proc.poll())
        for n in (1, 2):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                c.settimeout(30)
                c.connect(host_sock)
                c.sendall(b"hello %d\n" % n)
                c.shutdown(socket.SHUT_WR)
                data = b""
                while chunk := c.recv(4096):
                    data += chunk
                replies.append(data)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return Result(proc.returncode, first + out, err, cmd), replies


def test_unix_socket_in_volume_takes_host_clients(platform, variant, tmp_path):
    exe = str(build("unix_volume_server", variant))
    (tmp_path / "n").mkdir()
    (tmp_path / "u").mkdir()
    native, nrep = _serve([exe, str(tmp_path / "n" / "s")], GUEST_ENV, str(tmp_path / "n" / "s"))
    umiak, urep = _serve(umiak_command(platform, [exe, "/vol/s"], ["-v", f"{tmp_path / 'u'}:/vol"]),
                         umiak_env(), str(tmp_path / "u" / "s"))
    assert nrep == [b"client 1 said 8 bytes: hello 1\n", b"client 2 said 8 bytes: hello 2\n"]
    assert urep == nrep
    assert_same(native, umiak)
    assert not (tmp_path / "u" / "s").exists()


# -- PostgreSQL ----------------------------------------------------------------------

def need_postgres():
    for tool, pkg in ((f"{PGBIN}/initdb", "postgresql-15"), (f"{PGBIN}/postgres", "postgresql-15"),
                      (f"{PGBIN}/psql", "postgresql-client-15"), (f"{PGBIN}/pgbench", "postgresql-client-15")):
        if not os.path.exists(tool):
            pytest.skip(f"{tool} is not installed (Debian package {pkg})")
    need_root()


def as_nobody(argv: list[str]) -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def listing(root: str) -> list[str]:
    """The cluster's layout: relative paths and kinds (sizes and contents vary by run)."""
    out = []
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(d, name)
            out.append(os.path.relpath(p, root) + ("/" if os.path.isdir(p) else ""))
    return sorted(out)


@pytest.fixture(scope="module")
def cluster():
    """initdb natively and in the VM (kvm), each as uid 65534 on its own directory."""
    need_postgres()
    if not shutil.which("setpriv"):
        pytest.skip("setpriv is not installed (Debian package util-linux)")
    from conftest import platform_problems
    problem = platform_problems().get("kvm")
    if problem:
        pytest.skip(f"platform kvm not usable here: {problem}")
    base = pathlib.Path(tempfile.mkdtemp(prefix="umiak-pg-"))
    os.chmod(base, 0o755)
    try:
        yield _initdb_both(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _initdb_both(base: pathlib.Path):
    ndir, udir = _owned_dir(base / "native"), _owned_dir(base / "vm")
    env = {**GUEST_ENV, "TZ": "UTC"}
    native = run_native(as_nobody([f"{PGBIN}/initdb", "-D", f"{ndir}/pg"]), env=env)
    native.stdout = native.stdout.replace(f"{ndir}/pg".encode(), b"DATA")
    umiak = run_umiak("kvm", [f"{PGBIN}/initdb", "-D", "/data/pg"], env=env, timeout=180,
                      options=[f"--user={NOBODY}:{NOBODY}", "-v", f"{udir}:/data"])
    umiak.stdout = umiak.stdout.replace(b"/data/pg", b"DATA")
    return native, umiak, ndir, udir


def test_initdb_on_a_volume(cluster):
    native, umiak, ndir, udir = cluster
    assert native.status == 0, native.describe()
    assert_same(native, umiak)
    assert listing(f"{udir}/pg") == listing(f"{ndir}/pg")
    for name in ("PG_VERSION", "base/1/PG_VERSION", "postgresql.conf", "pg_hba.conf"):
        assert open(f"{udir}/pg/{name}", "rb").read() == open(f"{ndir}/pg/{name}", "rb").read(), name
    st = os.stat(f"{udir}/pg/global/pg_control")
    assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY)


def psql(sockdir: str, *sql: str) -> subprocess.CompletedProcess:
    argv = [f"{PGBIN}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", sockdir,
            "-U", "nobody", "-d", "postgres"]
    for s in sql:
        argv += ["-c", s]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_server_in_the_vm_serves_psql_and_pgbench(cluster):
    """postgres in the VM, socket in the volume; psql and pgbench from the host; SIGTERM
    to umiak gives PostgreSQL's clean (smart) shutdown and status 0."""
    native, umiak, ndir, udir = cluster
    if umiak.status != 0:
        pytest.skip("initdb in the VM failed (see test_initdb_on_a_volume)")
    cmd = umiak_command("kvm", [f"{PGBIN}/postgres", "-D", "/data/pg", "-k", "/data", "-c", "listen_addresses="],
                        [f"--user={NOBODY}:{NOBODY}", "-v", f"{udir}:/data"], env={**GUEST_ENV, "TZ": "UTC"})
    log = open(f"{udir}/server.log", "wb")
    server = subprocess.Popen(cmd, env=umiak_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while psql(udir, "select 1").stdout.strip() != "1":
            assert server.poll() is None and time.monotonic() < deadline, open(f"{udir}/server.log").read()
            time.sleep(0.5)
        r = psql(udir, "create table fruit(id int primary key, name text)",
                 "insert into fruit values (1, 'pear'), (2, 'fig'), (3, 'apple')",
                 "create table basket(fruit_id int references fruit, n int)",
                 "insert into basket select 1 + i % 3, i from generate_series(1, 100) i",
                 "select f.name, count(*), sum(b.n) from fruit f join basket b on b.fruit_id = f.id "
                 "group by f.name order by f.name")
        assert r.returncode == 0, r.stderr
        names = {1: "pear", 2: "fig", 3: "apple"}
        want = {name: [0, 0] for name in names.values()}
        for i in range(1, 101):
            want[names[1 + i % 3]][0] += 1
            want[names[1 + i % 3]][1] += i
        assert r.stdout == "".join(f"{k}|{c}|{t}\n" for k, (c, t) in sorted(want.items()))
        pgbench = [f"{PGBIN}/pgbench", "-h", udir, "-U", "nobody", "postgres"]
        init = subprocess.run(pgbench[:1] + ["-i", "-s", "1", "-q"] + pgbench[1:], capture_output=True, text=True,
                              timeout=120)
        assert init.returncode == 0, init.stderr
        run = subprocess.run(pgbench[:1] + ["-T", "3", "-c", "2"] + pgbench[1:], capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "number of failed transactions: 0 (0.000%)" in run.stdout, run.stdout
        processed = [ln for ln in run.stdout.splitlines() if ln.startswith("number of transactions actually")]
        assert processed and int(processed[0].rsplit(" ", 1)[1]) > 0, run.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            status = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            status = server.wait()
        log.close()
    text = open(f"{udir}/server.log").read()
    assert status == 0, text
    assert "database system is shut down" in text, text
    assert not os.path.exists(f"{udir}/.s.PGSQL.5432")
