"""`umiak build`, `umiak inspect`, and what `umiak run IMAGE` takes from an image.

build and inspect parse their own arguments (as `umiak config` does), so that the
parser of `umiak run` imports nothing of this package.
"""

from __future__ import annotations

import argparse
import os
import sys

from umiak.errors import UmiakError

BUILD_KEYS = {   # umiak.toml key -> Spec field (lists extend, scalars are overridden by the command line)
    "output": "output", "programs": "programs", "program": "programs", "args": "args", "add": "add",
    "cmd": "cmd", "env": "env", "cwd": "cwd", "user": "user", "memory": "memory", "ports": "ports",
    "port": "ports", "config": "config", "from": "from_dir", "from-oci": "from_oci", "from_oci": "from_oci",
    "deb": "deb", "allow-missing": "allow_missing", "allow_missing": "allow_missing",
    "add-missing": "add_missing", "add_missing": "add_missing",
}


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="umiak build",
        description="Build an image (an ext4 file) that `umiak run IMAGE` runs: the programs with "
                    "everything they load, or a root tree, an OCI image, Debian packages.",
        epilog="Arguments after -- become the command's default arguments.")
    p.add_argument("programs", nargs="*", metavar="PROGRAM",
                   help="programs to put in the image with their libraries (the first is the command)")
    p.add_argument("-o", "--output", metavar="IMAGE", help="the image file to write")
    p.add_argument("-f", "--file", metavar="TOML", help="read these options from a TOML file (e.g. umiak.toml)")
    p.add_argument("--add", action="append", default=[], metavar="HOST:GUEST", help="add a host file or tree")
    p.add_argument("--cmd", metavar="COMMAND", help="the command the image runs (shell words)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V", help="an environment variable")
    p.add_argument("--cwd", metavar="DIR", help="the working directory (default /)")
    p.add_argument("--user", metavar="UID:GID", help="run as this user (numbers, or names in the image)")
    p.add_argument("-m", "--memory", metavar="SIZE", help="guest RAM the image wants, e.g. 256M")
    p.add_argument("-p", "--port", action="append", default=[], dest="ports", metavar="PORT[/udp]",
                   help="a port the program listens on (shown by inspect)")
    p.add_argument("--config", metavar="FILE", help="an app kernel .config the image carries and runs under")
    base = p.add_mutually_exclusive_group()
    base.add_argument("--from", dest="from_dir", metavar="DIR", help="start from this root tree")
    base.add_argument("--from-oci", metavar="TAR|DIR", help="start from a `docker save` tar or an OCI layout")
    base.add_argument("--deb", action="append", default=[], metavar="NAME[=VER]",
                      help="start from Debian packages and their Depends (fetched with apt)")
    p.add_argument("--allow-missing", action="store_true", help="a library not found is a warning, not an error")
    p.add_argument("--add-missing", action="append", default=[], metavar="LIST",
                   help="add the host files a `umiak run --record-missing` listed")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    return p


def build_main(argv: list[str]) -> int:
    from umiak.image.build import Spec, build
    from umiak.options import split_program_args
    argv, extra = split_program_args(argv)
    args = _build_parser().parse_args(argv)
    spec = Spec()
    if args.file:
        _apply_toml(spec, args.file)
    for name in ("output", "cmd", "cwd", "user", "memory", "config", "from_dir", "from_oci"):
        v = getattr(args, name)
        if v is not None:
            setattr(spec, name, v)
            if name in ("config", "from_dir", "from_oci") and args.file:
                setattr(spec, name, os.path.abspath(v))   # the command line's paths are the cwd's
    for name in ("programs", "env", "ports", "deb"):
        getattr(spec, name).extend(getattr(args, name))
    spec.add.extend(_host_abs(a) for a in args.add)       # the command line's paths are the cwd's
    spec.add_missing.extend(os.path.abspath(a) for a in args.add_missing)
    if extra:
        spec.args = extra
    spec.allow_missing = spec.allow_missing or args.allow_missing
    import time
    t0 = time.monotonic()
    meta = build(spec, quiet=args.quiet)
    if not args.quiet:
        argv0 = meta["entrypoint"] + meta["cmd"]
        print(f"umiak: built {spec.output}: {meta['size'] / 1e6:.1f} MB, {meta['files']} files, "
              f"{len(meta['libraries'])} libraries, command {argv0} ({time.monotonic() - t0:.1f} s)",
              file=sys.stderr)
    return 0


def _host_abs(item: str) -> str:
    host, sep, guest = item.rpartition(":")
    return f"{os.path.abspath(host)}:{guest}" if sep and host else item


