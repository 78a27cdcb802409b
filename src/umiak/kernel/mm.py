"""A process's address space: VMAs, the pages behind them, and guest-memory access.

`pages` maps a virtual page number to its frame's guest-physical address with
the page's protection in the low bits (frames are page aligned). A page of a
private VMA whose frame has another holder (FrameAllocator.users: shared since
fork, or the VM's [vvar] page) is copy-on-write: its page-table entry is never
writable, and the first write copies it (_break_cow). Nothing in the entry says
so, which is what lets fork leave the parent's entries untouched. Frames are
given to small mappings at once and to large ones on first touch, a chunk at a
time, so a program may reserve far more than the VM's RAM as Linux allows.
Handlers touch guest memory only through read/write/read_cstr/read_struct,
which raise EFAULT exactly where the program itself would fault, and through
write_views/touch_write, which let a host read fill guest frames in place.
"""

import bisect
import struct
from itertools import compress, repeat
from operator import and_
from typing import TYPE_CHECKING

from umiak.kernel import abi
from umiak.kernel.abi import (MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE,
                              MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE)
from umiak.kernel.errors import EACCES, EEXIST, EFAULT, EINVAL, ENAMETOOLONG, ENOMEM, EPERM, GuestOutOfMemory, SyscallError
from umiak.kernel.interfaces import Mappable
from umiak.platform.base import FrameRuns, entry_runs, frame_runs
from umiak.records import record

if TYPE_CHECKING:
    from umiak.kernel.files import Mapping

PAGE = 4096
PROT_MASK = PROT_READ | PROT_WRITE | PROT_EXEC
EAGER_PAGES = 64         # mappings up to 256 KiB get their frames at once
FAULT_CHUNK_MIN = 16     # larger ones get 64 KiB at the first touch, doubling with
FAULT_CHUNK_MAX = 512    # each further fault in the same VMA up to 2 MiB
TASK_SIZE = 0x7FFF_FFFF_F000
BUS_ERROR = 2   # handle_fault: the page lies past the end of the mapped file (SIGBUS)
MMAP_MIN_ADDR = 0x10000
KERNEL_VMA = "[umiak-rewrite]"   # the name of umiak's own pages (kernel/rewrite.py): unseen, kept
WRITE_RUN = 1 << 20      # bytes AddressSpace.write asks write_views for at a time
RUNS_KEPT = 64           # single runs write_views remembers (a buffer per client of a server)
# Vma.flags bits above the mmap flags: what fork does with the VMA (madvise).
VM_DONTFORK, VM_WIPEONFORK = 1 << 40, 1 << 41


@record
class Vma:
    start: int
    end: int
    prot: int
    flags: int
    name: str = ""        # "[heap]", "[stack]", or the guest path of a mapped file
    file: "Mapping | None" = None   # what a file mapping holds (File.mmap_file)
    offset: int = 0
    chunk: int = FAULT_CHUNK_MIN  # pages given at the last first-touch fault
    next_fault: int = -1          # where a sequential toucher faults next
    cache: "Mappable | None" = None   # MAP_SHARED of a file with a page cache: its frames are mapped

    def split_copy(self, start: int, end: int) -> "Vma":
        off = self.offset + (start - self.start) if self.file is not None else 0
        return Vma(start, end, self.prot, self.flags, self.name, self.file, off, cache=self.cache)


