"""The VFS: path resolution, symlinks, `..`, stat, directory listing, descriptors,
pipes, /dev and /proc, the root's write overlay and read-only volumes.

The guest programs (tests/guest/vfs_*.c) run natively and under umiak and must
print the same. The test makes real files in a temporary directory; the guest
sees them at the same paths because umiak's root is the host's file system
(with an in-memory overlay for changes). What umiak does differently on purpose
(EROFS for every change to a `:ro` volume) is checked against fixed expectations
in test_read_only_volume.
"""

import os


from harness import assert_same, build, compare, run_native, run_umiak


def make_tree(d):
    """The directory vfs_files expects (argv[1])."""
    (d / "file").write_bytes(b"0123456789abcdefghijklmnopqrstuvwxyz\n" * 20)
    os.chmod(d / "file", 0o644)
    (d / "empty").write_bytes(b"")
    (d / "big").write_bytes(bytes(i * 7 & 0xFF for i in range(3 << 20)))
    (d / "sub").mkdir()
    (d / "sub" / "inner").write_text("inner\n")
    os.symlink("file", d / "rel")
    os.symlink(str(d / "file"), d / "abs")
    os.symlink("rel", d / "chain")
    os.symlink(f"../{d.name}/file", d / "up")
    os.symlink("sub", d / "subl")
    os.symlink("/", d / "rootlink")
    os.symlink("loop2", d / "loop1")
    os.symlink("loop1", d / "loop2")
    os.symlink("self", d / "self")
    os.symlink("missing", d / "dangling")
    for i in range(30):   # enough entries for several getdents64 calls with a small buffer
        (d / f"many-{i:02d}").write_bytes(b"")
    return d


def test_files_stat_symlinks_descriptors(platform, variant, tmp_path):
    make_tree(tmp_path)
    compare(platform, [build("vfs_files", variant), tmp_path])


def test_devices_proc_pipes(platform, variant, tmp_path):
    prog = build("vfs_special", variant)
    compare(platform, [prog, os.path.realpath(prog)], cwd=tmp_path)


def test_getcwd_of_a_symlinked_working_directory(platform, variant, tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "via")
    prog = build("vfs_special", variant)
    native = compare(platform, [prog, os.path.realpath(prog)], cwd=tmp_path / "via")
    assert native.stdout.startswith(f"getcwd: {os.path.realpath(tmp_path / 'real')}\n".encode())


READ_ONLY_ROOT = """\
open O_WRONLY: -1 EROFS
open O_RDWR: -1 EROFS
open O_RDONLY|O_TRUNC: -1 EROFS
open O_RDONLY: 0
open O_CREAT new: -1 EROFS
open O_CREAT existing O_RDONLY: 0
open O_CREAT|O_EXCL existing: -1 EEXIST
open O_CREAT in missing dir: -1 ENOENT
open dir O_WRONLY: -1 EISDIR
creat: -1 EROFS
mkdir new: -1 EROFS
mkdir existing: -1 EEXIST
mkdir in missing dir: -1 ENOENT
rmdir sub: -1 EROFS
rmdir ..: -1 ENOTEMPTY
unlink file: -1 EROFS
unlink missing: -1 EROFS
unlink in missing dir: -1 ENOENT
rename: -1 EROFS
link: -1 EROFS
link onto existing: -1 EEXIST
symlink: -1 EROFS
symlink onto existing: -1 EEXIST
mknod fifo: -1 EROFS
chmod: -1 EROFS
chmod missing: -1 ENOENT
chown: -1 EROFS
truncate: -1 EROFS
utimensat: -1 EROFS
access W_OK: -1 EROFS
access dir W_OK: -1 EROFS
access R_OK: 0
fchmod: -1 EROFS
statfs: 0
  read-only: yes
write /dev/null still works: 1
"""


