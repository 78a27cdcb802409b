"""PageTables.fill (a restored snapshot's pages, a leaf table at a time) makes the same
entries as PageTables.set page by page, across leaf tables; FrameAllocator.alloc_run gives
consecutive never-used frames or None. In-process."""

from umiak.arch.x86_64.paging import PROT_READ, PROT_WRITE, PageTables, pte_bits
from umiak.kernel.frames import FrameAllocator


def _tables() -> PageTables:
    q = memoryview(bytearray(32 * 4096)).cast("Q")
    nxt = iter(range(4096, 32 * 4096, 4096))
    return PageTables(q, lambda: next(nxt))


def test_fill_is_set_page_by_page():
    bits = pte_bits(PROT_READ | PROT_WRITE)   # NX set: bit 63 must survive the bulk write
    va, pa, n = 0x7F00_001F_D000, 0x40_0000, 600   # starts 3 pages below a 2 MiB boundary
    bulk, single = _tables(), _tables()
    bulk.fill(va, pa, n, bits)
    for i in range(n):
        single.set(va + i * 4096, pa + i * 4096, bits)
    for i in range(-2, n + 2):
        assert bulk.get(va + i * 4096) == single.get(va + i * 4096), i


def test_alloc_run():
    frames = FrameAllocator(0x10000, 0x10000 + 8 * 4096, lambda f: None)
    assert frames.alloc_run(3) == 0x10000
    assert frames.alloc() == 0x13000
    assert frames.alloc_run(5) is None   # 4 left
    assert frames.alloc_run(4) == 0x14000
