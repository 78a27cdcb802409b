"""The image file: an ext4 file system made from the stage by e2fsprogs, byte for byte reproducible.

mke2fs -d copies the tree (it visits names sorted), with a UUID and directory hash seed
derived from the tree's listing, E2FSPROGS_FAKE_TIME for the superblock's and lost+found's
times, and no journal (the image is read-only; umiak's overlay takes the writes). What
mke2fs copies that the stage cannot fix, the inodes' ctime (the kernel sets it while
staging) and the atime (reading the stage sets it), are set afterwards with debugfs. The size is the contents' with some headroom.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid

from umiak.errors import UmiakError

BLOCK = 4096
INODE_SIZE = 256


def _tool(name: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/sbin/{name}", f"/usr/sbin/{name}") if os.path.exists(p)), None)
    if path is None:
        raise UmiakError(f"{name} not found: umiak build needs e2fsprogs (Debian: apt-get install e2fsprogs)")
    return path


def estimate(entries) -> tuple[int, int]:
    """(blocks, inodes) for the staged entries [(guest path, lstat)]."""
    data = 0
    seen = set()
    dirs = 0
    for _g, st in entries:
        kind = st.st_mode & 0o170000
        if kind == 0o100000:
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            data += -(-st.st_size // BLOCK) + (1 if st.st_size > 4 * 1024 * 1024 else 0)
        elif kind == 0o040000:
            dirs += 1
            data += 1
        elif kind == 0o120000 and st.st_size >= 60:
            data += 1
    inodes = int(len(entries) * 1.1) + 64
    itable = -(-inodes * INODE_SIZE // BLOCK)
    blocks = int((data + itable + 64) * 1.1) + 256
    return blocks, inodes


def make_image(stage, output: str, fixed_time: int, label: str = "umiak") -> int:
    """Write the ext4 image of the stage to output (atomically); returns its size in bytes."""
    mke2fs, debugfs = _tool("mke2fs"), _tool("debugfs")
    entries = stage.walk()
    blocks, inodes = estimate(entries)
    h = hashlib.sha256()
    for g, st in entries:
        h.update(f"{g}\0{st.st_mode}\0{st.st_uid}:{st.st_gid}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    fs_uuid = str(uuid.UUID(bytes=h.digest()[:16], version=4))
    seed = str(uuid.UUID(bytes=h.digest()[16:32], version=4))
    env = dict(os.environ, E2FSPROGS_FAKE_TIME=str(fixed_time), SOURCE_DATE_EPOCH=str(fixed_time))
    env.pop("MKE2FS_CONFIG", None)
    tmp = f"{output}.tmp{os.getpid()}"
    try:
        for _attempt in range(4):
            if os.path.exists(tmp):
                os.unlink(tmp)
            cmd = [mke2fs, "-q", "-F", "-t", "ext4", "-b", str(BLOCK), "-I", str(INODE_SIZE), "-N", str(inodes),
                   "-m", "0", "-O", "^has_journal", "-U", fs_uuid, "-L", label,
                   "-E", f"hash_seed={seed},lazy_itable_init=0,nodiscard",
                   "-d", stage.path, tmp, str(blocks)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode == 0:
                break
            err = proc.stderr.strip()
            if "space" in err.lower() or "could not allocate" in err.lower() or "inode" in err.lower():
                blocks, inodes = int(blocks * 1.5) + 256, int(inodes * 1.5) + 64
                continue
            raise UmiakError(f"mke2fs failed: {err.splitlines()[-1] if err else proc.returncode}")
        else:
            raise UmiakError("mke2fs failed: the contents did not fit (size estimate too small)")
        _fix_ctimes(debugfs, tmp, entries, fixed_time, env)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return os.path.getsize(output)


def _fix_ctimes(debugfs: str, image: str, entries, t: int, env) -> None:
    """Every inode's ctime and atime (which mke2fs took from the stage, where staging and
    reading set them) to the fixed time."""
    lines = []
    for g in ["/", "/lost+found"] + [g for g, _st in entries]:
        if '"' in g or "\n" in g or "\\" in g:
            continue   # debugfs cannot name it; its times stay the staging ones
        lines += [f'sif "{g}" ctime @{t}', f'sif "{g}" atime @{t}']
    script = f"{image}.debugfs"
    with open(script, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write("\n".join(lines) + "\n")
    try:
        proc = subprocess.run([debugfs, "-w", "-f", script, image], env=env, capture_output=True, text=True)
    finally:
        os.unlink(script)
    if proc.returncode != 0:
        raise UmiakError(f"debugfs failed: {proc.stderr.strip().splitlines()[-1:]}")