def test_read_only_volume(platform, variant, tmp_path):
    """umiak's semantics, not Linux's output here: the host directory is writable natively.
    The errors are those of Linux on a read-only mount (EEXIST/ENOENT first where Linux checks them first)."""
    (tmp_path / "file").write_text("content\n")
    (tmp_path / "sub").mkdir()
    before = sorted(os.listdir(tmp_path))
    res = run_umiak(platform, [build("vfs_rofs", variant), "/ro"], options=["-v", f"{tmp_path}:/ro:ro"])
    assert (res.status, res.stdout.decode(), res.stderr) == (0, READ_ONLY_ROOT, b""), res.describe()
    assert sorted(os.listdir(tmp_path)) == before and (tmp_path / "file").read_text() == "content\n"


def _twin(d):
    d.mkdir()
    (d / "file").write_text("content\n")
    (d / "sub").mkdir()
    return d


def test_overlay_root_changes_like_linux(platform, variant, tmp_path):
    """The root's overlay: the same calls succeed and fail as on a writable Linux directory
    (natively on one copy of the tree, under umiak on another), and the host keeps its files."""
    prog = build("vfs_rofs", variant)
    native = run_native([prog, _twin(tmp_path / "n")])
    guest = _twin(tmp_path / "u")
    res = run_umiak(platform, [prog, guest])
    assert_same(native, res)
    assert sorted(os.listdir(guest)) == ["file", "sub"] and (guest / "file").read_text() == "content\n"


# -- the VFS in-process (no VM): confinement, mounts, loops, openat2, open_exec --------------

class _Kernel:
    """Just what build_vfs and the resolver use: in-memory files keep their pages in host memory."""

    def __init__(self, **opts):
        from types import SimpleNamespace

        from umiak.kernel.pagecache import HeapFrames, PageCaches
        from umiak.options import RunOptions
        self.options = RunOptions(**opts)
        self.hostname = self.options.hostname
        heap = HeapFrames()
        self.frames, self.platform = heap.frames, SimpleNamespace(ram=heap.ram)
        self.page_caches = PageCaches(heap.frames, heap.ram)
        self.processes = {}
        self.ncpus = 1
        self._vfs = None
        self.warnings = []
        import itertools
        self.pipe_inos, self.socket_inos, self.anon_minors = (itertools.count(n) for n in (0x4001, 0x10001, 41))

    @property
    def vfs(self):
        if self._vfs is None:
            from umiak.kernel.vfs import build_vfs
            self._vfs = build_vfs(self)
        return self._vfs

    def warn(self, msg):
        self.warnings.append(msg)

    def current_task(self):
        return None   # no task threads here: the caller passes its task


def _task(kernel, cwd="/"):
    from types import SimpleNamespace

    from umiak.kernel.files import FdTable
    from umiak.kernel.process import Credentials
    proc = SimpleNamespace(pid=1, ppid=0, cwd=cwd, umask=0o022, exe="", creds=Credentials(), fds=FdTable(),
                           argv=[], envp=[], comm=b"t", tasks={}, mm=None, kernel=kernel,
                           rlimits={7: [1024, 1024]})
    kernel.processes[1] = proc
    task = SimpleNamespace(process=proc, fds=proc.fds, kernel=kernel, tid=1, mm=None)
    proc.tasks[1] = task
    return task


def _errno(fn, *args, **kw):
    from umiak.kernel.errors import SyscallError, errno_name
    try:
        fn(*args, **kw)
    except SyscallError as e:
        return errno_name(e.errno)
    return "OK"


def _read_all(f) -> bytes:
    f.lseek(0, 0)
    return f.read(1 << 20)


