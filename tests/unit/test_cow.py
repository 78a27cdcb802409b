"""In-process tests of fork's copy-on-write (kernel/mm.py AddressSpace.fork/_break_cow)
against a model: a fake platform keeps each address space's page table as a dict, the
way the CPU would see it, and a CPU-like store obeys it (a write to a read-only entry
faults into handle_fault first). Random forks, writes, mprotects, munmaps and exits;
every space must read what the model says, no writable entry may point at a shared
frame, and every frame comes back when all spaces are gone."""

import random

import pytest

from umiak.kernel import abi
from umiak.kernel.errors import SyscallError
from umiak.kernel.frames import FrameAllocator
from umiak.kernel.mm import PAGE, PROT_MASK, AddressSpace

RAM = 16 << 20
RW = abi.PROT_READ | abi.PROT_WRITE


class FakePlatform:
    def __init__(self):
        self.ram = memoryview(bytearray(RAM))
        self.invalidated = 0

    def discard(self, frames):
        for pa in frames:
            self.ram[pa:pa + PAGE] = bytes(PAGE)


class FakeRoot:
    """A PageRoot whose page table is a dict va -> (pa, prot)."""

    def __init__(self, plat):
        self.platform, self.ram, self.pt = plat, plat.ram, {}

    def map_page(self, va, pa, prot):
        self.pt[va] = (pa, prot)

    def map_run(self, va, pa, count, prot):
        for i in range(count):
            self.map_page(va + i * 4096, pa + i * 4096, prot)

    def unmap_page(self, va):
        self.pt.pop(va, None)

    def invalidate(self, frames):
        self.platform.invalidated += len(frames)

    def write_protect(self, frames):   # a fork's: PageRoot.write_protect
        self.invalidate(frames)

    def discard(self, frames):
        self.platform.discard(frames)

    def copy_to(self, dst, start, end, clear_write):
        for va, (pa, prot) in list(self.pt.items()):
            if start <= va < end:
                if clear_write:
                    prot &= ~abi.PROT_WRITE
                    self.pt[va] = (pa, prot)
                dst.pt[va] = (pa, prot)


def cpu_store(mm, va, byte):
    """A user-mode store: through the page table, faulting when it does not allow it."""
    e = mm.platform.pt.get(va & ~(PAGE - 1))
    if e is None or not e[1] & abi.PROT_WRITE:
        assert mm.handle_fault(va, True, False) is True
        e = mm.platform.pt[va & ~(PAGE - 1)]
        assert e[1] & abi.PROT_WRITE
    mm.ram[e[0] + (va & (PAGE - 1))] = byte


def cpu_load(mm, va):
    e = mm.platform.pt.get(va & ~(PAGE - 1))
    if e is None:
        assert mm.handle_fault(va, False, False) is True
        e = mm.platform.pt[va & ~(PAGE - 1)]
    return mm.ram[e[0] + (va & (PAGE - 1))]


def check(spaces, frames):
    holders: dict[int, int] = {}
    for mm, _ in spaces:
        for vpn, e in mm.pages.items():
            pa = e & ~0xFFF
            holders[pa] = holders.get(pa, 0) + 1
            pte = mm.platform.pt.get(vpn << 12)
            vma = mm.find_vma(vpn << 12)
            if e & PROT_MASK:
                # A private page whose frame another space holds is read-only in the table;
                # one nobody shares any more may still be, until its next write takes it back.
                lazy = not vma.flags & abi.MAP_SHARED and not frames.users(pa)
                assert pte == (pa, mm.pte_prot(vma, e)) or lazy and pte == (pa, e & PROT_MASK & ~abi.PROT_WRITE), \
                    (hex(vpn), pte, hex(e))
            else:
                assert pte is None
    for pa, n in holders.items():
        assert 1 + frames.users(pa) == n, (hex(pa), n)
        if n > 1:   # a private frame two spaces hold is never writable in either
            for mm, _ in spaces:
                for vpn, e in mm.pages.items():
                    if e & ~0xFFF == pa and not mm.find_vma(vpn << 12).flags & abi.MAP_SHARED:
                        assert not mm.platform.pt.get(vpn << 12, (0, 0))[1] & abi.PROT_WRITE


