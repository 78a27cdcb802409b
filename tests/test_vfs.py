"""The VFS: path resolution, symlinks, `..`, stat, directory listing, descriptors,
pipes, /dev and /proc, and the read-only root.

The guest programs (tests/guest/vfs_*.c) run natively and under umiak and must
print the same. The test makes real files in a temporary directory; the guest
sees them at the same paths because umiak's root is the host's file system,
read-only. What umiak does differently on purpose (EROFS for every change to
the root) is checked against fixed expectations in test_read_only_root.
"""

import os

import pytest

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


def test_files_stat_symlinks_descriptors(platform, variant, workdir):
    make_tree(workdir)
    compare(platform, [build("vfs_files", variant), workdir])


def test_devices_proc_pipes(platform, variant, workdir):
    prog = build("vfs_special", variant)
    compare(platform, [prog, os.path.realpath(prog)], cwd=workdir)


def test_getcwd_of_a_symlinked_working_directory(platform, variant, workdir):
    (workdir / "real").mkdir()
    os.symlink("real", workdir / "via")
    prog = build("vfs_special", variant)
    native = compare(platform, [prog, os.path.realpath(prog)], cwd=workdir / "via")
    assert native.stdout.startswith(f"getcwd: {os.path.realpath(workdir / 'real')}\n".encode())


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


def test_read_only_root(platform, variant, workdir):
    """umiak's semantics, not Linux's output here: the host directory is writable natively.
    The errors are those of Linux on a read-only mount (EEXIST/ENOENT first where Linux checks them first)."""
    (workdir / "file").write_text("content\n")
    (workdir / "sub").mkdir()
    before = sorted(os.listdir(workdir))
    res = run_umiak(platform, [build("vfs_rofs", variant), workdir])
    assert (res.status, res.stdout.decode(), res.stderr) == (0, READ_ONLY_ROOT, b""), res.describe()
    assert sorted(os.listdir(workdir)) == before and (workdir / "file").read_text() == "content\n"
