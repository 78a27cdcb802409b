"""The virtual file system: a mount table, path resolution inside it, and the file systems.

    root   the host's file system (or --root DIR), read-only: writes give EROFS
    /dev   devfs (null, zero, full, random, urandom, tty, stdin/stdout/stderr, fd)
    /proc  procfs (self, <pid>/exe, fd/, cmdline, environ, status, maps, mounts)

`build_vfs(kernel)` makes it from the run options; `Kernel.vfs` calls it on first use.
"""

from umiak.kernel.vfs.core import VFS, Loc, Mount


def build_vfs(kernel) -> VFS:
    from umiak.kernel.vfs.devfs import make_devfs
    from umiak.kernel.vfs.hostfs import HostFS
    from umiak.kernel.vfs.procfs import make_procfs
    opts = kernel.options
    root = getattr(opts, "root", None) or "/"
    vfs = VFS(kernel, HostFS(root, readonly=True), root_readonly=True)
    vfs.mount("/dev", make_devfs(kernel))
    vfs.mount("/proc", make_procfs(kernel))
    for spec in getattr(opts, "volumes", None) or []:
        host, guest, readonly = parse_volume(spec) if isinstance(spec, str) else spec
        vfs.mount(guest, HostFS(host, readonly=readonly), readonly=readonly)
    return vfs


def parse_volume(spec: str) -> tuple[str, str, bool]:
    """'HOST:GUEST[:ro|:rw]' -> (absolute host path, normalised guest path, read-only)."""
    import os
    import posixpath
    parts = spec.split(":")
    readonly = False
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        readonly = parts[2] == "ro"
        parts = parts[:2]
    if len(parts) != 2 or not parts[0] or not parts[1].startswith("/"):
        raise ValueError(f"bad volume {spec!r}: expected HOST:GUEST[:ro] with an absolute GUEST path")
    return os.path.abspath(parts[0]), posixpath.normpath(parts[1]).replace("//", "/"), readonly


__all__ = ["VFS", "Loc", "Mount", "build_vfs", "parse_volume"]
