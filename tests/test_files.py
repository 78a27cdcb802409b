"""Files and directories of the host, seen read-only by the guest.

The test creates real files in a temporary directory; the guest reads them by
the same absolute paths (umiak shows the host file system read-only).
"""

import os

from harness import build, compare

PASSWD = "".join(f"user{i}:x:{1000 + i}:{1000 + i}:User {i},,,:/home/user{i}:/bin/sh\n"
                 for i in range(200))


def make_tree(root):
    (root / "passwd").write_text(PASSWD)
    os.symlink("passwd", root / "passwd-link")
    sub = root / "tree"
    sub.mkdir()
    for name in ["b.txt", "a.txt", "zeta", "Capital", "with space", "ünï"]:
        (sub / name).write_text(name * 3)
    (sub / "sub").mkdir()
    (sub / "sub" / "inner").write_text("x")
    for i in range(60):  # enough entries to need several getdents64 calls
        (sub / f"many-{i:03d}").write_bytes(b"")
    os.symlink("a.txt", sub / "link-to-a")
    os.symlink("missing", sub / "dangling")
    return sub


def test_read_file(platform, variant, tmp_path):
    make_tree(tmp_path)
    compare(platform, [build("files", variant), tmp_path / "passwd", tmp_path / "passwd-link", tmp_path])


def test_read_file_relative_to_cwd(platform, variant, tmp_path):
    make_tree(tmp_path)
    compare(platform, [build("files", variant), "passwd", "passwd-link", "."], cwd=tmp_path)


def test_directory_listing(platform, variant, tmp_path):
    sub = make_tree(tmp_path)
    compare(platform, [build("dirlist", variant), sub, os.path.realpath(sub)])


def test_empty_directory_listing(platform, variant, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    compare(platform, [build("dirlist", variant), empty, os.path.realpath(empty)])


def test_errno_for_bad_paths(platform, variant, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "file").write_text("content\n")
    os.chmod(scratch / "file", 0o644)
    (scratch / "dir").mkdir()
    os.symlink("file", scratch / "link")
    os.symlink("missing", scratch / "dangling")
    os.symlink("loop2", scratch / "loop1")
    os.symlink("loop1", scratch / "loop2")
    compare(platform, [build("errno_paths", variant), scratch])


def test_read_into_every_kind_of_buffer(platform, variant, tmp_path):
    """read/pread/readv/preadv straight into guest memory (rw._read_direct): bad tails,
    copy-on-write pages after fork, lazily backed, private and shared file mappings."""
    data = tmp_path / "data"
    data.write_bytes(bytes((i * 7 + (i >> 9)) & 0xFF for i in range((3 << 19) + 1234)))
    compare(platform, [build("read_into", variant), data])