def test_random_forks_writes_and_exits_match_a_model():
    plat = FakePlatform()
    frames = FrameAllocator(1 << 20, RAM, plat.discard)
    free0 = frames.free_bytes
    r = random.Random(10)
    mm = AddressSpace(FakeRoot(plat), frames, 0x7000_0000_0000, [])
    base = mm.mmap(0, 64 * PAGE, RW, abi.MAP_PRIVATE | abi.MAP_ANONYMOUS)
    big = mm.mmap(0, 600 * PAGE, RW, abi.MAP_PRIVATE | abi.MAP_ANONYMOUS)     # lazily backed
    shared = mm.mmap(0, 8 * PAGE, RW, abi.MAP_SHARED | abi.MAP_ANONYMOUS)
    spaces = [(mm, {})]           # (address space, model: va -> byte for private memory)
    shared_model: dict[int, int] = {}
    addrs = [base + i * PAGE + 7 for i in range(64)] + [big + i * PAGE + 3 for i in range(0, 600, 37)]
    for step in range(3000):
        op = r.random()
        i = r.randrange(len(spaces))
        mm, model = spaces[i]
        if op < 0.5:
            va = r.choice(addrs)
            v = r.randrange(256)
            cpu_store(mm, va, v) if r.random() < 0.8 else mm.write(va, bytes([v]))
            model[va] = v
        elif op < 0.6:
            va = shared + r.randrange(8) * PAGE + 11
            v = r.randrange(256)
            cpu_store(mm, va, v)
            shared_model[va] = v
        elif op < 0.7 and len(spaces) < 6:
            spaces.append((mm.fork(FakeRoot(plat)), dict(model)))
        elif op < 0.75 and len(spaces) > 1:
            spaces.pop(i)
            mm.release()
        elif op < 0.8:
            page = base + r.randrange(64) * PAGE
            mm.mprotect(page, PAGE, abi.PROT_READ)
            mm.mprotect(page, PAGE, RW)     # back: still copy-on-write where shared
        else:
            for va in r.sample(addrs, 5):
                assert cpu_load(mm, va) == model.get(va, 0), (step, hex(va))
            for va, v in shared_model.items():
                assert cpu_load(mm, va) == v
        if step % 100 == 0:
            check(spaces, frames)
    check(spaces, frames)
    for mm, model in spaces:
        for va in addrs:
            assert cpu_load(mm, va) == model.get(va, 0)
        mm.release()
    assert frames.free_bytes == free0


def test_a_write_after_the_other_side_exited_takes_the_page_back():
    plat = FakePlatform()
    frames = FrameAllocator(1 << 20, RAM, plat.discard)
    mm = AddressSpace(FakeRoot(plat), frames, 0x7000_0000_0000, [])
    a = mm.mmap(0, PAGE, RW, abi.MAP_PRIVATE | abi.MAP_ANONYMOUS)
    cpu_store(mm, a, 1)
    child = mm.fork(FakeRoot(plat))
    pa = mm.pages[a >> 12] & ~0xFFF
    child.release()
    free = frames.free_bytes
    cpu_store(mm, a, 2)
    assert mm.pages[a >> 12] & ~0xFFF == pa and frames.free_bytes == free   # no copy made


def host_read(mm, va, data):
    """What rw._read_direct does with a host read: fill guest memory through the views
    write_views gives, touching each page that is not ready as a store would."""
    done = 0
    while done < len(data):
        views, n = mm.write_views(va + done, len(data) - done)
        if n == 0:
            mm.touch_write(va + done)
            continue
        assert sum(map(len, views)) == n
        for v in views:
            v[:] = data[done:done + len(v)]
            done += len(v)


