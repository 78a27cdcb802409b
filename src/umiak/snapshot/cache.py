"""The prelinked snapshot cache: dynamic programs start at AT_ENTRY, ld.so's work done;
static ones at their _init, the C runtime's start done.

`umiak run PROG` (on by default for the CLI; `--no-snapshot-cache` or
UMIAK_SNAPSHOT_CACHE=0 turn it off, the embedding API opts in with
extra={"snapshot_cache": True}). The first run of a dynamic program stops at its
AT_ENTRY (umiak.snapshot.point, --at entry), stores the snapshot in
$XDG_CACHE_HOME/umiak/prelink (default ~/.cache/umiak) and goes on; later runs with the
same key restore it instead of running ld.so again. A static C program's first run stops
at its _init (an int3 at the .init section, point "init"): glibc's and musl's start calls
it once their own work is done (glibc probes the CPU with ~70 CPUIDs, ~33 µs each under
PVM, applies its IFUNC and static-PIE relocations, sets up TLS and malloc), before any
constructor or main, so nothing the program itself computes is frozen in the snapshot.
Its calls before _init must be the C runtime's kind (_STATIC_CALLS), else it is marked
uncacheable, as is a program that never calls its _init or has a .preinit_array. A
static program without .init (Go) stops at its first system call instead (--at syscall),
if that is a runtime's first (brk or arch_prctl); one whose own code makes the first
call is marked uncacheable. The cache keeps at most MAX_ENTRIES snapshots of MAX_BYTES
in all (a hit marks its entry recently used; the least recently used go first).

The key (a sha256 of): umiak's version and build (its files' sizes and mtimes, so
another checkout or a changed kernel never uses this one's entries), the platform, guest RAM size, the program's
path and identity, argv, the whole environment (LD_* included), cwd, uid/gid, ASLR on
or off, the host name and the kernel config (--config/--profile: its fingerprint). Inside the snapshot ("extra") is every path ld.so looked at
(opened, stat'ed, accessed; found or not) with its identity (st_dev, st_ino, size,
mtime_ns, ctime_ns) and, for files, a sha256 of the content at the time: a lookup
re-stats them all, and any difference (a library rebuilt, replaced, touched, or one
appearing earlier in the search path) discards the entry and makes it again.

Only a start whose system calls before AT_ENTRY are all ld.so's kind (open, read,
mmap, mprotect, stat, close, brk, arch_prctl, ...) is cached: a constructor that
asks for the time, a pid or random bytes, reads, stats or seeks stdin/stdout/stderr
(this run's), opens a /proc, /sys or /dev file, or writes anything, would have its answer frozen in the snapshot, so such a program
is marked uncacheable instead (a ".no" file) and always runs the normal way.

ASLR: an entry fixes one layout (and glibc's pointer guard; a static program's, its
malloc's tcache key too), shared by every run restored from it, as processes forked
from one zygote share theirs; AT_RANDOM's first 8 bytes and the stack canary are drawn
again at each restore (umiak.snapshot._reseed).
UMIAK_SNAPSHOT_LAYOUTS=N keeps N entries (layouts) per key, each run picking one at
random: N first runs pay for ld.so and the snapshot, and the cache holds N times as
much. Runs with --no-aslr have their own single entry. `umiak cache prune` draws anew.

The cache lives in $XDG_CACHE_HOME/umiak/prelink, else ~/.cache/umiak/prelink; where
that cannot be written, programs start the normal way.
"""

from __future__ import annotations

import json
import os
import time

from umiak.digest import sha256   # CPython's own: hashlib's OpenSSL costs ~4 ms to import
from umiak.records import replace
from umiak.snapshot import Snapshot, SnapshotError

# Syscalls ld.so makes before AT_ENTRY whose answers are the files' (keyed) or fixed.
_LDSO_CALLS = frozenset({
    0, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 17, 21, 25, 63, 89, 158, 218, 257, 262, 267, 273, 302, 332, 334,
})
_LIVE_FILES = ("/proc/", "/sys/", "/dev/")
# A static program's first system call, made by its C runtime's start (brk: glibc;
# arch_prctl: glibc, musl, Go): what ran before is the runtime's own code, not the program's.
_STATIC_FIRST = frozenset({12, 158})
# What a static C runtime's start asks before it calls _init (glibc: brk, arch_prctl,
# set_tid_address, set_robust_list, rseq, prlimit64, readlink of /proc/self/exe, getrandom
# for malloc's tcache key, mprotect of RELRO; musl: arch_prctl, set_tid_address).
_STATIC_CALLS = frozenset({9, 10, 11, 12, 89, 158, 218, 267, 273, 302, 318, 334})
_FD_CALLS = frozenset({0, 5, 8, 17})   # read, fstat, lseek, pread64 (of stdio: not keyed)
# nr -> index of the path argument
_PATH_ARG = {2: 0, 4: 0, 6: 0, 21: 0, 89: 0, 257: 1, 262: 1, 267: 1, 332: 1}


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "umiak", "prelink")


