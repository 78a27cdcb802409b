"""The comparison harness: build guest programs, run them natively and under umiak.

A guest program is a C source in tests/guest/. It is compiled once per build
variant (glibc static, glibc static-PIE, musl static, glibc dynamic) into
tests/.build/, keyed by a hash of the source and the command, so edits rebuild.

Every run is a subprocess, natively and as `python -m umiak run`, so a crash or
hang of umiak is a failed test, never a dead test session. A program killed by
a signal natively (returncode -N) is compared with umiak's convention: status
128+N and the shell's message for the signal as the last line of stderr.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
GUEST_SRC = TESTS / "guest"
BUILD = TESTS / ".build"

# Build variant -> (compiler, flags). Order is the order of test ids.
VARIANTS = {
    "glibc-static": ("gcc", ["-static"]),
    "glibc-static-pie": ("gcc", ["-static-pie"]),
    "musl-static": ("musl-gcc", ["-static"]),
    "glibc-dynamic": ("gcc", []),
}
COMMON_FLAGS = ["-O1", "-g0", "-Wall", "-Wno-unused-result"]

# What bash prints for a program that a signal killed (strsignal(3) wording).
SIGNAL_MESSAGES = {
    signal.SIGHUP: "Hangup",
    signal.SIGINT: "",  # bash prints nothing for SIGINT
    signal.SIGQUIT: "Quit",
    signal.SIGILL: "Illegal instruction",
    signal.SIGTRAP: "Trace/breakpoint trap",
    signal.SIGABRT: "Aborted",
    signal.SIGBUS: "Bus error",
    signal.SIGFPE: "Floating point exception",
    signal.SIGKILL: "Killed",
    signal.SIGUSR1: "User defined signal 1",
    signal.SIGSEGV: "Segmentation fault",
    signal.SIGUSR2: "User defined signal 2",
    signal.SIGPIPE: "",  # bash prints nothing for SIGPIPE
    signal.SIGALRM: "Alarm clock",
    signal.SIGTERM: "Terminated",
    signal.SIGSYS: "Bad system call",
}

RUN_TIMEOUT = float(os.environ.get("UMIAK_TEST_TIMEOUT", "60"))  # a hang fails, not stalls the suite
EXIT_UMIAK_FAILURE = 125


@dataclass
class Result:
    status: int          # exit status; natively negative for a signal (subprocess convention)
    stdout: bytes
    stderr: bytes
    argv: list[str]

    def describe(self) -> str:
        def show(b: bytes) -> str:
            text = b.decode("utf-8", "replace")
            return text if len(text) < 3000 else text[:1500] + "\n[...]\n" + text[-1500:]
        return (f"$ {' '.join(self.argv)}\nstatus {self.status}\n"
                f"--- stdout ---\n{show(self.stdout)}\n--- stderr ---\n{show(self.stderr)}")


# -- building guest programs -------------------------------------------------

def have_tool(name: str) -> bool:
    return shutil.which(name) is not None


def build(name: str, variant: str, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile tests/guest/<name>.c for a variant (cached); skip when impossible."""
    cc, flags = VARIANTS[variant]
    if not have_tool(cc):
        pytest.skip(f"{cc} is not installed (Debian: apt-get install {'musl-tools' if cc == 'musl-gcc' else 'gcc'})")
    src = GUEST_SRC / f"{name}.c"
    cmd = [cc, *COMMON_FLAGS, *flags, *extra_flags]
    headers = b"".join(h.read_bytes() for h in sorted(GUEST_SRC.glob("*.h")))   # what a source may include
    key = hashlib.sha256(src.read_bytes() + headers + "\0".join(cmd).encode()).hexdigest()[:12]
    out = BUILD / variant / f"{name}-{key}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        proc = subprocess.run([*cmd, "-o", str(tmp), str(src), "-lm"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise AssertionError(f"compiling {src.name} for {variant} failed:\n"
                                 f"{' '.join(cmd)}\n{proc.stderr}")
        tmp.replace(out)
    return out


# -- running -------------------------------------------------------------------

