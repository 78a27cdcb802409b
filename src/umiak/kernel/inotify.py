"""inotify: watches on inodes of the VM's tree, and the events the syscalls report to them.

The VFS syscalls call the `fs_*` functions below after a change succeeds; each is one
attribute test when the VM has no watch (`kernel.inotify` is None). Inodes are keyed
by (st_dev, st_ino), so a host file's watch survives its node being looked up anew.
Changes made outside the VM (host processes writing a volume) are not seen.
Events: IN_ACCESS, IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE/NOWRITE, IN_OPEN, IN_MOVED_FROM/TO
(one cookie per rename), IN_MOVE_SELF, IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_IGNORED;
identical unread events are merged, as Linux does.
"""

import os
import struct
from collections import deque

from umiak.kernel import abi
from umiak.kernel.errors import EAGAIN, EINVAL, SyscallError
from umiak.kernel.files import File, Stat
from umiak.kernel.waiting import WaitQueue

IN_ACCESS, IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x1, 0x2, 0x4, 0x8
IN_CLOSE_NOWRITE, IN_OPEN, IN_MOVED_FROM, IN_MOVED_TO = 0x10, 0x20, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x2000, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_EXCL_UNLINK, IN_MASK_CREATE = 0x1000000, 0x2000000, 0x4000000, 0x10000000
IN_MASK_ADD, IN_ISDIR, IN_ONESHOT = 0x20000000, 0x40000000, 0x80000000
IN_ALL_EVENTS = 0xFFF
EVENT = struct.Struct("<iIII")
MAX_QUEUED = 16384


class Watch:
    __slots__ = ("instance", "wd", "mask", "key")

    def __init__(self, instance: "Inotify", wd: int, mask: int, key: tuple[int, int]):
        self.instance = instance
        self.wd = wd
        self.mask = mask
        self.key = key


class Registry:
    """The VM's watches by inode key, and the rename cookie counter."""

    def __init__(self):
        self.watches: dict[tuple[int, int], list[Watch]] = {}
        self.cookie = 0

    def next_cookie(self) -> int:
        self.cookie = (self.cookie + 1) & 0xFFFFFFFF or 1
        return self.cookie


class Inotify(File):
    """An inotify instance: its watches and the queue of events read(2) returns."""

    pseudo_fs = abi.ANON_INODE_FS_MAGIC

    def __init__(self, kernel, flags: int):
        self.kernel = kernel
        self.flags = abi.O_RDONLY | flags
        self.events: deque[bytes] = deque()
        self.by_wd: dict[int, Watch] = {}
        self.by_key: dict[tuple[int, int], Watch] = {}
        self.next_wd = 1
        self._waitq = WaitQueue()

    path = "anon_inode:inotify"

    def queue(self, wd: int, mask: int, cookie: int, name: bytes) -> None:
        if name:
            padded = (len(name) + 1 + 15) // 16 * 16
            ev = EVENT.pack(wd, mask, cookie, padded) + name.ljust(padded, b"\0")
        else:
            ev = EVENT.pack(wd, mask, cookie, 0)
        if self.events and self.events[-1] == ev:
            return                       # an identical unread event: merged
        if len(self.events) >= MAX_QUEUED:
            overflow = EVENT.pack(-1, IN_Q_OVERFLOW, 0, 0)
            if self.events[-1] != overflow:
                self.events.append(overflow)
            return
        self.events.append(ev)
        self.waitq.notify()

    def read(self, n: int) -> bytes:
        if not self.events:
            raise SyscallError(EAGAIN)
        if len(self.events[0]) > n:
            raise SyscallError(EINVAL)
        out = bytearray()
        while self.events and len(out) + len(self.events[0]) <= n:
            out += self.events.popleft()
        return bytes(out)

    def poll_mask(self) -> int:
        return abi.POLLIN | abi.POLLRDNORM if self.events else 0

    def available(self) -> int:
        return sum(map(len, self.events))

    def stat(self):
        return Stat(st_mode=0o600)

    def remove(self, w: Watch, ignored: bool = True) -> None:
        self.by_wd.pop(w.wd, None)
        self.by_key.pop(w.key, None)
        reg = registry(self.kernel)
        lst = reg.watches.get(w.key)
        if lst is not None:
            if w in lst:
                lst.remove(w)
            if not lst:
                del reg.watches[w.key]
        if ignored:
            self.queue(w.wd, IN_IGNORED, 0, b"")

    def close(self) -> None:
        for w in list(self.by_wd.values()):
            self.remove(w, ignored=False)
        reg = getattr(self.kernel, "inotify", None)
        if reg is not None and not reg.watches:
            self.kernel.inotify = None   # nothing watched: the VFS hooks cost nothing again


def registry(kernel) -> Registry:
    reg = getattr(kernel, "inotify", None)
    if reg is None:
        reg = kernel.inotify = Registry()
    return reg


def key_of(node) -> tuple[int, int] | None:
    try:
        st = node.stat()
    except (SyscallError, OSError):
        return None
    return st.st_dev, st.st_ino


