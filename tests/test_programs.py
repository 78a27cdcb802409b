"""Basic programs: output, exit status, argv/envp, auxv, TLS, stdio, CPU work, identity, clocks.

Each test builds a guest program from tests/guest/, runs it natively and under
umiak, and requires identical stdout, stderr and exit status.
"""

import pytest

from harness import build, compare, run_native, run_umiak


def test_hello(platform, variant):
    compare(platform, [build("hello", variant)])


@pytest.mark.parametrize("status,how", [
    ("0", "return"), ("1", "return"), ("42", "exit"), ("255", "exit"),
    ("256", "return"), ("-1", "exit"), ("7", "_exit"),
])
def test_exit_status(platform, variant, status, how):
    compare(platform, [build("exit_status", variant), status, how])


def test_args_and_environment(platform, variant):
    args = ["one", "two words", "", "ünïcödé", "x" * 3000, "--flag=1", "-", "a\nb"]
    compare(platform, [build("args_env", variant), *args])


def test_many_arguments(platform, variant):
    compare(platform, [build("args_env", variant), *[f"arg{i}" for i in range(500)]])


def test_auxv(platform, variant):
    compare(platform, [build("auxv", variant)])


def test_tls_variables(platform, variant):
    compare(platform, [build("tls", variant)])


def test_compute(platform, variant):
    compare(platform, [build("compute", variant)])


def test_stdout_stderr_mixed(platform, variant):
    compare(platform, [build("stdio_io", variant), "mixed"])


def test_stdin_copied(platform, variant):
    data = bytes(range(256)) * 700 + b"tail without newline"
    compare(platform, [build("stdio_io", variant), "cat"], input=data)


def test_stdin_empty(platform, variant):
    compare(platform, [build("stdio_io", variant), "empty"], input=b"")


@pytest.mark.exit_modes
def test_identity(platform, variant):
    compare(platform, [build("identity", variant)])


def test_time_monotonic_and_sleep(platform, variant):
    compare(platform, [build("time_mono", variant)])


def test_unknown_syscall_is_enosys(platform, variant):
    """stdout and status as natively; umiak may add a warning on stderr."""
    prog = build("unknown_syscall", variant)
    native = run_native([prog])
    umiak = run_umiak(platform, [prog])
    assert (umiak.status, umiak.stdout) == (native.status, native.stdout), umiak.describe()
    assert b"Traceback" not in umiak.stderr, umiak.describe()