def umiak_env() -> dict[str, str]:
    """Environment of the umiak process: the host's, with src/ importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("TERM", "TZ", "LANG", "LC_ALL")}
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _run(argv: list[str], *, env=None, cwd=None, input: bytes | None = None,
         timeout: float = RUN_TIMEOUT) -> Result:
    try:
        proc = subprocess.run(argv, env=env, cwd=cwd, input=input if input is not None else b"",
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"timed out after {timeout}s (a hang): {' '.join(argv)}\n"
                             f"stdout so far: {e.stdout!r}\nstderr so far: {e.stderr!r}") from None
    return Result(proc.returncode, proc.stdout, proc.stderr, list(argv))


# The environment a guest program gets, natively and under umiak (passed with --env).
# umiak's default guest environment is PATH and HOME (then TERM, LANG, LC_ALL, TZ
# copied from the host, then --env); naming PATH and HOME first here, and keeping
# TERM and TZ out of the umiak process, makes the guest's envp the same list.
GUEST_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/root", "LANG": "C", "LC_ALL": "C",
             "UMIAK_TEST": "1"}


def run_native(argv: list[str], *, env: dict | None = None, cwd=None,
               input: bytes | None = None) -> Result:
    return _run([str(a) for a in argv], env=GUEST_ENV if env is None else env,
                cwd=cwd, input=input)


# Test platforms that are kvm in another syscall mode (UMIAK_EXITLESS): "kvm" is the default
# (the exitless path where it pays: auto, with rewritten sites), "kvm-exits" every syscall a
# VM exit, "kvm-exitless" the exitless path forced on (with rewritten syscall sites),
# "kvm-norewrite" the exitless path without rewriting. Tests marked exit_modes also run on
# EXTRA_MODES.
PLATFORM_MODES = {"kvm-exits": ("kvm", {"UMIAK_EXITLESS": "n"}),
                  "kvm-exitless": ("kvm", {"UMIAK_EXITLESS": "y", "UMIAK_REWRITE": "y"}),
                  "kvm-norewrite": ("kvm", {"UMIAK_EXITLESS": "y", "UMIAK_REWRITE": "n"})}
EXTRA_MODES = ("kvm-exits", "kvm-exitless", "kvm-norewrite")


def platform_env(platform: str) -> tuple[str, dict[str, str]]:
    """(umiak's --platform, extra environment of the umiak process) for a test platform."""
    return PLATFORM_MODES.get(platform, (platform, {}))


def umiak_command(platform: str, argv: list[str], options: list[str] = (),
                  env: dict | None = None, cwd=None) -> list[str]:
    cmd = [sys.executable, "-m", "umiak", "run", f"--platform={platform_env(platform)[0]}"]
    for k, v in (GUEST_ENV if env is None else env).items():
        cmd.append(f"--env={k}={v}")
    if cwd is not None:
        cmd.append(f"--cwd={cwd}")
    cmd += list(options)
    return cmd + [str(a) for a in argv]


def run_umiak(platform: str, argv: list[str], *, options: list[str] = (),
              env: dict | None = None, cwd=None, input: bytes | None = None,
              timeout: float = RUN_TIMEOUT) -> Result:
    """`python -m umiak run` in a subprocess; guest cwd = cwd (also the umiak process's)."""
    cmd = umiak_command(platform, argv, options, env, cwd)
    return _run(cmd, env=umiak_env() | platform_env(platform)[1], cwd=cwd, input=input, timeout=timeout)


def expected_from_native(native: Result) -> Result:
    """What umiak must produce for this native result (signals as a shell reports them)."""
    if native.status >= 0:
        return native
    sig = -native.status
    msg = SIGNAL_MESSAGES.get(sig)
    if msg is None:
        msg = signal.strsignal(sig) or f"signal {sig}"
    stderr = native.stderr + (msg.encode() + b"\n" if msg else b"")
    return Result(128 + sig, native.stdout, stderr, native.argv)


def assert_same(native: Result, umiak: Result) -> None:
    """stdout, stderr and exit status identical (native signals translated)."""
    want = expected_from_native(native)
    problems = []
    if umiak.status != want.status:
        problems.append(f"exit status: umiak {umiak.status}, expected {want.status}"
                        f" (native {native.status})")
    if umiak.stdout != want.stdout:
        problems.append("stdout differs")
    if umiak.stderr != want.stderr:
        problems.append("stderr differs")
    if problems:
        raise AssertionError("; ".join(problems) + "\n\n=== native ===\n" + native.describe()
                             + "\n\n=== umiak ===\n" + umiak.describe())


def compare(platform: str, argv: list[str], *, options: list[str] = (), env: dict | None = None,
            cwd=None, input: bytes | None = None) -> Result:
    """Run natively and under umiak, assert they agree; returns the native result."""
    native = run_native(argv, env=env, cwd=cwd, input=input)
    umiak = run_umiak(platform, argv, options=options, env=env, cwd=cwd, input=input)
    assert_same(native, umiak)
    return native
