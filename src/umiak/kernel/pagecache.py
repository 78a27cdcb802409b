"""Page caches: the frames of one file, shared by every mapping and every read/write of it.

A `PageCache` maps a page index of a file to a guest frame. The cache holds one
reference to each of its frames in the kernel's FrameAllocator; each page-table
entry that maps the frame holds one more (mm shares on map, releases on unmap),
so a frame lives while the file or any mapping still uses it. This is what
makes MAP_SHARED really shared (gVisor's Mappable).

Two kinds:
  MemCache   in-memory files (tmpfs, the overlay's upper files, memfd): the cache
             *is* the file's data; absent pages are holes and read as zeros.
  HostCache  a host file mapped MAP_SHARED: pages are read from the host on first
             use, kept while some mapping maps them, and written back (dirty ones)
             at msync, fsync, munmap and exit. read/write of the host file by any
             open file look here first (`Kernel.page_caches`, keyed by st_dev, st_ino).
"""

import os
import weakref

from umiak.kernel.errors import EIO, SyscallError

PAGE = 4096


class PageCache:
    """Page index -> guest-physical frame of one file."""

    def __init__(self, frames, ram):
        self.frames = frames
        self.ram = ram
        self.pages: dict[int, int] = {}
        self.mappers: weakref.WeakSet = weakref.WeakSet()   # AddressSpaces with a shared VMA of us

    def _fill(self, index: int, pa: int) -> None:
        """A fresh (zero) frame for page index: nothing to fill for memory files."""

    def translate(self, index: int, for_write: bool) -> int:
        """Mappable: the frame a shared mapping maps for page index."""
        return self.frame(index)

    def trim(self) -> None:
        """Memory files keep their pages: they are the data."""

    def frame(self, index: int) -> int:
        """The frame of page index, allocated (and filled) on first use."""
        pa = self.pages.get(index)
        if pa is None:
            pa = self.frames.alloc()
            try:
                self._fill(index, pa)
            except BaseException:
                self.frames.release([pa])
                raise
            self.pages[index] = pa
        return pa

    def _runs(self, offset: int, end: int, allocate: bool) -> list:
        """[(file offset, frame address or None for a hole, length)] covering [offset, end),
        neighbouring pages in neighbouring frames merged into one run."""
        pages = self.pages
        get = pages.get
        out = []
        idx, last = offset >> 12, (end - 1) >> 12
        while idx <= last:
            pa = get(idx)
            if pa is None and allocate:
                pa = self.frame(idx)
            j = idx + 1
            if pa is None:
                while j <= last and j not in pages:
                    j += 1
            else:
                nxt = pa + 4096
                while j <= last:
                    q = get(j)
                    if q is None and allocate:
                        q = self.frame(j)
                    if q != nxt:
                        break
                    j += 1
                    nxt += 4096
            lo = idx << 12
            if lo < offset:
                lo = offset
            hi = j << 12
            if hi > end:
                hi = end
            out.append((lo, None if pa is None else pa + lo - (idx << 12), hi - lo))
            idx = j
        return out

    def read(self, offset: int, n: int) -> bytes:
        """n bytes at offset (the caller bounds them by the file's size); holes are zeros."""
        if n <= 0:
            return b""
        ram = self.ram
        parts = [bytes(k) if pa is None else ram[pa:pa + k] for _, pa, k in self._runs(offset, offset + n, False)]
        return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)

    def read_into(self, offset: int, n: int, views: "list[memoryview]") -> int:
        """read() of n bytes at offset (bounded by the caller) copied straight into views
        of guest memory (mm.write_views), which hold at least n bytes; holes are zeros."""
        if n <= 0:
            return 0
        ram = self.ram
        vi = vo = 0
        for _, pa, k in self._runs(offset, offset + n, False):
            while k:
                v = views[vi]
                take = min(k, len(v) - vo)
                if pa is None:
                    v[vo:vo + take] = bytes(take)
                else:
                    v[vo:vo + take] = ram[pa:pa + take]
                    pa += take
                k -= take
                vo += take
                if vo == len(v):
                    vi, vo = vi + 1, 0
        return n

    def write(self, offset: int, data, allocate: bool = True) -> None:
        """Copy data in at offset; allocate=False updates only pages already present."""
        mv = memoryview(data).cast("B")
        n = len(mv)
        if n == 0:
            return
        ram = self.ram
        for pos, pa, k in self._runs(offset, offset + n, allocate):
            if pa is not None:
                ram[pa:pa + k] = mv[pos - offset:pos - offset + k]

    def overlay(self, offset: int, data: bytes) -> bytes:
        """data read from the host at offset, with the cached pages (newer) laid over it."""
        if not self.pages or not data:
            return data
        end = offset + len(data)
        out = None
        for idx in range(offset // PAGE, (end - 1) // PAGE + 1):
            pa = self.pages.get(idx)
            if pa is None:
                continue
            if out is None:
                out = bytearray(data)
            lo = max(offset, idx * PAGE)
            hi = min(end, idx * PAGE + PAGE)
            o = pa + (lo - idx * PAGE)
            out[lo - offset:hi - offset] = self.ram[o:o + hi - lo]
        return data if out is None else bytes(out)

    def zero(self, offset: int, end: int) -> None:
        """Zero [offset, end) in the pages present (a punched hole, a truncated page's tail)."""
        for idx in range(offset // PAGE, (end - 1) // PAGE + 1 if end > offset else 0):
            pa = self.pages.get(idx)
            if pa is not None:
                lo = max(offset, idx * PAGE)
                hi = min(end, idx * PAGE + PAGE)
                o = pa + (lo - idx * PAGE)
                self.ram[o:o + hi - lo] = bytes(hi - lo)

    def truncate(self, size: int) -> None:
        """The file is now size bytes: pages past it leave every mapping (touching them is
        SIGBUS) and the cache; the tail of the last page reads zero."""
        keep = (size + PAGE - 1) // PAGE
        if size & (PAGE - 1):
            self.zero(size, keep * PAGE)
        gone = [i for i in self.pages if i >= keep]
        if not gone:
            return
        for mm in list(self.mappers):
            mm.unmap_cache_pages(self, keep)
        self.drop(gone)

    def drop(self, indices) -> None:
        """Give up the cache's reference to these pages (no mapping maps them any more)."""
        dead = [self.pages.pop(i) for i in indices if i in self.pages]
        if dead:
            alive = self.frames.release(dead)
            assert not alive, "a dropped cache page is still mapped"

    def drop_all(self) -> None:
        if self.pages and self.ram is not None:
            self.drop(list(self.pages))

    def resident(self) -> int:
        return len(self.pages)

    def writeback(self, first: int = 0, last: int | None = None) -> None:
        """Write dirty pages in [first, last] to the backing store (memory files have none)."""


class MemCache(PageCache):
    """The data of an in-memory file."""


class HostCache(PageCache):
    """The shared pages of a host file; `fd` reads, `wfd` (once a writable mapping exists) writes back."""

    def __init__(self, frames, ram, registry: "PageCaches", key, fd: int):
        super().__init__(frames, ram)
        self.registry = registry
        self.key = key
        self.fd = os.dup(fd)
        self.wfd = -1
        self.dirty: set[int] = set()

    def _fill(self, index: int, pa: int) -> None:
        try:
            data = os.pread(self.fd, PAGE, index * PAGE)
        except OSError:
            data = b""    # a host I/O error: the page reads as zeros (Linux: SIGBUS)
        if data:
            self.ram[pa:pa + len(data)] = data

    def translate(self, index: int, for_write: bool) -> int:
        pa = self.frame(index)
        if for_write:
            self.dirty.add(index)
        return pa

    def add_writer(self, fd: int) -> None:
        if self.wfd < 0:
            self.wfd = os.dup(fd)

    def writeback(self, first: int = 0, last: int | None = None) -> None:
        """Dirty pages (mapped writable since they were read) go to the host, never past its
        size. They stay dirty: a writable mapping may change them again unseen."""
        if not self.dirty or self.wfd < 0:
            return
        todo = sorted(i for i in self.dirty if i >= first and (last is None or i <= last))
        self._write(todo)

    def _write(self, indices) -> None:
        """Write pages to the host file; a host error is the caller's errno (msync, fsync: EIO...)."""
        if not indices or self.wfd < 0:
            return
        ram, pages = self.ram, self.pages
        try:
            size = os.fstat(self.wfd).st_size
            for idx in indices:
                off = idx * PAGE
                n = min(PAGE, size - off)
                pa = pages.get(idx)
                if n > 0 and pa is not None:
                    os.pwrite(self.wfd, ram[pa:pa + n], off)
        except OSError as e:
            raise SyscallError(e.errno or EIO) from None

    def truncate(self, size: int) -> None:
        keep = (size + PAGE - 1) // PAGE
        self.dirty = {i for i in self.dirty if i < keep}
        super().truncate(size)
        self.trim()

    def trim(self) -> None:
        """Pages no mapping maps any more are written back (munmap) and dropped; an empty cache
        is forgotten."""
        users = self.frames.users
        idle = [i for i, pa in self.pages.items() if not users(pa)]
        if idle:
            dirty = self.dirty
            try:
                self._write(sorted(i for i in idle if i in dirty))
            except Exception:  # noqa: BLE001 - munmap reports no write-back error (Linux: fsync does)
                pass
            dirty.difference_update(idle)
            self.drop(idle)
        if not self.pages and not self.mappers:
            self.close()

    def close(self) -> None:
        if self.registry.get(self.key) is self:
            del self.registry[self.key]
        for fd in (self.fd, self.wfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.fd = self.wfd = -1


class PageCaches(dict):
    """A kernel's caches of host files, (st_dev, st_ino) -> HostCache; empty while nothing
    is mapped shared, so read/write of host files pay one truth test."""

    def __init__(self, frames, ram):
        super().__init__()
        self.frames = frames
        self.ram = ram

    def cache(self, key, fd: int) -> HostCache:
        """The cache of the host file key (fd is one of its descriptors), made on first use."""
        c = self.get(key)
        if c is None or c.fd < 0:
            c = self[key] = HostCache(self.frames, self.ram, self, key, fd)
        return c

    def sync_all(self) -> None:
        for c in list(self.values()):
            c.writeback()


class HeapFrames:
    """Frames in a private anonymous mapping, for a kernel without guest RAM (the VFS or a
    page cache alone, in unit tests): the same allocator over host memory."""

    def __init__(self, size: int = 1 << 32):
        import mmap

        from umiak.kernel.frames import FrameAllocator
        self._mem = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0))
        self.ram = memoryview(self._mem)
        self.frames = FrameAllocator(0, size, self._discard)

    def _discard(self, frames: list[int]) -> None:
        import mmap
        for pa in frames:
            self._mem.madvise(mmap.MADV_DONTNEED, pa, PAGE)


def memory_of(kernel):
    """(frames, ram) in which the kernel's in-memory files keep their pages."""
    return kernel.frames, kernel.platform.ram
