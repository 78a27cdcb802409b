"""A bundle's config.json -> the options of one umiak run (what `create` starts).

Everything a bundle asks for is either honoured or refused here, before anything
exists under --root: a missing rootfs or an unsupported mount type is an OciError,
which `create` reports as its one-line error. What the VM makes moot is accepted
and ignored: capabilities, seccomp, AppArmor, cgroups, masked paths, OOM score and
the other namespaces (the VM is one of each already).
"""

import json
import os
import posixpath
from dataclasses import dataclass, field

from umiak.oci import OciError

__all__ = ["Bundle", "OciError", "Process", "home_of", "load", "parse_process"]


# Mount types the guest has its own file system for (umiak.kernel.vfs): accepted, not mounted.
_GUEST_OWN = {"proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2"}
_GUEST_OWN_TMPFS = {"/dev", "/dev/shm"}   # devfs and its shm
_RLIMITS = {"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
            "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
            "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
            "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15}
MIN_MEMORY = 32 << 20   # below this a VM cannot hold its page tables and a program


@dataclass
class Process:
    """config.json's `process` (also what `exec --process` reads)."""
    args: list[str]
    env: dict[str, str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: list[int] = field(default_factory=list)
    umask: int | None = None
    terminal: bool = False
    console_size: tuple[int, int] | None = None   # (rows, columns)
    rlimits: dict[int, tuple[int, int]] = field(default_factory=dict)
    no_new_privileges: bool = False

    def to_json(self) -> dict:
        return {"args": self.args, "env": [f"{k}={v}" for k, v in self.env.items()], "cwd": self.cwd,
                "user": {"uid": self.uid, "gid": self.gid, "additionalGids": self.groups,
                         **({"umask": self.umask} if self.umask is not None else {})},
                "terminal": self.terminal}


@dataclass
class Bundle:
    path: str
    root: str
    readonly: bool
    process: Process
    hostname: str
    volumes: list[tuple[str, str, bool]]
    tmpfs: list[str]
    memory: int | None       # the VM's RAM (linux.resources.memory.limit)
    cpus: int | None         # its vCPUs (the CPU quota, rounded up)
    pids: int | None         # the tasks it may have (pids.limit)
    netns: str | None        # a network namespace to join (path), "new" for one of its own, None: the host's
    platform: str
    config: str | None       # a kernel .config (annotation dev.umiak.config)
    annotations: dict[str, str]
    hooks: dict = field(default_factory=dict)   # name -> [{path, args, env, timeout}] (OCI hooks)


def _get(obj, key: str, kind, what: str, default=None):
    v = obj.get(key, default) if isinstance(obj, dict) else default
    if v is not None and not isinstance(v, kind):
        raise OciError(f"config.json: {what} must be {getattr(kind, '__name__', 'of another type')}")
    return v


def parse_process(p, what: str = "process") -> Process:
    """A process object of the OCI spec; bad types are an OciError naming the field."""
    if not isinstance(p, dict):
        raise OciError(f"{what} is missing or not an object")
    args = _get(p, "args", list, f"{what}.args") or []
    if not args or not all(isinstance(a, str) for a in args):
        raise OciError(f"{what}.args must be a non-empty list of strings")
    env: dict[str, str] = {}
    for item in _get(p, "env", list, f"{what}.env") or []:
        if not isinstance(item, str):
            raise OciError(f"{what}.env must be a list of strings")
        k, _, v = item.partition("=")
        env[k] = v
    cwd = _get(p, "cwd", str, f"{what}.cwd") or "/"
    if not cwd.startswith("/"):
        raise OciError(f"{what}.cwd {cwd!r} must be an absolute path")
    user = _get(p, "user", dict, f"{what}.user") or {}
    uid, gid = _get(user, "uid", int, f"{what}.user.uid", 0), _get(user, "gid", int, f"{what}.user.gid", 0)
    groups = _get(user, "additionalGids", list, f"{what}.user.additionalGids") or []
    rlimits = {}
    for r in _get(p, "rlimits", list, f"{what}.rlimits") or []:
        name = r.get("type") if isinstance(r, dict) else None
        if name not in _RLIMITS:
            raise OciError(f"{what}.rlimits: unknown limit {name!r}")
        rlimits[_RLIMITS[name]] = (int(r.get("soft", 0)), int(r.get("hard", 0)))
    size = _get(p, "consoleSize", dict, f"{what}.consoleSize")
    return Process(args=list(args), env=env, cwd=posixpath.normpath(cwd), uid=uid, gid=gid,
                   groups=[int(g) for g in groups], umask=_get(user, "umask", int, f"{what}.user.umask"),
                   terminal=bool(p.get("terminal", False)),
                   console_size=(int(size.get("height", 0)), int(size.get("width", 0))) if size else None,
                   rlimits=rlimits, no_new_privileges=bool(p.get("noNewPrivileges", False)))


def load(bundle: str, platform: str = "auto") -> Bundle:
    """Read and check <bundle>/config.json."""
    bundle = os.path.abspath(bundle)
    try:
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise OciError(f"{bundle}/config.json: no such file") from None
    except (OSError, ValueError) as e:
        raise OciError(f"{bundle}/config.json: {e}") from None
    if not isinstance(spec, dict):
        raise OciError("config.json: not a JSON object")
    root = _get(spec, "root", dict, "root") or {}
    rpath = _get(root, "path", str, "root.path")
    if not rpath:
        raise OciError("config.json: root.path is missing")
    rpath = os.path.join(bundle, rpath)
    if not os.path.isdir(rpath):
        raise OciError(f"rootfs {rpath}: no such directory")
    annotations = _get(spec, "annotations", dict, "annotations") or {}
    volumes, tmpfs = _mounts(spec.get("mounts") or [], bundle)
    linux = _get(spec, "linux", dict, "linux") or {}
    memory, cpus, pids = resources(_get(linux, "resources", dict, "linux.resources") or {})
    netns = utsns = None
    for ns in _get(linux, "namespaces", list, "linux.namespaces") or []:
        if isinstance(ns, dict) and ns.get("type") == "network":
            netns = ns.get("path") or "new"
            if netns != "new" and not os.path.exists(netns):
                raise OciError(f"network namespace {netns}: no such file")
        if isinstance(ns, dict) and ns.get("type") == "uts" and ns.get("path"):
            utsns = ns["path"]
            if not os.path.exists(utsns):
                raise OciError(f"uts namespace {utsns}: no such file")
    # No hostname: the one of the UTS namespace joined (a pod's), else the host's (a new
    # UTS namespace starts as a copy of its parent's).
    hostname = _get(spec, "hostname", str, "hostname") or (uts_hostname(utsns) if utsns else os.uname().nodename)
    plat = annotations.get("dev.umiak.platform", platform)
    if plat not in ("auto", "kvm", "emu"):
        raise OciError(f"annotation dev.umiak.platform={plat!r}: use kvm, emu or auto")
    config = annotations.get("dev.umiak.config")
    if config is not None and not os.path.isfile(config):
        raise OciError(f"annotation dev.umiak.config={config!r}: no such file")
    process = parse_process(spec.get("process"))
    process.env.setdefault("HOME", home_of(rpath, process.uid))
    return Bundle(path=bundle, root=rpath, readonly=bool(root.get("readonly", False)),
                  process=process, hostname=hostname,
                  volumes=volumes, tmpfs=tmpfs, memory=memory, cpus=cpus, pids=pids, netns=netns, platform=plat, config=config,
                  annotations={str(k): str(v) for k, v in annotations.items()},
                  hooks=_get(spec, "hooks", dict, "hooks") or {})


def resources(res: dict) -> tuple[int | None, int | None, int | None]:
    """LinuxResources -> (RAM, vCPUs, task limit) of the VM; None: not limited."""
    import math
    mem = (res.get("memory") or {}).get("limit")
    memory = max(mem, MIN_MEMORY) if isinstance(mem, int) and mem > 0 else None
    cpu = res.get("cpu") or {}
    quota, period = cpu.get("quota"), cpu.get("period") or 100000
    cpus = max(1, math.ceil(quota / period)) if isinstance(quota, int) and quota > 0 and period > 0 else None
    limit = (res.get("pids") or {}).get("limit")
    pids = limit if isinstance(limit, int) and limit > 0 else None
    return memory, cpus, pids


def uts_hostname(path: str) -> str:
    """The host name in another UTS namespace: read by a short-lived thread that joins it
    (namespaces are per thread; the process's own stays as it was)."""
    import ctypes
    import threading
    out: list[str] = []

    def look() -> None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if ctypes.CDLL(None, use_errno=True).setns(fd, 0x04000000) == 0:   # CLONE_NEWUTS
                out.append(os.uname().nodename)
        finally:
            os.close(fd)
    t = threading.Thread(target=look)
    t.start()
    t.join()
    if not out:
        raise OciError(f"uts namespace {path}: cannot join it")
    return out[0]


def home_of(rootfs: str, uid: int) -> str:
    """HOME when the spec sets none, as runc sets it: the user's in the image's /etc/passwd, else /."""
    try:
        with open(os.path.join(rootfs, "etc", "passwd"), errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid) and fields[5]:
                    return fields[5]
    except OSError:
        pass
    return "/"


def _mounts(mounts, bundle: str) -> tuple[list[tuple[str, str, bool]], list[str]]:
    """Bind mounts become volumes (ro when asked); the guest's own file systems are left to
    it; anything else is refused."""
    if not isinstance(mounts, list):
        raise OciError("config.json: mounts must be a list")
    volumes, tmpfs = [], []
    for m in mounts:
        if not isinstance(m, dict) or not isinstance(m.get("destination"), str):
            raise OciError("config.json: every mount needs a destination")
        dest = posixpath.normpath(m["destination"])
        if not dest.startswith("/"):
            raise OciError(f"mount {dest}: the destination must be absolute")
        kind, opts = m.get("type") or "", m.get("options") or []
        if kind == "bind" or "bind" in opts or "rbind" in opts:
            src = os.path.join(bundle, m.get("source") or "")
            if not os.path.exists(src):
                raise OciError(f"bind mount {src} on {dest}: no such file or directory")
            volumes.append((os.path.abspath(src), dest, "ro" in opts))
        elif kind == "tmpfs":
            if dest not in _GUEST_OWN_TMPFS:
                tmpfs.append(dest)
        elif kind not in _GUEST_OWN:
            raise OciError(f"mount {dest}: type {kind!r} is not supported by umiak "
                           "(bind, tmpfs, proc, sysfs, devpts, mqueue and cgroup are)")
    return volumes, tmpfs
