"""Linux behaviours real programs meet (issue 19), compared with Linux.

Each guest program runs natively and under umiak; stdout, stderr and exit
status must agree.
"""

import os
import stat

import pytest

from harness import GUEST_ENV, assert_same, build, compare, run_native, run_umiak

# Programs that drop root's ids and capabilities natively need a root test run.
ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="the native run must start as root")


def test_blocking_pipe_io_is_interrupted_by_a_timer_signal(platform, variant):
    """A one-thread program's blocking pipe read/write waits while a timer is armed."""
    compare(platform, [build("pipe_signal_wait", variant)])


@pytest.mark.parametrize("layer", ["overlay", "volume", "tmpfs"])
def test_unix_socket_bound_to_a_path_is_a_socket_file(platform, variant, tmp_path, layer):
    """bind makes an S_IFSOCK inode in the root's overlay, a host volume and a tmpfs."""
    options = {"overlay": [], "volume": [f"--volume={tmp_path}:{tmp_path}"],
               "tmpfs": [f"--tmpfs={tmp_path}"]}[layer]
    compare(platform, [build("unix_socket_files", variant), tmp_path], options=options)


def test_unix_socket_file_in_a_volume_is_a_socket_on_the_host(platform, tmp_path):
    prog = build("unix_socket_files", "glibc-static")
    res = run_umiak(platform, [prog, tmp_path, "keep"], options=[f"--volume={tmp_path}:{tmp_path}"])
    assert res.status == 0, res.describe()
    assert stat.S_ISSOCK(os.lstat(tmp_path / "dgram").st_mode)


@pytest.mark.parametrize("layer", ["overlay", "tmpfs"])
def test_sparse_files_keep_their_holes(platform, variant, tmp_path, layer):
    """A write at 2 GiB and a truncate to 8 GiB cost one page, as on Linux's tmpfs."""
    native_dir = "/dev/shm" if layer == "tmpfs" else tmp_path   # natively: a real tmpfs
    options = [f"--tmpfs={tmp_path}"] if layer == "tmpfs" else []
    native = run_native([build("sparse_files", variant), native_dir])
    assert_same(native, run_umiak(platform, [build("sparse_files", variant), tmp_path], options=options))


def test_fd_limits_are_the_hosts(platform, variant):
    compare(platform, [build("limits_ids", variant)])


def test_clock_settime_checks_and_cpu_clock_ids(platform, variant):
    compare(platform, [build("clock_ids", variant, ("-pthread",))])


def test_clock_settime_is_not_permitted(platform):
    """The VM has no CAP_SYS_TIME (like a container): setting the real-time clock is EPERM.
    Natively, as root, this would set the host's clock, so the expectation is Linux's without it."""
    code = ("import time, ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "ts = (ctypes.c_long * 2)(int(time.time()), 0)\n"
            "print(libc.clock_settime(0, ts), os.strerror(ctypes.get_errno()))\n"
            "print(libc.syscall(164, None, None), os.strerror(ctypes.get_errno()))\n")
    r = run_umiak(platform, ["/usr/bin/python3", "-c", code])
    assert (r.status, r.stdout) == (0, b"-1 Operation not permitted\n-1 Operation not permitted\n"), r.describe()


@ROOT
def test_credentials_and_capabilities(platform, variant, tmp_path):
    """As root natively (the tests run as root) and in the VM; the directory is writable by all."""
    os.chmod(tmp_path, 0o777)
    try:
        compare(platform, [build("creds_caps", variant), tmp_path])
    finally:
        for name in ("f",):
            try:
                os.unlink(tmp_path / name)
            except FileNotFoundError:
                pass


@ROOT
def test_nice_values_per_thread(platform, variant):
    compare(platform, [build("priority", variant, ("-pthread",))])


def test_non_utf8_arguments_environment_and_paths_are_bytes(platform, variant, tmp_path):
    """`umiak run /bin/echo $'a\\xe7b'`: arguments, environment values and a script's
    file name pass through as bytes (surrogate-escaped str here, as in sys.argv)."""
    raw = os.fsdecode(b"a\xe7b")
    env = {**GUEST_ENV, "K": os.fsdecode(b"v\xe7w")}
    compare(platform, [build("args_env", variant), raw, "plain"], env=env)
    script = tmp_path / os.fsdecode(b"s\xe7.sh")
    script.write_text('#!/bin/sh\nprintf "%s|%s\\n" "$0" "$1"\n')
    script.chmod(0o755)
    compare(platform, [script, raw], env=env)


@ROOT
def test_sethostname_checks(platform, variant):
    compare(platform, [build("uts_names", variant)])


def test_sethostname_renames_the_vm_only(platform):
    """Natively this would rename the host: the expectation is fixed (Linux's, in a UTS namespace)."""
    import socket
    host = socket.gethostname()
    code = ("import ctypes, os, socket\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "socket.sethostname('vm-renamed')\nprint(libc.setdomainname(b'example.org', 11))\n"
            "u = os.uname()\nprint(u.nodename, socket.gethostname())\n"
            "print(open('/proc/sys/kernel/hostname').read().strip(), open('/proc/sys/kernel/domainname').read().strip())\n"
            "buf = ctypes.create_string_buffer(65)\nlibc.getdomainname(buf, 65)\nprint(buf.value.decode())\n")
    r = run_umiak(platform, ["/usr/bin/python3", "-c", code], options=["--hostname=first"])
    assert (r.status, r.stdout) == (0, b"0\nvm-renamed vm-renamed\nvm-renamed example.org\nexample.org\n"), r.describe()
    assert socket.gethostname() == host


@pytest.mark.parametrize("layer", ["overlay", "tmpfs"])
def test_epoll_refuses_regular_files_and_directories(platform, variant, tmp_path, layer):
    options = [f"--tmpfs={tmp_path}"] if layer == "tmpfs" else []
    compare(platform, [build("epoll_regular", variant), tmp_path], options=options)


@ROOT
def test_more_calls_real_programs_use(platform, variant):
    compare(platform, [build("more_calls", variant)])


def test_numa_policy_of_one_node(platform, variant):
    compare(platform, [build("numa_policy", variant)])
