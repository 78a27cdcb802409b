"""The writable layers of the VFS: the root's in-memory overlay, tmpfs, volumes, memfd,
file locks, SIGPIPE, procfs/sysfs contents and the machine's identity files.

Guest programs (tests/guest/vfs_tmpfs.c, vfs_locks.c, vfs_proc.c) run natively on a host
directory and under umiak on tmpfs and on the overlay, and must print the same.
"""

import os
import subprocess

import pytest

from harness import assert_same, build, run_native, run_umiak

PY = "/usr/bin/python3"


def _fresh(d):
    d.mkdir()
    return d


@pytest.mark.parametrize("where", ["tmp", "tmpfs-option", "overlay"])
def test_file_semantics_on_memory_file_systems(platform, variant, tmp_path, where):
    """Links, renames, unlinked-open files, O_TMPFILE, FIFOs, shared mappings... as Linux."""
    prog = build("vfs_tmpfs", variant)
    native = run_native([prog, _fresh(tmp_path / "native")])
    if where == "tmp":            # pytest's tmp_path is under /tmp: the guest's /tmp tmpfs
        guest, options = _fresh(tmp_path / "guest"), []
    elif where == "tmpfs-option":
        guest, options = "/scratch", ["--tmpfs", "/scratch"]
    else:                         # a host directory outside /tmp: the root's overlay
        guest, options = _fresh(tmp_path / "guest"), []
        guest = "/var/tmp" if not os.access("/var/tmp", os.W_OK) else guest
    res = run_umiak(platform, [prog, guest], options=options)
    assert_same(native, res)
    if where != "tmpfs-option":
        assert os.listdir(guest) == [], "the guest's changes reached the host"


def test_locks_memfd_sigpipe(platform, variant, tmp_path):
    prog = build("vfs_locks", variant)
    native = run_native([prog, _fresh(tmp_path / "n")])
    assert_same(native, run_umiak(platform, [prog, _fresh(tmp_path / "u")]))


def test_proc_and_sys(platform, variant):
    prog = build("vfs_proc", variant)
    native = run_native([prog])
    assert_same(native, run_umiak(platform, [prog]))


def test_overlay_changes_stay_in_the_vm(platform, tmp_path):
    d = tmp_path / "tree"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f").write_text("host\n")
    script = f"""
import os, shutil
d = {str(d)!r}
open(d + '/sub/f', 'a').write('guest\\n')
os.rename(d + '/sub', d + '/moved')
os.mkdir(d + '/new'); open(d + '/new/x', 'w').write('x')
os.chmod(d + '/moved/f', 0o600); os.chown(d + '/moved/f', 123, 456)
st = os.stat(d + '/moved/f')
print(open(d + '/moved/f').read().split(), oct(st.st_mode & 0o777), st.st_uid, st.st_gid)
print(sorted(os.listdir(d)), os.path.exists(d + '/sub'))
open('/etc/umiak-was-here', 'w').write('1')
os.unlink('/etc/hostname')
print(os.path.exists('/etc/umiak-was-here'), os.path.exists('/etc/hostname'))
shutil.rmtree(d)
print(os.path.exists(d))
"""
    res = run_umiak(platform, [PY, "-c", script])
    assert res.status == 0, res.describe()
    assert res.stdout.decode().splitlines() == [
        "['host', 'guest'] 0o600 123 456", "['moved', 'new'] False", "True False", "False"]
    assert (d / "sub" / "f").read_text() == "host\n" and sorted(os.listdir(d)) == ["sub"]
    assert not os.path.exists("/etc/umiak-was-here") and os.path.exists("/etc/hostname")


def test_volume_writes_survive_a_crash(platform, tmp_path):
    out = _fresh(tmp_path / "out")
    script = ("f = open('/out/data', 'w'); f.write('written before the crash\\n'); f.flush()\n"
              "import ctypes; ctypes.string_at(0)\n")
    res = run_umiak(platform, [PY, "-c", script], options=["-v", f"{out}:/out"])
    assert res.status == 128 + 11, res.describe()
    assert (out / "data").read_text() == "written before the crash\n"


def test_disk_full_is_enospc(platform, tmp_path):
    """A file volume on the host's /dev/full: every write is ENOSPC, as on a full disk."""
    script = ("import errno\ntry:\n    open('/out/full', 'wb', buffering=0).write(b'x' * 10)\n"
              "except OSError as e:\n    print(errno.errorcode[e.errno])\n")
    res = run_umiak(platform, [PY, "-c", script], options=["-v", "/dev/full:/out/full"])
    assert (res.status, res.stdout) == (0, b"ENOSPC\n"), res.describe()


def test_mount_points_appear_in_listings(platform, tmp_path):
    vol = _fresh(tmp_path / "vol")
    (vol / "inside").write_text("x")
    script = "import os; print('newmount' in os.listdir('/'), os.listdir('/newmount'), os.path.isdir('/scratch'))"
    res = run_umiak(platform, [PY, "-c", script], options=["-v", f"{vol}:/newmount:ro", "--tmpfs", "/scratch"])
    assert res.stdout == b"True ['inside'] True\n", res.describe()


