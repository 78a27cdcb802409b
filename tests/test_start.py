"""The start path (issue 16 §3, issue 11): what `umiak run` imports before and during a run,
and guest RAM registered with KVM in slots as it is used (platform/kvm/machine.py)."""

import json
import os
import subprocess
import sys

import pytest

from harness import build, compare, umiak_env

# Prints, as JSON, the modules a `umiak run` imported by its end (the CLI in this process).
PROBE = ("import json, sys\nfrom umiak.cli import main\nstatus = main(sys.argv[1:])\n"
         "print(json.dumps([status, sorted(sys.modules)]), file=sys.stderr)\n")


def imported(*run_args: str) -> set[str]:
    # Twice: the first run after a change of the source makes the frozen config (kconfiglib
    # and what it imports); the second is every later run's start path.
    for _ in range(2):
        p = _probe(run_args)
    status, mods = json.loads(p.stderr.strip().splitlines()[-1])
    assert status == 0 and p.stdout == "hello, world\n", p
    return set(mods)


def _probe(run_args):
    return subprocess.run([sys.executable, "-c", PROBE, "run", *run_args], env=umiak_env(),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_memory_past_the_first_memory_slot(platform):
    # 112 MiB touched page by page, then 32 MiB of brk: well past the 64 MiB KVM gets at start
    # (the next slots: 64-128 MiB and 128-256 MiB).
    compare(platform, [build("touch_high_memory", "glibc-static"), "112"], options=["-m", "256M"])


def test_a_static_hello_imports_no_more_than_it_needs(platform):
    if platform != "kvm":   # Unicorn imports what it likes; the minimal profile has no emu
        pytest.skip("the kvm platform's start path")
    hello = str(build("hello", "glibc-static"))
    # The normal start (a cached one skips glibc's start-up, and its readlink of /proc/self/exe).
    full = imported(f"--platform={platform}", "--no-snapshot-cache", hello)
    # dataclasses pulls inspect, dis, ast, tokenize; uuid pulls platform and its regexes.
    assert not full & {"dataclasses", "inspect", "ast", "dis", "uuid", "platform"}, full
    assert "umiak.kernel.vfs.procfs" in full   # glibc's static start reads /proc/self/exe
    minimal = imported(f"--platform={platform}", "--no-snapshot-cache", "--profile", "minimal", hello)
    assert minimal < full | {"umiak.config", "umiak.config.runtime", "umiak.digest", "_sha256"}, minimal - full
    left_out = ("umiak.kernel.net", "umiak.trace", "umiak.platform.emu", "umiak.platform.kvm.exitless",
                "umiak.kernel.sysvipc", "umiak.kernel.inotify", "umiak.kernel.vfs.procfs",
                "umiak.kernel.syscalls.fork", "umiak.kernel.syscalls.sysv", "umiak.kernel.syscalls.inotify",
                "umiak.kernel.syscalls.net")
    if os.environ.get("UMIAK_EXITLESS", "n") != "n":   # the kvm-exitless modes: asked for, so loaded
        left_out = tuple(m for m in left_out if m != "umiak.platform.kvm.exitless")
    assert [m for m in minimal if m.startswith(left_out)] == [], minimal