def test_root_confines_symlinks_and_dotdot(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("guest passwd\n")
    os.symlink("/etc/passwd", root / "abs")
    os.symlink("../../../../../etc/passwd", root / "climb")
    (root / "etc" / "passwd").rename(root / "etc" / "secret")   # passwd is the VM's own view
    for name in ("abs", "climb"):
        os.unlink(root / name)
    os.symlink("/etc/secret", root / "abs")
    os.symlink("../../../../../etc/secret", root / "climb")
    os.symlink("/../../..", root / "up")
    k = _Kernel(root=str(root))
    t = _task(k)
    vfs = k.vfs
    for path in ("/etc/secret", "/abs", "/climb", "/../../etc/secret", "/up/etc/secret", "/etc/../../etc/secret"):
        f = vfs.open(t, -100, path, 0)
        assert _read_all(f) == b"guest passwd\n", path
        f.close()
    assert vfs.resolve(t, -100, "/up/..").path == "/"
    assert vfs.resolve(t, -100, "/climb").path == "/etc/secret"     # the guest path, symlinks resolved


def test_symlink_loops_and_name_limits(tmp_path):
    d = tmp_path
    (d / "target").write_text("x")
    prev = "target"
    for i in range(40):
        os.symlink(prev, d / f"l{i}")
        prev = f"l{i}"
    os.symlink(prev, d / "l40")
    k = _Kernel()
    t = _task(k)
    vfs = k.vfs
    assert vfs.resolve(t, -100, str(d / "l39")).path == str(d / "target")   # 40 links: fine
    assert _errno(vfs.resolve, t, -100, str(d / "l40")) == "ELOOP"          # 41: ELOOP
    assert _errno(vfs.resolve, t, -100, "/" + "x" * 256) == "ENAMETOOLONG"
    assert _errno(vfs.resolve, t, -100, "/" + "x" * 255) == "ENOENT"
    assert _errno(vfs.resolve, t, -100, "/a" * 2048) == "ENAMETOOLONG"
    assert _errno(vfs.resolve, t, -100, "") == "ENOENT"


def test_volumes_and_dotdot_across_mounts(tmp_path):
    root, vol = tmp_path / "root", tmp_path / "vol"
    (root / "data").mkdir(parents=True)
    (root / "secret").write_text("root's\n")
    (root / "data" / "hidden").write_text("under the mount\n")
    vol.mkdir()
    (vol / "x").write_text("volume\n")
    os.symlink("/secret", vol / "abs")
    os.symlink("../secret", vol / "rel")
    k = _Kernel(root=str(root), volumes=[f"{vol}:/data:ro"])
    t = _task(k)
    vfs = k.vfs
    assert _read_all(vfs.open(t, -100, "/data/x", 0)) == b"volume\n"
    assert _errno(vfs.open, t, -100, "/data/hidden", 0) == "ENOENT"          # the mount hides it
    assert _read_all(vfs.open(t, -100, "/data/abs", 0)) == b"root's\n"       # guest root, not host /
    assert _read_all(vfs.open(t, -100, "/data/rel", 0)) == b"root's\n"       # .. leaves the mount
    assert vfs.resolve(t, -100, "/data/..").path == "/"
    assert vfs.resolve(t, -100, "/data/../data/../..").path == "/"
    assert _errno(vfs.open, t, -100, "/data/x", 1) == "EROFS"
    names = sorted(n for _, _, n in vfs.open(t, -100, "/data", 0).dir_entries())
    assert names == [".", "..", "abs", "rel", "x"]


def test_openat2_resolve_flags(tmp_path):
    from umiak.kernel import abi
    d = tmp_path
    (d / "sub").mkdir()
    (d / "sub" / "f").write_text("f")
    (d / "top").write_text("top")
    os.symlink("f", d / "sub" / "link")
    os.symlink("/top", d / "sub" / "abslink")
    (d / "top2").write_text("outside")
    os.symlink("../top", d / "sub" / "uplink")
    k = _Kernel()
    t = _task(k)
    vfs = k.vfs
    dirfd = t.fds.install(vfs.open(t, -100, str(d / "sub"), abi.O_DIRECTORY))
    B, R = abi.RESOLVE_BENEATH, abi.RESOLVE_IN_ROOT
    assert _errno(vfs.open, t, dirfd, "f", 0, 0, B) == "OK"
    assert _errno(vfs.open, t, dirfd, "link", 0, 0, B) == "OK"
    assert _errno(vfs.open, t, dirfd, "../top", 0, 0, B) == "EXDEV"
    assert _errno(vfs.open, t, dirfd, "uplink", 0, 0, B) == "EXDEV"
    assert _errno(vfs.open, t, dirfd, "/etc/passwd", 0, 0, B) == "EXDEV"
    assert _errno(vfs.open, t, dirfd, "abslink", 0, 0, B) == "EXDEV"
    assert _errno(vfs.open, t, dirfd, "link", 0, 0, abi.RESOLVE_NO_SYMLINKS) == "ELOOP"
    assert _errno(vfs.open, t, -100, "/proc/self/exe", 0, 0, abi.RESOLVE_NO_MAGICLINKS) == "ELOOP"
    assert _errno(vfs.open, t, -100, "/proc/self/fd", 0, 0, abi.RESOLVE_NO_XDEV) == "EXDEV"
    # IN_ROOT: '/' and '..' stop at the dirfd
    assert vfs.resolve(t, dirfd, "/f", resolve_flags=R).path == str(d / "sub" / "f")
    assert vfs.resolve(t, dirfd, "../../f", resolve_flags=R).path == str(d / "sub" / "f")
    assert _errno(vfs.resolve, t, dirfd, "abslink", resolve_flags=R) == "ENOENT"   # /top inside sub


def test_open_exec(tmp_path):
    d = tmp_path
    (d / "prog").write_bytes(b"\x7fELF" + bytes(60))
    os.chmod(d / "prog", 0o755)
    (d / "data").write_bytes(b"not executable")
    os.chmod(d / "data", 0o644)
    os.symlink("prog", d / "alias")
    k = _Kernel()
    t = _task(k)
    vfs = k.vfs
    f = vfs.open_exec(t, str(d / "alias"))
    assert f.pread(0, 4) == b"\x7fELF" and f.size() == 64
    assert f.path == str(d / "prog")          # what /proc/self/exe shows
    assert _errno(vfs.open_exec, t, str(d / "data")) == "EACCES"
    assert _errno(vfs.open_exec, t, str(d)) == "EACCES"
    assert _errno(vfs.open_exec, t, str(d / "missing")) == "ENOENT"
    assert _errno(vfs.open_exec, None, "/dev/null") == "EACCES"


def test_writable_volume_changes_reach_the_host(tmp_path):
    from umiak.kernel import abi
    root, vol = tmp_path / "root", tmp_path / "vol"
    root.mkdir()
    vol.mkdir()
    k = _Kernel(root=str(root), volumes=[(str(vol), "/out", False)])
    t = _task(k)
    vfs = k.vfs
    f = vfs.open(t, -100, "/out/new", abi.O_CREAT | abi.O_WRONLY | abi.O_TRUNC, 0o644)
    assert f.write(b"data") == 4
    f.close()
    assert (vol / "new").read_bytes() == b"data"
    parent, name, _ = vfs.resolve_parent(t, -100, "/out/dir")
    parent.node.mkdir(name, 0o755)
    parent.node.rename("new", vfs.resolve(t, -100, "/out/dir").node, "moved", 0)
    assert (vol / "dir" / "moved").read_bytes() == b"data"
    f = vfs.open(t, -100, "/new-on-root", abi.O_CREAT | abi.O_WRONLY, 0o644)   # the overlay takes it
    assert f.write(b"memory") == 6
    assert _read_all(vfs.open(t, -100, "/new-on-root", 0)) == b"memory"
    assert not (root / "new-on-root").exists()


def test_splice_and_vmsplice(platform, variant, tmp_path):
    f = tmp_path / "data.txt"
    f.write_text("".join(f"line {i}: some text\n" for i in range(20)))
    compare(platform, [build("vfs_splice", variant), f])
