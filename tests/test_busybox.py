"""Debian's busybox-static applets on real files, natively and under umiak.

busybox is run as `/bin/busybox APPLET ARGS`, in a temporary directory holding
the files below; `{d}` in an argument is that directory. Only applets that need
no fork run here: a unikernel runs one process (`sh -c` with builtins only).
"""

import os
import shutil

import pytest

from harness import compare

BUSYBOX = shutil.which("busybox") or "/bin/busybox"

WORDS = "".join(f"{w}\n" for w in ["pear", "apple", "fig", "banana", "apple", "cherry", "date", "fig"])
NUMBERS = "".join(f"{n}\n" for n in [10, 9, 100, -3, 42, 7, 0, 1000, 55])
TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog {i * i}\n" for i in range(300))

CASES = [
    ("echo", ["echo", "hello", "world"], None),
    ("echo-n", ["echo", "-n", "no newline"], None),
    ("echo-e", ["echo", "-e", "tab\\there\\nnext"], None),
    ("printf", ["printf", "%s-%05d-%x-%.2f\\n", "abc", "42", "255", "3.14159"], None),
    ("cat", ["cat", "text.txt"], None),
    ("cat-two", ["cat", "words.txt", "{d}/numbers.txt"], None),
    ("cat-stdin", ["cat"], TEXT.encode()),
    ("cat-missing", ["cat", "missing.txt"], None),
    ("wc", ["wc", "text.txt"], None),
    ("wc-lwc", ["wc", "-l", "-w", "-c", "words.txt", "numbers.txt"], None),
    ("sort", ["sort", "words.txt"], None),
    ("sort-nr", ["sort", "-n", "-r", "numbers.txt"], None),
    ("sort-u", ["sort", "-u", "words.txt"], None),
    ("sha256sum", ["sha256sum", "text.txt", "words.txt"], None),
    ("md5sum-stdin", ["md5sum"], TEXT.encode()),
    ("expr-mul", ["expr", "6", "*", "7"], None),
    ("expr-false", ["expr", "0", "+", "0"], None),
    ("expr-error", ["expr", "1", "+"], None),
    ("expr-string", ["expr", "length", "umiak"], None),
    ("seq", ["seq", "1", "10"], None),
    ("seq-down", ["seq", "5", "-2", "-5"], None),
    ("head", ["head", "-n", "3", "text.txt"], None),
    ("head-c", ["head", "-c", "25", "text.txt"], None),
    ("tail", ["tail", "-n", "2", "text.txt"], None),
    ("tr", ["tr", "a-z", "A-Z"], WORDS.encode()),
    ("tr-d", ["tr", "-d", "aeiou"], TEXT.encode()),
    ("uname", ["uname", "-s", "-m"], None),
    ("basename", ["basename", "/a/b/c.txt", ".txt"], None),
    ("dirname", ["dirname", "/a/b/c.txt"], None),
    ("true", ["true"], None),
    ("false", ["false"], None),
    ("ls", ["ls", "-1", "{d}"], None),
    ("ls-a", ["ls", "-a", "-1", "{d}/dir"], None),
    ("ls-ln", ["ls", "-ln", "{d}/dir"], None),
    ("ls-missing", ["ls", "{d}/missing"], None),
    ("grep", ["grep", "-n", "fox jumps over the lazy dog 1", "text.txt"], None),
    ("grep-nomatch", ["grep", "zebra", "words.txt"], None),
    ("cut", ["cut", "-d", " ", "-f", "1,2", "text.txt"], None),
    ("uniq-c", ["uniq", "-c"], "".join(sorted(WORDS.splitlines(True))).encode()),
    ("sed", ["sed", "-n", "s/quick/slow/p", "text.txt"], None),
    ("awk", ["awk", "{ s += $NF } END { print s, NR }", "text.txt"], None),
    ("od", ["od", "-A", "x", "-t", "x1", "words.txt"], None),
    ("gzip", ["gzip", "-c", "-n", "text.txt"], None),
    ("stat", ["stat", "-c", "%n %s %F %a", "text.txt", "dir", "link"], None),
    ("readlink", ["readlink", "link"], None),
    ("pwd", ["pwd"], None),
    ("env", ["env"], None),
    ("id", ["id", "-u"], None),
    ("sleep", ["sleep", "0.05"], None),
    ("sh-echo", ["sh", "-c", "echo hi from sh"], None),
    ("sh-builtins", ["sh", "-c", "x=3; for i in 1 2 $x; do echo item $i; done; test -f text.txt && echo exists; exit 7"], None),
    ("sh-read", ["sh", "-c", "while read a; do echo got $a; done"], WORDS.encode()),
]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "words.txt").write_text(WORDS)
    (tmp_path / "numbers.txt").write_text(NUMBERS)
    (tmp_path / "text.txt").write_text(TEXT)
    d = tmp_path / "dir"
    d.mkdir()
    for name in ["b", "a", "c.txt", ".hidden"]:
        (d / name).write_text(name)
    (d / "subdir").mkdir()
    os.utime(d / "a", (1_600_000_000, 1_600_000_000))
    os.symlink("text.txt", tmp_path / "link")
    return tmp_path


@pytest.mark.parametrize("args,stdin", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_applet(platform, files, args, stdin):
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox is not installed (Debian: apt-get install busybox-static)")
    argv = [BUSYBOX, *[a.replace("{d}", str(files)) for a in args]]
    compare(platform, argv, cwd=files, input=stdin)
