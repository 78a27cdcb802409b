"""`umiak build`: a runnable image from host programs, a root tree, an OCI image or Debian packages.

    spec = Spec(output="ls.img", programs=["/bin/ls"])
    build(spec)            # -> ls.img, an ext4 file system with /.umiak/image.json

The steps: a base tree (--from DIR, --from-oci, --deb) or none; the programs and their
ELF closures (umiak.elfdeps), from the host when there is no base, else checked
inside it; --add and --add-missing files; what glibc loads by name at run time (NSS
modules, gconv, CA certificates, time zones) by rule; a regenerated /etc/ld.so.cache;
the metadata; then the ext4 file (umiak.image.mkfs).
"""

from __future__ import annotations

import json
import os
import posixpath
import shlex
import sys
import tempfile
from dataclasses import dataclass, field

from umiak.errors import UmiakError
from umiak.elfdeps import closure, host_path, referenced_names, resolve
from umiak.image.stage import Stage

META_DIR = "/.umiak"
META_PATH = "/.umiak/image.json"
CONFIG_PATH = "/.umiak/kernel.config"
FORMAT = 1
TLS_LIBS = ("libssl.so", "libgnutls.so", "libnss3.so", "libcurl.so", "libcurl-gnutls.so", "libmbedtls.so")
TIME_SYMBOLS = {"localtime", "localtime_r", "mktime", "tzset", "strftime", "timelocal"}


@dataclass
class Spec:
    """Everything `umiak build` takes (the command line or umiak.toml)."""
    output: str = ""
    programs: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)       # after `--`: the default arguments
    add: list[str] = field(default_factory=list)         # HOST:GUEST
    cmd: str | list[str] | None = None
    env: list[str] = field(default_factory=list)         # K=V
    cwd: str | None = None
    user: str | None = None
    memory: str | None = None
    ports: list[str] = field(default_factory=list)
    config: str | None = None                            # an app kernel .config carried in the image
    from_dir: str | None = None
    from_oci: str | None = None
    deb: list[str] = field(default_factory=list)
    allow_missing: bool = False
    add_missing: list[str] = field(default_factory=list)  # files of paths (umiak run --record-missing)
    base: str = "."                                     # relative host paths are taken from here


def _log(msg: str) -> None:
    print(f"umiak: {msg}", file=sys.stderr)


def build(spec: Spec, quiet: bool = False) -> dict:
    """Make the image; returns its metadata (what image.json holds) with 'size' added."""
    if not spec.output:
        raise UmiakError("no output image given (-o FILE)")
    out_dir = os.path.dirname(os.path.abspath(spec.output))
    if not os.path.isdir(out_dir):
        raise UmiakError(f"-o {spec.output}: {out_dir} is not a directory")
    bases = [b for b in (spec.from_dir, spec.from_oci, spec.deb or None) if b]
    if len(bases) > 1:
        raise UmiakError("give one of --from, --from-oci and --deb")
    warn = _log     # warnings whatever `quiet` says (it only drops the summary)
    tmp = tempfile.mkdtemp(prefix="umiak-build-", dir=os.environ.get("TMPDIR"))
    try:
        stage = Stage(os.path.join(tmp, "root"))
        os.mkdir(stage.path, 0o755)
        meta = _build_in(spec, stage, tmp, warn)
        from umiak.image.mkfs import make_image
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        fixed = stage.normalise(int(epoch) if epoch and epoch.isdigit() else None)
        meta["size"] = make_image(stage, spec.output, fixed)
        return meta
    finally:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


def _abs(spec: Spec, path: str) -> str:
    return os.path.normpath(os.path.join(spec.base, os.path.expanduser(path)))