def _ident(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _key(opts, platform: str, exe_path: str, argv: list[bytes], env: dict[str, str], build: str) -> str:
    from umiak import __version__
    cwd = opts.cwd or os.getcwd()
    parts = {"v": __version__, "build": build, "platform": platform, "mem": opts.mem_size, "exe": exe_path,
             "exe_ident": _ident(exe_path), "argv": [a.hex() for a in argv], "env": sorted(env.items()),
             "cwd": os.path.normpath(cwd), "uid": opts.uid, "gid": opts.gid, "aslr": opts.aslr,
             "hostname": opts.hostname, "vdso": opts.vdso, "cpu": opts.cpu or "host", "nofile": _nofile(),
             "config": opts.kernel_config.fingerprint if opts.kernel_config is not None else None,
             "sig_ign": list(opts.extra.get("ignored_signals", ()))}
    return sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def build_id(root: str | None = None) -> str:
    """umiak's own code (each file's path, size and mtime): another build of umiak (a fresh
    clone, a changed kernel) never uses a snapshot this one made. About 1 ms: a Machine
    takes it once."""
    if root is None:
        import umiak
        root = os.path.dirname(os.path.abspath(umiak.__file__))
    out = []
    stack = [root]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except OSError:
            continue
        with it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    if e.name != "__pycache__":
                        stack.append(e.path)
                    continue
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                out.append((e.path, st.st_size, st.st_mtime_ns))
    out.sort()
    return sha256(repr(out).encode()).hexdigest()[:16]


# The cache's bounds: the least recently used entries go first (a hit touches its entry).
MAX_ENTRIES = 128
MAX_BYTES = 512 << 20
MAX_MARKS = 1024   # ".no" files: program starts found uncacheable


def _evict(d: str) -> None:
    """Keep the cache within MAX_ENTRIES snapshots of MAX_BYTES in all, and MAX_MARKS marks."""
    try:
        names = os.listdir(d)
    except OSError:
        return
    snaps, marks = [], []
    for n in names:
        p = os.path.join(d, n)
        try:
            st = os.stat(p)
        except OSError:
            continue
        if n.endswith(".snap"):
            snaps.append((st.st_mtime_ns, st.st_size, p))
        elif n.endswith(".no"):
            marks.append((st.st_mtime_ns, p))
    snaps.sort(reverse=True)
    total = 0
    for i, (_t, size, p) in enumerate(snaps):
        total += size
        if i >= MAX_ENTRIES or total > MAX_BYTES:
            _remove(p)
    for _t, p in sorted(marks, reverse=True)[MAX_MARKS:]:
        _remove(p)


def _remove(path: str) -> None:
    for p in (path, path + ".hits", path + ".touch") if path.endswith(".snap") else (path,):
        try:
            os.unlink(p)
        except OSError:
            pass


def _nofile() -> list[int]:
    """The host's RLIMIT_NOFILE: the guest's starts as it (process.host_nofile)."""
    import resource
    return list(resource.getrlimit(resource.RLIMIT_NOFILE))


def _valid(snap: Snapshot) -> bool:
    deps = snap.header.get("extra", {}).get("deps")
    if not isinstance(deps, list):
        return False
    return all(_ident(d["path"]) == d["ident"] for d in deps)


def _load(path: str, loaded: dict | None) -> Snapshot | None:
    """The snapshot at path; loaded: a Machine's snapshots read before (path -> (identity,
    Snapshot)), used while the file is the same one (written anew, it is another inode)."""
    ident = _ident(path)
    if ident is None:
        return None
    if loaded is not None:
        kept = loaded.get(path)
        if kept is not None and kept[0] == ident:
            return kept[1]
    try:
        snap = Snapshot.load(path)
    except SnapshotError:
        return None
    if loaded is not None:
        if len(loaded) >= LOADED_MAX:
            del loaded[next(iter(loaded))]
        loaded[path] = (ident, snap)
    return snap


LOADED_MAX = 8   # snapshots a Machine keeps read (each costs its file's size in memory)


def prepare(opts, platform: str, image, exe_path: str, argv: list[bytes], env: dict[str, str],
            build: str | None = None, loaded: dict | None = None):
    """The options of this run with the cache applied: a hit restores the snapshot, a miss
    takes one at AT_ENTRY (a static program: at its _init, or its first system call).
    Unchanged for a program marked uncacheable."""
    if opts.volumes or opts.tmpfs \
            or opts.strace or opts.syscall_summary or opts.extra.get("tracer") is not None \
            or opts.extra.get("recorder") is not None or opts.net != "host":
        return opts
    d = cache_dir()
    if not _writable(d):
        return opts
    key = _key(opts, platform, exe_path, argv, env, build or build_id())
    layouts = _layouts() if opts.aslr else 1
    if layouts > 1:
        import random
        key += f"-{random.randrange(layouts)}"
    path = os.path.join(d, key + ".snap")
    if os.path.exists(path + ".no"):
        return opts
    extra = dict(opts.extra)
    snap = _load(path, loaded)
    if snap is not None and _valid(snap):
        try:
            with open(path + ".hits", "ab") as hits:
                hits.write(b".")
            os.utime(path)   # recently used: evicted last
        except OSError:
            pass
        if loaded is not None and path in loaded:
            loaded[path] = (_ident(path), snap)
        extra["restore"] = snap
        if snap.touched is None:
            try:
                with open(path + ".touch") as touch:
                    snap.touched = {int(v) for v in json.load(touch)}
            except (OSError, ValueError, TypeError):
                extra["tracer"] = _TouchSaver(snap, path + ".touch")   # this run says what to map at once
        return replace(opts, extra=extra)

    def taken(snap: Snapshot) -> None:
        os.makedirs(d, exist_ok=True)
        snap.save(path)
        for old in (path + ".hits", path + ".touch"):
            try:
                os.unlink(old)
            except OSError:
                pass
        _evict(d)

    from umiak.snapshot.point import SnapshotPoint
    interp = getattr(image, "interp", None)
    watch: _Watch | None = None
    if interp:
        point, watch, before = SnapshotPoint("entry", taken, stop=False), _Watch(), "AT_ENTRY"
    elif (init := _init_offset(image)) is not None:
        # A static program with a .init: at _init, its C runtime's start done (glibc probes
        # the CPU, relocates, sets up TLS and malloc) and none of its own code run yet.
        point = SnapshotPoint("init", taken, stop=False, init=init)
        watch, before = _Watch(_STATIC_CALLS, point, path), "_init"
    else:
        # Another static program (Go), at its first system call: its runtime has probed
        # the CPU (and relocated itself); it has asked the kernel nothing.
        point, before = SnapshotPoint("syscall", taken, stop=False, expect=_STATIC_FIRST), ""

    def deps(kernel, task):
        kernel.tracer = None
        kernel.tracer_changed()
        if watch is not None and watch.other:
            raise SnapshotError(f"uncacheable: syscalls {sorted(watch.other)} before {before}")
        return {"deps": (watch or _Watch()).deps(exe_path, interp, task), "program": exe_path,
                "argv0": argv[0].decode(errors="replace") if argv else "", "created": time.time()}

    point.extra = deps
    if watch is not None:
        extra["tracer"] = watch
    point.on_error = lambda e: _mark_uncacheable(path, e)
    extra["snapshot_hook"] = point
    return replace(opts, extra=extra)


def _init_offset(image) -> int | None:
    """Where a static program's .init section lies from its entry point; None without one,
    or with a .preinit_array (program code the C runtime calls before _init)."""
    from umiak.loader.elf import section
    init, pre = section(image.data, b".init"), section(image.data, b".preinit_array")
    if init is None or not init[1] or pre is not None and pre[1]:
        return None
    return init[0] - image.entry


def _writable(d: str) -> bool:
    """The cache dir, or the nearest directory above that exists, can be written."""
    while not os.path.isdir(d):
        parent = os.path.dirname(d)
        if parent == d:
            return False
        d = parent
    return os.access(d, os.W_OK | os.X_OK)


def _layouts() -> int:
    try:
        return max(1, min(64, int(os.environ.get("UMIAK_SNAPSHOT_LAYOUTS", "1"))))
    except ValueError:
        return 1


def _mark_uncacheable(path: str, err: Exception) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".no", "w") as f:
            f.write(f"{err}\n")
    except OSError:
        pass
    _evict(os.path.dirname(path))


