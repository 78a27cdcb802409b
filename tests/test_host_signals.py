"""Signals from the host to the guest, and limits: Ctrl-C and SIGTERM reach the
program; a deadlocked guest still ends on a second Ctrl-C; --max-threads gives EAGAIN."""

import signal
import subprocess
import time

from harness import _run, assert_same, build, platform_env, run_native, run_umiak, umiak_command, umiak_env


def _start(platform, argv):
    proc = subprocess.Popen(umiak_command(platform, argv), env=umiak_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    assert line == b"ready\n", (line, proc.stderr.read() if proc.poll() is not None else b"")
    time.sleep(0.2)
    return proc


def _finish(proc, timeout=20):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("umiak did not end after the signal") from None
    return proc.returncode, out, err


def test_sigint_and_sigterm_reach_the_handler(platform):
    prog = build("wait_signal", "glibc-static", ("-pthread",))
    for sig, name in ((signal.SIGINT, b"SIGINT"), (signal.SIGTERM, b"SIGTERM")):
        proc = _start(platform, [prog])
        proc.send_signal(sig)
        status, out, err = _finish(proc)
        assert (status, out) == (5, b"got " + name + b"\n"), err


def test_default_action_of_a_host_signal(platform):
    prog = build("wait_signal", "glibc-static", ("-pthread",))
    proc = _start(platform, [prog, "default"])
    proc.send_signal(signal.SIGTERM)
    status, out, err = _finish(proc)
    assert status == 128 + signal.SIGTERM
    assert err.endswith(b"Terminated\n")


def test_second_ctrl_c_stops_a_deadlocked_guest(platform):
    prog = build("wait_signal", "glibc-static", ("-pthread",))
    proc = _start(platform, [prog, "deadlock"])
    # The program does not handle SIGINT, so the first one ends it, as on Linux.
    proc.send_signal(signal.SIGINT)
    status, _, _ = _finish(proc)
    assert status == 128 + signal.SIGINT
    # With SIGINT ignored, a second Ctrl-C within a second stops the VM.
    proc = _start(platform, ["/usr/bin/python3", "-c",
                             "import signal, threading; signal.signal(signal.SIGINT, signal.SIG_IGN);"
                             "print('ready', flush=True); threading.Lock().acquire(); l = threading.Lock();"
                             "l.acquire(); l.acquire()"])
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    status, _, err = _finish(proc)
    assert status == 130, err
    assert b"second interrupt" in err


def test_max_threads_gives_eagain(platform):
    prog = build("many_threads", "glibc-static", ("-pthread",))
    r = run_umiak(platform, [prog, "50"], options=["--max-threads=11"])
    assert r.stdout == b"created 10, then Resource temporarily unavailable\n", r.describe()
    assert r.status == 0


IGNORE = "--ignore-signal=HUP,INT,QUIT,USR1"   # coreutils' env, as `nohup` and a shell's `&` do


def test_signals_ignored_at_start_stay_ignored(platform, variant):
    """Signals umiak was started with ignored are ignored in the program (execve keeps
    SIG_IGN), across its own execve and fork; without them SIGHUP kills it. A dynamic
    program's prelinked snapshot is never shared between the two: the third run, from the
    cache, is killed again."""
    prog = str(build("sig_inherited", variant))
    for ignore in ((), (IGNORE,), ()):
        native = run_native(["env", *ignore, prog])
        umiak = _run(["env", *ignore, *umiak_command(platform, [prog])],
                     env=umiak_env() | platform_env(platform)[1])
        assert_same(native, umiak)
        assert (native.status == 0) == bool(ignore), native.describe()
