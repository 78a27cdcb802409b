"""The command line: help, platforms, and the options of `umiak run`."""

import os
import subprocess
import sys

from harness import GUEST_ENV, build, compare, run_native, run_umiak, umiak_env


def umiak(*args, **kw):
    return subprocess.run([sys.executable, "-m", "umiak", *args], capture_output=True,
                          text=True, env=umiak_env(), timeout=60, **kw)


def test_help():
    r = umiak("--help")
    assert r.returncode == 0 and "run" in r.stdout and "platforms" in r.stdout, r


def test_run_help_lists_options():
    r = umiak("run", "--help")
    assert r.returncode == 0, r
    for opt in ["--platform", "--memory", "--env", "--cwd", "--strace", "--trace", "--strace-file",
                "--syscall-summary", "--verbose", "--no-aslr"]:
        assert opt in r.stdout, f"{opt} missing from `umiak run --help`:\n{r.stdout}"


def test_platforms_command():
    r = umiak("platforms")
    assert r.returncode == 0, r
    assert "kvm" in r.stdout and "emu" in r.stdout and "auto" in r.stdout, r.stdout


def test_unknown_option_fails_without_traceback():
    r = umiak("run", "--no-such-option", "/bin/true")
    assert r.returncode != 0 and "Traceback" not in r.stderr, r


def test_verbose_names_the_platform(platform):
    r = run_umiak(platform, [build("hello", "glibc-static")], options=["--verbose"])
    assert r.status == 0 and r.stdout == b"hello, world\n", r.describe()
    assert platform in r.stderr.decode(), r.describe()


def test_no_aslr_static_pie(platform):
    compare(platform, [build("auxv", "glibc-static-pie")], options=["--no-aslr"])


def test_memory_option(platform):
    compare(platform, [build("hello", "glibc-static")], options=["-m", "256M"])
    compare(platform, [build("hello", "glibc-static")], options=["--memory=64M"])


def test_cwd_option(platform, tmp_path):
    (tmp_path / "marker").write_text("here\n")
    prog = build("files", "glibc-static")
    os.symlink("marker", tmp_path / "marker-link")
    # The umiak process runs elsewhere; --cwd alone must put the guest in tmp_path.
    native = run_native([prog, "marker", "marker-link", "."], cwd=tmp_path)
    r = run_umiak(platform, [prog, "marker", "marker-link", "."],
                  options=[f"--cwd={tmp_path}"], cwd=None)
    assert (r.status, r.stdout, r.stderr) == (native.status, native.stdout, native.stderr), r.describe()


def test_env_option_copies_from_host(platform):
    """`--env K` (no value) copies K from umiak's own environment."""
    env = dict(GUEST_ENV, FROM_HOST="copied value")
    native = run_native([build("args_env", "glibc-static")], env=env)
    cmd_env = [f"--env={k}={v}" for k, v in GUEST_ENV.items()] + ["--env=FROM_HOST"]
    proc = subprocess.run([sys.executable, "-m", "umiak", "run", f"--platform={platform}", *cmd_env,
                           str(build("args_env", "glibc-static"))], capture_output=True, timeout=60,
                          env=dict(umiak_env(), FROM_HOST="copied value"))
    assert (proc.returncode, proc.stdout, proc.stderr) == (native.status, native.stdout, native.stderr), proc


def test_program_found_in_path(platform, tmp_path):
    """A program name without '/' is looked up in PATH, like a shell does."""
    prog = build("hello", "glibc-static")
    os.symlink(prog, tmp_path / "umiak-test-hello")
    env = dict(umiak_env(), PATH=f"{tmp_path}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    proc = subprocess.run([sys.executable, "-m", "umiak", "run", f"--platform={platform}", "umiak-test-hello"],
                          capture_output=True, timeout=60, env=env)
    assert (proc.returncode, proc.stdout) == (0, b"hello, world\n"), proc


def test_plain_run_command_line_is_what_argparse_makes():
    """`umiak run PROGRAM [ARGS]` without options skips building argparse's parser: the
    arguments it makes must be argparse's, option for option, for any such command line;
    a command line with an option or `--` goes to argparse."""
    from umiak.cli import _Defaults, _parser
    plain = [["run", "prog"], ["run", "/bin/ls", "-la", "/"], ["run", "prog", "--strace", "x"],
             ["run", "prog", "-h"], ["run", "prog", "-"], ["run", "run", "--restore", "f"]]
    for argv in plain:
        fast = _Defaults.parse(argv)
        assert fast is not None, argv
        assert vars(fast) == vars(_parser(only_run=True).parse_args(argv)), argv
    for argv in (["run"], ["run", "--strace", "prog"], ["run", "prog", "--", "x"], ["run", "-"],
                 ["run", "prog", "a", "--", "b"]):
        assert _Defaults.parse(argv) is None, argv
