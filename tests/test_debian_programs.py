"""Real, dynamically linked Debian programs through Linux's own ld.so and glibc,
run natively and under umiak with identical output required (issue 3)."""

import os
import shutil
import sqlite3
import subprocess

import pytest

from harness import compare, run_native, run_umiak


def need(path: str, package: str) -> str:
    if not os.path.exists(path):
        pytest.skip(f"{path} is not installed (Debian package {package})")
    return path


@pytest.fixture
def tree(tmp_path):
    """A small directory tree with text and binary files (the guest sees it read-only)."""
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "a.txt").write_text("pear\napple\nfig\nbanana\napple\n")
    (tmp_path / "sub" / "b.txt").write_text("hello world\n" * 50)
    (tmp_path / "sub" / "deeper" / "c.bin").write_bytes(bytes(range(256)) * 64)
    (tmp_path / "link").symlink_to("a.txt")
    for p in [tmp_path, *tmp_path.rglob("*")]:
        os.utime(p, (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    return tmp_path


def test_ls_la(platform, tree):
    compare(platform, ["/bin/ls", "-la", "--time-style=+%Y", str(tree), str(tree / "sub")])


def test_ls_la_etc(platform):
    """/etc/hostname and /etc/hosts are the guest's own views: with the host's name they match."""
    import socket
    compare(platform, ["/bin/ls", "-la", "/etc"], options=[f"--hostname={socket.gethostname()}"])


def test_cat_sort_sha256sum(platform, tree):
    compare(platform, ["/bin/cat", str(tree / "a.txt"), str(tree / "link")])
    compare(platform, ["/usr/bin/sort", "-u", str(tree / "a.txt")])
    compare(platform, ["/usr/bin/sha256sum", str(tree / "a.txt"), str(tree / "sub" / "deeper" / "c.bin")])


def test_find(platform, tree):
    compare(platform, ["/usr/bin/find", str(tree), "-name", "*.txt", "-o", "-type", "l", "-print"], cwd=tree)
    compare(platform, ["/usr/bin/find", ".", "-type", "f", "-size", "+1k"], cwd=tree)


def test_gzip_gunzip_through_stdio(platform, tree):
    data = (tree / "sub" / "b.txt").read_bytes()
    native = compare(platform, ["/bin/gzip", "-9", "-n", "-c"], input=data)
    compare(platform, ["/bin/gunzip", "-c"], input=native.stdout)


def test_tar_lists_and_extracts_to_stdout(platform, tree):
    archive = tree.parent / "t.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(tree), "."], check=True)
    compare(platform, ["/bin/tar", "-tvf", str(archive)])
    compare(platform, ["/bin/tar", "-xOf", str(archive), "./a.txt"])


def test_tar_creates_on_a_volume(platform, tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("vol")
    r = run_umiak(platform, ["/bin/tar", "-cf", "/out/t.tar", "-C", str(tree), "a.txt", "sub"],
                  options=["-v", f"{out}:/out"])
    assert r.status == 0, r.describe()
    listing = subprocess.run(["tar", "-tf", str(out / "t.tar")], capture_output=True, text=True, check=True)
    assert listing.stdout.split() == ["a.txt", "sub/", "sub/deeper/", "sub/deeper/c.bin", "sub/b.txt"] or \
        sorted(listing.stdout.split()) == sorted(["a.txt", "sub/", "sub/deeper/", "sub/deeper/c.bin", "sub/b.txt"])


def test_sqlite3_database_on_a_volume(platform, tmp_path_factory):
    need("/usr/bin/sqlite3", "sqlite3")
    data = tmp_path_factory.mktemp("data")
    sql = ("create table t(x integer, y text); insert into t values(1, 'one'), (2, 'two');"
           "select x, y from t order by x;")
    r = run_umiak(platform, ["/usr/bin/sqlite3", "/data/db.sqlite", sql], options=["-v", f"{data}:/data"])
    assert (r.status, r.stdout) == (0, b"1|one\n2|two\n"), r.describe()
    with sqlite3.connect(data / "db.sqlite") as db:   # a valid database on the host afterwards
        assert db.execute("select sum(x) from t").fetchone() == (3,)
    # and natively the same query over the same file gives the same answer
    compare(platform, ["/usr/bin/sqlite3", str(data / "db.sqlite"), "select y from t order by x desc;"])


def test_lua_script(platform, tmp_path):
    lua = need("/usr/bin/lua5.4", "lua5.4")
    script = tmp_path / "s.lua"
    script.write_text("local t = {}\nfor i = 1, 10 do t[#t+1] = i * i end\n"
                      "print(table.concat(t, ','))\nprint(string.format('%5.2f', math.pi))\n"
                      "local f = io.open(arg[0]); print(#f:read('a')); f:close()\nos.exit(3)\n")
    compare(platform, [lua, str(script)])


PY_STDLIB = ("import json, hashlib, sqlite3, zlib, re, decimal\n"
             "print(json.dumps({'a': [1, 2, {'b': None}]}, sort_keys=True))\n"
             "print(hashlib.sha256(b'umiak').hexdigest())\n"
             "db = sqlite3.connect(':memory:'); db.execute('create table t(x)');\n"
             "db.executemany('insert into t values (?)', [(i,) for i in range(100)])\n"
             "print(db.execute('select sum(x) from t').fetchone())\n"
             "print(len(zlib.compress(b'x' * 10000)))\n"
             "print(re.findall(r'\\d+', 'a1b22c333'))\n"
             "print(decimal.Decimal(1) / decimal.Decimal(7))\n")


def test_python3_dash_c_stdlib(platform):
    compare(platform, [need("/usr/bin/python3", "python3"), "-c", PY_STDLIB])


def test_python3_dash_m(platform, tmp_path):
    compare(platform, [need("/usr/bin/python3", "python3"), "-m", "json.tool"], input=b'{"b": 1, "a": [1,2]}')


def test_perl(platform):
    compare(platform, [need("/usr/bin/perl", "perl-base"), "-e",
                       'my %h = (b => 2, a => 1); print join(",", map {"$_=$h{$_}"} sort keys %h), "\\n";'
                       ' printf("%.3f\\n", atan2(1, 1) * 4); exit 7'])


def test_ld_so_run_directly(platform):
    compare(platform, ["/lib64/ld-linux-x86-64.so.2", "/bin/echo", "through", "ld.so"])


def test_ld_so_list(platform):
    """ld.so --list: the same libraries; load addresses differ run to run (ASLR)."""
    import re
    argv = ["/lib64/ld-linux-x86-64.so.2", "--list", "/bin/ls"]
    native, umiak = run_native(argv), run_umiak(platform, argv)
    strip = lambda b: re.sub(rb"\(0x[0-9a-f]+\)", b"(ADDR)", b)  # noqa: E731
    assert (umiak.status, strip(umiak.stdout), umiak.stderr) == (native.status, strip(native.stdout), native.stderr), \
        umiak.describe()


def test_missing_library_is_ld_so_message_and_127(platform, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    (tmp_path / "lib.c").write_text("int f(void) { return 3; }\n")
    (tmp_path / "main.c").write_text("int f(void); int main(void) { return f(); }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(tmp_path / "libgone.so"), str(tmp_path / "lib.c")], check=True)
    subprocess.run(["gcc", "-o", str(tmp_path / "prog"), str(tmp_path / "main.c"), f"-L{tmp_path}", "-lgone"],
                   check=True)
    native = compare(platform, [tmp_path / "prog"])
    assert native.status == 127
