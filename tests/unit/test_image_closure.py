"""umiak.elfdeps (the ELF closure resolver) against glibc's own loader: the libraries it finds by reading ELF files
must be those `ldd` (ld.so --list) loads, for host programs and for RPATH / RUNPATH / $ORIGIN
layouts compiled here; what ld.so cannot find, closure names with the object that needs it.

In-process, no VM. Needs pyelftools and gcc.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("elftools", reason="pyelftools is not installed (pip install pyelftools)")

from umiak.elfdeps import MissingLibrary, closure, resolve  # noqa: E402


def ldd(path) -> tuple[set[str], list[str]]:
    """(real paths ld.so loads, names it does not find)."""
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True).stdout
    found, missing = set(), []
    for line in out.splitlines():
        line = line.strip()
        if "=> not found" in line:
            missing.append(line.split()[0])
        elif "=>" in line:
            p = line.split("=>")[1].split("(")[0].strip()
            if p:
                found.add(os.path.realpath(p))
        elif line.startswith("/"):
            found.add(os.path.realpath(line.split()[0]))
    return found, missing


def ours(path) -> set[str]:
    return {os.path.realpath(p) for p, _by in closure(str(path))[1:]}


@pytest.mark.parametrize("prog", ["/bin/ls", "/usr/bin/sqlite3", "/usr/bin/python3", "/usr/bin/redis-server",
                                  "/usr/bin/ssh", "/usr/bin/curl"])
def test_host_programs_match_ldd(prog):
    if not os.path.exists(prog):
        pytest.skip(f"{prog} is not installed")
    want, missing = ldd(prog)
    assert not missing
    assert ours(prog) == want


def _cc(*args):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    subprocess.run(["gcc", *map(str, args)], check=True, capture_output=True)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """prog -> liba (in $ORIGIN/lib) -> libb (in $ORIGIN/lib/deep, named by liba's own RUNPATH),
    and libc (only in $ORIGIN/other)."""
    (tmp_path / "lib" / "deep").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "b.c").write_text("int b(void) { return 2; }\n")
    (tmp_path / "c.c").write_text("int c(void) { return 3; }\n")
    (tmp_path / "a.c").write_text("int b(void);\nint a(void) { return b() + 1; }\n")
    (tmp_path / "m.c").write_text("int a(void);\nint main(void) { return a(); }\n")
    _cc("-shared", "-fPIC", "-o", tmp_path / "lib/deep/libb.so", tmp_path / "b.c")
    _cc("-shared", "-fPIC", "-o", tmp_path / "other/libc3.so", tmp_path / "c.c")
    _cc("-shared", "-fPIC", "-o", tmp_path / "lib/liba.so", tmp_path / "a.c", f"-L{tmp_path}/lib/deep", "-lb",
        "-Wl,-rpath,$ORIGIN/deep")
    return tmp_path


def test_runpath_origin(tree):
    _cc("-o", tree / "prog", tree / "m.c", f"-L{tree}/lib", "-la", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib")
    want, missing = ldd(tree / "prog")
    assert not missing and ours(tree / "prog") == want
    by = {os.path.basename(p): b for p, b in closure(str(tree / "prog"))}
    assert by["liba.so"] == str(tree / "prog") and by["libb.so"] == str(tree / "lib/liba.so")


def test_rpath_is_inherited_runpath_is_not(tree):
    # libd needs libc3, found only through the program's search path.
    (tree / "d.c").write_text("int c(void);\nint d(void) { return c(); }\n")
    (tree / "m2.c").write_text("int d(void);\nint main(void) { return d(); }\n")
    _cc("-shared", "-fPIC", "-o", tree / "lib/libd.so", tree / "d.c", f"-L{tree}/other", "-lc3")
    rp = f"-Wl,-rpath,$ORIGIN/lib:$ORIGIN/other,-rpath-link,{tree}/other"
    _cc("-o", tree / "old", tree / "m2.c", f"-L{tree}/lib", "-ld", "-Wl,--disable-new-dtags", rp)
    _cc("-o", tree / "new", tree / "m2.c", f"-L{tree}/lib", "-ld", "-Wl,--enable-new-dtags", rp)
    want, missing = ldd(tree / "old")          # DT_RPATH: libd's lookup uses the program's
    assert not missing and ours(tree / "old") == want
    _want, missing = ldd(tree / "new")         # DT_RUNPATH: only for the program's own needs
    assert missing == ["libc3.so"]
    with pytest.raises(MissingLibrary) as e:
        closure(str(tree / "new"))
    assert str(e.value).startswith(f"libc3.so (needed by {tree}/lib/libd.so) not found")
    lost: list = []
    closure(str(tree / "new"), missing=lost)
    assert lost == [("libc3.so", f"{tree}/lib/libd.so")]


def test_under_another_root(tree):
    """With root=DIR, paths are the guest's: absolute symlinks and the ld.so.cache are DIR's."""
    root = tree / "root"
    (root / "opt/app/lib").mkdir(parents=True)
    _cc("-o", root / "opt/app/prog", tree / "m.c", f"-L{tree}/lib", "-la", "-Wl,-rpath,$ORIGIN/lib")
    shutil.copy(tree / "lib/liba.so", root / "opt/app/lib/liba.so")
    (root / "opt/app/lib/deep").mkdir()
    shutil.copy(tree / "lib/deep/libb.so", root / "opt/app/lib/deep/libb.so")
    (root / "usr/bin").mkdir(parents=True)
    os.symlink("/opt/app/prog", root / "usr/bin/prog")          # absolute: the root's /opt
    for lib in ("libc.so.6",):
        (root / "lib/x86_64-linux-gnu").mkdir(parents=True, exist_ok=True)
        shutil.copy(f"/lib/x86_64-linux-gnu/{lib}", root / "lib/x86_64-linux-gnu" / lib)
    (root / "lib64").mkdir()
    shutil.copy("/lib64/ld-linux-x86-64.so.2", root / "lib64/ld-linux-x86-64.so.2")
    assert resolve(str(root), "/usr/bin/prog") == "/opt/app/prog"
    got = [p for p, _ in closure("/usr/bin/prog", root=str(root))]
    assert got == ["/usr/bin/prog", "/lib64/ld-linux-x86-64.so.2", "/opt/app/lib/liba.so",
                   "/lib/x86_64-linux-gnu/libc.so.6", "/opt/app/lib/deep/libb.so"]
