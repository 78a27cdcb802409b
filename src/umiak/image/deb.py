"""`umiak build --deb NAME[=VERSION]`: Debian packages and their Depends closure, unpacked.

apt resolves, as it would install them on an empty system, against the host's apt lists
(alternatives, virtual packages and versions as apt chooses; Pre-Depends and Depends, no
Recommends): `apt-get install --print-uris` with an empty dpkg status, its own cache
directories, no lock, and no package flagged Essential (so Essential packages come only
when something depends on them). The .deb files are taken from apt's archive cache or
umiak's own (~/.cache/umiak/debs) when their size and checksum match, else fetched with
`apt-get download`, then unpacked with `dpkg-deb -x`: no maintainer script runs.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import urllib.parse

from umiak.errors import UmiakError

BIN_DIRS = ("usr/bin/", "usr/sbin/", "bin/", "sbin/", "usr/local/bin/", "usr/games/")


def _apt_options(tmp: str) -> list[str]:
    state = os.path.join(tmp, "apt")
    for d in ("archives/partial", "cache", "lists-state"):
        os.makedirs(os.path.join(state, d), exist_ok=True)
    status = os.path.join(state, "status")
    open(status, "w").close()
    return ["-o", f"Dir::State::status={status}", "-o", "Debug::NoLocking=1",
            "-o", f"Dir::Cache={state}/cache", "-o", f"Dir::Cache::archives={state}/archives",
            "-o", f"Dir::State::extended_states={state}/extended_states",
            "-o", "pkgCacheGen::Essential=none", "-o", "APT::Install-Recommends=0",
            "-o", "APT::Install-Suggests=0", "-o", "APT::Sandbox::User=root", "-o", "quiet=2"]


def _apt_error(proc) -> str:
    lines = [ln[2:].strip() for ln in proc.stderr.splitlines() if ln.startswith("E:")]
    return "; ".join(lines) if lines else (proc.stderr.strip().splitlines() or [f"status {proc.returncode}"])[-1]


def resolve(names: list[str], tmp: str) -> list[dict]:
    """[{uri, file, size, hash}] of the packages to unpack, in apt's order."""
    apt = shutil.which("apt-get")
    if apt is None:
        raise UmiakError("--deb needs apt-get (a Debian or Ubuntu host)")
    for n in names:
        if not n or n.startswith("-") or any(c.isspace() for c in n):
            raise UmiakError(f"bad --deb {n!r} (use NAME or NAME=VERSION)")
    proc = subprocess.run([apt, *_apt_options(tmp), "install", "--print-uris", "-y", *names],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise UmiakError(f"apt-get: {_apt_error(proc)}")
    out = []
    for line in proc.stdout.splitlines():
        if not line.startswith("'"):
            continue
        parts = shlex.split(line)
        if len(parts) < 3:
            continue
        out.append({"uri": parts[0], "file": parts[1], "size": int(parts[2]),
                    "hash": parts[3] if len(parts) > 3 else ""})
    if not out:
        raise UmiakError(f"apt-get: nothing to fetch for {' '.join(names)}")
    return out


def _matches(path: str, pkg: dict) -> bool:
    try:
        if os.path.getsize(path) != pkg["size"]:
            return False
    except OSError:
        return False
    algo, _, want = pkg["hash"].partition(":")
    name = {"MD5Sum": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}.get(algo)
    if not name or not want:
        return True
    h = hashlib.new(name)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == want


def _deb_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    d = os.path.join(base, "umiak", "debs")
    os.makedirs(d, exist_ok=True)
    return d


def fetch(pkgs: list[dict], tmp: str) -> list[str]:
    """The .deb files, from a cache when there, else `apt-get download NAME=VERSION`."""
    cache = _deb_cache()
    paths: list[str | None] = []
    wanted: list[tuple[int, str]] = []
    for i, p in enumerate(pkgs):
        found = None
        for d in ("/var/cache/apt/archives", cache):
            cand = os.path.join(d, p["file"])
            if _matches(cand, p):
                found = cand
                break
        paths.append(found)
        if found is None:
            fname = urllib.parse.unquote(p["file"])
            name, version, _arch = fname[:-4].split("_", 2)
            wanted.append((i, f"{name}={version}"))
    if wanted:
        proc = subprocess.run([shutil.which("apt-get") or "apt-get", "-o", "APT::Sandbox::User=root", "-o", "quiet=2",
                               "download", *[w for _i, w in wanted]], cwd=cache, capture_output=True, text=True)
        if proc.returncode != 0:
            raise UmiakError(f"apt-get download: {_apt_error(proc)}")
        for i, _w in wanted:
            cand = os.path.join(cache, pkgs[i]["file"])
            if not _matches(cand, pkgs[i]):
                raise UmiakError(f"apt-get download: {pkgs[i]['file']} is missing or does not match its checksum")
            paths[i] = cand
    return [p for p in paths if p]


def main_binary(deb: str, package: str) -> str | None:
    """The command a package is for: the program named like it, else the one its name starts
    with (python3-minimal -> python3), else its only program."""
    proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], capture_output=True)
    if proc.returncode != 0:
        return None
    import io
    import tarfile
    progs = []
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        for m in tar.getmembers():
            name = m.name.lstrip("./")
            if (m.isfile() or m.issym()) and any(name.startswith(d) and "/" not in name[len(d):] for d in BIN_DIRS):
                progs.append("/" + name)
    base = {p.rsplit("/", 1)[1]: p for p in reversed(progs)}
    if package in base:
        return base[package]
    prefixes = sorted((n for n in base if package.startswith(n)), key=len, reverse=True)
    if prefixes:
        return base[prefixes[0]]
    return progs[0] if len(progs) == 1 else None


def install_debs(names: list[str], stage, tmp: str, warn) -> str | None:
    """Unpack the packages and their dependencies into the stage; the first package's main program."""
    pkgs = resolve(names, tmp)
    debs = fetch(pkgs, tmp)
    for deb in debs:
        proc = subprocess.run(["dpkg-deb", "-x", deb, stage.path], capture_output=True, text=True)
        if proc.returncode != 0:
            raise UmiakError(f"dpkg-deb -x {os.path.basename(deb)}: {proc.stderr.strip()[:300]}")
    first = names[0].split("=", 1)[0]
    by_name = {urllib.parse.unquote(os.path.basename(d)).split("_", 1)[0]: d for d in debs}
    main = main_binary(by_name[first], first) if first in by_name else None
    if main is None:
        warn(f"warning: {first} has no main program to run; give --cmd")
    os.chmod(stage.path, 0o755)
    return main
