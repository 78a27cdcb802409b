"""The ext2/3/4 driver (umiak.kernel.vfs.ext4): images made here with mkfs.ext4 -d / mke2fs
from a tree this file builds, checked against debugfs and against the tree itself.

    in-process    every mkfs layout (ext2, ext3, ext4, ^extent, inline_data, 64bit+flex_bg,
                  meta_bg, -N, 1 KiB blocks, 128-byte inodes): every name, type, content,
                  link target, xattr, hard link of the tree; every directory's entries and
                  inodes as `debugfs ls -p` has them; sampled inodes as `debugfs stat` says
    guest         tests/guest/treewalk.c on the image as / under umiak, compared with the same
                  program natively on the tree (static and dynamic, ld.so loading its libraries
                  from the image); /bin/ls and a static hello staged into an image; the overlay's
                  writes over it; volumes over it
    failures      truncated, random, zeroed-superblock, empty images: one line, status 125
    modularity    `umiak run /bin/true` never imports the driver; CONFIG_EXT4=n refuses images

The guest runs use tests/image_run.py (umiak's CLI with RunOptions.image_root set).
"""

import os
import random
import re
import shutil
import stat
import struct
import subprocess
import sys

import pytest

from harness import REPO, assert_same, build, run_native, umiak_env, _run, GUEST_ENV, TESTS

pytestmark = pytest.mark.skipif(not shutil.which("mkfs.ext4") or not shutil.which("debugfs"),
                                reason="e2fsprogs (mkfs.ext4, debugfs) is not installed")

ROOT = os.geteuid() == 0
BIG_UID = 100000            # needs the high 16 bits of i_uid
FAR_FUTURE = 2240000000     # past 2038: needs the epoch bits of the _extra time fields


# -- the tree -------------------------------------------------------------------------------

def _setxattr(path, name, value):
    try:
        os.setxattr(path, name, value, follow_symlinks=False)
        return True
    except OSError:
        return False


