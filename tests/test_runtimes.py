"""Real language runtimes under umiak, compared with Linux: the Go runtime (static
and cgo/dynamic, built at test time with Debian's golang-go) and CPython's
threading, concurrent.futures, signal.alarm and asyncio."""

import os
import shutil
import subprocess

import pytest

from harness import BUILD, GUEST_SRC, assert_same, compare, run_native, run_umiak

PYTHON = "/usr/bin/python3"


def go_build(name: str, cgo: bool):
    if shutil.which("go") is None:
        pytest.skip("go is not installed (Debian: apt-get install golang-go)")
    out = BUILD / "go" / (name + ("-cgo" if cgo else "-static"))
    src = GUEST_SRC / name
    newest = max(p.stat().st_mtime for p in src.iterdir())
    if not out.exists() or out.stat().st_mtime < newest:
        out.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, CGO_ENABLED="1" if cgo else "0", GOFLAGS="-mod=mod",
                   GOCACHE=str(BUILD / "go" / "cache"), GOPATH=str(BUILD / "go" / "path"))
        proc = subprocess.run(["go", "build", "-o", str(out), "."], cwd=src, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("args", [[], ["exit3"], ["panic"]], ids=["ok", "exit3", "panic"])
def test_go_static(platform, args):
    compare(platform, [go_build("go", cgo=False), *args])


def test_go_cgo_dynamic(platform):
    compare(platform, [go_build("gocgo", cgo=True)])


def _python(code: str):
    if not os.path.exists(PYTHON):
        pytest.skip("Debian's python3 is not installed")
    return [PYTHON, "-c", code]


def test_python_threading_and_futures(platform):
    compare(platform, _python(
        "import threading, concurrent.futures\n"
        "out = []\n"
        "lock = threading.Lock()\n"
        "def work(i):\n"
        "    with lock: out.append(i)\n"
        "ts = [threading.Thread(target=work, args=(i,)) for i in range(16)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(sorted(out) == list(range(16)))\n"
        "with concurrent.futures.ThreadPoolExecutor(4) as ex:\n"
        "    print(sum(ex.map(lambda x: x * x, range(1000))))\n"
        "ev = threading.Event(); threading.Timer(0.05, ev.set).start(); print(ev.wait(5))\n"))


def test_python_signal_alarm(platform):
    compare(platform, _python(
        "import signal, time\n"
        "got = []\n"
        "signal.signal(signal.SIGALRM, lambda s, f: got.append(s))\n"
        "signal.alarm(1)\n"
        "time.sleep(3)\n"
        "print('alarm', got)\n"
        "signal.setitimer(signal.ITIMER_REAL, 0.05)\n"
        "signal.pause()\n"
        "print('itimer', got)\n"))


def test_python_exit_and_exception(platform):
    compare(platform, _python("import sys; print('bye'); sys.exit(4)"))
    compare(platform, _python("raise ValueError('boom')"))


def test_python_asyncio_event_loop(platform):
    compare(platform, _python(
        "import asyncio\n"
        "async def tick(n):\n"
        "    await asyncio.sleep(0.01 * n)\n"
        "    return n\n"
        "async def main():\n"
        "    return await asyncio.gather(*(tick(n) for n in range(5)))\n"
        "print(asyncio.run(main()))\n"))


# -- programs issue 19 names: a venv, SQLite's WAL with two connections, epoll churn ---------

def test_python_venv_and_its_packages(platform, tmp_path):
    """`python3 -m venv` on a volume, then the venv's python imports a package installed in
    its site-packages (and not the system's); each run natively and in the VM gets its own dir."""
    script = (
        "import os, subprocess, sys\n"
        "d = sys.argv[1]\n"
        "subprocess.run([sys.executable, '-m', 'venv', '--without-pip', d], check=True)\n"
        "site = subprocess.run([d + '/bin/python', '-c', 'import sysconfig; print(sysconfig.get_path(\"purelib\"))'],\n"
        "                      check=True, capture_output=True, text=True).stdout.strip()\n"
        "os.makedirs(site + '/umiakpkg')\n"
        "open(site + '/umiakpkg/__init__.py', 'w').write('ANSWER = 42\\n')\n"
        "r = subprocess.run([d + '/bin/python', '-c', 'import sys, umiakpkg; '\n"
        "                    'print(umiakpkg.ANSWER, sys.prefix == sys.argv[1], sys.prefix != sys.base_prefix)', d],\n"
        "                   capture_output=True, text=True)\n"
        "print(r.returncode, r.stdout.strip(), r.stderr.strip()[-80:])\n"
        "r = subprocess.run([sys.executable, '-c', 'import umiakpkg'], capture_output=True, text=True)\n"
        "print('system python sees it:', r.returncode == 0)\n"
        "print(sorted(os.listdir(d)))\n")
    native = run_native(_python(script) + [str(tmp_path / "native")])
    umiak = run_umiak(platform, _python(script) + [str(tmp_path / "vm")],
                      options=[f"--volume={tmp_path}:{tmp_path}"], timeout=300)
    assert native.status == 0 and b"42 True True" in native.stdout, native.describe()
    assert_same(native, umiak)


def test_sqlite_wal_with_two_connections(platform, tmp_path):
    """journal_mode=WAL: the -wal and -shm files, a reader that sees committed rows only,
    a checkpoint (the -shm index is MAP_SHARED by both connections)."""
    script = (
        "import os, sqlite3, sys\n"
        "db = sys.argv[1]\n"
        "a = sqlite3.connect(db, isolation_level=None); b = sqlite3.connect(db, isolation_level=None)\n"
        "print(a.execute('pragma journal_mode=wal').fetchone())\n"
        "a.execute('create table t(x)')\n"
        "a.execute('begin'); a.executemany('insert into t values (?)', [(i,) for i in range(1000)])\n"
        "print('before commit, b sees', b.execute('select count(*) from t').fetchone())\n"
        "a.execute('commit')\n"
        "print('after commit, b sees', b.execute('select count(*), sum(x) from t').fetchone())\n"
        "b.execute('insert into t values (-1)')\n"
        "print('a sees', a.execute('select count(*), min(x) from t').fetchone())\n"
        "print('files', sorted(f.split('.db')[-1] for f in os.listdir(os.path.dirname(db))))\n"
        "print('checkpoint', a.execute('pragma wal_checkpoint(truncate)').fetchone()[0])\n"
        "a.close(); b.close()\n"
        "print('integrity', sqlite3.connect(db).execute('pragma integrity_check').fetchone())\n")
    (tmp_path / "n").mkdir()
    (tmp_path / "u").mkdir()
    native = run_native(_python(script) + [str(tmp_path / "n" / "w.db")])
    umiak = run_umiak(platform, _python(script) + [str(tmp_path / "u" / "w.db")],
                      options=[f"--volume={tmp_path}:{tmp_path}"], timeout=300)
    assert native.status == 0 and b"('wal',)" in native.stdout, native.describe()
    assert_same(native, umiak)


def test_python_epoll_churn(platform):
    """select.epoll over many socket pairs registered, modified, polled and closed in a loop
    (the fd table and epoll stay O(1) per operation: the timings are benchmarks/epoll_scale.py's)."""
    script = (
        "import select, socket\n"
        "ep = select.epoll(); live = []; events = 0\n"
        "for i in range(3000):\n"
        "    a, b = socket.socketpair(); ep.register(a, select.EPOLLIN); live.append((a, b))\n"
        "    if i % 3 == 0: b.send(b'x')\n"
        "    if len(live) > 400:\n"
        "        events += len(ep.poll(0))\n"
        "        for a, b in live[:200]:\n"
        "            ep.modify(a, select.EPOLLIN | select.EPOLLOUT); ep.unregister(a); a.close(); b.close()\n"
        "        del live[:200]\n"
        "print('open', len(live), 'events', events, 'ready now', len(ep.poll(0)))\n")
    compare(platform, _python(script))
