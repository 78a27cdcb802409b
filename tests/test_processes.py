"""Many processes in one VM (issue 10): fork with copy-on-write, vfork, posix_spawn,
system(), popen(), wait4/waitid, SIGCHLD, process groups, orphans; and real
programs that start others (shells, Python's subprocess, tar through gzip),
compared with Linux."""

import os
import shutil

import pytest

from harness import GUEST_ENV, build, compare, run_native, run_umiak

PTHREAD = ("-pthread",)


def need(path: str) -> str:
    if not os.path.exists(path):
        pytest.skip(f"{path} is not installed")
    return path


def test_fork_copy_on_write(platform, variant):
    compare(platform, [build("proc_fork_cow", variant, PTHREAD)])


def test_wait_status_encodings_sigchld_process_groups(platform, variant):
    compare(platform, [build("proc_wait", variant)])


def test_vfork_exec_posix_spawn_system_popen(platform, variant):
    compare(platform, [build("proc_spawn", variant)])


def test_futexes_between_processes(platform, variant):
    compare(platform, [build("proc_futex", variant)])


@pytest.mark.parametrize("user", [None, "65534:65534"])
def test_fork_bomb_bounded_by_rlimit_nproc(platform, user):
    """Every process of the bomb forks until EAGAIN; the supervisor kills the group and
    reaps it all, and fork works again. Natively (and under umiak as root) the bomb drops
    to uid 65534 itself; with --user it starts there."""
    compare(platform, [build("proc_fork_bomb", "glibc-static")], options=[f"--user={user}"] if user else [])


def test_stop_and_continue(platform, variant):
    compare(platform, [build("proc_jobctl", variant)])


def test_sleep_stopped_and_continued_ends_at_its_deadline(platform):
    """Linux continues a relative sleep a stop interrupted through restart_syscall with
    the time left; umiak used to sleep its whole length again after SIGCONT."""
    compare(platform, [build("proc_sleep_stop", "glibc-static")])


def test_clone_fs_shares_cwd_and_umask(platform, variant):
    compare(platform, [build("proc_clone_fs", variant)])


# The sleep is long: a stopped sleep wakes at its first deadline (restart_syscall), so a
# slow run must not reach it before the last look at /proc; `kill $p` ends it.
PROC_OF_ANOTHER = ("sleep 30 & p=$!; sleep 0.5; readlink /proc/$p/fd/0; readlink /proc/$p/fd/1 | cut -d: -f1; "
                   "grep -q ' /usr/bin/sleep$' /proc/$p/maps && echo maps the program; "
                   "[ \"$(ls /proc/$p/task)\" = \"$p\" ] && echo one task, the leader; "
                   "grep -E '^(State|Threads):' /proc/$p/status; kill -STOP $p; sleep 0.2; "
                   "grep State /proc/$p/status; cut -d' ' -f3 /proc/$p/stat; kill -CONT $p; sleep 0.2; "
                   "grep State /proc/$p/status; kill $p")


def test_proc_of_another_process(platform):
    """/proc/<pid>/fd, maps, task and status of a sibling: asleep (S), stopped (T), again S."""
    compare(platform, [need("/bin/dash"), "-c", PROC_OF_ANOTHER])


SHELL_SCRIPT = ("ls /etc | sort | tail -3; n=$(ls /etc | wc -l); echo \"count $n\"; "
                "x=$(echo inner $(echo nested)); echo \"$x\"; false || echo \"status $?\"; "
                "(exit 7); echo \"subshell $?\"; sh -c 'exit 5'; echo \"child $?\"")


@pytest.mark.parametrize("shell", ["/bin/dash", "/bin/bash", "busybox"])
def test_shell_pipelines_and_command_substitution(platform, shell):
    argv = [shutil.which("busybox") or need("/bin/busybox"), "sh"] if shell == "busybox" else [need(shell)]
    compare(platform, argv + ["-c", SHELL_SCRIPT])


def test_bash_background_jobs_and_wait(platform):
    script = ("for i in 1 2 3; do (sleep 0.$i; echo job $i) & done; wait; echo all done; "
              "sleep 5 & pid=$!; kill $pid; wait $pid; echo \"killed job status $?\"")
    compare(platform, [need("/bin/bash"), "-c", script])


def test_shell_reports_a_child_killed_by_a_signal(platform):
    """bash prints the job's pid, which differs from the native one: compared without it."""
    import re
    argv = [need("/bin/bash"), "-c", "sh -c 'kill -USR1 $$'; echo \"status $?\"; exit 3"]
    native, umiak = run_native(argv), run_umiak(platform, argv)
    strip = lambda b: re.sub(rb"line 1: +[0-9]+ ", b"line 1: PID ", b)  # noqa: E731
    assert (umiak.status, umiak.stdout, strip(umiak.stderr)) == \
        (native.status, native.stdout, strip(native.stderr)), umiak.describe()


PYTHON = "/usr/bin/python3"