class AddressSpace:
    fault_chunk_max = FAULT_CHUNK_MAX   # pages; a kernel config may lower or raise it (umiak.config)

    def __init__(self, platform, frames, mmap_top: int, reserved: list[tuple[int, int]]):
        self.platform = platform
        self.frames = frames
        self._refs = frames.refs     # frame number -> holders besides the first (see module doc)
        self.ram = platform.ram
        self.vmas: list[Vma] = []
        self._starts: list[int] = []
        self.pages: dict[int, int] = {}
        self.mmap_top = mmap_top
        self.reserved = reserved   # [start, end) ranges the kernel keeps for itself
        self.brk_start = self.brk_end = 0
        self.stack_vma: Vma | None = None
        self.stack_top = 0         # top of the main thread's stack: set by loader.exec.setup_address_space
        self.vdso_base = 0         # where [vdso] is mapped (loader.vdso.VdsoClock.map)
        self.layout_seed: int | None = None   # see Kernel.new_mm
        # write_views' recent single runs of pages writable in place: (first vpn, last vpn) ->
        # (its first frame, frames.shares then), a few dozen (a server reads into one buffer
        # per client). Every change of an entry already in `pages` (unmap, move, mprotect, a
        # COW copy, put_frame) drops them; adding entries cannot spoil one, and a frame that
        # gains a holder (fork) moves frames.shares on.
        self._runs: dict[tuple[int, int], tuple[int, int]] = {}

    # -- VMA bookkeeping ------------------------------------------------------
    def find_vma(self, addr: int) -> Vma | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            v = self.vmas[i]
            if addr < v.end:
                return v
        return None

    def _insert(self, vma: Vma) -> None:
        i = bisect.bisect_left(self._starts, vma.start)
        self.vmas.insert(i, vma)
        self._starts.insert(i, vma.start)

    def _split_at(self, addr: int) -> None:
        v = self.find_vma(addr)
        if v is None or v.start == addr:
            return
        right = v.split_copy(addr, v.end)
        v.end = addr
        self._insert(right)

    def _range_vmas(self, start: int, end: int) -> list[Vma]:
        """Split so that [start, end) is covered by whole VMAs, and return those."""
        self._split_at(start)
        self._split_at(end)
        i = bisect.bisect_left(self._starts, start)
        out = []
        while i < len(self.vmas) and self.vmas[i].start < end:
            out.append(self.vmas[i])
            i += 1
        return out

    def _is_free(self, start: int, end: int) -> bool:
        if start < MMAP_MIN_ADDR or end > TASK_SIZE or start >= end:
            return False
        for rs, re in self.reserved:
            if start < re and rs < end:
                return False
        i = bisect.bisect_left(self._starts, end) - 1
        return i < 0 or self.vmas[i].end <= start

    def find_free(self, length: int, top: int | None = None) -> int:
        """Top-down first fit below mmap_top, as Linux's default layout does."""
        end = min(top or self.mmap_top, self.mmap_top)
        i = bisect.bisect_left(self._starts, end) - 1
        while True:
            # Gap between the VMA at i (or nothing) and `end`.
            lo = self.vmas[i].end if i >= 0 else MMAP_MIN_ADDR
            if end - lo >= length:
                start = end - length
                if self._is_free(start, end):
                    return start
                end = min((rs for rs, re in self.reserved if rs < end and re > start), default=start)
                i = bisect.bisect_left(self._starts, end) - 1
                continue
            if i < 0:
                raise SyscallError(ENOMEM)
            end = self.vmas[i].start
            i -= 1

    # -- mapping --------------------------------------------------------------
    def mmap(self, addr: int, length: int, prot: int, flags: int,
             file=None, offset: int = 0, name: str = "", data=None) -> int:
        """mmap(2) after argument checks; file is an open file for file-backed mappings;
        data (anonymous ones: the loader's) the first bytes of the mapping, given frames at once."""
        if length == 0 or addr & (PAGE - 1) and flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
            raise SyscallError(EINVAL)
        length = abi.page_up(length)
        if length == 0 or length > TASK_SIZE:
            raise SyscallError(ENOMEM)
        if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
            if addr + length > TASK_SIZE or addr < MMAP_MIN_ADDR or not self._outside_reserved(addr, addr + length):
                raise SyscallError(ENOMEM if addr + length > TASK_SIZE else eperm_or_enomem(addr))
            if flags & MAP_FIXED_NOREPLACE and not self._is_free(addr, addr + length):
                raise SyscallError(EEXIST)
            self.munmap(addr, length)
            start = addr
        else:
            addr = abi.page_down(addr)
            if addr and self._is_free(addr, addr + length):
                start = addr
            else:
                start = self.find_free(length)
        vma = Vma(start, start + length, prot & (PROT_MASK | abi.PROT_GROWSDOWN), flags, name, file, offset)
        if file is not None and flags & MAP_SHARED:
            vma.cache = file.page_cache()
            if vma.cache is not None:
                vma.cache.mappers.add(self)
        self._insert(vma)
        if data is not None and len(data):
            try:
                self._populate(vma, start, min(start + abi.page_up(len(data)), start + length), data)
            except GuestOutOfMemory:
                self.munmap(start, length)
                raise SyscallError(ENOMEM) from None
        # Private file mappings copy the file at once; shared ones map the cache's frames,
        # a large one on first touch (a sparse memfd is not filled by mapping it).
        if file is not None and vma.cache is None or length // PAGE <= EAGER_PAGES or flags & abi.MAP_POPULATE:
            try:
                self._populate(vma, start, start + length)
            except GuestOutOfMemory:
                self.munmap(start, length)   # out of guest memory: leave nothing behind
                raise SyscallError(ENOMEM) from None
            except SyscallError:
                self.munmap(start, length)   # the file could not be read
                raise
        return start

    def _outside_reserved(self, start: int, end: int) -> bool:
        return all(not (start < re and rs < end) for rs, re in self.reserved)

    def _populate(self, vma: Vma, start: int, end: int, data=None) -> None:
        """Give frames to the not-yet-backed pages of [start, end) in vma; data (an
        anonymous mapping's first bytes from start: the loader's segments) fills them."""
        pages, frames, plat = self.pages, self.frames, self.platform
        prot = vma.prot & PROT_MASK
        if vma.file is not None:
            # Pages wholly past the end of the file stay unbacked: touching them is SIGBUS.
            size = vma.file.size()
            end = min(end, max(start, vma.start + abi.page_up(max(0, size - vma.offset))))
            if vma.cache is None:
                data = vma.file.pread(vma.offset + (start - vma.start), end - start)
        cache = vma.cache
        if cache is not None:
            # The file's own frames: one more reference for each page-table entry.
            first = (vma.offset - vma.start) >> 12
            write = bool(prot & PROT_WRITE)
            for va in range(start, end, PAGE):
                vpn = va >> 12
                if vpn in pages:
                    continue
                pa = cache.translate(first + vpn, write)
                frames.share(pa)
                pages[vpn] = pa | prot
                if prot:
                    plat.map_page(va, pa, prot)
            return
        ram = self.ram
        lo, n = start >> 12, (end - start) >> 12
        if n > 1 and not any(vpn in pages for vpn in range(lo, lo + n)):
            # A fresh range: consecutive frames where the allocator has them, filled with
            # one copy and mapped in bulk (a static program's text is ~200 pages).
            pa = frames.alloc_run(n)
            if pa is not None:
                if data is not None and len(data):
                    ram[pa:pa + min(len(data), n * PAGE)] = data[:n * PAGE]
                pages.update(zip(range(lo, lo + n), range(pa | prot, pa + n * PAGE, PAGE), strict=True))
                if prot:
                    plat.map_run(start, pa, n, prot)
                return
        for va in range(start, end, PAGE):
            vpn = va >> 12
            if vpn in pages:
                continue
            pa = frames.alloc()
            if data is not None:
                chunk = data[va - start: va - start + PAGE]
                if chunk:
                    ram[pa:pa + len(chunk)] = chunk
            pages[vpn] = pa | prot
            if prot:
                plat.map_page(va, pa, prot)

    def munmap(self, addr: int, length: int, user: bool = False) -> None:
        """user: the program's munmap(2), which leaves umiak's own pages (KERNEL_VMA) alone."""
        if addr & (PAGE - 1) or length == 0:
            raise SyscallError(EINVAL)
        end = addr + abi.page_up(length)
        if end > TASK_SIZE:
            raise SyscallError(EINVAL)
        dead: list[int] = []
        caches = []
        for vma in self._range_vmas(addr, end):
            if user and vma.name == KERNEL_VMA:
                continue
            if vma.cache is None:   # a cache writes back what nobody maps any more (_trim)
                self._flush_shared(vma, vma.start, vma.end)
            self._take_pages(vma.start, vma.end, dead)
            i = bisect.bisect_left(self._starts, vma.start)
            del self.vmas[i]
            del self._starts[i]
            if vma.cache is not None:
                caches.append(vma.cache)
        self._release(dead)
        self._trim(caches)

    def _trim(self, caches: list) -> None:
        """Shared mappings went away: their caches may drop pages nobody maps (after writeback)."""
        for c in dict.fromkeys(caches):
            if not any(v.cache is c for v in self.vmas):
                c.mappers.discard(self)
            c.trim()

    def unmap_cache_pages(self, cache, keep: int) -> None:
        """The file behind cache shrank to `keep` pages: unmap the pages past it (a later
        touch is SIGBUS, as Linux)."""
        dead: list[int] = []
        for vma in self.vmas:
            if vma.cache is cache:
                lo = max(vma.start, vma.start + keep * PAGE - vma.offset)
                if lo < vma.end:
                    self._take_pages(lo, vma.end, dead)
        self._release(dead)

    def zap(self, addr: int, length: int) -> None:
        """MADV_DONTNEED: drop the pages; the next touch gets zeros (or the file's data)."""
        dead: list[int] = []
        end = addr + length
        va = addr
        while va < end:
            vma = self.find_vma(va)
            if vma is None:
                raise SyscallError(ENOMEM)
            stop = min(end, vma.end)
            if vma.cache is None:
                self._flush_shared(vma, va, stop)
            self._take_pages(va, stop, dead)
            va = stop
        self._release(dead)
        self._trim([v.cache for v in self.vmas if v.cache is not None and v.start < end and addr < v.end])

    def _take_pages(self, start: int, end: int, dead: list[int]) -> None:
        """Unmap the backed pages of [start, end), adding their frames to dead. A huge,
        sparsely backed range (a reservation) is walked through its backed pages only."""
        pages, plat = self.pages, self.platform
        self._runs.clear()
        lo, hi = start >> 12, end >> 12
        vpns = range(lo, hi) if hi - lo <= len(pages) else [k for k in pages if lo <= k < hi]
        for vpn in vpns:
            e = pages.pop(vpn, None)
            if e is not None:
                if e & PROT_MASK:
                    plat.unmap_page(vpn << 12)
                dead.append(e & ~0xFFF)

    def _release(self, dead: list[int]) -> None:
        """Give frames back; those still mapped elsewhere need their old translations dropped."""
        if dead:
            alive = self.frames.release(dead)
            if alive:
                self.platform.invalidate(alive)

    def msync(self, addr: int, length: int) -> None:
        end = addr + length
        va = addr
        while va < end:
            vma = self.find_vma(va)
            if vma is None:
                raise SyscallError(ENOMEM)
            stop = min(end, vma.end)
            self._flush_shared(vma, va, stop)
            va = stop

    def mremap(self, old: int, old_size: int, new_size: int, flags: int, new_addr: int) -> int:
        """mremap(2): shrink in place, grow in place when the space is free, else move."""
        from umiak.kernel.abi import MREMAP_FIXED, MREMAP_MAYMOVE
        if old & (PAGE - 1) or flags & ~7 or (flags & MREMAP_FIXED and not flags & MREMAP_MAYMOVE):
            raise SyscallError(EINVAL)
        old_size, new_size = abi.page_up(old_size), abi.page_up(new_size)
        if new_size == 0:
            raise SyscallError(EINVAL)
        vma = self.find_vma(old)
        if vma is None or old + old_size > vma.end:
            raise SyscallError(EFAULT)
        if not flags & MREMAP_FIXED:
            if new_size <= old_size:
                if new_size < old_size:
                    self.munmap(old + new_size, old_size - new_size)
                return old
            if old + old_size == vma.end and self._is_free(vma.end, old + new_size):
                vma.end = old + new_size
                return old
            if not flags & MREMAP_MAYMOVE:
                raise SyscallError(ENOMEM)
            dest = self.find_free(new_size)
        else:
            dest = new_addr
            if dest & (PAGE - 1):
                raise SyscallError(EINVAL)
            self.munmap(dest, new_size)
        self._range_vmas(old, old + old_size)
        moved = Vma(
            dest, dest + new_size, vma.prot, vma.flags, vma.name, vma.file,
            vma.offset + (old - vma.start) if vma.file is not None else 0, cache=vma.cache)
        pages, plat = self.pages, self.platform
        self._runs.clear()
        keep = min(old_size, new_size)
        moving = []
        for i in range(0, keep, PAGE):
            e = pages.pop((old + i) >> 12, None)
            if e is not None:
                moving.append((i, e))
                if e & PROT_MASK:
                    plat.unmap_page(old + i)
        if moving:
            plat.invalidate([e & ~0xFFF for _, e in moving])
        self.munmap(old, old_size)
        self._insert(moved)
        for i, e in moving:
            pages[(dest + i) >> 12] = e
            if e & PROT_MASK:
                plat.map_page(dest + i, e & ~0xFFF, self.pte_prot(moved, e))
        return dest

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        if addr & (PAGE - 1):
            raise SyscallError(EINVAL)
        end = addr + abi.page_up(length)
        if end < addr:
            raise SyscallError(ENOMEM)
        if end == addr:
            return
        # Linux: ENOMEM if any part of the range is unmapped.
        va = addr
        while va < end:
            v = self.find_vma(va)
            if v is None:
                raise SyscallError(ENOMEM)
            va = v.end
        prot &= PROT_MASK
        pages, plat = self.pages, self.platform
        self._runs.clear()
        lowered = []
        for vma in self._range_vmas(addr, end):
            if vma.name == KERNEL_VMA:
                continue
            if vma.flags & MAP_SHARED and vma.file is not None and prot & PROT_WRITE \
                    and not vma.file.writable:
                raise SyscallError(EACCES)
            vma.prot = prot | (vma.prot & ~PROT_MASK)
            lo, hi = vma.start >> 12, vma.end >> 12
            for vpn in (range(lo, hi) if hi - lo <= len(pages) else [k for k in pages if lo <= k < hi]):
                e = pages.get(vpn)
                if e is None:
                    continue
                va = vpn << 12
                pa = e & ~0xFFF
                old = self.pte_prot(vma, e)
                if vma.cache is not None and prot & PROT_WRITE:
                    vma.cache.translate(vpn + ((vma.offset - vma.start) >> 12), True)   # now may get dirty
                pages[vpn] = pa | prot
                new = self.pte_prot(vma, pa | prot)   # a copy-on-write page stays read-only
                if new:
                    plat.map_page(va, pa, new)
                elif old:
                    plat.unmap_page(va)
                if old & ~new:
                    lowered.append(pa)
        if lowered:
            plat.invalidate(lowered)

    def brk(self, new: int) -> int:
        """brk(2): returns the new break, or the old one when the request fails."""
        if new < self.brk_start:
            return self.brk_end
        old_top, new_top = abi.page_up(self.brk_end), abi.page_up(new)
        if new_top > old_top:
            if not self._is_free(old_top, new_top):
                return self.brk_end
            heap = self.find_vma(old_top - 1) if old_top > self.brk_start else None
            if heap is not None and heap.name == "[heap]":
                heap.end = new_top
            else:
                heap = Vma(old_top, new_top, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, "[heap]")
                self._insert(heap)
            try:
                if (new_top - old_top) // PAGE <= EAGER_PAGES:
                    self._populate(heap, old_top, new_top)
            except GuestOutOfMemory:
                self.munmap(old_top, new_top - old_top)
                return self.brk_end
        elif new_top < old_top:
            self.munmap(new_top, old_top - new_top)
        self.brk_end = new
        return new

    def _flush_shared(self, vma: Vma, start: int, end: int) -> None:
        """Write back MAP_SHARED file pages (munmap, msync, exit)."""
        if vma.cache is not None:
            if end > start:
                first = (vma.offset - vma.start) >> 12
                vma.cache.writeback(first + (start >> 12), first + ((end - 1) >> 12))
            return
        if not (vma.flags & MAP_SHARED and vma.file is not None):
            return
        for va in range(start, end, PAGE):
            e = self.pages.get(va >> 12)
            if e is not None:
                pa = e & ~0xFFF
                off = vma.offset + (va - vma.start)
                size = vma.file.size()
                n = min(PAGE, size - off)
                if n > 0:
                    vma.file.pwrite(off, bytes(self.ram[pa:pa + n]))

    def clear(self) -> None:
        """Unmap everything (execve)."""
        for v in list(self.vmas):
            self.munmap(v.start, v.end - v.start)
        self.brk_start = self.brk_end = 0
        self.stack_vma = None

    def sync_all(self) -> None:
        for v in list(self.vmas):
            self._flush_shared(v, v.start, v.end)

    # -- faults -----------------------------------------------------------------
    def handle_fault(self, addr: int, write: bool, execute: bool) -> int:
        """Back a touched page of a lazily-mapped VMA: True when done, False for a real
        fault (SIGSEGV), BUS_ERROR past the end of a mapped file (SIGBUS)."""
        vma = self.find_vma(addr)
        if vma is None:
            return False
        need = PROT_WRITE if write else (PROT_EXEC if execute else PROT_READ)
        if not vma.prot & need:
            return False
        e = self.pages.get(addr >> 12)
        if e is not None and write and e & PROT_WRITE and not vma.flags & MAP_SHARED:
            # A private page the program may write but the page table does not let it:
            # copy-on-write since fork (or the copy was made since this fault was raised).
            self._break_cow(vma, addr >> 12, e)
            return True
        if e is not None:
            # Present already: another thread backed it while this fault waited for
            # the kernel lock (retry), or the access is truly not allowed.
            if e & need:
                # Drop whatever translation the CPU may still cache, then retry.
                self.platform.invalidate([e & ~0xFFF])
                return True
            return False
        if vma.file is not None and vma.offset + (addr & ~(PAGE - 1)) - vma.start >= vma.file.size():
            return BUS_ERROR
        # Sequential first touches (the fault lands where the last chunk ended) double
        # the chunk, up to 2 MiB; a touch anywhere else starts again at 64 KiB, so
        # sparse use of a huge mapping costs little guest memory, as on Linux.
        if vma.next_fault <= addr < vma.next_fault + vma.chunk * PAGE:
            vma.chunk = min(vma.chunk * 2, self.fault_chunk_max)
        else:
            vma.chunk = FAULT_CHUNK_MIN
        chunk = vma.chunk * PAGE
        start = max(vma.start, addr & ~(chunk - 1))
        end = min(vma.end, (addr & ~(chunk - 1)) + chunk)
        self._populate(vma, start, end)
        vma.next_fault = end
        return True

    # -- guest memory access ----------------------------------------------------
    def _page(self, va: int, need: int) -> int:
        """Guest-physical address of the page holding va, checked for `need` access."""
        e = self.pages.get(va >> 12)
        if e is None or need != PROT_READ and self._refs[e >> 12]:
            # Unbacked, or a write to a frame with other holders: a shared mapping's is
            # written in place, a private one's is copied first (copy-on-write).
            vma = self.find_vma(va)
            if e is not None and vma is not None and vma.flags & MAP_SHARED:
                pass
            elif e is not None and not need and vma is not None:   # a forced write into a COW page
                self._break_cow(vma, va >> 12, e)
                e = self.pages[va >> 12]
            elif self.handle_fault(va, need == PROT_WRITE, False) is not True:
                raise SyscallError(EFAULT)
            else:
                e = self.pages[va >> 12]
        if need and not e & need:
            raise SyscallError(EFAULT)
        return e & ~0xFFF

    def read(self, addr: int, n: int) -> bytes:
        if n <= 0:
            return b""
        off = addr & 0xFFF
        if off + n <= PAGE:
            e = self.pages.get(addr >> 12)
            if e is not None and e & PROT_READ:
                pa = (e & ~0xFFF) + off
                return bytes(self.ram[pa:pa + n])
        if addr + n > TASK_SIZE or addr < 0:
            raise SyscallError(EFAULT)
        if n <= WRITE_RUN:   # one run of neighbouring readable frames
            e = self._one_run(addr >> 12, (addr + n - 1) >> 12, PROT_READ)
            if e is not None:
                pa = (e & ~0xFFF) + off
                return bytes(self.ram[pa:pa + n])
        out = bytearray()
        va, end = addr, addr + n
        while va < end:
            pa = self._page(va, PROT_READ)
            o = va & 0xFFF
            take = min(PAGE - o, end - va)
            out += self.ram[pa + o:pa + o + take]
            va += take
        return bytes(out)

    def write(self, addr: int, data, force: bool = False) -> None:
        """Copy to guest memory; force ignores protections (the loader writing read-only text)."""
        n = len(data)
        if n == 0:
            return
        off = addr & 0xFFF
        if off + n <= PAGE:
            e = self.pages.get(addr >> 12)
            if e is not None and (e & PROT_WRITE or force) and not self._refs[e >> 12]:
                pa = (e & ~0xFFF) + off
                self.ram[pa:pa + n] = data
                return
        if addr + n > TASK_SIZE or addr < 0:
            raise SyscallError(EFAULT)
        mv = memoryview(data).cast("B")
        if not force:   # a run of frames at a time (write_views), as a host read fills them
            done = 0
            while done < n:
                views, got = self.write_views(addr + done, min(n - done, WRITE_RUN))
                if not got:
                    self.touch_write(addr + done)   # back or copy the page, or EFAULT
                    continue
                for v in views:
                    k = len(v)
                    v[:] = mv[done:done + k]
                    done += k
            return
        va, end, i = addr, addr + n, 0
        while va < end:
            pa = self._page(va, 0)
            o = va & 0xFFF
            take = min(PAGE - o, end - va)
            self.ram[pa + o:pa + o + take] = mv[i:i + take]
            va += take
            i += take

    def write_views(self, addr: int, n: int) -> tuple[list[memoryview], int]:
        """Views of guest RAM that a host read may fill in place (os.readv/preadv, no
        bytes in between): the longest prefix of [addr, addr+n) whose pages are present
        and writable in place -- private with no other holder, or MAP_SHARED -- one view
        per run of neighbouring frames, and that prefix's length. A page that is absent,
        read-only or copy-on-write ends the prefix; the caller touches it with
        touch_write (which populates or copies it, or says EFAULT) and asks again."""
        # The common case: one run of neighbouring frames, all writable in place. The last
        # such run is remembered (a program reads into the same buffer again and again).
        runs = self._runs
        if runs and n > 0:
            run = runs.get((addr >> 12, (addr + n - 1) >> 12))
            if run is not None and run[1] == self.frames.shares:
                pa = run[0] + (addr & 0xFFF)
                return [self.ram[pa:pa + n]], n
        if n <= 0 or addr < 0 or addr + n > TASK_SIZE:
            return [], 0
        pages, refs, ram = self.pages, self._refs, self.ram
        if (addr & 0xFFF) + n <= PAGE:   # within one page
            e = pages.get(addr >> 12)
            if e is None or not e & PROT_WRITE or refs[e >> 12] and not self._shared(addr):
                return [], 0
            pa = (e & ~0xFFF) + (addr & 0xFFF)
            return [ram[pa:pa + n]], n
        end = addr + n
        vpn, last = addr >> 12, (end - 1) >> 12
        # One run of writable neighbouring frames with no other holder.
        e = self._one_run(vpn, last, PROT_WRITE)
        if e is not None and not any(refs[e >> 12:(e >> 12) + last - vpn + 1]):
            if len(runs) >= RUNS_KEPT:
                runs.clear()
            runs[vpn, last] = (e & ~0xFFF, self.frames.shares)
            pa = (e & ~0xFFF) + (addr & 0xFFF)
            return [ram[pa:pa + n]], n
        views: list[memoryview] = []
        run_pa = run_end = -1         # guest-physical [run_pa, run_end) of the current run
        while vpn <= last:
            e = pages.get(vpn)
            if e is None or not e & PROT_WRITE:
                break
            pa = e & ~0xFFF
            if refs[pa >> 12] and not self._shared(vpn << 12):
                break
            if pa != run_end:
                if run_pa >= 0:
                    views.append(ram[run_pa:run_end])
                run_pa = pa
            run_end = pa + PAGE
            vpn += 1
        if run_pa < 0:
            return views, 0
        views.append(ram[run_pa:run_end])
        head = addr & 0xFFF
        if head:
            views[0] = views[0][head:]
        got = min((vpn << 12) - addr, n)
        tail = (vpn << 12) - addr - got
        if tail:
            views[-1] = views[-1][:len(views[-1]) - tail]
        return views, got

    def _one_run(self, vpn: int, last: int, prot: int) -> int | None:
        """The entry of page vpn if pages vpn..last are backed by neighbouring frames with
        the same protection, which includes prot; else None. Checked by C loops (map, list
        equality), no bytecode per page."""
        ents = list(map(self.pages.get, range(vpn, last + 1)))
        e = ents[0]
        if e is not None and e & prot and ents == list(range(e, e + (len(ents) << 12), PAGE)):
            return e
        return None

    def _shared(self, addr: int) -> bool:
        vma = self.find_vma(addr)
        return vma is not None and bool(vma.flags & MAP_SHARED)

    def touch_write(self, addr: int) -> None:
        """Make the page at addr writable in place as a guest store would (back a lazy
        page, copy a copy-on-write one); EFAULT where the store would fault."""
        if addr < 0 or addr >= TASK_SIZE:
            raise SyscallError(EFAULT)
        self._page(addr, PROT_WRITE)

    def read_cstr(self, addr: int, limit: int = 4096) -> bytes:
        """A NUL-terminated string; ENAMETOOLONG past limit (PATH_MAX for paths)."""
        out = bytearray()
        va = addr
        while len(out) < limit:
            pa = self._page(va, PROT_READ)
            o = va & 0xFFF
            chunk = self.ram[pa + o:pa + PAGE]
            j = bytes(chunk).find(b"\0")
            if j >= 0:
                out += chunk[:j]
                if len(out) >= limit:
                    break
                return bytes(out)
            out += chunk
            va += PAGE - o
        raise SyscallError(ENAMETOOLONG)

    def read_struct(self, addr: int, st: struct.Struct) -> tuple:
        return st.unpack(self.read(addr, st.size))

    def write_struct(self, addr: int, st: struct.Struct, *values) -> None:
        self.write(addr, st.pack(*values))

    def read_u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def write_u64(self, addr: int, v: int) -> None:
        self.write(addr, (v & abi.MASK64).to_bytes(8, "little"))

    def read_u32(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 4), "little")

    def write_u32(self, addr: int, v: int) -> None:
        self.write(addr, (v & 0xFFFFFFFF).to_bytes(4, "little"))

    def resident_bytes(self) -> int:
        return len(self.pages) * PAGE

    # -- fork: copy-on-write ------------------------------------------------------
    def fork(self, root) -> "AddressSpace":
        """fork(2)'s address space: the same VMAs on a new page-table root, no page copied.

        Private pages are shared read-only by both spaces (COW) with one more frame
        reference; the first write copies the page (_break_cow). Shared mappings map
        the same frames writable in both; their unbacked pages are backed first, so a
        later touch in either space cannot give the two spaces different frames."""
        child = AddressSpace(root, self.frames, self.mmap_top, list(self.reserved))
        child.brk_start, child.brk_end = self.brk_start, self.brk_end
        child.stack_top, child.vdso_base = self.stack_top, self.vdso_base
        try:
            self._fork_into(child, root)
        except BaseException:
            child.release()     # out of frames or page tables: nothing of the child stays
            raise
        return child

    def _fork_into(self, child: "AddressSpace", root) -> None:
        """The child's VMAs, page tables and entries. Per page this costs one copied dict
        entry and one reference in the frames' array: the parent's entries stay as they
        are (a private page is copy-on-write because its frame now has another holder),
        and the page tables are copied and write-protected a table at a time."""
        pages, cpages, plat = self.pages, child.pages, self.platform
        whole = True          # every backed page goes to the child: one dict copy
        private: list[Vma] = []
        forked: list[Vma] = []
        for vma in self.vmas:
            if vma.flags & VM_DONTFORK:
                whole = False
                continue
            copy = vma.split_copy(vma.start, vma.end)
            copy.chunk, copy.next_fault = vma.chunk, vma.next_fault
            child.vmas.append(copy)
            child._starts.append(copy.start)
            if vma is self.stack_vma:
                child.stack_vma = copy
            if copy.cache is not None:
                copy.cache.mappers.add(child)   # a truncate of the file reaches the child too
            if vma.flags & VM_WIPEONFORK:
                whole = False
                continue     # the child's copy starts empty: zeros on first touch
            forked.append(vma)
            if not vma.flags & MAP_SHARED:
                private.append(vma)
            elif vma.file is None:
                self._populate(vma, vma.start, vma.end)
        # Entries before tables: should a table copy fail, child.release() finds every
        # page the child's tables may hold.
        if whole:
            child.pages = cpages = pages.copy()   # a dict's copy is one memcpy, faster than update
        else:
            for vma in forked:
                cpages.update({k: pages[k] for k in self._backed(vma.start, vma.end)})
        # One more holder of every frame; the parent's writable translations of private
        # frames must go (invalidated in one batch: a run of frames per host call). C loops
        # (map, compress, sorted runs) do the per-page work.
        runs, lowered = FrameRuns(), FrameRuns()
        for first, length in entry_runs(cpages.values()):   # a run's entries share their low bits
            runs.append((first & ~0xFFF, length))
            if first & PROT_WRITE:
                lowered.append((first & ~0xFFF, length))
        self.frames.share_many(runs)
        if len(private) < len(forked):   # shared mappings keep their translations
            values = [pages[k] for vma in private for k in self._backed(vma.start, vma.end)]
            lowered = FrameRuns(frame_runs(list(compress(values, map(and_, values, repeat(PROT_WRITE))))))
        for vma in forked:
            # Every private page is copy-on-write from now on (even a read-only one: an
            # mprotect may make it writable later), so no table entry of it stays writable.
            plat.copy_to(root, vma.start, vma.end, not vma.flags & MAP_SHARED)
        if lowered:
            plat.write_protect(lowered)   # runs of frames: the platform makes a host call per run

    def _backed(self, start: int, end: int) -> list[int]:
        """The backed page numbers of [start, end), walked through the backed pages when
        the range is larger than the space's resident set (a huge reservation)."""
        pages = self.pages
        lo, hi = start >> 12, end >> 12
        if hi - lo <= len(pages):
            return [k for k in range(lo, hi) if k in pages]
        return [k for k in pages if lo <= k < hi]

    def pte_prot(self, vma: Vma, e: int) -> int:
        """The protection the page table gives the page of entry e in vma: a private page
        whose frame has another holder is copy-on-write, never writable there."""
        prot = e & PROT_MASK
        if prot & PROT_WRITE and not vma.flags & MAP_SHARED and self._refs[e >> 12]:
            return prot & ~PROT_WRITE
        return prot

    def fork_advice(self, addr: int, length: int, advice: int) -> None:
        """madvise(MADV_DONTFORK/DOFORK/WIPEONFORK/KEEPONFORK) on [addr, addr+length)."""
        end = addr + length
        va = addr
        while va < end:
            v = self.find_vma(va)
            if v is None:
                raise SyscallError(ENOMEM)
            if advice == abi.MADV_WIPEONFORK and (v.flags & MAP_SHARED or v.file is not None):
                raise SyscallError(EINVAL)
            va = v.end
        set_bit = {abi.MADV_DONTFORK: VM_DONTFORK, abi.MADV_WIPEONFORK: VM_WIPEONFORK}.get(advice, 0)
        clear = {abi.MADV_DOFORK: VM_DONTFORK, abi.MADV_KEEPONFORK: VM_WIPEONFORK}.get(advice, 0)
        for vma in self._range_vmas(addr, end):
            vma.flags = (vma.flags | set_bit) & ~clear

    def _break_cow(self, vma: Vma, vpn: int, e: int) -> None:
        """A write to a page fork shares: copy it, or take it back when no one else uses it."""
        pa = e & ~0xFFF
        prot = vma.prot & PROT_MASK
        va = vpn << 12
        self._runs.clear()
        if self.frames.users(pa):
            new = self.frames.alloc()
            self.ram[new:new + PAGE] = self.ram[pa:pa + PAGE]
            self.pages[vpn] = new | prot
            self.platform.map_page(va, new, prot)
            self.frames.release([pa])
            self.platform.invalidate([pa])    # this space's read-only translation of the old frame
        else:
            self.pages[vpn] = pa | prot
            self.platform.map_page(va, pa, prot)   # raising a permission needs no flush

    def put_frame(self, va: int, pa: int) -> None:
        """Put frame pa (one more reference) behind the backed page at va, its old frame freed:
        how the VM's one [vvar] page appears in every address space."""
        vpn = va >> 12
        e = self.pages[vpn]
        self._runs.clear()
        self.frames.share(pa)
        self.pages[vpn] = pa | (e & PROT_MASK & ~PROT_WRITE)   # shared, so copied if ever written
        self.platform.map_page(va, pa, e & PROT_MASK & ~PROT_WRITE)
        self._release([e & ~0xFFF])

    def release(self, final: bool = False) -> None:
        """The last user is gone (exit, execve): free every page and give the root back.

        final: the VM ends with this address space (pid 1 exited): its page tables and
        frames go with the VM, so only what outlives it is done (MAP_SHARED data written
        back); unmapping page by page would be most of a short run's teardown."""
        if final:
            for v in list(self.vmas):
                if v.cache is not None:   # the page cache keeps count of its mappers
                    self.munmap(v.start, v.end - v.start)
                else:
                    self._flush_shared(v, v.start, v.end)
            self.vmas.clear()
            self._starts.clear()
            self.pages.clear()
            self._runs.clear()
            self.brk_start = self.brk_end = 0
            self.stack_vma = None
            return
        self.clear()
        root = self.platform
        release_root = getattr(getattr(root, "platform", None), "release_root", None)
        if release_root is not None:
            release_root(root)


def eperm_or_enomem(addr: int) -> int:
    """A MAP_FIXED mapping we refuse: EPERM below mmap_min_addr (as Linux), else ENOMEM."""
    return EPERM if addr < MMAP_MIN_ADDR else ENOMEM
