"""The mount table and path resolution.

A guest path is resolved here, one component at a time, never handed to the
host: each file system only ever sees single names to look up in a directory
it already holds. Symlinks are followed with the guest's view (an absolute
target starts again at the guest's root), `..` climbs the chain of locations
the walk came through (so it leaves a mount for its parent and stops at `/`),
and mount points are found by the guest path of the directory being entered.

A file system is a nodes.FileSystem (`root`, `readonly`, `tmpfile`); a node is a
nodes.Node: `mode` (the st_mode of its lstat), `stat()`, and as fits its type
`lookup(name)`, `list()`, `readlink()`, `open(task, loc, flags)`, `create(...)`, or
`magic(vfs, task)` for the /proc links that jump to an open file rather than to a path
(interfaces.Inode and FileSys say what each means).
"""

import stat as _stat
from typing import TYPE_CHECKING

from umiak.kernel import abi
from umiak.kernel.abi import (NAME_MAX, PATH_MAX, R_OK, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS,
                              RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV, W_OK, X_OK)
from umiak.kernel.errors import (EACCES, EEXIST, EINVAL, EISDIR, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR,
                                 EROFS, EXDEV, SyscallError)
from umiak.kernel.vfs.permissions import check_access, may_search

if TYPE_CHECKING:
    from umiak.kernel.vfs.locks import LockTable

MAXSYMLINKS = 40

# What the last component of a parent walk is (Linux's LAST_NORM...)
LAST_NORM, LAST_ROOT, LAST_DOT, LAST_DOTDOT = 0, 1, 2, 3


class Loc:
    """A position in the guest's tree: a node, the mount it is on, its guest path,
    and the location it was entered from (for `..`)."""

    __slots__ = ("path", "node", "mount", "parent")

    def __init__(self, path: str, node, mount: "Mount", parent: "Loc | None"):
        self.path = path
        self.node = node
        self.mount = mount
        self.parent = parent

    @property
    def is_dir(self) -> bool:
        return _stat.S_ISDIR(self.node.mode)

    def child_path(self, name: str) -> str:
        return ("/" + name) if self.path == "/" else f"{self.path}/{name}"

    def __repr__(self) -> str:
        return f"Loc({self.path!r})"


class Mount:
    def __init__(self, fs, path: str, readonly: bool, noexec: bool = False):
        self.fs = fs
        self.path = path
        self.readonly = readonly or fs.readonly
        self.noexec = noexec

    @property
    def root(self):
        return self.fs.root


