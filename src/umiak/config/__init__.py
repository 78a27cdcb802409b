"""The kernel configuration a run uses: Kconfig resolved once, frozen, cached.

    cfg = load(config="./.config")      # or profile="minimal"; None: the full kernel
    Machine(kernel_config=cfg).run([...])

A .config (or a defconfig fragment, or a shipped profile) is resolved with
kconfiglib once (umiak.config.build) into a small frozen dict under
$XDG_CACHE_HOME/umiak (or ~/.cache/umiak), keyed by a hash of the file and of the
Kconfig tree's stamp (the Kconfig files, syscalls/table.py, the rules: their paths,
sizes and mtimes): frozen-KEY.json
for people to read, frozen-KEY.PYVERSION.marshal that later runs load (marshal is
built in: no import), never importing kconfiglib. Without --config/--profile/KCONFIG_CONFIG
nothing here is imported at all and the kernel is the full one, as before.

The kernel reads a config only through `Kernel.config` (None = full): value
attributes (`getattr(kernel.config, "pipe_capacity", DEFAULT)`), `has(SYMBOL)`,
and the hooks of umiak.config.runtime.
"""

import functools
import os

from umiak.digest import sha256 as _sha256
from umiak.errors import UmiakError

FORMAT = 1
PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # .../umiak
PROFILES_DIR = os.path.join(PKG, "config", "profiles")
KCONFIG_FILES = ("Kconfig", "platform/Kconfig", "loader/Kconfig", "kernel/Kconfig", "kernel/Kconfig.values",
                 "kernel/vfs/Kconfig", "kernel/net/Kconfig", "trace/Kconfig", "kernel/syscalls/Kconfig")
# Everything the frozen form depends on besides the .config itself.
TREE_FILES = KCONFIG_FILES + ("kernel/syscalls/table.py", "config/rules.py", "config/build.py")


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "umiak")


