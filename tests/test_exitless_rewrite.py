"""Rewritten syscall sites (issue 15 §3, kernel/rewrite.py): with the exitless path on kvm,
`mov $nr,%eax; syscall` sites of the program's text (glibc's syscall() and read() too) become
jumps into the vCPU's stub.

On kvm these run umiak as "kvm-exitless" (the exitless path forced on, sites rewritten
unless --no-rewrite); on emu they check the same programs' semantics.
"""

import re

import pytest
from harness import build, compare, run_native, run_umiak

PTHREAD = ("-pthread",)
VARIANTS = ("glibc-static", "musl-static", "glibc-dynamic")


def forced(platform: str) -> str:
    return "kvm-exitless" if platform == "kvm" else platform


def _rewritten(stderr: bytes) -> int:
    m = re.search(rb"(\d+) syscall sites rewritten", stderr)
    return int(m.group(1)) if m else 0


@pytest.mark.parametrize("link", ("glibc-static", "glibc-dynamic"))
def test_sites_are_rewritten(platform, link):
    """The other tests test something: sites are rewritten, in the executable and in libc.so,
    the program sees it in its code (as under gVisor's systrap), /proc/self/maps does not
    show the trampolines."""
    if platform != "kvm":
        pytest.skip("rewritten sites are kvm's exitless path")
    prog = [str(build("rewrite_code", link))]
    native = run_native(prog)
    r = run_umiak("kvm-exitless", prog, options=["--verbose"])
    assert r.status == 0 and _rewritten(r.stderr) > 0, r.describe()
    got, want = r.stdout.decode().splitlines(), native.stdout.decode().splitlines()
    assert got[0].startswith("getppid: e9 ") and got[0].endswith(" 0f 05"), got
    assert want[2] == "syscall: 4c 8b 4c 24 08 0f 05" and got[2].startswith("syscall: e9 "), got
    assert got[3] == want[3] == "maps below 64 KiB: 0"
    assert got[4] == want[4] == "anonymous executable maps: 0"
    # read(): its `xor %eax,%eax` a jump into the padding
    assert want[5] == "read: 31 c0 0f 05" and got[5].startswith("read: eb ") and got[5].endswith(" 0f 05"), got


@pytest.mark.parametrize("link", VARIANTS)
def test_no_rewrite_keeps_the_code(platform, link):
    """--no-rewrite: a program reading its own code sees the bytes a native run sees."""
    compare(forced(platform), [build("rewrite_code", link)], options=["--no-rewrite"])


def test_fault_at_a_rewritten_site(platform):
    """si_addr, RIP and si_code of a fault at a rewritten site are a native run's."""
    compare(forced(platform), [build("rewrite_fault", "glibc-static")])


@pytest.mark.parametrize("link", VARIANTS)
def test_threads_at_rewritten_sites(platform, link):
    """Eight threads in rewritten wrappers at once: each call answers for its own thread."""
    compare(forced(platform), [build("rewrite_threads", link, PTHREAD)])


def test_signals_in_rewritten_calls(platform):
    """A handler interrupting rewritten calls sees its RIP in the program's text."""
    compare(forced(platform), [build("rewrite_signal", "glibc-static")])


@pytest.mark.parametrize("link", ("glibc-static", "musl-static"))
def test_fresh_sites_rewritten_while_threads_run_them(platform, link):
    """Sixteen threads reach 64 sites nobody called before, at once: each is rewritten while
    the others may be running it (they are held out of the guest for the write), no thread
    crashes, and every answer is the calling thread's."""
    prog = [build("rewrite_race", link, PTHREAD)]
    compare(forced(platform), prog)
    if platform == "kvm":
        r = run_umiak("kvm-exitless", [str(p) for p in prog], options=["--verbose"])
        assert r.status == 0 and _rewritten(r.stderr) >= 64, r.describe()


@pytest.mark.parametrize("link", ("glibc-static", "glibc-dynamic"))
def test_code_put_back_when_the_program_takes_gs(platform, link):
    """A program setting its own %gs gets every rewritten site of its address space back as
    it was (read()'s padding too), and its calls go on making real `syscall`s."""
    compare(forced(platform), [build("rewrite_gs", link)])