class _TouchSaver:
    """A tracer that, at the end of a run restored from the cache, stores which file pages it
    faulted in (Snapshot.touched), so that later restores map them at once."""

    def __init__(self, snap: Snapshot, path: str):
        self.snap, self.path = snap, path

    def enter(self, task, nr: int, args):
        return None

    def exit(self, task, call, ret) -> None:
        return None

    def finish(self) -> None:
        if self.snap.touched is None:
            return
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(sorted(self.snap.touched), f)
            os.replace(tmp, self.path)
        except OSError:
            pass

    def __getattr__(self, name: str):
        return lambda *a, **k: None


class _Watch:
    """A tracer for the start of a first run: which calls ld.so (or a static program's C
    runtime) made, which paths it tried. point: a static program's, which must be reached
    (one that never calls _init is marked uncacheable at its end)."""

    def __init__(self, allowed: frozenset[int] = _LDSO_CALLS, point=None, path: str = ""):
        self.allowed, self.point, self.path = allowed, point, path
        self.other: set[int] = set()
        self.paths: dict[str, None] = {}

    def enter(self, task, nr: int, args):
        # What stdio is (its content, its type, its offset) is this run's, not keyed.
        if nr not in self.allowed or nr in _FD_CALLS and args[0] < 3:
            self.other.add(nr)
        i = _PATH_ARG.get(nr)
        if i is not None:
            try:
                p = task.mm.read_cstr(args[i]).decode("utf-8", "surrogateescape")
            except Exception:  # noqa: BLE001 - a bad pointer is the program's EFAULT
                p = ""
            if not p and nr in (262, 332) and args[0] < 3:   # fstatat(1, "", AT_EMPTY_PATH)
                self.other.add(nr)
            if p == "/proc/self/exe" and nr in (89, 267):   # readlink: the program's path (keyed)
                return nr
            if p:
                p = os.path.normpath(os.path.join(task.process.cwd, p))
                if p.startswith(_LIVE_FILES):   # content that changes with no change of identity
                    self.other.add(nr)
                self.paths[p] = None
        return nr

    def exit(self, task, call, ret) -> None:
        return None

    def finish(self) -> None:
        if self.point is not None and not self.point.done:
            _mark_uncacheable(self.path, SnapshotError("uncacheable: the program never called its _init"))

    def __getattr__(self, name: str):   # exec, exited, signal: nothing to record
        return lambda *a, **k: None

    def deps(self, exe_path: str, interp: str | None, task) -> list[dict]:
        paths = dict.fromkeys([exe_path, interp, "/etc/ld.so.cache", "/etc/ld.so.preload"] if interp else [exe_path])
        paths.update(self.paths)
        for v in task.mm.vmas:
            if v.file is not None and v.file.path:
                paths[v.file.path] = None
        out = []
        for p in paths:
            ident = _ident(p)
            rec: dict = {"path": p, "ident": ident}
            if ident is not None and os.path.isfile(p):
                rec["sha256"] = _sha256(p)
            out.append(rec)
        return out