def test_python_subprocess_and_fork(platform):
    code = """
import os, subprocess, sys
print(subprocess.run(["uname", "-s"], capture_output=True).stdout)
print(subprocess.check_output("echo hi | tr a-z A-Z", shell=True))
print(subprocess.run(["sh", "-c", "exit 4"]).returncode)
p = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
print(p.communicate(b"through a pipe")[0], p.returncode)
try:
    subprocess.check_call(["false"])
except subprocess.CalledProcessError as e:
    print("CalledProcessError", e.returncode)
pid = os.fork()
if pid == 0:
    os._exit(3)
_, st = os.waitpid(pid, 0)
print(os.WIFEXITED(st), os.WEXITSTATUS(st))
"""
    compare(platform, [need(PYTHON), "-c", code])


def test_tar_czf_through_gzip(platform, tmp_path):
    need("/bin/tar")
    need("/bin/gzip")
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "a.txt").write_text("hello\n" * 1000)
    (src / "d" / "b.txt").write_text("world\n" * 500)
    for p in [src, *src.rglob("*")]:
        os.utime(p, (1_700_000_000, 1_700_000_000))
    out = tmp_path / "out"
    out.mkdir()
    # Create with -z (tar runs gzip), then list it with -z (gunzip).
    script = (f"cd {src} && tar --owner=0 --group=0 --numeric-owner -czf {out}/x.tgz a.txt d && "
              f"tar -tzvf {out}/x.tgz --numeric-owner | sed 's/ [0-9-]* [0-9:]* / /'")
    native = run_native(["/bin/sh", "-c", script])
    os.remove(out / "x.tgz")
    umiak = run_umiak(platform, ["/bin/sh", "-c", script], options=[f"--volume={tmp_path}:{tmp_path}"])
    assert native.status == 0, native.describe()
    assert (umiak.status, umiak.stdout, umiak.stderr) == (native.status, native.stdout, native.stderr), \
        umiak.describe()


def test_pid1_exit_kills_the_rest_and_gives_its_status(platform):
    """`umiak run` ends with pid 1: a background child sleeping on is killed, not waited for."""
    r = run_umiak(platform, [need("/bin/sh"), "-c", "sleep 30 & echo started; exit 6"], timeout=20)
    assert (r.status, r.stdout) == (6, b"started\n"), r.describe()


def test_getppid_and_proc_lists_every_process(platform):
    """pid 1 has ppid 0 (a container's init); /proc shows exactly the VM's processes:
    the shell, the background sleep, and ls and grep of the pipeline."""
    script = ("echo ppid of pid 1: $PPID; sh -c 'echo child ppid is 1: $((PPID == 1))'; "
              "sleep 60 & sleep 0.3; ls /proc | grep -c '^[0-9]'; cut -d' ' -f2,4 /proc/$!/stat; "
              "tr '\\0' ' ' < /proc/$!/cmdline; echo; grep PPid /proc/$!/status; kill $!")
    r = run_umiak(platform, [need("/bin/dash"), "-c", script], env=GUEST_ENV)
    assert (r.status, r.stdout) == (
        0, b"ppid of pid 1: 0\nchild ppid is 1: 1\n4\n(sleep) 1\nsleep 60 \nPPid:\t1\n"), r.describe()


def test_wipeonfork_dontfork_subreaper_pdeathsig(platform, variant):
    compare(platform, [build("proc_misc", variant)])


LEAK_CHECK = r"""
import os, sys, threading
sys.path.insert(0, sys.argv[1])
from umiak.machine import Machine

def fds():
    return len(os.listdir("/proc/self/fd"))


m = Machine(platform=sys.argv[2], prewarm=False)
import time
m.run_captured(["/bin/sh", "-c", "true | true"])       # first run: lazy imports, caches
time.sleep(0.5)                                        # KVM fds close on a background thread
threads, files = threading.active_count(), fds()
for i in range(int(sys.argv[3])):
    r = m.run_captured(["/bin/sh", "-c", "true | cat; (exit 3); sleep 5 & echo $(echo x)"])
    assert (r.status, r.stdout) == (0, b"x\n"), r
time.sleep(0.5)
print(threading.active_count() - threads, max(0, fds() - files))
"""


