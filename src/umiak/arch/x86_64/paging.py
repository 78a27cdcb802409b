"""4-level x86-64 page tables kept in guest RAM and edited by the host.

Rules that PVM's shadow MMU imposes (see ARCHITECTURE.md): non-leaf entries are
written once and never changed, page-table pages are never freed or reused, and
a leaf change that lowers permissions must be followed by an invalidation of the
frames involved (the platform's job, not this module's).
"""

from collections.abc import Callable
from typing import Literal, overload

from umiak.kernel.abi import PROT_EXEC, PROT_READ, PROT_WRITE

PTE_P = 1
PTE_RW = 1 << 1
PTE_US = 1 << 2
PTE_A = 1 << 5
PTE_D = 1 << 6
PTE_NX = 1 << 63
ADDR_MASK = 0x000F_FFFF_FFFF_F000

# Non-leaf entries allow everything; the leaf decides.
_TABLE_BITS = PTE_P | PTE_RW | PTE_US | PTE_A
_CLEAR_RW = bytes(b & ~PTE_RW for b in range(256))   # applied to the low byte of each entry


def pte_bits(prot: int, user: bool = True) -> int:
    """Leaf bits for mmap protections; 0 (not present) for PROT_NONE.

    Accessed and dirty are preset so the CPU never has to write them back.
    """
    if not prot & (PROT_READ | PROT_WRITE | PROT_EXEC):
        return 0
    bits = PTE_P | PTE_A | PTE_D
    if user:
        bits |= PTE_US
    if prot & PROT_WRITE:
        bits |= PTE_RW
    if not prot & PROT_EXEC:
        bits |= PTE_NX
    return bits


class PageTables:
    """One address space: a PML4 and the tables under it.

    Every address space of a VM shares the kernel area: `kernel_from` gives the
    tables whose top-level entries `kernel_slots` are copied into the new root
    once (the subtrees below them are shared, never rewritten)."""

    def __init__(self, ram_q: memoryview, alloc_table: Callable[[], int],
                 kernel_from: "PageTables | None" = None, kernel_slots: tuple[int, ...] = ()):
        # ram_q: guest RAM cast to 64-bit words; alloc_table returns the guest
        # physical address of a fresh zeroed page that is never given back.
        self._q = ram_q
        self._alloc = alloc_table
        self.root = alloc_table()
        self._leaf_tables: dict[int, int] = {}  # va >> 21 -> word index of its PT
        if kernel_from is not None:
            for slot in kernel_slots:
                ram_q[self.root // 8 + slot] = ram_q[kernel_from.root // 8 + slot]

    @overload
    def _leaf_table(self, va: int, create: Literal[True]) -> int: ...
    @overload
    def _leaf_table(self, va: int, create: bool) -> int | None: ...

    def _leaf_table(self, va: int, create: bool) -> int | None:
        key = va >> 21
        idx = self._leaf_tables.get(key)
        if idx is not None:
            return idx
        q = self._q
        table = self.root
        for shift in (39, 30, 21):
            slot = table // 8 + ((va >> shift) & 511)
            entry = q[slot]
            if not entry & PTE_P:
                if not create:
                    return None
                new = self._alloc()
                q[slot] = new | _TABLE_BITS
                table = new
            else:
                table = entry & ADDR_MASK
        idx = table // 8
        self._leaf_tables[key] = idx
        return idx

    def set(self, va: int, pa: int, bits: int) -> int:
        """Point the 4 KiB page at va to frame pa with the given leaf bits; returns the old entry."""
        table = self._leaf_table(va, bool(bits))
        if table is None:
            return 0    # clearing a page no table covers: nothing to do
        idx = table + ((va >> 12) & 511)
        old = self._q[idx]
        self._q[idx] = (pa | bits) if bits else 0
        return old

    def fill(self, va: int, pa: int, count: int, bits: int) -> None:
        """Point count pages from va at the consecutive frames from pa, in entries that are
        not present now (a restored snapshot's pages): one slice write per leaf table, and
        no old translation to invalidate."""
        import array
        q = self._q
        while count:
            n = min(count, 512 - ((va >> 12) & 511))
            lo = self._leaf_table(va, True) + ((va >> 12) & 511)
            first = pa | bits
            q[lo:lo + n] = array.array("Q", range(first, first + n * 4096, 4096))
            va += n << 12
            pa += n << 12
            count -= n

    def copy_range(self, dst: "PageTables", start: int, end: int, clear_write: bool) -> None:
        """Copy the leaf entries of [start, end) into dst (fork), first clearing their write
        bit here when clear_write (copy-on-write); whole runs of a table at a time."""
        q, dq = self._q, dst._q
        va = start
        while va < end:
            stop = min(end, (va | 0x1FFFFF) + 1)
            table = self._leaf_table(va, False)
            if table is not None:
                lo = table + ((va >> 12) & 511)
                hi = lo + ((stop - va) >> 12)
                raw = bytearray(q[lo:hi].cast("B"))
                if raw.count(0) != len(raw):
                    if clear_write:
                        raw[0::8] = raw[0::8].translate(_CLEAR_RW)
                        q[lo:hi] = memoryview(raw).cast("Q")
                    dlo = dst._leaf_table(va, True) + ((va >> 12) & 511)
                    dq[dlo:dlo + (hi - lo)] = memoryview(raw).cast("Q")
            va = stop

    def get(self, va: int) -> int:
        idx = self._leaf_table(va, False)
        if idx is None:
            return 0
        return self._q[idx + ((va >> 12) & 511)]