def _deliver(reg: Registry, key, mask: int, cookie: int, name: bytes) -> None:
    for w in list(reg.watches.get(key, ())):
        if w.mask & mask & IN_ALL_EVENTS:
            w.instance.queue(w.wd, mask, cookie, name)
            if w.mask & IN_ONESHOT:
                w.instance.remove(w)


def event(kernel, mask: int, node=None, parent=None, name: str = "", cookie: int = 0, key=None) -> None:
    """mask happened to node (its own watches; or to the inode `key` names) and to the entry
    `name` of directory parent."""
    reg = getattr(kernel, "inotify", None)
    if reg is None or not reg.watches:
        return
    is_dir = node is not None and abi.S_IFMT & node.mode == abi.S_IFDIR
    flag = IN_ISDIR if is_dir or mask & IN_ISDIR else 0
    mask &= ~IN_ISDIR
    if parent is not None:           # the directory hears first, as Linux's fsnotify_parent
        pkey = key_of(parent)
        if pkey is not None:
            _deliver(reg, pkey, mask | flag, cookie, os.fsencode(name))
    if node is not None and key is None:
        key = key_of(node)
    if key is not None:
        _deliver(reg, key, mask | flag, cookie, b"")


def node_gone(kernel, node, key=None) -> None:
    """The inode's last name went (rmdir, or unlink of its last link): IN_DELETE_SELF, then
    every watch on it ends with IN_IGNORED."""
    reg = getattr(kernel, "inotify", None)
    if reg is None or not reg.watches:
        return
    key = key or key_of(node)
    if key is None:
        return
    for w in list(reg.watches.get(key, ())):
        if w.mask & IN_DELETE_SELF:
            w.instance.queue(w.wd, IN_DELETE_SELF, 0, b"")
        w.instance.remove(w)


# -- hooks the syscalls call (cheap when nothing is watched) ----------------------------

def file_event(task, f, mask: int) -> None:
    """An open file was read (IN_ACCESS), written (IN_MODIFY), opened or closed."""
    loc = f.loc
    if loc is None or task.kernel.inotify is None:
        return
    parent = loc.parent
    name = loc.path.rsplit("/", 1)[-1]
    event(task.kernel, mask, loc.node, parent.node if parent is not None else None, name)


def watch_close(task, f) -> None:
    """At open: report IN_CLOSE_WRITE/NOWRITE when the description's last reference goes."""
    kernel = task.kernel
    if f.loc is None or kernel.inotify is None:
        return
    wrote = (f.flags & abi.O_ACCMODE) in (abi.O_WRONLY, abi.O_RDWR)

    def closed(file, kernel=kernel):
        loc = file.loc
        if loc is None:
            return
        parent = loc.parent
        event(kernel, IN_CLOSE_WRITE if wrote else IN_CLOSE_NOWRITE, loc.node,
              parent.node if parent is not None else None, loc.path.rsplit("/", 1)[-1])
    f.watch("inotify", closed)


def created(task, parent, name: str, is_dir: bool = False) -> None:
    """A name was made in directory `parent` (a Loc): mkdir, mknod, symlink, link, open(O_CREAT)."""
    event(task.kernel, IN_CREATE | (IN_ISDIR if is_dir else 0), parent=parent.node, name=name)


def deleted(task, parent, name: str, node, is_dir: bool, key=None) -> None:
    """unlink/rmdir of `name` (its node, whose inode key was taken before: a host file's
    stat fails once it is gone) in `parent`: IN_ATTRIB (a link fewer) for a file,
    IN_DELETE_SELF + IN_IGNORED once no name is left, then IN_DELETE in the directory."""
    kernel = task.kernel
    if not is_dir:
        event(kernel, IN_ATTRIB, node, key=key)
    try:
        gone = is_dir or node.stat().st_nlink == 0
    except (SyscallError, OSError):
        gone = True
    if gone:
        node_gone(kernel, node, key)
    event(kernel, IN_DELETE | (IN_ISDIR if is_dir else 0), parent=parent.node, name=name)


def moved(task, oparent, oname: str, nparent, nname: str, node) -> None:
    """rename: IN_MOVED_FROM and IN_MOVED_TO with one cookie, then IN_MOVE_SELF."""
    kernel = task.kernel
    reg = kernel.inotify
    if reg is None:
        return
    cookie = reg.next_cookie()
    isdir = IN_ISDIR if abi.S_IFMT & node.mode == abi.S_IFDIR else 0
    event(kernel, IN_MOVED_FROM | isdir, parent=oparent.node, name=oname, cookie=cookie)
    event(kernel, IN_MOVED_TO | isdir, parent=nparent.node, name=nname, cookie=cookie)
    event(kernel, IN_MOVE_SELF, node)


def changed(task, loc, mask: int = IN_ATTRIB) -> None:
    """chmod/chown/utimes (IN_ATTRIB) or truncate (IN_MODIFY) of the file at loc."""
    parent = loc.parent
    event(task.kernel, mask, loc.node, parent.node if parent is not None else None, loc.path.rsplit("/", 1)[-1])