def test_fork_heavy_vms_in_one_process_leak_nothing(platform, tmp_path):
    """Many VMs whose shells fork, pipe and leave a background child behind (killed when
    pid 1 ends): no host thread and no host fd (vCPUs, eventfds, pipes, the files execve
    read) outlives its VM."""
    import subprocess
    import sys
    from harness import REPO
    script = tmp_path / "leak.py"
    script.write_text(LEAK_CHECK)
    p = subprocess.run([sys.executable, str(script), str(REPO / "src"), platform, "20"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[-2:] == ["0", "0"], p.stdout + p.stderr


def test_ps_and_pgrep_see_the_vms_processes(platform):
    need("/usr/bin/ps")
    script = "sleep 3 & ps -e -o pid=,ppid=,comm=; pgrep -x sleep; kill $!"
    r = run_umiak(platform, ["/bin/sh", "-c", script])
    assert (r.status, r.stdout) == (0, b"      1       0 sh\n      2       1 sleep\n      3       1 ps\n2\n"), \
        r.describe()


def test_pidfds(platform, variant):
    compare(platform, [build("proc_pidfd", variant)])


def test_ctrl_c_reaches_pid1s_process_group(platform):
    """SIGINT to `umiak run` goes to pid 1's group, as a terminal's Ctrl-C to its foreground
    group: the running command and the shell end at once (130), nothing after runs."""
    import signal
    import subprocess
    import time
    from harness import umiak_command, umiak_env
    p = subprocess.Popen(umiak_command(platform, ["/bin/sh", "-c", "sleep 30; echo after"]),
                         env=umiak_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2)
    t = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert (p.returncode, out) == (130, b""), err
    assert time.monotonic() - t < 5


def test_out_of_memory_kills_the_largest_process_and_the_others_go_on(platform):
    """-m 64M: a child's copy-on-write copies run out of frames; its parent (the largest
    process) is killed with SIGKILL and a message naming -m, the child finishes."""
    r = run_umiak(platform, [build("proc_oom", "glibc-static")], options=["-m", "64M"], timeout=120)
    err = r.stderr.decode()
    assert r.status == 0, r.describe()
    assert sorted(r.stdout.decode().splitlines()) == [
        "big parent: killed by 9", "child wrote every page: 1", "orphaned child: exited 0"], r.describe()
    assert "umiak: guest out of memory (64 MiB; raise it with -m): killed process 2 (proc_oom-" in err, err
    assert "Traceback" not in err


def _drive_pty(argv: list[str], env: dict, steps, cwd, timeout: float = 60.0) -> tuple[int, bytes]:
    """Run argv with a new pseudo-terminal as its controlling terminal and stdio, as a
    terminal emulator does; steps are (bytes typed, bytes to wait for, seconds to let pass)."""
    import fcntl
    import pty
    import select
    import subprocess
    import termios
    import time
    master, slave = pty.openpty()

    def own_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                         preexec_fn=own_terminal)
    os.close(slave)
    out = bytearray()

    def pump(mark: int, until: bytes | None, seconds: float) -> None:
        end = time.monotonic() + seconds
        while until is None or until not in out[mark:]:
            left = end - time.monotonic()
            if left <= 0 or not select.select([master], [], [], left)[0]:
                if until is None:
                    return
                raise AssertionError(f"no {until!r} after {seconds}s; the terminal shows:\n{out.decode(errors='replace')}")
            try:
                out.extend(os.read(master, 4096))
            except OSError:   # the other side closed
                if until is None:
                    return
                raise AssertionError(f"ended before {until!r}:\n{out.decode(errors='replace')}") from None
    try:
        for typed, expect, pause in steps:
            mark = len(out)
            if typed:
                os.write(master, typed)
            if expect:
                pump(mark, expect, timeout)
            if pause:
                pump(mark, None, pause)
        p.wait(timeout=timeout)
        pump(len(out), None, 0.2)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return p.returncode, bytes(out)


JOB = "trap 'echo continued' CONT\necho started\nwhile :; do sleep 0.1; done\n"


def test_bash_job_control_under_a_terminal(platform, tmp_path):
    """An interactive bash on a terminal: Ctrl-Z stops the foreground job ("Stopped"), fg
    gives it the terminal and continues it, Ctrl-C ends it (status 130), and a background
    job that reads the terminal is stopped by SIGTTIN. The same dialogue natively."""
    import sys
    from harness import REPO
    need("/bin/bash")
    (tmp_path / "job.sh").write_text(JOB)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/", "TERM": "dumb", "PS1": "$ ", "LANG": "C", "LC_ALL": "C"}
    bash = ["/bin/bash", "--norc", "--noprofile", "-i"]
    steps = [
        (None, b"$ ", 0),
        (b"sh job.sh\n", b"started", 0.3),
        (b"\x1a", b"Stopped                 sh job.sh\r\n$ ", 0),
        (b"fg\n", b"continued", 0.3),
        (b"\x03", b"$ ", 0),
        (b"echo status $?\n", b"status 130", 0),
        (b"cat > /dev/null &\n", b"$ ", 0),
        (b"sleep 3; jobs\n", b"$ ", 0),
        (b"kill -9 %1; sleep 0.5\n", b"$ ", 0),
        (b"exit 3\n", None, 0),
    ]
    results = {}
    for where in ("native", "umiak"):
        argv = bash if where == "native" else [
            sys.executable, "-m", "umiak", "run", f"--platform={platform}", f"--volume={tmp_path}:{tmp_path}",
            *[f"--env={k}={v}" for k, v in env.items()], *bash]
        run_env = dict(env, PYTHONPATH=str(REPO / "src")) if where == "umiak" else env
        results[where] = _drive_pty(argv, run_env, steps, tmp_path, timeout=90)
    for where, (status, out) in results.items():
        text = out.decode(errors="replace")
        assert status == 3, f"{where}: status {status}\n{text}"
        assert "[1]+  Stopped                 sh job.sh" in text, f"{where}:\n{text}"
        assert "status 130" in text and "[1]+  Stopped                 cat > /dev/null" in text, f"{where}:\n{text}"
        assert "no job control" not in text and "Traceback" not in text, f"{where}:\n{text}"