def split_path(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


class VFS:
    def __init__(self, kernel, root_fs, root_readonly: bool = True):
        self.kernel = kernel
        self.mounts: dict[str, Mount] = {}
        root_mount = Mount(root_fs, "/", root_readonly)
        self.mounts["/"] = root_mount
        self.root = Loc("/", root_fs.root, root_mount, None)
        self._cwd_cache: tuple[str, Loc] | None = None
        self.host_filesystems: list = []   # HostFS instances: their directory fds are closed with the VM
        self.locks: LockTable | None = None   # fcntl/flock/OFD locks: made at the first lock (syscalls/fcntl.py)

    def close(self) -> None:
        """Give the host directory fds back (the kernel's shutdown)."""
        for fs in self.host_filesystems:
            fs.close()
        self.host_filesystems = []

    # -- the mount table --------------------------------------------------------
    def mount(self, path: str, fs, readonly: bool = False, noexec: bool = False) -> Mount:
        """Attach fs at the guest path (absolute, normalised); later mounts hide earlier ones."""
        m = Mount(fs, path, readonly, noexec)
        self.mounts[path] = m
        self._cwd_cache = None
        return m

    # -- where a walk starts ----------------------------------------------------
    def cwd(self, task) -> Loc:
        cwd = task.process.cwd if task is not None else (self.kernel.options.cwd or "/")
        cached = self._cwd_cache
        if cached is not None and cached[0] == cwd:
            return cached[1]
        try:
            loc = self._walk(self.root, self.root, cwd, True, 0)
        except SyscallError:
            loc = self.root   # the working directory vanished: Linux keeps it; we restart at /
        self._cwd_cache = (cwd, loc)
        return loc

    def start(self, task, dirfd: int, path: str) -> Loc:
        """Where a relative path starts: the dirfd's directory or the working directory."""
        if path.startswith("/"):
            return self.root
        if dirfd == abi.AT_FDCWD:
            return self.cwd(task)
        f = task.fds.get(dirfd)
        loc = f.loc
        if loc is None:
            raise SyscallError(ENOTDIR)
        if not loc.is_dir:
            raise SyscallError(ENOTDIR)
        return loc

    # -- resolution -------------------------------------------------------------
    def resolve(self, task, dirfd: int, path: str, follow: bool = True, resolve_flags: int = 0) -> Loc:
        """The location a path names (ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG, EACCES as Linux)."""
        if not path:
            raise SyscallError(ENOENT)
        if len(path) >= PATH_MAX:
            raise SyscallError(ENAMETOOLONG)
        start = self._start_for(task, dirfd, path, resolve_flags)
        root = start if resolve_flags & RESOLVE_IN_ROOT else self.root
        if resolve_flags & RESOLVE_BENEATH and path.startswith("/"):
            raise SyscallError(EXDEV)
        return self._walk(root, start, path, follow, resolve_flags, task=task)

    def resolve_fd_or_path(self, task, dirfd: int, path: str, follow: bool, empty_ok: bool):
        """(Loc or None, File or None) for the *at() calls with AT_EMPTY_PATH."""
        if not path and empty_ok:
            if dirfd == abi.AT_FDCWD:
                return self.cwd(task), None
            return None, task.fds.get(dirfd)
        return self.resolve(task, dirfd, path, follow), None

    def resolve_parent(self, task, dirfd: int, path: str) -> tuple[Loc, str, int]:
        """The directory that would hold the last component, that name, and its kind."""
        if not path:
            raise SyscallError(ENOENT)
        if len(path) >= PATH_MAX:
            raise SyscallError(ENAMETOOLONG)
        start = self._start_for(task, dirfd, path, 0)
        parts = split_path(path)
        if not parts:
            return self.root, "", LAST_ROOT
        last = parts[-1]
        head = "/".join(parts[:-1])
        if path.startswith("/"):
            head = "/" + head
        parent = self._walk(self.root, start, head, True, 0, task=task) if head else start
        if not parent.is_dir:
            raise SyscallError(ENOTDIR)
        may_search(task, parent)
        if len(last) > NAME_MAX:
            raise SyscallError(ENAMETOOLONG)
        kind = LAST_DOT if last == "." else LAST_DOTDOT if last == ".." else LAST_NORM
        return parent, last, kind

    def _start_for(self, task, dirfd: int, path: str, resolve_flags: int) -> Loc:
        if resolve_flags & (RESOLVE_IN_ROOT | RESOLVE_BENEATH) and path.startswith("/"):
            # start at the dirfd all the same: IN_ROOT reads '/' as the dirfd
            return self.start(task, dirfd, "")
        return self.start(task, dirfd, path)

    def child(self, loc: Loc, name: str) -> Loc:
        """Look up one name in a directory location, entering a mount found there."""
        path = loc.child_path(name)
        m = self.mounts.get(path)
        if m is not None:
            return Loc(path, m.root, m, loc)
        return Loc(path, loc.node.lookup(name), loc.mount, loc)

    def _walk(self, root: Loc, start: Loc, path: str, follow: bool, rflags: int, task=None) -> Loc:
        loc = root if path.startswith("/") else start
        todo = split_path(path)
        todo.reverse()
        must_dir = path.endswith("/") and bool(todo)
        links = 0
        while todo:
            name = todo.pop()
            if len(name) > NAME_MAX:
                raise SyscallError(ENAMETOOLONG)
            if not loc.is_dir:
                raise SyscallError(ENOTDIR)
            may_search(task, loc)
            if name == ".":
                continue
            if name == "..":
                if loc is root or loc.path == root.path:
                    if rflags & RESOLVE_BENEATH:
                        raise SyscallError(EXDEV)
                    continue
                if rflags & RESOLVE_BENEATH and loc.path == start.path:
                    raise SyscallError(EXDEV)
                parent = loc.parent
                if parent is None:
                    parent = self._parent_of(loc.path)
                if rflags & RESOLVE_NO_XDEV and parent.mount is not loc.mount:
                    raise SyscallError(EXDEV)
                loc = parent
                continue
            nxt = self.child(loc, name)
            if rflags & RESOLVE_NO_XDEV and nxt.mount is not loc.mount:
                raise SyscallError(EXDEV)
            if _stat.S_ISLNK(nxt.node.mode) and (todo or follow or must_dir):
                links += 1
                if links > MAXSYMLINKS or rflags & RESOLVE_NO_SYMLINKS:
                    raise SyscallError(ELOOP)
                magic = nxt.node.magic
                if magic is not None:
                    if rflags & RESOLVE_NO_MAGICLINKS:
                        raise SyscallError(ELOOP)
                    loc = magic(self, task)
                    continue
                target = nxt.node.readlink()
                if not target:
                    raise SyscallError(ENOENT)
                if target.startswith("/"):
                    if rflags & RESOLVE_BENEATH:
                        raise SyscallError(EXDEV)
                    loc = root
                parts = split_path(target)
                if target.endswith("/") and not todo:
                    must_dir = True
                todo.extend(reversed(parts))
                continue
            loc = nxt
        if must_dir and not loc.is_dir:
            raise SyscallError(ENOTDIR)
        return loc

    def _parent_of(self, path: str) -> Loc:
        """The parent of a location reached without a chain (a /proc magic link target)."""
        head = path.rsplit("/", 1)[0] or "/"
        return self._walk(self.root, self.root, head, True, 0)

    # -- operations the syscalls and the loader use -----------------------------
    def open(self, task, dirfd: int, path: str, flags: int, mode: int = 0, resolve_flags: int = 0):
        """open(2) semantics after argument checks; returns a File (not yet installed)."""
        creat = flags & abi.O_CREAT
        tmpfile = (flags & abi.O_TMPFILE) == abi.O_TMPFILE
        if creat or tmpfile:
            return self._open_create(task, dirfd, path, flags, mode, resolve_flags)
        follow = not flags & abi.O_NOFOLLOW
        loc = self.resolve(task, dirfd, path, follow, resolve_flags)
        if not follow and _stat.S_ISLNK(loc.node.mode) and not flags & abi.O_PATH:
            raise SyscallError(ELOOP)
        return self.open_loc(task, loc, flags)

    def _open_create(self, task, dirfd, path, flags, mode, resolve_flags, depth=0):
        if (flags & abi.O_TMPFILE) == abi.O_TMPFILE:
            loc = self.resolve(task, dirfd, path, True, resolve_flags)
            if not loc.is_dir:
                raise SyscallError(ENOTDIR)
            if (flags & abi.O_ACCMODE) == abi.O_RDONLY:
                raise SyscallError(EINVAL)
            check_access(task, loc, W_OK | X_OK)
            return loc.mount.fs.tmpfile(task, loc, flags, mode & ~task.process.umask if task else mode)
        parent, name, kind = self.resolve_parent(task, dirfd, path)
        if kind != LAST_NORM or path.endswith("/"):
            raise SyscallError(EISDIR)   # open("x/", O_CREAT) is EISDIR whatever x is, as Linux
        found: Loc | None
        try:
            found = self.child(parent, name)
        except SyscallError as e:
            if e.errno != ENOENT:
                raise
            found = None
        if found is not None and _stat.S_ISLNK(found.node.mode) and not flags & abi.O_EXCL:
            if flags & abi.O_NOFOLLOW:
                raise SyscallError(ELOOP)
            try:
                found = self._walk(self.root, parent, name, True, resolve_flags, task=task)
            except SyscallError as e:
                if e.errno != ENOENT:
                    raise
                # a dangling symlink: Linux creates its target
                if depth >= MAXSYMLINKS or resolve_flags & RESOLVE_NO_SYMLINKS:
                    raise SyscallError(ELOOP) from None
                target = found.node.readlink()
                if not target.startswith("/"):
                    target = parent.child_path(target)
                return self._open_create(task, abi.AT_FDCWD, target, flags, mode, resolve_flags, depth + 1)
        if found is not None:
            if flags & abi.O_EXCL:
                raise SyscallError(EEXIST)
            if found.is_dir:
                raise SyscallError(EISDIR)
            return self.open_loc(task, found, flags & ~abi.O_CREAT)
        self._need_writable(parent)
        check_access(task, parent, W_OK | X_OK)
        umask = task.process.umask if task is not None else 0o022
        c = task.process.creds if task is not None else None
        node = parent.node.create(name, (mode & 0o7777) & ~umask, owner=(c.euid, c.egid) if c is not None else (0, 0))
        if task is not None and getattr(task.kernel, "inotify", None) is not None:
            from umiak.kernel.inotify import created
            created(task, parent, name)
        return self.open_loc(task, Loc(parent.child_path(name), node, parent.mount, parent),
                             flags & ~abi.O_TRUNC, created=True)

    def _need_writable(self, loc: Loc) -> None:
        if loc.mount.readonly:
            raise SyscallError(EROFS)

    def open_loc(self, task, loc: Loc, flags: int, created: bool = False):
        node = loc.node
        mode = node.mode
        acc = flags & abi.O_ACCMODE
        if flags & abi.O_PATH:
            from umiak.kernel.vfs.nodes import PathFile
            return PathFile(loc, flags & (abi.O_PATH | abi.O_DIRECTORY | abi.O_NOFOLLOW | abi.O_CLOEXEC))
        if _stat.S_ISLNK(mode):
            raise SyscallError(ELOOP)
        if flags & abi.O_DIRECTORY and not _stat.S_ISDIR(mode):
            raise SyscallError(ENOTDIR)
        want_write = acc in (abi.O_WRONLY, abi.O_RDWR)
        if _stat.S_ISDIR(mode) and (want_write or flags & abi.O_CREAT):
            raise SyscallError(EISDIR)
        if not created:
            mask = (R_OK if acc in (abi.O_RDONLY, abi.O_RDWR) else 0) | (W_OK if want_write else 0)
            if acc == 3:
                mask = R_OK | W_OK
            check_access(task, loc, mask)
            if flags & abi.O_TRUNC and _stat.S_ISREG(mode):
                if loc.mount.readonly:
                    raise SyscallError(EROFS)
                if not want_write:
                    check_access(task, loc, W_OK)
        drop = abi.O_CREAT | abi.O_EXCL | abi.O_CLOEXEC | (0 if node.tty else abi.O_NOCTTY)
        return node.open(task, loc, flags & ~drop)

    def open_exec(self, task, path: str):
        """The file execve(2) would run (a File with pread(offset, n), size() and .path, the
        resolved guest path /proc/self/exe shows): EACCES for directories, non-regular files,
        files without an x bit and noexec mounts."""
        if isinstance(path, bytes):
            import os
            path = os.fsdecode(path)
        loc = self.resolve(task, abi.AT_FDCWD, path, True)
        mode = loc.node.mode
        if not _stat.S_ISREG(mode) or loc.mount.noexec:
            raise SyscallError(EACCES)
        check_access(task, loc, X_OK)
        check_access(task, loc, R_OK)
        return self.open_loc(task, loc, abi.O_RDONLY)

    def stat(self, task, dirfd: int, path: str, flags: int = 0):
        """The stat of what a path names (flags: AT_SYMLINK_NOFOLLOW, AT_EMPTY_PATH)."""
        loc, f = self.resolve_fd_or_path(task, dirfd, path, not flags & abi.AT_SYMLINK_NOFOLLOW,
                                         bool(flags & abi.AT_EMPTY_PATH))
        if f is not None:
            return f.stat()
        return loc.node.stat()

    def readlink(self, task, dirfd: int, path: str) -> str:
        loc, f = self.resolve_fd_or_path(task, dirfd, path, False, True)
        if f is not None:
            loc = f.loc
            if loc is None:
                raise SyscallError(EINVAL)
        if not _stat.S_ISLNK(loc.node.mode):
            raise SyscallError(EINVAL)
        return loc.node.readlink()

    def statfs(self, loc: Loc):
        fs = loc.mount.fs
        return fs.statfs(loc.node), loc.mount.readonly