def test_identity_files_follow_hostname_and_user(platform):
    res = run_umiak(platform, ["/usr/bin/id"], options=["--user", "1234:2345", "--hostname", "box"])
    assert res.stdout == b"uid=1234(umiak) gid=2345(umiak) groups=2345(umiak)\n", res.describe()
    res = run_umiak(platform, ["/bin/cat", "/etc/hostname", "/proc/sys/kernel/hostname"],
                    options=["--hostname", "box"])
    assert res.stdout == b"box\nbox\n", res.describe()
    res = run_umiak(platform, ["/usr/bin/getent", "hosts", "box"], options=["--hostname", "box"])
    assert res.status == 0 and res.stdout.split()[1:] == [b"box"], res.describe()
    root = run_umiak(platform, ["/usr/bin/id", "-un"])
    assert root.stdout == b"root\n", root.describe()


def test_non_root_user_is_refused_what_linux_refuses(platform, tmp_path):
    script = """
import os
for what, fn in [('write /etc/shadow', lambda: open('/etc/shadow', 'a')),
                 ('mkdir in /usr', lambda: os.mkdir('/usr/x')),
                 ('chown own file', lambda: (open('/tmp/mine', 'w'), os.chown('/tmp/mine', 0, 0))),
                 ('tmp file', lambda: open('/tmp/ok', 'w'))]:
    try:
        fn(); print(what, 'ok')
    except OSError as e:
        print(what, e.strerror)
"""
    res = run_umiak(platform, [PY, "-c", script], options=["--user", "1000:1000"])
    assert res.stdout.decode().splitlines() == [
        "write /etc/shadow Permission denied", "mkdir in /usr Permission denied",
        "chown own file Operation not permitted", "tmp file ok"], res.describe()


# -- in process: the overlay's bookkeeping ----------------------------------------------------

def _kernel(tmp_path, **opts):
    from test_vfs import _Kernel, _task
    k = _Kernel(**opts)
    return k, _task(k)


def test_overlay_copy_up_keeps_identity_and_whiteouts(tmp_path):
    from umiak.kernel import abi
    root = tmp_path / "root"
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "e" / "f").write_text("lower")
    k, t = _kernel(tmp_path, root=str(root))
    vfs = k.vfs
    before = vfs.stat(t, -100, "/d/e/f")
    f = vfs.open(t, -100, "/d/e/f", abi.O_WRONLY | abi.O_APPEND)
    f.write(b"+upper")
    after = vfs.stat(t, -100, "/d/e/f")
    assert (after.st_ino, after.st_dev) == (before.st_ino, before.st_dev)
    d = vfs.resolve(t, -100, "/d").node
    d.rename("e", vfs.resolve(t, -100, "/").node, "moved", 0)       # a lower directory, renamed
    g = vfs.open(t, -100, "/moved/f", 0)
    assert g.read(100) == b"lower+upper"
    assert [n for _, _, n in vfs.resolve(t, -100, "/d").node.list()] == []
    vfs.resolve(t, -100, "/").node.mkdir("d2", 0o755)
    vfs.resolve(t, -100, "/").node.rmdir("d2")
    assert (root / "d" / "e" / "f").read_text() == "lower" and not (root / "moved").exists()


def test_tmpfs_limit_gives_enospc(tmp_path):
    from umiak.kernel import abi
    from umiak.kernel.errors import SyscallError
    from umiak.kernel.vfs.memfs import MemFS
    k, t = _kernel(tmp_path)
    k.vfs.mount("/small", MemFS(k, limit=8192))
    f = k.vfs.open(t, -100, "/small/x", abi.O_CREAT | abi.O_RDWR, 0o644)
    assert f.write(b"x" * 8192) == 8192
    with pytest.raises(SyscallError) as e:
        f.write(b"y")
    assert e.value.errno == 28
    f.truncate(0)
    f.lseek(0, 0)
    assert f.write(b"z" * 100) == 100


def test_sqlite3_on_a_volume_is_valid_on_the_host(platform, tmp_path):
    if not os.path.exists("/usr/bin/sqlite3"):
        pytest.skip("sqlite3 is not installed")
    data = _fresh(tmp_path / "data")
    res = run_umiak(platform, ["/usr/bin/sqlite3", "/data/db.sqlite",
                               "create table t(x); insert into t values(1); select * from t;"],
                    options=["-v", f"{data}:/data"])
    assert (res.status, res.stdout) == (0, b"1\n"), res.describe()
    out = subprocess.run(["sqlite3", str(data / "db.sqlite"), "pragma integrity_check; select * from t;"],
                         capture_output=True, text=True)
    assert out.stdout == "ok\n1\n"


@pytest.mark.parametrize("where", ["tmp", "overlay"])
def test_old_and_at_entry_points(platform, variant, tmp_path, where):
    """mkdir/link/rename/unlink/chmod/chown/utime(s)/futimesat/dup2/preadv*/vmsplice/F_GETLK
    by their old and *at syscalls give Linux's results (tests/guest/fs_entry_points.c)."""
    prog = build("fs_entry_points", variant)
    native = run_native([prog, _fresh(tmp_path / "native")])
    guest = _fresh(tmp_path / "guest")
    if where == "overlay":
        guest = "/var/tmp" if not os.access("/var/tmp", os.W_OK) else guest
    assert_same(native, run_umiak(platform, [prog, guest]))