def _build_in(spec: Spec, stage: Stage, tmp: str, warn) -> dict:
    if spec.memory is not None:
        from umiak.options import parse_size
        try:
            parse_size(spec.memory)
        except ValueError:
            raise UmiakError(f"bad memory size {spec.memory!r} (use e.g. 256M or 2G)") from None
    entrypoint: list[str] = []
    cmd: list[str] = []
    env: dict[str, str] = {}
    cwd, user = None, None
    ports: list[str] = []
    source = "host"
    if spec.from_dir:
        src = _abs(spec, spec.from_dir)
        if not os.path.isdir(src):
            raise UmiakError(f"--from {spec.from_dir}: not a directory")
        os.rmdir(stage.path)
        from umiak.image.stage import _cp_a
        _cp_a(src, stage.path)
        source = f"dir {spec.from_dir}"
    elif spec.from_oci:
        from umiak.image.oci import apply_oci
        oc = apply_oci(_abs(spec, spec.from_oci), stage)
        entrypoint, cmd, env, cwd, user, ports = (oc["entrypoint"], oc["cmd"], oc["env"], oc["cwd"],
                                                  oc["user"], oc["ports"])
        source = f"oci {spec.from_oci}"
    elif spec.deb:
        from umiak.image.deb import install_debs
        main = install_debs(spec.deb, stage, tmp, warn)
        if main:
            entrypoint = [main]
        source = "deb " + " ".join(spec.deb)
    has_base = source != "host"
    root = stage.path if has_base else "/"

    # The command: --cmd, else the first program (with the arguments after --), else the base's.
    programs = list(spec.programs)
    if spec.cmd is not None:
        words = shlex.split(spec.cmd) if isinstance(spec.cmd, str) else list(spec.cmd)
        if not words:
            raise UmiakError("--cmd is empty")
        entrypoint, cmd = words[:1], words[1:] + list(spec.args)
    elif programs:
        entrypoint, cmd = [_guest_program(programs[0], has_base, root)], list(spec.args)
    elif spec.args:
        cmd = list(spec.args)
    if not entrypoint and not cmd:
        raise UmiakError("nothing to run: give a PROGRAM, --cmd, or a base with a command (--deb, --from-oci)")
    main = (entrypoint or cmd)[0]
    if "/" not in main:
        main = _find_in_path(main, root, env.get("PATH"))
        if entrypoint:
            entrypoint[0] = main
        else:
            cmd[0] = main
    wanted = [_guest_program(p, has_base, root) for p in programs]
    if main not in wanted:
        wanted.insert(0, main)

    missing: list = [] if spec.allow_missing else None   # type: ignore[assignment]
    libraries: list[tuple[str, str]] = []
    seen: set[str] = set()

    def take(path: str, needed_by: str = "") -> None:
        """Path and its closure into the stage (from the host, or checked in the base)."""
        if path in seen:
            return
        for p, by in _closure_of(path, root, missing):
            if p in seen:
                continue
            seen.add(p)
            if p != path or needed_by:
                libraries.append((p, by or needed_by))
            if not has_base and not stage.copy_from("/", p):
                raise UmiakError(f"{p}: No such file or directory")
    for p in wanted:
        take(p)
    for item in spec.add:
        host, sep, guest = item.rpartition(":")
        if not sep or not host or not guest.startswith("/"):
            raise UmiakError(f"bad --add {item!r} (use HOST:GUEST with an absolute GUEST path)")
        stage.copy_host(_abs(spec, host), posixpath.normpath(guest))
        if not has_base:
            _added_objects(_abs(spec, host), take, warn)
    added = 0
    for listing in spec.add_missing:
        added += _add_missing(spec, listing, stage, take, has_base)
    if not has_base:
        _runtime_files(stage, seen, env, spec, take, warn)
    if missing:
        for name, by in missing:
            warn(f"warning: {name} (needed by {by}) not found; the image goes without it (--allow-missing)")
    for item in spec.env:
        k, sep, v = item.partition("=")
        if not k or not sep:
            raise UmiakError(f"bad --env {item!r} (use K=V)")
        env[k] = v
    if "PATH" not in env:
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **env}
    for d, mode in (("/dev", 0o755), ("/proc", 0o555), ("/sys", 0o555), ("/tmp", 0o1777)):
        if not stage.exists(d):   # where the guest's own file systems mount (an image's ls / shows them)
            stage.mkdirs(d)
            os.chmod(stage.hp(d), mode)
    _ld_cache(stage, warn)
    meta: dict = {
        "umiak_image": FORMAT,
        "entrypoint": entrypoint, "cmd": cmd, "env": env,
        "cwd": spec.cwd or cwd or "/",
        "user": _user(spec.user or user, stage),
        "memory": spec.memory, "ports": _ports(list(spec.ports) or ports),
        "config": None, "source": source,
        "libraries": [list(x) for x in libraries],
    }
    if spec.config:
        path = _abs(spec, spec.config)
        try:
            with open(path, "rb") as f:
                text = f.read()
        except OSError as e:
            raise UmiakError(f"--config {spec.config}: {e.strerror}") from None
        from umiak.config import load
        load(path)      # a config this umiak cannot resolve is an error now, not at run time
        stage.write(CONFIG_PATH, text)
        meta["config"] = CONFIG_PATH
    entries = stage.walk()
    meta["files"] = sum(1 for _g, st in entries if (st.st_mode & 0o170000) != 0o040000) + 1
    meta["content_bytes"] = sum(st.st_size for _g, st in entries if (st.st_mode & 0o170000) == 0o100000)
    stage.write(META_PATH, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
    os.chmod(stage.hp(META_DIR), 0o755)
    return meta


def _guest_program(name: str, has_base: bool, root: str) -> str:
    """The guest path of a program named on the command line: a host file found like a shell
    would when there is no base, else a path inside the base."""
    if has_base:
        return name if name.startswith("/") else _find_in_path(name, root, None)
    from umiak.machine import resolve_program
    path = resolve_program(name)
    if not os.path.exists(path):
        raise UmiakError(f"{name}: No such file or directory")
    return path


def _find_in_path(name: str, root: str, path_var: str | None) -> str:
    for d in (path_var or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        cand = posixpath.join(d or "/", name)
        real = resolve(root, cand)
        if real is not None and os.path.isfile(host_path(root, real)):
            return cand
    raise UmiakError(f"{name}: command not found" + (" in the image" if root != "/" else ""))


def _closure_of(path: str, root: str, missing) -> list[tuple[str, str]]:
    """A program's closure; a #! script's is its own and its interpreter's; another file's is itself."""
    from umiak.elfdeps import is_elf
    real = resolve(root, path)
    if real is None:
        raise UmiakError(f"{path}: No such file or directory")
    hp = host_path(root, real)
    if os.path.isdir(hp):
        return [(path, "")]
    try:
        with open(hp, "rb") as f:
            head = f.read(256)
    except OSError as e:
        raise UmiakError(f"{path}: {e.strerror}") from None
    if head[:2] == b"#!":
        interp = head[2:].split(b"\n", 1)[0].strip().split()
        if interp:
            ip = interp[0].decode("utf-8", "surrogateescape")
            return [(path, "")] + [(p, by or path) for p, by in _closure_of(ip, root, missing)]
    if not is_elf(hp):
        return [(path, "")]
    return closure(path, root, missing)


def _added_objects(src: str, take, warn) -> None:
    """The libraries that ELF files in an --add'ed host file or tree load (Python's extension
    modules, plugins), from the host; one nobody provides is a warning (an optional module)."""
    from umiak.elfdeps import NotElf, is_elf
    files = [src] if not os.path.isdir(src) else [
        os.path.join(d, n) for d, _dirs, names in os.walk(src) for n in sorted(names)]
    for f in sorted(files):
        if os.path.islink(f) or not os.path.isfile(f) or not is_elf(f):
            continue
        lost: list = []
        try:
            for lib, _by in closure(os.path.abspath(f), "/", lost)[1:]:
                take(lib, f)
        except NotElf:
            continue
        for name, by in lost:
            warn(f"warning: {name} (needed by {by}) not found; {by} will not load")


def _add_missing(spec: Spec, listing: str, stage: Stage, take, has_base: bool) -> int:
    """--add-missing LIST: the paths `umiak run --record-missing` printed, taken from the host
    (ELF libraries with their closures, directories whole); those the host lacks too are left out."""
    try:
        with open(_abs(spec, listing), encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise UmiakError(f"--add-missing {listing}: {e.strerror}") from None
    n = 0
    for line in lines:
        p = line.strip()
        if not p.startswith("/") or p.startswith(META_DIR):
            continue
        p = posixpath.normpath(p)
        if not os.path.lexists(p) or stage.exists(p):
            continue
        if os.path.isdir(p) and not os.path.islink(p):
            stage.copy_from("/", posixpath.dirname(p))   # the symlinks on the way
            stage.copy_host(p, p)                        # a directory looked for: all of it
            if not has_base:
                _added_objects(p, take, lambda m: None)
        elif has_base:
            stage.copy_from("/", p)
        else:
            take(p, "--add-missing")
        n += 1
    return n


def _runtime_files(stage: Stage, objects: set[str], env: dict, spec: Spec, take, warn) -> None:
    """What glibc opens by name at run time, which no DT_NEEDED says: by rule, from the host."""
    names = {posixpath.basename(p) for p in objects}
    if "libc.so.6" not in names:
        return      # a static or non-glibc program: none of this
    # NSS: the switch file and the modules it names (absent ones glibc skips too).
    if stage.copy_from("/", "/etc/nsswitch.conf"):
        services: set[str] = set()
        with open("/etc/nsswitch.conf", encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.split("#", 1)[0]
                if ":" in line:
                    services.update(w for w in line.split(":", 1)[1].split() if not w.startswith("["))
        for svc in sorted(services):
            lib = _find_lib(f"libnss_{svc}.so.2")
            if lib:
                take(lib, "/etc/nsswitch.conf")
    for extra in ("/etc/host.conf", "/etc/services", "/etc/protocols"):
        stage.copy_from("/", extra)
    symbols = referenced_names(sorted(p for p in objects if "libc.so" not in p and "ld-linux" not in p),
                               TIME_SYMBOLS | {"iconv_open"})
    if "iconv_open" in symbols:
        for d in ("/usr/lib/x86_64-linux-gnu/gconv", "/usr/lib64/gconv", "/usr/lib/gconv"):
            if os.path.isdir(d):
                stage.copy_host(d, d)
                break
    if any(n.startswith(TLS_LIBS) for n in names):
        for p in ("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/openssl.cnf", "/etc/pki/tls/certs/ca-bundle.crt"):
            stage.copy_from("/", p)
    tz = {e.partition("=")[2] for e in spec.env if e.startswith("TZ=")} | ({env["TZ"]} if "TZ" in env else set())
    if symbols & TIME_SYMBOLS or tz:
        stage.copy_from("/", "/etc/localtime")
        for zone in tz:
            zone = zone.lstrip(":")
            zp = zone if zone.startswith("/") else f"/usr/share/zoneinfo/{zone}"
            if not stage.copy_from("/", zp) and not any(c.isdigit() for c in zone):
                warn(f"warning: TZ={zone}: no {zp} on this host")


def _find_lib(name: str) -> str | None:
    from umiak.elfdeps import DEFAULT_DIRS, is_elf, read_ld_cache
    cached = read_ld_cache("/").get(name)
    if cached and is_elf(cached):
        return cached
    for d in DEFAULT_DIRS:
        if is_elf(posixpath.join(d, name)):
            return posixpath.join(d, name)
    return None


def _ld_cache(stage: Stage, warn) -> None:
    """/etc/ld.so.cache for the image's own libraries (ldconfig -r; it runs nothing of the image).
    Without an ld.so.conf the image gets one naming the directories its libraries are in."""
    import shutil
    import subprocess
    ldconfig = shutil.which("ldconfig") or ("/sbin/ldconfig" if os.path.exists("/sbin/ldconfig") else None)
    if ldconfig is None or os.geteuid() != 0:
        return      # ld.so still finds them in the default directories
    if not stage.exists("/etc/ld.so.conf"):
        dirs = set()
        for g, st in stage.walk():
            if ".so" in posixpath.basename(g) and (st.st_mode & 0o170000) in (0o100000, 0o120000):
                dirs.add(posixpath.dirname(g))
        if not dirs:
            return
        stage.write("/etc/ld.so.conf", ("".join(f"{d}\n" for d in sorted(dirs))).encode())
    had_var = stage.exists("/var")
    proc = subprocess.run([ldconfig, "-X", "-r", stage.path], capture_output=True, text=True)
    if proc.returncode != 0:
        warn(f"warning: ldconfig failed, the image has no ld.so.cache: {proc.stderr.strip()[:200]}")
    aux = stage.hp("/var/cache/ldconfig/aux-cache")
    if os.path.exists(aux):
        os.unlink(aux)
    if not had_var:
        shutil.rmtree(stage.hp("/var"), ignore_errors=True)
    if stage.exists("/etc/ld.so.cache"):
        stage.made.add("/etc/ld.so.cache")


def _user(text: str | None, stage: Stage) -> str | None:
    """UID:GID, with names looked up in the image's /etc/passwd and /etc/group."""
    if not text:
        return None
    u, _, g = text.partition(":")

    def lookup(name: str, file: str, field_gid: bool = False) -> int:
        if name.isdigit():
            return int(name)
        try:
            with open(stage.hp(file), encoding="utf-8", errors="replace") as f:
                for line in f:
                    parts = line.rstrip("\n").split(":")
                    if parts and parts[0] == name and len(parts) > 3:
                        return int(parts[3] if field_gid else parts[2])
        except OSError:
            pass
        raise UmiakError(f"user {text!r}: {name!r} is not in the image's {file}")
    uid = lookup(u, "/etc/passwd")
    gid = lookup(g, "/etc/group") if g else (lookup(u, "/etc/passwd", True) if not u.isdigit() else uid)
    return f"{uid}:{gid}"


def _ports(items: list[str]) -> list[str]:
    out = []
    for p in items:
        port, _, proto = str(p).partition("/")
        if not port.isdigit() or not 0 < int(port) < 65536 or proto not in ("", "tcp", "udp"):
            raise UmiakError(f"bad port {p!r} (use PORT or PORT/udp)")
        out.append(f"{int(port)}/{proto or 'tcp'}")
    return sorted(set(out))
