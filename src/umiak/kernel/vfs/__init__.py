"""The virtual file system: a mount table, path resolution inside it, and the file systems.

    /          the host's file system (or --root DIR) read-only, under an in-memory
               overlay: the program may change anything, nothing reaches the host
               (memfs.OverlayFS); /etc/hostname, hosts, passwd, group are the VM's
    /tmp       tmpfs (memfs.MemFS) showing the root's /tmp beneath it (see below)
    /dev       devfs (null, zero, full, random, urandom, tty, stdin/stdout/stderr, fd),
               /dev/shm a tmpfs
    /proc      procfs; /sys a small sysfs (the VM's CPUs)
    -v H:G     host directories or files, writes reach the host (HostFS), or read-only
    --tmpfs P  an empty tmpfs at P

The default /tmp is a tmpfs whose root shows the root file system's /tmp read-only
(copy-up on write, like the overlay): files the user names by a host /tmp path stay
readable, and what the program writes there is in memory. `--tmpfs /tmp` gives an
empty one instead.

`build_vfs(kernel)` makes it from the run options; `Kernel.vfs` calls it on first use.
"""

import stat as _stat

from umiak.kernel.vfs.core import VFS, Loc, Mount


def build_vfs(kernel) -> VFS:
    from umiak.kernel.errors import SyscallError
    from umiak.kernel.vfs.hostfs import HostFS
    from umiak.kernel.vfs.memfs import MemDir, MemFS, OverlayFS
    cfg = getattr(kernel, "config", None)    # umiak.config: a kernel may lack some file systems

    def want(sym: str) -> bool:
        return cfg is None or cfg.has(sym)
    opts = kernel.options
    caches = kernel.page_caches   # host files mapped shared
    image = opts.image_root
    if image:   # an ext2/3/4 image as / (the ext4 module is imported only here)
        if not want("EXT4"):
            from umiak.errors import UmiakError
            raise UmiakError(f"{image}: ext2/3/4 images are not in this kernel (CONFIG_EXT4 is not set)")
        from umiak.kernel.vfs.ext4 import mount_root
        overlay = mount_root(kernel, image)
        root_fs = overlay.lower_fs
    else:
        root_fs = HostFS(opts.root or "/", readonly=True, caches=caches)
        overlay = OverlayFS(kernel, root_fs)
    vfs = VFS(kernel, overlay, root_readonly=False)
    vfs.host_filesystems.append(root_fs)
    tmpfs_paths = [_norm(p) for p in opts.tmpfs]
    if "/tmp" not in tmpfs_paths and want("TMPFS"):
        lower = None
        try:
            node = overlay.root.lookup("tmp") if want("HOSTFS") else None
            lower = node.lower if isinstance(node, MemDir) else None   # else a file: no lower /tmp
        except SyscallError:
            pass
        vfs.mount("/tmp", MemFS(kernel, 0o1777, lower=lower))
    def mount_synth(sym: str, path: str, fstype: str, make, readonly: bool = False) -> None:
        """devfs, procfs, sysfs: a config's `y` made now, `m` at the first look inside,
        `n` never (their modules are then never imported); the full kernel's at the
        first look too (~0.1 ms each of every start, and most programs never look)."""
        if not want(sym):
            return
        if cfg is None or cfg.value(sym) == "m":
            lazy = OnFirstUse(make, fstype, readonly)
            lazy.mount = vfs.mount(path, lazy, readonly=readonly)
        else:
            vfs.mount(path, make(), readonly=readonly)

    def devfs():
        from umiak.kernel.vfs.devfs import make_devfs
        return make_devfs(kernel)

    def procfs():
        from umiak.kernel.vfs.procfs import make_procfs
        return make_procfs(kernel)

    def sysfs():
        from umiak.kernel.vfs.procfs import make_sysfs
        return make_sysfs(kernel)
    mount_synth("DEVFS", "/dev", "devtmpfs", devfs)
    if want("DEVFS") and want("TMPFS"):
        vfs.mount("/dev/shm", MemFS(kernel, 0o1777))
    mount_synth("PROCFS", "/proc", "proc", procfs)
    mount_synth("SYSFS", "/sys", "sysfs", sysfs, readonly=True)
    for path in tmpfs_paths:
        vfs.mount(path, MemFS(kernel, 0o1777))
    for spec in opts.volumes:
        host, guest, readonly = parse_volume(spec) if isinstance(spec, str) else spec
        fs = HostFS(host, readonly=readonly, caches=caches)
        vfs.host_filesystems.append(fs)
        vfs.mount(guest, fs, readonly=readonly)
        _mount_point(overlay, guest, _stat.S_ISDIR(fs.root.mode))
    for path in tmpfs_paths:
        _mount_point(overlay, path, True)
    if image:   # an image need not have /dev, /proc, /sys, /tmp: `ls /` shows them all the same
        for path in [p for p in vfs.mounts if p.count("/") == 1 and p != "/"]:
            _mount_point(overlay, path, True)
    if want("IDENTITY_FILES") and opts.extra.get("identity_files", True):   # a container's are its image's
        _identity(kernel, overlay)
    return vfs if cfg is None else _configured(kernel, vfs, overlay, want, bool(image))