def _sha256(path: str) -> str:
    import hashlib   # OpenSSL's is the fast one for file contents (taken on a miss only)
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return ""
    return h.hexdigest()


# -- umiak cache ls | prune ---------------------------------------------------------------
def _entries():
    d = cache_dir()
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return
    for n in names:
        if n.endswith(".snap"):
            yield os.path.join(d, n)


def listing() -> list[str]:
    out = []
    for path in _entries():
        try:
            snap = Snapshot.load(path)
        except SnapshotError:
            out.append(f"{os.path.basename(path)}  (unreadable)")
            continue
        ex = snap.header.get("extra", {})
        try:
            hits = os.path.getsize(path + ".hits")
        except OSError:
            hits = 0
        state = "valid" if _valid(snap) else "stale"
        out.append(f"{os.path.basename(path)[:16]}  {os.path.getsize(path) >> 10:6d} KiB  hits {hits}  "
                   f"{state}  {snap.header.get('platform', '?')}  {ex.get('program', '?')}")
    d = cache_dir()
    try:
        nos = [n for n in os.listdir(d) if n.endswith(".no")]
    except OSError:
        nos = []
    if nos:
        out.append(f"({len(nos)} program start{'s' if len(nos) != 1 else ''} marked uncacheable)")
    return out


def prune(stale_only: bool = False) -> int:
    """Remove cached snapshots (only stale ones with stale_only); returns how many."""
    n = 0
    for path in list(_entries()):
        if stale_only:
            try:
                if _valid(Snapshot.load(path)):
                    continue
            except SnapshotError:
                pass
        for p in (path, path + ".hits", path + ".touch"):
            try:
                os.unlink(p)
            except OSError:
                pass
        n += 1
    if not stale_only:
        d = cache_dir()
        try:
            for name in os.listdir(d):
                if name.endswith(".no"):
                    os.unlink(os.path.join(d, name))
        except OSError:
            pass
    return n