def test_host_reads_into_guest_memory_respect_copy_on_write():
    """Reads straight into guest frames (mm.write_views, its remembered run) under random
    forks, stores, mprotects, munmaps and exits: every space reads what the model says."""
    plat = FakePlatform()
    frames = FrameAllocator(1 << 20, RAM, plat.discard)
    free0 = frames.free_bytes
    r = random.Random(15)
    mm = AddressSpace(FakeRoot(plat), frames, 0x7000_0000_0000, [])
    base = mm.mmap(0, 64 * PAGE, RW, abi.MAP_PRIVATE | abi.MAP_ANONYMOUS)
    spaces = [(mm, {})]
    bufs = [(base + 100, 3 * PAGE), (base + 8 * PAGE, 4 * PAGE), (base + 20 * PAGE + 5, 9000)]
    for step in range(800):
        op = r.random()
        i = r.randrange(len(spaces))
        mm, model = spaces[i]
        if op < 0.45:
            va, n = r.choice(bufs)   # the same buffers again and again, as a read loop does
            data = r.randbytes(n)
            host_read(mm, va, data)
            model.update(zip(range(va, va + n), data, strict=True))
        elif op < 0.6:
            va = base + r.randrange(64 * PAGE)
            v = r.randrange(256)
            cpu_store(mm, va, v)
            model[va] = v
        elif op < 0.7 and len(spaces) < 5:
            spaces.append((mm.fork(FakeRoot(plat)), dict(model)))
        elif op < 0.75 and len(spaces) > 1:
            spaces.pop(i)
            mm.release()
        elif op < 0.8:
            va, n = r.choice(bufs)
            page = (va + r.randrange(n)) & ~(PAGE - 1)
            mm.mprotect(page, PAGE, abi.PROT_READ)
            views, got = mm.write_views(va, n)
            assert got <= max(0, page - va)     # never a view of the read-only page
            with pytest.raises(SyscallError):
                mm.touch_write(max(va, page))
            mm.mprotect(page, PAGE, RW)
        elif op < 0.85:
            page = base + r.randrange(64) * PAGE   # a new frame behind the page, zero
            mm.munmap(page, PAGE)
            assert mm.mmap(page, PAGE, RW, abi.MAP_PRIVATE | abi.MAP_ANONYMOUS | abi.MAP_FIXED) == page
            for va in range(page, page + PAGE):
                model.pop(va, None)
        else:
            for va in r.sample(range(base, base + 64 * PAGE), 40):
                assert cpu_load(mm, va) == model.get(va, 0), (step, hex(va))
        if step % 100 == 0:
            check(spaces, frames)
    check(spaces, frames)
    for mm, model in spaces:
        for va in range(base, base + 64 * PAGE, 61):
            assert cpu_load(mm, va) == model.get(va, 0)
        mm.release()
    assert frames.free_bytes == free0


def test_the_remembered_run_never_outlives_a_change_of_its_pages():
    """write_views remembers the last run it found writable in place; a read-only page,
    a new frame, a fork or a move behind that buffer must be seen at the next read."""
    plat = FakePlatform()
    frames = FrameAllocator(1 << 20, RAM, plat.discard)
    mm = AddressSpace(FakeRoot(plat), frames, 0x7000_0000_0000, [])
    buf = mm.mmap(0, 4 * PAGE, RW, abi.MAP_PRIVATE | abi.MAP_ANONYMOUS)

    def fill(byte):
        host_read(mm, buf, bytes([byte]) * 4 * PAGE)
        assert mm.write_views(buf, 4 * PAGE)[1] == 4 * PAGE   # one run, remembered

    fill(1)
    mm.mprotect(buf + PAGE, PAGE, abi.PROT_READ)
    assert mm.write_views(buf, 4 * PAGE)[1] == PAGE
    mm.mprotect(buf + PAGE, PAGE, RW)
    fill(2)
    mm.munmap(buf + 2 * PAGE, PAGE)
    assert mm.write_views(buf, 4 * PAGE)[1] == 2 * PAGE
    mm.mmap(buf + 2 * PAGE, PAGE, RW, abi.MAP_PRIVATE | abi.MAP_ANONYMOUS | abi.MAP_FIXED)
    host_read(mm, buf, bytes([3]) * 4 * PAGE)
    mm.write_views(buf, 4 * PAGE)
    child = mm.fork(FakeRoot(plat))
    assert mm.write_views(buf, 4 * PAGE)[1] == 0            # copy-on-write now
    host_read(mm, buf, bytes([4]) * 4 * PAGE)
    assert all(cpu_load(child, va) == 3 for va in range(buf, buf + 4 * PAGE, 512))
    assert all(cpu_load(mm, va) == 4 for va in range(buf, buf + 4 * PAGE, 512))
    mm.write_views(buf, 4 * PAGE)
    moved = mm.mremap(buf, PAGE, PAGE, abi.MREMAP_MAYMOVE | abi.MREMAP_FIXED, buf + 64 * PAGE)
    assert mm.write_views(buf, 4 * PAGE)[1] == 0 and moved == buf + 64 * PAGE
    child.release()
    mm.release()
