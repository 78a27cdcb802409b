"""Real language runtimes under umiak, compared with Linux: the Go runtime (static
and cgo/dynamic, built at test time with Debian's golang-go) and CPython's
threading, concurrent.futures, signal.alarm and asyncio."""

import os
import shutil
import subprocess

import pytest

from harness import BUILD, GUEST_SRC, compare

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
