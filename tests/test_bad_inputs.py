"""Programs umiak cannot run: one clear line on stderr, status 125, never a traceback.

125 is umiak's own failure status (as `docker run` uses it), so it is never
mistaken for the guest's. Broken ELF files are crafted here from real ones.
"""

import os
import struct
import subprocess

import pytest

from harness import EXIT_UMIAK_FAILURE, GUEST_SRC, build, run_umiak

PT_INTERP = 3


def elf32_header() -> bytes:
    """A 52-byte ELFCLASS32 i386 executable header (no multilib needed)."""
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    return ident + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, 0x8048000, 52, 0, 0, 52, 32, 1, 40, 0, 0)


def with_machine(data: bytes, machine: int) -> bytes:
    return data[:18] + struct.pack("<H", machine) + data[20:]


def with_missing_interpreter(data: bytes) -> bytes:
    """Rewrite PT_INTERP's path in place to one that does not exist (same length)."""
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        ptype, _flags, off, _va, _pa, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if ptype == PT_INTERP:
            old = data[off:off + filesz]
            new = b"/nonexistent/ld"[:filesz - 1].ljust(filesz - 1, b"x") + b"\0"
            return data[:off] + new + data[off + len(old):]
    raise AssertionError("no PT_INTERP in a dynamic program")


def write_exec(path, data: bytes, mode=0o755):
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def hello_bytes() -> bytes:
    return build("hello", "glibc-static").read_bytes()


CASES = {
    # name: (make(tmp_path) -> path, expected substring of the one stderr line; {p} = path)
    "text-file": (lambda d: write_exec(d / "notes.txt", b"just some text\n"),
                  "{p}: not an ELF executable"),
    "script-missing-interpreter": (lambda d: write_exec(d / "script.sh", b"#!/nonexistent/sh -e\necho hi\n"),
                                   "/nonexistent/sh: No such file or directory"),
    "empty-file": (lambda d: write_exec(d / "empty", b""), "{p}: not an ELF executable"),
    "elf-magic-only": (lambda d: write_exec(d / "tiny", b"\x7fELF\x02\x01\x01"),
                       "{p}: truncated ELF file"),
    "truncated-headers": (lambda d: write_exec(d / "trunc100", hello_bytes()[:100]),
                          "{p}: truncated ELF file"),
    "truncated-segments": (lambda d: write_exec(d / "trunc4k", hello_bytes()[:4096]),
                           "{p}: truncated ELF file"),
    "elf32": (lambda d: write_exec(d / "i386", elf32_header()),
              "{p}: 32-bit ELF is not supported"),
    "aarch64": (lambda d: write_exec(d / "arm64", with_machine(hello_bytes(), 183)),
                "{p}: ELF for AArch64, not x86-64"),
    "missing": (lambda d: d / "does-not-exist", "{p}: No such file or directory"),
    "directory": (lambda d: d, "{p}: Is a directory"),
    "not-executable": (lambda d: write_exec(d / "noexec", hello_bytes(), 0o644),
                       "{p}: Permission denied"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_program(platform, tmp_path, case):
    make, expected = CASES[case]
    path = make(tmp_path)
    r = run_umiak(platform, [path])
    want = expected.format(p=path)
    assert r.status == EXIT_UMIAK_FAILURE, r.describe()
    assert r.stdout == b"", r.describe()
    text = r.stderr.decode()
    assert want in text, f"expected {want!r} in stderr\n" + r.describe()
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1, r.describe()


def test_script_runs_through_its_interpreter(platform, tmp_path):
    """#! scripts run as Linux runs them: [interpreter, optional arg, script, args...]."""
    from harness import compare
    script = write_exec(tmp_path / "s.sh", b"#!/bin/sh -e\necho \"$0 $*\"\nexec /bin/echo replaced\n")
    compare(platform, [script, "a", "b c"])


def test_relocatable_object(platform, tmp_path):
    obj = tmp_path / "hello.o"
    subprocess.run(["gcc", "-c", "-o", str(obj), str(GUEST_SRC / "hello.c")], check=True)
    os.chmod(obj, 0o755)
    r = run_umiak(platform, [obj])
    assert r.status == EXIT_UMIAK_FAILURE, r.describe()
    assert f"{obj}: not an executable but a relocatable object" in r.stderr.decode(), r.describe()


def test_missing_interpreter(platform, tmp_path):
    """A dynamic program whose PT_INTERP does not exist names the interpreter."""
    src = GUEST_SRC / "hello.c"
    dyn = tmp_path / "hello-dyn"
    subprocess.run(["gcc", "-o", str(dyn), str(src)], check=True)
    broken = write_exec(tmp_path / "hello-badinterp", with_missing_interpreter(dyn.read_bytes()))
    r = run_umiak(platform, [broken])
    assert r.status == EXIT_UMIAK_FAILURE, r.describe()
    assert "interpreter /nonexistent/ld" in r.stderr.decode(), r.describe()
    assert "Traceback" not in r.stderr.decode(), r.describe()


def test_too_little_guest_memory(platform):
    r = run_umiak(platform, [build("hello", "glibc-static")], options=["-m", "1M"])
    assert r.status == EXIT_UMIAK_FAILURE, r.describe()
    assert "too small" in r.stderr.decode(), r.describe()
    assert "Traceback" not in r.stderr.decode(), r.describe()


def test_guest_out_of_memory_is_sigkill_with_a_hint(platform):
    """A touched page no frame can back: SIGKILL as from Linux's OOM killer, and -m named."""
    r = run_umiak(platform, [build("touch_memory", "glibc-static"), "touch", "256"], options=["-m", "64M"])
    err = r.stderr.decode()
    assert (r.status, r.stdout) == (137, b"mapped\n"), r.describe()
    assert "umiak: guest out of memory (64 MiB; raise it with -m)" in err, r.describe()
    assert err.splitlines()[-1] == "Killed" and "Traceback" not in err, r.describe()


def test_map_populate_beyond_guest_memory_is_enomem(platform):
    r = run_umiak(platform, [build("touch_memory", "glibc-static"), "populate", "256"], options=["-m", "64M"])
    assert (r.status, r.stdout) == (3, b"mmap: ENOMEM\n"), r.describe()


def test_bad_memory_size(platform):
    r = run_umiak(platform, [build("hello", "glibc-static")], options=["-m", "lots"])
    assert r.status == EXIT_UMIAK_FAILURE, r.describe()
    assert "bad memory size 'lots'" in r.stderr.decode(), r.describe()


def test_no_program(platform):
    r = run_umiak(platform, [])
    assert r.status != 0 and "Traceback" not in r.stderr.decode(), r.describe()


def test_missing_volume_is_an_error_before_the_vm_starts(platform, tmp_path):
    missing = tmp_path / "not-there"
    r = run_umiak(platform, [build("hello", "glibc-static")], options=["-v", f"{missing}:/data"])
    assert r.status == EXIT_UMIAK_FAILURE, r.describe()
    assert r.stdout == b"", r.describe()
    assert f"{missing}: No such file or directory" in r.stderr.decode(), r.describe()
    assert "Traceback" not in r.stderr.decode()