class OnFirstUse:
    """A file system configured `m`: mounted at start, made (its module imported) by the
    first use of anything but its type, which also puts the real one in the mount."""

    def __init__(self, make, fstype: str, readonly: bool):
        self._make, self.fstype, self.readonly = make, fstype, readonly
        self.mount: Mount | None = None
        self._real = None

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("_make", "_real", "mount"):
            raise AttributeError(name)
        real = self._real
        if real is None:
            real = self._real = self._make()
            if self.mount is not None and self.mount.fs is self:
                self.mount.fs = real
        return getattr(real, name)


def _configured(kernel, vfs: VFS, overlay, want, image: bool = False) -> VFS:
    """The root a kernel config asks for: the host's own /proc, /sys, /dev hidden when
    those file systems are out (ENOENT, as without them); without OVERLAY_ROOT a
    read-only root; without HOSTFS an empty tmpfs as / (the other mounts stay)."""
    from umiak.kernel.vfs.memfs import MemFS
    if not want("HOSTFS") and not image:
        bare = VFS(kernel, MemFS(kernel, 0o755), root_readonly=False)
        bare.mounts.update({p: m for p, m in vfs.mounts.items() if p != "/"})
        return bare
    for sym, name in (("PROCFS", "proc"), ("SYSFS", "sys"), ("DEVFS", "dev")):
        if not want(sym):
            overlay.root.whiteouts.add(name)
    if not want("OVERLAY_ROOT"):
        vfs.mounts["/"].readonly = True
    return vfs


def _norm(path: str) -> str:
    import posixpath
    if not path.startswith("/"):
        raise ValueError(f"--tmpfs {path!r}: the path must be absolute")
    return posixpath.normpath(path).replace("//", "/")


def _mount_point(overlay, path: str, is_dir: bool) -> None:
    """Make the directory (or file) a mount sits on in the overlay when the root lacks it,
    so that `ls` of its parent shows it (Docker does the same)."""
    from umiak.kernel.errors import SyscallError
    from umiak.kernel.vfs.memfs import MemDir
    node = overlay.root
    parts = [p for p in path.split("/") if p]
    for i, name in enumerate(parts):
        if not isinstance(node, MemDir):
            return
        try:
            node = node.lookup(name)
            continue
        except SyscallError:
            pass
        try:
            if i == len(parts) - 1 and not is_dir:
                node.create(name, 0o644)
                return
            node.mkdir(name, 0o755)
            node = node.lookup(name)
        except SyscallError:
            return


def _identity(kernel, overlay) -> None:
    """/etc/hostname, /etc/hosts, /etc/passwd, /etc/group as the VM sees itself, made at
    the first look inside /etc (a program that never reads /etc, or one restored past
    ld.so's look at /etc/ld.so.cache, does not pay the ~1 ms of reading and writing them)."""
    from umiak.kernel.errors import SyscallError
    from umiak.kernel.vfs.memfs import MemDir, PendingFill
    root = overlay.root
    try:
        etc = root.lookup("etc")
    except SyscallError:
        root.mkdir("etc", 0o755)
        etc = root.lookup("etc")
    if isinstance(etc, MemDir):
        etc.pending = PendingFill(lambda: _identity_files(kernel, etc))


def _identity_files(kernel, etc) -> None:
    from umiak.kernel.errors import SyscallError
    from umiak.kernel.vfs import identity
    from umiak.kernel.vfs.memfs import Leaf, MemInode
    opts = kernel.options
    hostname = kernel.hostname   # the VM's name, as uname(2) gives it
    uid, gid = opts.uid, opts.gid

    def base(name):
        try:
            node = etc.lookup(name)
            return node.lower.read_bytes() if isinstance(node, Leaf) and _stat.S_ISREG(node.mode) else None
        except SyscallError:
            return None

    import os
    old = base("hostname")
    old_name = old.decode(errors="replace").strip() if old else os.uname().nodename
    hosts = base("hosts")
    files = {
        "hostname": (old, identity.hostname_file(hostname)),
        "hosts": (hosts, identity.hosts_file(hosts, old_name, hostname)),
        "passwd": (base("passwd"), identity.passwd_file(base("passwd"), uid, gid)),
        "group": (base("group"), identity.group_file(base("group"), gid, uid)),
    }
    for name, (was, data) in files.items():
        if was == data:
            continue                  # the root's own file says it already
        try:
            node = etc.lookup(name)
            inode = node.copy_up()   # keeps mode, owner, times
            if not isinstance(inode, MemInode):
                continue
            inode.data = bytearray(data)
            inode.settle()
        except SyscallError:
            try:
                etc.create(name, 0o644).write_at(0, data)
            except SyscallError:
                continue


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


__all__ = ["VFS", "Loc", "Mount", "OnFirstUse", "build_vfs", "parse_volume"]