def tree_fingerprint() -> str:
    """A hash of the Kconfig tree: a changed Kconfig file or syscall table re-resolves every config."""
    h = _sha256(f"umiak-kconfig-{FORMAT}".encode())
    for rel in TREE_FILES:
        with open(os.path.join(PKG, rel), "rb") as f:
            h.update(rel.encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


def tree_stamp() -> str:
    """What a run keys its frozen config on: the Kconfig tree's files by path, size and
    mtime (a stat each: reading and hashing them all took 1-6 ms of every configured start).
    An edit changes the mtime, so the config is resolved again, as with the content hash."""
    parts = [f"umiak-kconfig-{FORMAT}", PKG]
    for rel in TREE_FILES:
        st = os.stat(os.path.join(PKG, rel))
        parts.append(f"{rel}:{st.st_size}:{st.st_mtime_ns}")
    return "\0".join(parts)


def profile_names() -> list[str]:
    return sorted(n[:-len(".defconfig")] for n in os.listdir(PROFILES_DIR) if n.endswith(".defconfig"))


def profile_path(name: str) -> str:
    path = os.path.join(PROFILES_DIR, f"{name}.defconfig")
    if "/" in name or not os.path.isfile(path):
        raise UmiakError(f"unknown profile {name!r} (profiles: {', '.join(profile_names())})")
    return path


def config_source(config: str | None = None, profile: str | None = None) -> str | None:
    """The file a run's config comes from: --config, --profile, $KCONFIG_CONFIG, or None (full kernel)."""
    if config is not None and profile is not None:
        raise UmiakError("give --config or --profile, not both")
    if profile is not None:
        return profile_path(profile)
    return config if config is not None else (os.environ.get("KCONFIG_CONFIG") or None)


def load(config: str | None = None, profile: str | None = None) -> "FrozenConfig | None":
    """The frozen config of --config FILE / --profile NAME / $KCONFIG_CONFIG (None: the full kernel)."""
    path = config_source(config, profile)
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UmiakError(f"config {path}: {e.strerror}") from None
    import marshal   # built in: reading the frozen form costs no import (json would cost ~5 ms)
    base, fast = _cache_paths(data)
    try:
        with open(fast, "rb") as f:
            frozen = marshal.loads(f.read())
        if isinstance(frozen, dict) and frozen.get("format") == FORMAT:
            return FrozenConfig(frozen, path)
    except (OSError, ValueError, EOFError, TypeError):
        pass
    from umiak.config.build import freeze
    frozen = freeze(path)
    _prune(cache_dir())
    store(data, frozen)
    return FrozenConfig(frozen, path)


def _cache_paths(data: bytes) -> tuple[str, str]:
    """(the cache's base name, its marshal file) for a .config's bytes."""
    import sys
    key = _sha256(tree_stamp().encode() + b"\0" + data).hexdigest()[:32]
    base = os.path.join(cache_dir(), f"frozen-{key}")
    return base, f"{base}.{sys.hexversion:x}.marshal"


def store(data: bytes, frozen: dict) -> None:
    """Cache `frozen` as the resolution of a .config whose bytes are `data`. Exploration uses it
    for trial configs it derives from one it resolved (a changed string nothing depends on), so
    its many trials skip kconfiglib."""
    import json
    import marshal
    base, fast = _cache_paths(data)
    _write_atomic(f"{base}.json", json.dumps(frozen, sort_keys=True, indent=1) + "\n")   # for people
    _write_atomic(fast, marshal.dumps(frozen))                                            # for runs


def _prune(directory: str, days: int = 30) -> None:
    """Drop frozen configs and generated Kconfig files nobody read for `days` (each
    edit of the tree or of a .config leaves a new set behind). Runs only when freezing."""
    import time
    limit = time.time() - days * 86400
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(("frozen-", "Kconfig.syscalls-")):
            p = os.path.join(directory, name)
            try:
                st = os.stat(p)
                if max(st.st_atime, st.st_mtime) < limit:
                    os.unlink(p)
            except OSError:
                pass


def _write_atomic(path: str, content: str | bytes) -> None:
    """Write the cache file whole or not at all (another run may read it meanwhile); an
    unwritable cache only costs the next run a parse."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        os.replace(tmp, path)
    except OSError:
        pass


class FrozenConfig:
    """A resolved kernel configuration: component symbols, present syscalls, values."""

    def __init__(self, data: dict, source: str = ""):
        self.source = source
        self.symbols: dict[str, str] = data["symbols"]     # every non-syscall symbol -> its value
        self.syscalls: dict[str, str] = data["syscalls"]   # present syscall name -> "y" | "m"
        self.absent: str = data["absent"]                  # enosys | eperm | kill
        v = self.symbols
        self.guest_memory = int(v["GUEST_MEMORY_MB"]) << 20
        self.max_threads = int(v["MAX_THREADS"])
        self.pipe_capacity = int(v["PIPE_BUFFER_SIZE"])
        self.fault_chunk_max = int(v["FAULT_AROUND_MAX_PAGES"])
        self.emu_slice = int(v.get("EMU_TIME_SLICE_US") or 4000) / 1e6
        self.fd_limit = int(v["FD_LIMIT"])
        from umiak.kernel import abi
        self.socket_families = frozenset(af for sym, af in (("NET_UNIX", abi.AF_UNIX), ("NET_INET", abi.AF_INET),
                                                             ("NET_INET6", abi.AF_INET6),
                                                             ("NET_NETLINK", abi.AF_NETLINK)) if self.has(sym))

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of everything this config decides (the prelinked snapshot cache's key holds it)."""
        parts = (sorted(self.symbols.items()), sorted(self.syscalls.items()), self.absent)
        return _sha256(repr(parts).encode()).hexdigest()[:24]

    def has(self, sym: str) -> bool:
        """The component is in this kernel (y or m)."""
        return self.symbols.get(sym, "n") not in ("n", "")

    def value(self, sym: str) -> str:
        return self.symbols.get(sym, "n")

    # -- hooks the kernel calls (umiak.config.runtime) ----------------------------------
    def dispatch_table(self, kernel) -> list:
        from umiak.config.runtime import dispatch_table
        return dispatch_table(self, kernel)

    def boot(self, kernel, proc) -> None:
        from umiak.config.runtime import boot
        boot(self, kernel, proc)

    def finish(self, kernel) -> None:
        from umiak.config.runtime import finish
        finish(self, kernel)


__all__ = ["FrozenConfig", "load", "profile_names", "profile_path", "cache_dir"]