def _apply_toml(spec, path: str) -> None:
    import tomllib
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise UmiakError(f"-f {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UmiakError(f"-f {path}: {e}") from None
    spec.base = os.path.dirname(os.path.abspath(path))
    data = data.get("image", data) if isinstance(data.get("image"), dict) else data
    for key, value in data.items():
        field = BUILD_KEYS.get(key)
        if field is None:
            raise UmiakError(f"-f {path}: unknown key {key!r} (known: {', '.join(sorted(set(BUILD_KEYS)))})")
        if field == "env" and isinstance(value, dict):
            value = [f"{k}={v}" for k, v in value.items()]
        if field == "add" and isinstance(value, dict):
            value = [f"{h}:{g}" for g, h in value.items()]   # [add] "/guest" = "host"
        cur = getattr(spec, field)
        if isinstance(cur, list):
            cur.extend([str(v) for v in value] if isinstance(value, list) else [str(value)])
        elif field == "allow_missing":
            spec.allow_missing = bool(value)
        elif field == "cmd":
            spec.cmd = value if isinstance(value, (str, list)) else str(value)
        else:
            setattr(spec, field, str(value))
    if spec.output:
        spec.output = os.path.join(spec.base, spec.output)


# -- inspect -------------------------------------------------------------------------------

def inspect_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="umiak inspect", description="Show what an image runs and holds.")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="the metadata as JSON")
    p.add_argument("--files", action="store_true", help="list every file in the image")
    args = p.parse_args(argv)
    from umiak.image import open_image, read_meta
    fs = open_image(args.image)
    try:
        meta = read_meta(args.image, fs)
        if args.json:
            import json
            print(json.dumps(meta, indent=1, sort_keys=True))
        else:
            _show(args.image, meta, fs)
        if args.files:
            for path, kind in _walk(fs.root, ""):
                print(f"{kind} {path}")
    finally:
        fs.close()
    return 0


def _show(path: str, meta: dict, fs) -> None:
    import shlex
    st = os.stat(path)
    print(f"image     {path}")
    print(f"size      {st.st_size} bytes on disk ({st.st_blocks * 512} allocated), "
          f"{meta.get('content_bytes', '?')} bytes of files")
    if not meta:
        print("metadata  none (not built by umiak build: run it with `umiak run --image IMAGE PROG`)")
        return
    print(f"command   {shlex.join(meta.get('entrypoint', []) + meta.get('cmd', []))}")
    print(f"  entrypoint {meta.get('entrypoint')}  cmd {meta.get('cmd')}")
    print(f"source    {meta.get('source', '?')}")
    print("env       " + ("\n          ".join(f"{k}={v}" for k, v in (meta.get("env") or {}).items()) or "-"))
    print(f"cwd       {meta.get('cwd', '/')}")
    print(f"user      {meta.get('user') or '0:0'}")
    print(f"memory    {meta.get('memory') or 'default'}")
    print(f"ports     {' '.join(meta.get('ports') or []) or '-'}")
    cfg = meta.get("config")
    if cfg:
        lines = [ln for ln in meta.get("config_text", "").splitlines() if ln.startswith("CONFIG_")]
        print(f"config    {cfg} ({len(lines)} settings)")
    else:
        print("config    none (the full kernel)")
    print(f"files     {meta.get('files', '?')}")
    libs = meta.get("libraries") or []
    print(f"libraries {len(libs)}")
    for lib, by in libs:
        print(f"  {lib}  (needed by {by})")


def _walk(node, prefix: str):
    """(path, kind letter) of every entry under node, sorted (through the driver)."""
    import stat as st
    from umiak.kernel.errors import SyscallError
    for _ino, _type, name in sorted(node.list(), key=lambda e: e[2]):
        if name in (".", ".."):
            continue
        path = f"{prefix}/{name}"
        try:
            child = node.lookup(name)
        except SyscallError:
            continue
        mode = child.mode
        kind = "d" if st.S_ISDIR(mode) else "l" if st.S_ISLNK(mode) else "f" if st.S_ISREG(mode) else "o"
        yield path, kind
        if kind == "d":
            yield from _walk(child, path)


# -- run -------------------------------------------------------------------------------------

def apply_image(args) -> list[str]:
    """`umiak run IMAGE [ARGS]` / `--image IMAGE PROG ARGS`: fill args' defaults from the image's
    metadata (the command line wins) and return the guest argv. args.image_root is set."""
    from umiak.image import config_file, read_meta
    if args.root is not None:
        raise UmiakError("an image is the guest's / already: --root cannot be given with it")
    if args.image:
        image, argv = args.image, [args.program, *args.args]
    else:
        image = args.program
        argv = []
    meta = read_meta(image)
    if not args.image:
        if not meta:
            raise UmiakError(f"{image}: an ext4 image without {'/.umiak/image.json'}: "
                             "name the program with `umiak run --image IMAGE PROG`")
        entry, cmd = list(meta.get("entrypoint") or []), list(meta.get("cmd") or [])
        argv = entry + (list(args.args) if args.args else cmd)
        if not argv:
            raise UmiakError(f"{image}: the image names no command; give one after the image")
    env = meta.get("env") or {}
    args.env = [f"{k}={v}" for k, v in env.items()] + list(args.env)
    if args.cwd is None:
        args.cwd = meta.get("cwd") or "/"
    if args.user is None and meta.get("user"):
        args.user = meta["user"]
    if args.memory is None and meta.get("memory"):
        args.memory = meta["memory"]
    if args.config is None and args.profile is None and meta.get("config"):
        path = config_file(meta)
        from umiak.config import load
        try:
            load(path)    # frozen and cached: the run's own load() below is then cheap
        except UmiakError as e:
            msg = str(e).removeprefix(f"{path}:")
            raise UmiakError(f"{image}: this umiak cannot run the kernel config the image carries "
                             f"({meta['config']}:{msg.lstrip()})") from None
        args.config = path
    args.image_root = os.path.abspath(image)
    return argv


def missing_recorder(path: str | None):
    """The tracer of --record-missing (to --missing-file, else stderr)."""
    from umiak.image.missing import MissingRecorder
    if path:
        try:
            return MissingRecorder(open(path, "w", encoding="utf-8", errors="surrogateescape"), close_out=True)
        except OSError as e:
            raise UmiakError(f"--missing-file {path}: {e.strerror}") from None
    return MissingRecorder(sys.stderr)