def make_tree(top, entries: int):
    """Thousands of files, a deep tree, a directory of `entries` names, symlinks of both kinds,
    hard links, sparse and >4 GiB sparse files, odd names, modes, owners, times and xattrs."""
    rnd = random.Random(13)
    os.makedirs(top)
    for d in range(30):
        sub = os.path.join(top, "tree", f"dir{d:02d}")
        os.makedirs(sub)
        for i in range(50):
            size = rnd.choice([0, 1, 59, 60, 61, 1023, 1024, 4095, 4096, 4097, rnd.randrange(20000)])
            with open(os.path.join(sub, f"file{i:03d}"), "wb") as f:
                f.write(rnd.randbytes(size))
    deep = os.path.join(top, "deep")
    for level in range(14):
        deep = os.path.join(deep, f"level{level}")
    os.makedirs(deep)
    with open(os.path.join(deep, "bottom"), "w") as f:
        f.write("the bottom\n")
    many = os.path.join(top, "many")
    os.makedirs(many)
    for i in range(entries):
        with open(os.path.join(many, f"entry-{i:05d}-{'x' * (i % 40)}"), "w") as f:
            f.write(str(i))
    files = os.path.join(top, "files")
    os.makedirs(files)
    with open(os.path.join(files, "random3m"), "wb") as f:
        f.write(rnd.randbytes(3 << 20))
    open(os.path.join(files, "empty"), "w").close()
    with open(os.path.join(files, "holey"), "wb") as f:      # data, a hole, data
        f.write(b"A" * 8192)
        f.seek(1 << 20)
        f.write(b"B" * 100)
    with open(os.path.join(files, "huge-sparse"), "wb") as f:  # truncate -s 5G, then a few blocks
        f.truncate(5 << 30)
        for off in (4096 * 3, (4 << 30) + 10, (5 << 30) - 5000):
            f.seek(off)
            f.write(b"written at %d\n" % off)
    with open(os.path.join(files, "original"), "w") as f:
        f.write("one inode, three names\n")
    os.link(os.path.join(files, "original"), os.path.join(files, "second-name"))
    os.link(os.path.join(files, "original"), os.path.join(top, "tree", "third-name"))
    links = os.path.join(top, "links")
    os.makedirs(links)
    for name, target in [("fast", "../files/original"), ("slow", "../" + "s" * 200),
                         ("boundary59", "b" * 59), ("boundary60", "b" * 60), ("absolute", "/data/files/empty"),
                         ("to-dir", "../tree"), ("dangling", "nowhere")]:
        os.symlink(target, os.path.join(links, name))
    odd = os.path.join(top, "odd")
    os.makedirs(odd)
    for name in ["héllo wörld", "with space", "n" * 255, "-dash", "tab\tname"]:
        with open(os.path.join(odd, name), "w") as f:
            f.write(name + "\n")
    for name, mode in [("mode600", 0o600), ("setuid", 0o4755), ("exec", 0o755), ("none", 0)]:
        p = os.path.join(odd, name)
        with open(p, "w") as f:
            f.write(name)
        os.chmod(p, mode)
    sticky = os.path.join(odd, "sticky")
    os.makedirs(sticky)
    os.chmod(sticky, 0o1777)
    os.mkfifo(os.path.join(odd, "fifo"))
    import socket
    with socket.socket(socket.AF_UNIX) as sock:    # a socket inode (the file stays after close)
        sock.bind(os.path.join(odd, "sock"))
    old = os.path.join(odd, "old")
    with open(old, "w") as f:
        f.write("old\n")
    os.utime(old, (600000000, 600000000))
    future = os.path.join(odd, "future")
    with open(future, "w") as f:
        f.write("future\n")
    os.utime(future, (FAR_FUTURE, FAR_FUTURE))
    if ROOT:
        os.mknod(os.path.join(odd, "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.mknod(os.path.join(odd, "blockdev"), 0o600 | stat.S_IFBLK, os.makedev(259, 70000))
        for name, uid, gid in [("owned", 1000, 1000), ("big-owner", BIG_UID, BIG_UID + 1)]:
            p = os.path.join(odd, name)
            with open(p, "w") as f:
                f.write(name)
            os.chown(p, uid, gid)
    xa = os.path.join(top, "xattrs")
    os.makedirs(xa)
    for name in ("small", "block", "several"):
        with open(os.path.join(xa, name), "w") as f:
            f.write(name)
    _setxattr(os.path.join(xa, "small"), "user.color", b"blue")
    _setxattr(os.path.join(xa, "block"), "user.large", b"L" * 600)       # past the inode body: the xattr block
    for i in range(6):
        _setxattr(os.path.join(xa, "several"), f"user.k{i}", b"v%d" % i)
    _setxattr(os.path.join(xa, "several"), "security.label", b"sec\0bin")
    _setxattr(xa, "user.on-a-dir", b"dir")
    # POSIX ACLs (ext4 keeps them in a format of its own; the xattr calls give the VFS one)
    acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in [
        (1, 6, 0xFFFFFFFF), (2, 4, 1000), (4, 4, 0xFFFFFFFF), (8, 5, 2000), (0x10, 4, 0xFFFFFFFF),
        (0x20, 4, 0xFFFFFFFF)])
    with open(os.path.join(xa, "acl"), "w") as f:
        f.write("acl")
    _setxattr(os.path.join(xa, "acl"), "system.posix_acl_access", acl)
    os.makedirs(os.path.join(xa, "acl-dir"))
    _setxattr(os.path.join(xa, "acl-dir"), "system.posix_acl_default", acl)
    # mtimes last: the directories' as the files left them
    os.utime(os.path.join(top, "tree"), (700000000, 700000000))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The tree with a 300-entry directory (htree after e2fsck -D: it spans several blocks)."""
    top = str(tmp_path_factory.mktemp("ext4") / "src")
    make_tree(top, 300)
    return top


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory):
    """The tree with a 5000-entry directory (mkfs -d of 5000 files takes seconds: two images use it)."""
    top = str(tmp_path_factory.mktemp("ext4big") / "src")
    make_tree(top, 5000)
    return top


def mkfs(image, src, *args, tool="mkfs.ext4", size="160M", inodes=16384, htree=True):
    """An image of src; with htree, e2fsck -D indexes its large directories (mkfs -d makes
    only linear ones)."""
    cmd = [tool, "-q", "-F", "-E", "root_owner=0:0", "-N", str(inodes), *args, "-d", src, str(image), size]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, (cmd, r.stderr)
    if htree:
        r = subprocess.run(["e2fsck", "-fyD", str(image)], capture_output=True, text=True)
        assert r.returncode in (0, 1), r.stdout + r.stderr
    for guest in ("/odd/future", "/data/odd/future"):
        if os.path.exists(src + guest) and "128" not in args:
            # mkfs -d drops the epoch bits of times past 2038: put them in (epoch 1, 1 ns)
            subprocess.run(["debugfs", "-w", "-R", f"sif {guest} mtime_extra 5", str(image)],
                           capture_output=True, check=True)
    return str(image)


def debugfs(image, commands: list[str]) -> str:
    r = subprocess.run(["debugfs", "-f", "-", image], input="\n".join(commands) + "\n",
                       capture_output=True, text=True)
    return r.stdout


# -- in-process: the driver against the tree and against debugfs -----------------------------

LAYOUTS = {
    "ext4": ("mkfs.ext4", ["-b", "4096"]),
    "ext4-1k-blocks": ("mkfs.ext4", ["-b", "1024"]),
    "ext4-no-extents": ("mkfs.ext4", ["-b", "4096", "-O", "^extent,^64bit"]),
    "ext4-inline-data": ("mkfs.ext4", ["-b", "4096", "-O", "inline_data"]),
    "ext4-64bit-flex-bg": ("mkfs.ext4", ["-b", "1024", "-O", "64bit,flex_bg", "-G", "4", "-g", "2048"]),
    "ext4-meta-bg": ("mkfs.ext4", ["-b", "1024", "-O", "meta_bg,^resize_inode", "-g", "1024"]),
    "ext4-many-inodes": ("mkfs.ext4", ["-b", "4096", "-N", "60000"]),
    "ext4-128-byte-inodes": ("mkfs.ext4", ["-b", "4096", "-I", "128"]),
    "ext4-bigalloc": ("mkfs.ext4", ["-b", "4096", "-O", "bigalloc", "-C", "16384"]),
    "ext3": ("mke2fs", ["-t", "ext3", "-b", "4096"]),
    "ext2": ("mke2fs", ["-t", "ext2", "-b", "4096"]),
    "ext2-no-filetype": ("mke2fs", ["-t", "ext2", "-b", "1024", "-O", "^filetype"]),
}


DT = {stat.S_IFREG: 8, stat.S_IFDIR: 4, stat.S_IFLNK: 10, stat.S_IFIFO: 1, stat.S_IFCHR: 2, stat.S_IFBLK: 6,
      stat.S_IFSOCK: 12}


def _walk_tree(src):
    """guest path -> host path of every name in the tree (the tree is the image's root)."""
    out = {"": src}
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        rel = "" if rel == "." else rel
        for n in dirnames + filenames:
            out[f"{rel}/{n}" if rel else n] = os.path.join(dirpath, n)
    return out


def _lookup(fs, rel):
    node = fs.root
    for part in [p for p in rel.split("/") if p]:
        node = node.lookup(part)
    return node


def _parse_stat(text):
    """The fields of one `debugfs stat` answer."""
    f = {}
    m = re.search(r"Inode: (\d+)\s+Type: [A-Za-z ]+?\s+Mode:\s+(\d+)\s+Flags: (0x[0-9a-f]+)", text)
    f["ino"], f["perm"], f["flags"] = int(m.group(1)), int(m.group(2), 8), int(m.group(3), 16)
    m = re.search(r"User:\s+(\d+)\s+Group:\s+(\d+).*?Size: (\d+)", text)
    f["uid"], f["gid"], f["size"] = int(m.group(1)), int(m.group(2)), int(m.group(3))
    m = re.search(r"Links: (\d+)\s+Blockcount: (\d+)", text)
    f["links"], f["blocks"] = int(m.group(1)), int(m.group(2))
    for t in ("ctime", "atime", "mtime"):
        m = re.search(rf"\b{t}: 0x([0-9a-f]+)(?::([0-9a-f]+))?", text)
        sec = int(m.group(1), 16)
        sec -= (1 << 32) if sec & 0x80000000 else 0
        extra = int(m.group(2), 16) if m.group(2) else 0
        f[t] = (sec + ((extra & 3) << 32)) * 10**9 + (extra >> 2)
    return f


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_driver_reads_every_layout(request, tmp_path, layout):
    from umiak.kernel.vfs.ext4 import Ext4FS
    tool, args = LAYOUTS[layout]
    tree = request.getfixturevalue("big_tree" if layout == "ext4" else "tree")
    if layout == "ext4-many-inodes":
        image = mkfs(tmp_path / "i.img", tree, *args, tool=tool, inodes=60000)
    else:
        image = mkfs(tmp_path / "i.img", tree, *args, tool=tool)
    fs = Ext4FS(image)
    try:
        paths = _walk_tree(tree)
        seen_inodes = {}
        for rel, host in paths.items():
            st = os.lstat(host)
            node = _lookup(fs, rel)
            ist = node.stat()
            assert stat.S_IFMT(ist.st_mode) == stat.S_IFMT(st.st_mode), rel
            assert (ist.st_mode & 0o7777, ist.st_uid, ist.st_gid) == \
                   ((st.st_mode & 0o7777), st.st_uid, st.st_gid) or rel == "", rel
            if not stat.S_ISDIR(st.st_mode):
                # mke2fs -O inline_data writes a >4 GiB sparse file's size short (e2fsprogs 1.47):
                # there the size is checked against debugfs below
                assert ist.st_size == st.st_size or (rel == "files/huge-sparse" and "inline_data" in args), rel
                if not (rel == "odd/future" and "128" in args):   # 128-byte inodes: no room past 2038
                    assert ist.st_mtime_ns // 10**9 == int(st.st_mtime), rel
                assert ist.st_nlink == st.st_nlink, rel
                key = (st.st_dev, st.st_ino)
                if key in seen_inodes:
                    assert seen_inodes[key] == ist.st_ino, f"{rel}: hard link to another inode"
                seen_inodes[key] = ist.st_ino
            if stat.S_ISREG(st.st_mode):
                if st.st_size > 64 << 20:
                    for off in (0, 4096 * 3, (4 << 30) + 10, (5 << 30) - 5000, (5 << 30) - 100):
                        with open(host, "rb") as f:
                            f.seek(off)
                            assert node.read_at(off, 8192) == f.read(8192)[:max(0, ist.st_size - off)], (rel, off)
                else:
                    with open(host, "rb") as f:
                        assert node.read_bytes() == f.read(), rel
            elif stat.S_ISLNK(st.st_mode):
                assert node.readlink() == os.readlink(host), rel
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                assert ist.st_rdev == st.st_rdev, rel
            if stat.S_ISDIR(st.st_mode):
                listing = node.list()
                names = sorted(n for _, _, n in listing if n != "lost+found")
                assert names == sorted(os.listdir(host)), rel
                for ino, dtype, name in listing:
                    assert dtype == DT[stat.S_IFMT(fs.node(ino).mode)], (rel, name)
            if not stat.S_ISLNK(st.st_mode):
                want = {n.encode(): os.getxattr(host, n, follow_symlinks=False) for n in os.listxattr(host)
                        if not n.startswith("security.selinux")}
                assert node.xattrs() == want, rel
        # every directory as debugfs lists it: inode numbers, modes, owners, sizes
        dirs = [rel for rel, host in paths.items() if os.path.isdir(host) and not os.path.islink(host)]
        out = debugfs(image, [f'ls -p "/{rel}"' for rel in dirs])
        listed = {}
        for line in out.splitlines():
            m = re.match(r"^/(\d+)/(\d+)/(\d+)/(\d+)/(.*)/(\d*)/$", line)
            if m:
                listed.setdefault(int(m.group(1)), m)
        checked = 0
        for rel in dirs:
            for ino, _dtype, name in _lookup(fs, rel).list():
                m = listed[ino]
                st = fs.node(ino).stat()
                assert (st.st_mode, st.st_uid, st.st_gid) == \
                       (int(m.group(2), 8), int(m.group(3)), int(m.group(4))), (rel, name)
                if m.group(6):
                    assert st.st_size == int(m.group(6)), (rel, name)
                checked += 1
        assert checked >= len(paths) - 1
        # sampled inodes as debugfs stat has them: times (ns), links, block counts, flags
        sample = [rel for rel in paths if not rel.startswith(("many/", "tree/"))] + \
            [rel for rel in paths if rel.startswith("tree/")][::10] + [rel for rel in paths if rel.startswith("many/")][::500]
        answers = debugfs(image, [f'stat "/{rel}"' for rel in sample]).split("debugfs: stat ")[1:]
        assert len(answers) == len(sample)
        for rel, text in zip(sample, answers, strict=True):
            want = _parse_stat(text)
            node = _lookup(fs, rel)
            st = node.stat()
            got = dict(ino=st.st_ino, perm=st.st_mode & 0o7777, flags=node.flags, uid=st.st_uid, gid=st.st_gid,
                       size=node.size, links=st.st_nlink, blocks=st.st_blocks, ctime=st.st_ctime_ns,
                       atime=st.st_atime_ns, mtime=st.st_mtime_ns)
            assert got == want, rel
    finally:
        fs.close()


def test_htree_and_inline_directories_are_what_they_claim(tree, walk_images, tmp_path):
    """The images here really have htree and linear directories, inline data and indirect
    blocks (else the tests prove little)."""
    from umiak.kernel.vfs.ext4 import INLINE_DATA_FL, Ext4FS
    fs = Ext4FS(walk_images["ext4"])
    many = fs.root.lookup("data").lookup("many")
    assert many.flags & 0x1000 and len(many.list()) == 5000, "no htree (EXT4_INDEX_FL) on the 5000-entry directory"
    fs.close()
    fs = Ext4FS(mkfs(tmp_path / "h.img", tree, "-b", "4096", "-O", "inline_data"))
    assert fs.root.lookup("many").flags & 0x1000, "no htree on the 300-entry directory"
    assert fs.root.lookup("tree").flags & 0x1000 == 0
    assert fs.root.lookup("odd").lookup("with space").flags & INLINE_DATA_FL
    assert fs.root.lookup("deep").flags & INLINE_DATA_FL
    assert fs.root.lookup("links").lookup("slow").flags & INLINE_DATA_FL == 0
    fs.close()
    fs = Ext4FS(mkfs(tmp_path / "n.img", tree, "-b", "4096", "-O", "^extent,^64bit"))
    assert fs.root.lookup("files").lookup("huge-sparse").flags & 0x80000 == 0   # indirect blocks
    fs.close()


def test_xattr_in_an_ea_inode(tmp_path):
    """A value kept in an inode of its own (-O ea_inode; debugfs puts it there), as debugfs reads it."""
    from umiak.kernel.vfs.ext4 import Ext4FS
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("hi\n")
    image = mkfs(tmp_path / "ea.img", str(src), "-b", "4096", "-O", "ea_inode", size="16M", inodes=64, htree=False)
    (tmp_path / "value").write_bytes(bytes(range(256)) * 16)
    subprocess.run(["debugfs", "-w", "-R", f"ea_set -f {tmp_path / 'value'} /f user.big", image],
                   capture_output=True, check=True)
    subprocess.run(["debugfs", "-R", f"ea_get -f {tmp_path / 'got'} /f user.big", image], capture_output=True, check=True)
    fs = Ext4FS(image)
    node = fs.root.lookup("f")
    assert node.xattrs() == {b"user.big": (tmp_path / "got").read_bytes()}
    assert len((tmp_path / "got").read_bytes()) >= 4096
    raw = node.raw[128 + node.extra_isize + 4:]
    assert int.from_bytes(raw[4:8], "little"), "the value is not in an EA inode"
    fs.close()


def test_corrupt_metadata_after_mount_is_eio(tree, tmp_path):
    from umiak.kernel.errors import SyscallError
    from umiak.kernel.vfs.ext4 import Ext4FS
    image = mkfs(tmp_path / "c.img", tree, "-b", "4096")
    subprocess.run(["debugfs", "-w", "-R", "sif /files/random3m block[0] 0", image], capture_output=True, check=True)
    fs = Ext4FS(image)
    with pytest.raises(SyscallError) as e:
        fs.root.lookup("files").lookup("random3m").read_at(0, 10)
    assert e.value.errno == 5
    fs.close()


@pytest.mark.parametrize("features", ["", "^extent,^64bit", "inline_data"])
def test_corrupted_images_never_crash_or_hang(tmp_path, features):
    """Random bytes changed in the metadata of small images: mounting and walking every file
    gives ImageError or SyscallError (EIO...), never another exception, never a long walk."""
    import time

    from umiak.kernel.errors import SyscallError
    from umiak.kernel.vfs.ext4 import Ext4FS, ImageError
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    rnd = random.Random(features)
    for i in range(30):
        (src / "a" / f"f{i}").write_bytes(rnd.randbytes(i * 300))
    os.symlink("a/f1", src / "short")
    os.symlink("y" * 90, src / "long")
    _setxattr(str(src / "a" / "f1"), "user.x", b"1")
    args = ["-b", "1024"] + (["-O", features] if features else [])
    with open(mkfs(tmp_path / "base.img", str(src), *args, size="2M", inodes=128, htree=False), "rb") as f:
        data = f.read()

    def walk(node, depth=0):
        for _, _, name in node.list():
            try:
                n = node.lookup(name)
                n.stat(), n.xattrs()
                if stat.S_ISDIR(n.mode) and depth < 8:
                    walk(n, depth + 1)
                elif stat.S_ISLNK(n.mode):
                    n.readlink()
                elif stat.S_ISREG(n.mode):
                    n.read_at(0, 1 << 16), n.data_after(0, True), n.data_after(0, False)
            except SyscallError:
                pass
    for trial in range(150):
        b = bytearray(data)
        for _ in range(rnd.choice([1, 4, 20, 100])):
            b[rnd.randrange(0, 160 * 1024)] = rnd.randrange(256)
        (tmp_path / "t.img").write_bytes(b)
        t = time.monotonic()
        try:
            fs = Ext4FS(str(tmp_path / "t.img"))
            try:
                walk(fs.root)
            except SyscallError:
                pass
            fs.close()
        except ImageError as e:
            assert "\n" not in str(e)
        assert time.monotonic() - t < 5, f"trial {trial}: a long walk"


def test_overlay_copy_up_of_an_image_file(tree, tmp_path):
    """A change to an image file copies it into memory: same st_ino, st_dev, mode, owner,
    times and bytes; the image's directory shows the new name, the image file is unchanged."""
    import itertools

    from umiak.kernel.vfs.ext4 import mount_root

    from types import SimpleNamespace

    from umiak.kernel.pagecache import HeapFrames

    class Kernel:   # what the overlay needs of a kernel: copied-up files keep pages in host memory
        anon_minors = itertools.count(1)
        options = None
        _heap = HeapFrames()
        frames, platform = _heap.frames, SimpleNamespace(ram=_heap.ram)
    src = tmp_path / "src"
    subprocess.run(["cp", "-a", os.path.join(tree, "files"), str(src)], check=True)
    image = mkfs(tmp_path / "o.img", str(src), "-b", "4096", size="64M", inodes=256, htree=False)
    with open(image, "rb") as f:
        before = f.read()
    overlay = mount_root(Kernel(), image)
    leaf = overlay.root.lookup("random3m")
    st = leaf.stat()
    inode = leaf.copy_up()
    after = inode.stat()
    for field in ("st_ino", "st_dev", "st_mode", "st_uid", "st_gid", "st_size", "st_mtime_ns", "st_atime_ns"):
        assert getattr(after, field) == getattr(st, field), field
    with open(src / "random3m", "rb") as f:
        assert inode.data == f.read()
    inode.write_at(0, b"changed")
    assert overlay.root.lookup("random3m").stat().st_size == st.st_size
    overlay.root.create("new-file", 0o644).write_at(0, b"new")
    assert "new-file" in [n for _, _, n in overlay.root.list()]
    with open(image, "rb") as f:
        assert f.read() == before
    info = overlay.statfs(overlay.root)
    assert info["f_bsize"] == 4096 and info["f_blocks"] == 16384 and info["f_namelen"] == 255
    overlay.lower_fs.close()


# -- failures at mount ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_images(tree, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("bad")
    good = mkfs(tmp_path / "good.img", os.path.join(tree, "odd"), "-b", "4096", size="16M", inodes=256)
    with open(good, "rb") as f:
        data = f.read()
    out = {}

    def put(name, content):
        p = tmp_path / name
        p.write_bytes(content)
        out[name] = str(p)
    put("truncated.img", data[:len(data) // 3])
    put("random.img", random.Random(1).randbytes(1 << 20))
    put("zeroed-superblock.img", data[:1024] + bytes(1024) + data[2048:])
    put("empty.img", b"")
    casefold = bytearray(data)
    casefold[1024 + 0x60 + 2] |= 0x02           # s_feature_incompat |= INCOMPAT_CASEFOLD (0x20000)
    put("casefold.img", bytes(casefold))
    bad_groups = bytearray(data)
    bad_groups[4096:8192] = b"\xff" * 4096      # the group descriptors
    put("bad-groups.img", bytes(bad_groups))
    sb = bytearray(data[:4096])
    sb[1024 + 0x18] = 40                        # an absurd block size
    put("bad-block-size.img", bytes(sb) + data[4096:])
    return out


def image_command(image, argv, options=(), platform="kvm", env=None):
    cmd = [sys.executable, str(TESTS / "image_run.py"), str(image), f"--platform={platform}"]
    for k, v in (GUEST_ENV if env is None else env).items():
        cmd.append(f"--env={k}={v}")
    return cmd + list(options) + [str(a) for a in argv]


def run_image(image, argv, options=(), platform="kvm", env=None, timeout=120):
    return _run(image_command(image, argv, options, platform, env), env=umiak_env(), timeout=timeout)


def test_bad_images_give_one_line(platform, bad_images, tmp_path):
    for name, path in bad_images.items():
        r = run_image(path, ["/bin/true"], platform=platform, timeout=30)
        err = r.stderr.decode()
        assert r.status == 125, (name, r.describe())
        assert len(err.splitlines()) == 1 and err.startswith(f"umiak: {path}: "), (name, err)
        assert "Traceback" not in err and "internal error" not in err, (name, err)
    r = run_image(tmp_path, ["/bin/true"], platform=platform)
    assert r.status == 125 and r.stderr.decode().splitlines() == \
        [f"umiak: {tmp_path}: not an ext2/3/4 image (not a file)"], r.describe()
    r = run_image(tmp_path / "absent.img", ["/bin/true"], platform=platform)
    assert r.status == 125 and r.stderr.decode().splitlines() == \
        [f"umiak: {tmp_path / 'absent.img'}: No such file or directory"]


def test_bad_image_messages(bad_images):
    from umiak.errors import UmiakError
    from umiak.kernel.vfs.ext4 import Ext4FS, ImageError
    assert issubclass(ImageError, UmiakError)
    images = bad_images
    want = {"truncated.img": "truncated ext2/3/4 image", "random.img": "not an ext2/3/4 image (bad magic)",
            "zeroed-superblock.img": "not an ext2/3/4 image (bad magic)",
            "empty.img": "not an ext2/3/4 image (too short for a superblock)",
            "casefold.img": "ext4 feature not supported: casefold",
            "bad-groups.img": "corrupt ext2/3/4 image", "bad-block-size.img": "corrupt ext2/3/4 image"}
    for name, path in images.items():
        with pytest.raises(ImageError) as e:
            Ext4FS(path)
        assert str(e.value).startswith(f"{path}: {want[name]}"), str(e.value)


# -- guest programs with the image as / -------------------------------------------------------

def stage(root, files: dict):
    """Copy host files into a staging tree (guest path -> host path), their libraries with them."""
    for guest, host in files.items():
        dst = os.path.join(root, guest.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(host, dst)


def with_libraries(binary) -> dict:
    """The binary's shared libraries and ld.so as ldd finds them, at the same paths."""
    out = {}
    r = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            real = m.group(1)
            out[real] = os.path.realpath(real)
    return out


WALK_IMAGES = {"ext4": ("mkfs.ext4", ["-b", "4096"]),          # of big_tree, the others of tree
               "ext2": ("mke2fs", ["-t", "ext2", "-b", "4096"]),
               "inline": ("mkfs.ext4", ["-b", "4096", "-O", "inline_data"])}


@pytest.fixture(scope="module")
def walk_images(tree, big_tree, tmp_path_factory):
    """ext4 / ext2 / inline_data images: a tree at /data, treewalk (static and dynamic) in /bin."""
    base = tmp_path_factory.mktemp("walk")
    images = {}
    static = build("treewalk", "glibc-static")
    dynamic = build("treewalk", "glibc-dynamic")
    for name, (tool, args) in WALK_IMAGES.items():
        stage_dir = base / f"stage-{name}"
        os.makedirs(stage_dir)
        src = big_tree if name == "ext4" else tree
        subprocess.run(["cp", "-a", src, str(stage_dir / "data")], check=True)   # FIFOs, devices, xattrs too
        stage(stage_dir, {"/bin/treewalk": static, "/bin/treewalk-dyn": dynamic, **with_libraries(dynamic)})
        os.makedirs(stage_dir / "tmp")
        images[name] = mkfs(base / f"{name}.img", str(stage_dir), *args, tool=tool, size="200M")
    return images


@pytest.mark.parametrize("kind", list(WALK_IMAGES))
def test_treewalk_matches_native(platform, tree, big_tree, walk_images, kind):
    """Names, types, modes, owners, sizes, contents by read/pread/mmap (private and shared),
    SEEK_DATA/SEEK_HOLE maps, symlinks, hard links and xattrs as natively on the tree."""
    if kind != "ext4" and platform != "kvm":
        pytest.skip("the layouts are the driver's business, the same on every platform: kvm runs them")
    src = big_tree if kind == "ext4" else tree
    native = run_native([build("treewalk", "glibc-static"), src])
    assert native.status == 0 and len(native.stdout.splitlines()) > (6000 if kind == "ext4" else 1800)
    r = run_image(walk_images[kind], ["/bin/treewalk", "/data"], platform=platform)
    if kind == "inline":
        # mke2fs -O inline_data writes the >4 GiB sparse file wrong (its size short, a block of
        # zeros at 0): the driver shows what the image holds (test_driver_reads_every_layout
        # checks that line against debugfs), so it is left out here
        native.stdout, r.stdout = (b"".join(line for line in out.splitlines(True)
                                             if not line.startswith(b"/files/huge-sparse "))
                                   for out in (native.stdout, r.stdout))
    assert_same(native, r)


def test_dynamic_program_loads_its_libraries_from_the_image(platform, big_tree, walk_images):
    native = run_native([build("treewalk", "glibc-dynamic"), os.path.join(big_tree, "odd")])
    assert_same(native, run_image(walk_images["ext4"], ["/bin/treewalk-dyn", "/data/odd"], platform=platform))


def test_inode_numbers_times_and_blocks_are_the_images(platform, walk_images):
    """st_ino, st_blocks, st_blksize, st_size and ns times as debugfs reads the image."""
    image = walk_images["ext4"]
    r = run_image(image, ["/bin/treewalk", "-i", "/data/odd"], platform=platform)
    assert r.status == 0, r.describe()
    lines = r.stdout.decode().splitlines()
    assert len(lines) > 10
    rels = [line.rsplit(" ", 7)[0] for line in lines]
    answers = debugfs(image, [f'stat "/data/odd{"" if rel == "/" else rel}"' for rel in rels]).split("debugfs: stat ")[1:]
    for line, text in zip(lines, answers, strict=True):
        f = _parse_stat(text)
        fields = line.rsplit(" ", 7)
        ino, blocks, blksize, size = (int(x) for x in fields[1:5])
        times = [int(t.replace(".", "")) for t in fields[5:8]]
        assert (ino, blocks, blksize, times) == (f["ino"], f["blocks"], 4096, [f["atime"], f["mtime"], f["ctime"]]), line
        assert size == f["size"], line


def test_ls_and_static_hello_from_an_image(platform, tree, tmp_path):
    """/bin/ls with the libraries ldd names, staged into an image; a static hello beside it."""
    ls = shutil.which("ls")
    hello = build("hello", "glibc-static")
    root = tmp_path / "root"
    stage(root, {"/bin/ls": ls, "/bin/hello": hello, **with_libraries(ls)})
    subprocess.run(["cp", "-a", os.path.join(tree, "odd"), str(root / "odd")], check=True)
    image = mkfs(tmp_path / "ls.img", str(root), "-b", "4096", size="64M", inodes=4096)
    argv = ["-lnR", "--time-style=+%s"]
    native = run_native([ls, *argv, "."], cwd=os.path.join(tree, "odd"))
    r = run_image(image, ["/bin/ls", *argv, "."], ["--cwd=/odd"], platform=platform)
    assert_same(native, r)
    assert_same(run_native([hello, "a", "b c"]), run_image(image, ["/bin/hello", "a", "b c"], platform=platform))
    r = run_image(image, ["/bin/ls", "-a"], platform=platform)   # the working directory is the image's /
    staged = {p.strip("/").split("/")[0] for p in with_libraries(ls)} | {"bin", "odd", "lost+found"}
    mounts = {"dev", "proc", "sys", "tmp", "etc"}    # the kernel's own (etc: the identity files)
    assert r.status == 0 and r.stdout.decode().split() == sorted(staged | mounts | {".", ".."}), r.describe()


def test_overlay_writes_over_the_image(platform, tmp_path):
    """tests/guest/vfs_tmpfs.c (links, renames, O_TMPFILE, FIFOs, shared mappings) in a directory
    of the image, through the in-memory overlay, as natively; the image is unchanged."""
    prog = build("vfs_tmpfs", "glibc-static")
    (tmp_path / "native").mkdir()
    native = run_native([prog, tmp_path / "native"])
    root = tmp_path / "stage"
    stage(root, {"/bin/vfs_tmpfs": prog})
    os.makedirs(root / "work")
    image = mkfs(tmp_path / "w.img", str(root), "-b", "4096", size="32M", inodes=1024)
    with open(image, "rb") as f:
        digest = hash(f.read())
    assert_same(native, run_image(image, ["/bin/vfs_tmpfs", "/work"], platform=platform))
    with open(image, "rb") as f:
        assert hash(f.read()) == digest, "the guest's writes reached the image"


def test_volumes_over_an_image_root(platform, tree, walk_images):
    native = run_native([build("treewalk", "glibc-static"), os.path.join(tree, "links")])
    r = run_image(walk_images["ext4"], ["/bin/treewalk", "/vol"], [f"--volume={tree}/links:/vol:ro"],
                  platform=platform)
    assert_same(native, r)


# -- the module in the Kconfig sense -------------------------------------------------------------

PROBE = r"""
import runpy, sys
script = sys.argv.pop(1)      # "umiak" (its CLI) or tests/image_run.py
sys.argv[0] = script
try:
    if script == "umiak":     # main(argv) returns (as `python -m umiak` it ends the process)
        from umiak.cli import main
        status = main(sys.argv[1:])
    else:
        runpy.run_path(script, run_name="__main__")
except SystemExit as e:
    status = e.code
print("ext4 imported" if "umiak.kernel.vfs.ext4" in sys.modules else "ext4 not imported")
sys.exit(status)
"""


def imports_ext4(*args) -> bool:
    r = subprocess.run([sys.executable, "-c", PROBE, *[str(a) for a in args]], capture_output=True, text=True,
                       env=umiak_env(), timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout.splitlines()[-1] == "ext4 imported"


def test_true_does_not_import_the_driver(platform, walk_images):
    """The driver is a module: a run without an image never imports it (one with does)."""
    assert not imports_ext4("umiak", "run", f"--platform={platform}", "/bin/true")
    assert imports_ext4(TESTS / "image_run.py", walk_images["ext4"], f"--platform={platform}",
                        "/bin/treewalk", "/data/odd/old")


def test_config_without_ext4_refuses_images(walk_images, tmp_path):
    cfg = tmp_path / "noext4.config"
    cfg.write_text("# CONFIG_EXT4 is not set\n")
    env = dict(umiak_env(), XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("KCONFIG_CONFIG", None)
    r = _run(image_command(walk_images["ext4"], ["/bin/treewalk", "/data/odd"], ["--config", str(cfg)]), env=env)
    assert r.status == 125, r.describe()
    assert r.stderr.decode().splitlines() == \
        ["umiak: an ext2/3/4 image is not in this kernel (CONFIG_EXT4 is not set)"], r.describe()
    r = _run(image_command(walk_images["ext4"], ["/bin/treewalk", "/data/odd/old"],
                           ["--config", str(REPO / "src/umiak/config/profiles/full.defconfig")]), env=env)
    assert r.status == 0, r.describe()
