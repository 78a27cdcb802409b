"""`umiak build --from-oci`: a `docker save` tarball or an OCI image layout (a directory or its tar).

Layers are applied in order with whiteouts (`.wh.NAME` deletes NAME of the layers below,
`.wh..wh..opq` empties its directory of them), read with tarfile (gzip too) and written
inside the stage only: members with `..`, and paths that a symlink would lead out of the
stage, are refused; device nodes are left out (the guest has its own /dev). The image
config's Entrypoint, Cmd, Env, WorkingDir, User and ExposedPorts become the image's.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import shutil
import tarfile

from umiak.errors import UmiakError
from umiak.elfdeps import resolve

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class _Source:
    """Files of a docker-save tar, an OCI layout tar, or an OCI layout directory, by name."""

    def __init__(self, path: str):
        self.path = path
        self.dir = path if os.path.isdir(path) else None
        self.tar = None
        if self.dir is None:
            try:
                self.tar = tarfile.open(path)
            except (OSError, tarfile.TarError) as e:
                raise UmiakError(f"--from-oci {path}: not a tar file or OCI layout ({e})") from None
            self.members = {m.name.lstrip("./"): m for m in self.tar.getmembers()}

    def has(self, name: str) -> bool:
        if self.dir is not None:
            return os.path.isfile(os.path.join(self.dir, name))
        return name in self.members

    def open(self, name: str):
        if self.dir is not None:
            try:
                return open(os.path.join(self.dir, name), "rb")
            except OSError as e:
                raise UmiakError(f"--from-oci {self.path}: {name}: {e.strerror}") from None
        m = self.members.get(name.lstrip("./"))
        f = self.tar.extractfile(m) if m is not None and self.tar is not None else None
        if f is None:
            raise UmiakError(f"--from-oci {self.path}: {name} is missing")
        return f

    def json(self, name: str):
        with self.open(name) as f:
            try:
                return json.loads(f.read())
            except ValueError:
                raise UmiakError(f"--from-oci {self.path}: {name} is not JSON") from None


def _blob(digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    if not hexd or "/" in hexd or "/" in algo:
        raise UmiakError(f"bad digest {digest!r}")
    return f"blobs/{algo}/{hexd}"


def _manifest(src: _Source) -> tuple[dict, list[str]]:
    """(image config, layer file names) of the image."""
    if src.has("index.json"):
        desc = src.json("index.json")
        for _ in range(4):   # an index may point at an index (multi-platform)
            ms = desc.get("manifests") or []
            if not ms:
                raise UmiakError(f"--from-oci {src.path}: the index lists no manifest")
            pick = next((m for m in ms if (m.get("platform") or {}).get("architecture") in ("amd64", None)
                         and (m.get("platform") or {}).get("os", "linux") == "linux"), ms[0])
            desc = src.json(_blob(pick["digest"]))
            if "layers" in desc:
                config = src.json(_blob(desc["config"]["digest"]))
                return config, [_blob(layer["digest"]) for layer in desc["layers"]]
        raise UmiakError(f"--from-oci {src.path}: no image manifest found")
    if src.has("manifest.json"):
        items = src.json("manifest.json")
        if not items:
            raise UmiakError(f"--from-oci {src.path}: manifest.json is empty")
        return src.json(items[0]["Config"]), list(items[0]["Layers"])
    raise UmiakError(f"--from-oci {src.path}: neither an OCI layout (index.json) nor a docker save tar (manifest.json)")


def _layer(src: _Source, name: str) -> tarfile.TarFile:
    data = src.open(name).read()
    if data[:4] == b"\x28\xb5\x2f\xfd":
        raise UmiakError(f"--from-oci {src.path}: {name} is zstd-compressed (not supported; gzip or plain tar)")
    try:
        return tarfile.open(fileobj=io.BytesIO(data))
    except tarfile.TarError as e:
        raise UmiakError(f"--from-oci {src.path}: layer {name}: {e}") from None


def _clean(name: str) -> str | None:
    parts = [p for p in name.split("/") if p and p != "."]
    if any(p == ".." for p in parts):
        return None
    return "/" + "/".join(parts) if parts else None


def _inside(stage, guest: str) -> str | None:
    """The host path where guest path `guest` lands: its parent resolved inside the stage."""
    parent = resolve(stage.path, posixpath.dirname(guest))
    if parent is None:
        stage.mkdirs(posixpath.dirname(guest))
        parent = resolve(stage.path, posixpath.dirname(guest))
        if parent is None:
            return None
    return stage.hp(posixpath.join(parent, posixpath.basename(guest)))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def apply_layer(stage, tar: tarfile.TarFile) -> None:
    members = tar.getmembers()
    # Whiteouts first: they delete what the layers below put there, never this layer's files.
    for m in members:
        g = _clean(m.name)
        if g is None:
            continue
        base = posixpath.basename(g)
        if base == OPAQUE:
            d = _inside(stage, g)
            d = os.path.dirname(d) if d else None
            if d and os.path.isdir(d):
                for n in os.listdir(d):
                    _remove(os.path.join(d, n))
        elif base.startswith(WHITEOUT):
            target = _inside(stage, posixpath.join(posixpath.dirname(g), base[len(WHITEOUT):]))
            if target:
                _remove(target)
    root = os.geteuid() == 0
    for m in members:
        g = _clean(m.name)
        if g is None or posixpath.basename(g).startswith(WHITEOUT):
            continue
        dst = _inside(stage, g)
        if dst is None:
            raise UmiakError(f"layer member {m.name!r} lies outside the image")
        if m.isdir():
            if os.path.lexists(dst) and not os.path.isdir(dst):
                _remove(dst)
            if not os.path.isdir(dst):
                os.mkdir(dst)
            os.chmod(dst, m.mode & 0o7777)
        elif m.isfile():
            _remove(dst)
            f = tar.extractfile(m)
            with open(dst, "wb") as out:
                if f is not None:
                    shutil.copyfileobj(f, out)
            os.chmod(dst, m.mode & 0o7777)
        elif m.issym():
            _remove(dst)
            os.symlink(m.linkname, dst)
        elif m.islnk():
            src_g = _clean(m.linkname)
            src = stage.hp(src_g) if src_g else None
            if src is None or not os.path.lexists(src):
                raise UmiakError(f"layer member {m.name!r}: hard link to missing {m.linkname!r}")
            _remove(dst)
            os.link(src, dst, follow_symlinks=False)
            continue
        elif m.isfifo():
            _remove(dst)
            os.mkfifo(dst, m.mode & 0o7777)
        else:
            continue   # character and block devices: the guest's /dev is its own
        if root:
            os.chown(dst, m.uid, m.gid, follow_symlinks=False)
            if not m.issym():
                os.chmod(dst, m.mode & 0o7777)   # chown clears set-id bits
        os.utime(dst, (m.mtime, m.mtime), follow_symlinks=False)


def apply_oci(path: str, stage) -> dict:
    """Unpack the image into the stage; returns entrypoint, cmd, env, cwd, user, ports."""
    if not os.path.exists(path):
        raise UmiakError(f"--from-oci {path}: No such file or directory")
    src = _Source(path)
    config, layers = _manifest(src)
    for name in layers:
        with _layer(src, name) as tar:
            apply_layer(stage, tar)
    cfg = config.get("config") or config.get("Config") or {}
    env = {}
    for item in cfg.get("Env") or []:
        k, _, v = item.partition("=")
        env[k] = v
    return {"entrypoint": list(cfg.get("Entrypoint") or []), "cmd": list(cfg.get("Cmd") or []), "env": env,
            "cwd": cfg.get("WorkingDir") or None, "user": cfg.get("User") or None,
            "ports": sorted((cfg.get("ExposedPorts") or {}).keys())}


__all__ = ["apply_oci", "apply_layer"]
