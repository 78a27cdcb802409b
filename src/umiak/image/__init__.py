"""Images: one ext4 file that holds a program, everything it needs, and how to run it.

    umiak build -o ls.img /bin/ls        (umiak.image.build: closure, stage, mkfs)
    umiak run ls.img -la /               (the image as /, its /.umiak/image.json applied)
    umiak inspect ls.img                 (the metadata, read through the ext4 driver)

An image is an ordinary ext4 file system (e2fsck, debugfs and `mount -o loop` open it);
/.umiak/image.json says what to run: entrypoint and cmd (as an OCI image config: ARGS
on the command line replace cmd), env, cwd, user, memory, ports, and the app kernel
config it carries (/.umiak/kernel.config). Nothing here is imported by a plain `umiak
run PROG`: the CLI recognises an image by its superblock magic alone (cli._is_image).
"""

from __future__ import annotations

import json
import os

from umiak.errors import UmiakError

META_PATH = "/.umiak/image.json"


def _read(fs, guest: str) -> bytes | None:
    """A file of the image through the driver (None when absent)."""
    from umiak.kernel.errors import SyscallError
    node = fs.root
    try:
        for part in [p for p in guest.split("/") if p]:
            node = node.lookup(part)
        return node.read_bytes()
    except SyscallError:
        return None


def open_image(path: str):
    """The image's file system (umiak.kernel.vfs.ext4); a bad image is a one-line error."""
    if not os.path.exists(path):
        raise UmiakError(f"{path}: No such file or directory")
    from umiak.kernel.vfs.ext4 import Ext4FS
    return Ext4FS(path)


def read_meta(path: str, fs=None) -> dict:
    """The image's metadata ({} for an ext4 image made by something else)."""
    own = fs is None
    fs = fs or open_image(path)
    try:
        data = _read(fs, META_PATH)
        if data is None:
            return {}
        try:
            meta = json.loads(data)
        except ValueError:
            raise UmiakError(f"{path}: {META_PATH} is not valid JSON") from None
        if not isinstance(meta, dict):
            raise UmiakError(f"{path}: {META_PATH} is not a JSON object")
        if meta.get("config"):
            text = _read(fs, meta["config"])
            if text is None:
                raise UmiakError(f"{path}: the kernel config {meta['config']} named in {META_PATH} is missing")
            meta["config_text"] = text.decode("utf-8", "replace")
        return meta
    finally:
        if own:
            fs.close()


def config_file(meta: dict) -> str | None:
    """A host file holding the image's kernel config (umiak.config.load reads files), cached by content."""
    text = meta.get("config_text")
    if not text:
        return None
    import hashlib

    from umiak.config import cache_dir
    d = os.path.join(cache_dir(), "image-configs")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, hashlib.sha256(text.encode()).hexdigest()[:16] + ".config")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    return path
