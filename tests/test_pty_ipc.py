"""Pseudo-terminals, SysV IPC, POSIX message queues and inotify (issue 19), compared with Linux.

Each guest program runs natively and under umiak; stdout, stderr and exit status
must agree.
"""

import os

import pytest

from harness import GUEST_ENV, build, compare, run_umiak


def test_pty_pair_line_discipline(platform, variant):
    """ptmx/pts, locking, ttyname, termios defaults, canonical editing and echo, raw mode, hang-ups."""
    compare(platform, [build("pty_basic", variant)])


def test_pty_controlling_terminal_and_signals(platform, variant):
    """A child session on the slave: ctty, foreground group, ^C -> SIGINT, SIGWINCH, SIGHUP."""
    compare(platform, [build("pty_session", variant)])


def test_pty_background_groups_get_sigttin_and_sigttou(platform, variant):
    """A pty made in the VM does job control as a host terminal does: a background group
    reading it is stopped by SIGTTIN, writing with TOSTOP or setting termios by SIGTTOU."""
    compare(platform, [build("pty_jobctl", variant)])


@pytest.mark.skipif(not os.path.exists("/usr/bin/script"), reason="util-linux script is not installed")
def test_script_runs_a_command_on_a_pty(platform):
    """script(1) (openpty, TIOCGPTPEER, TIOCSCTTY, signalfd for SIGCHLD) and stty inside it."""
    env = dict(GUEST_ENV, SHELL="/bin/sh")
    compare(platform, ["/usr/bin/script", "-qec", "tty | sed 's/[0-9]*$/N/'; stty size; stty -a | head -3",
                       "/dev/null"], env=env)


def test_blocked_ignored_signals_reach_signalfd(platform, variant):
    """SIGCHLD with its default (ignore) action, blocked, still reaches a signalfd, with its status."""
    compare(platform, [build("signalfd_kinds", variant)])


def test_sysv_shared_memory_semaphores_and_message_queues(platform, variant):
    """shm shared with a forked child, semaphores that block across processes, message types."""
    compare(platform, [build("sysv_ipc", variant)])


def test_posix_message_queues(platform, variant):
    """Priorities, limits, timeouts, a receiver in another process, mq_notify's signal."""
    compare(platform, [build("posix_mqueue", variant)])


@pytest.mark.parametrize("layer", ["overlay", "volume", "tmpfs"])
def test_inotify_sees_the_programs_own_changes(platform, variant, tmp_path, layer):
    """Create, modify, close, attrib, rename with cookies, delete, oneshot, mask add, rm_watch."""
    options = {"overlay": [], "volume": [f"--volume={tmp_path}:{tmp_path}"],
               "tmpfs": [f"--tmpfs={tmp_path}"]}[layer]
    compare(platform, [build("inotify_events", variant), tmp_path], options=options)


TAIL_F = """cd "$1"; echo first > log
tail -f log & t=$!
sleep 0.5; echo second >> log; sleep 0.5; echo third >> log; sleep 0.5
kill $t; wait $t 2>/dev/null; echo done
"""


@pytest.mark.skipif(not os.path.exists("/usr/bin/tail"), reason="coreutils tail is not installed")
def test_tail_follows_a_growing_file(platform, tmp_path):
    """tail -f waits with inotify and prints what another process appends."""
    (tmp_path / "tail.sh").write_text(TAIL_F)
    compare(platform, ["/bin/sh", tmp_path / "tail.sh", tmp_path], options=[f"--volume={tmp_path}:{tmp_path}"])


def test_dev_mqueue_shows_the_queues(platform):
    """/dev/mqueue (not mounted on every host, so Linux's mqueue(7) format is the reference)."""
    res = run_umiak(platform, [build("mqueue_devfs", "glibc-dynamic")])
    assert res.status == 0, res.describe()
    assert res.stdout.decode().splitlines() == [
        "total 0", "-rw-r-----", "QSIZE:5          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     ", "0"]
