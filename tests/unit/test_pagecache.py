"""In-process tests of kernel/pagecache.py: the frames of a file, their reference counts,
and write-back of host files (frames in a private mapping, as a bare VFS has them)."""

import os
import random

from umiak.kernel.files import HostFile
from umiak.kernel.pagecache import PAGE, HeapFrames, MemCache, PageCaches


def test_mem_cache_reads_what_was_written_holes_zero():
    heap = HeapFrames(64 << 20)
    c = MemCache(heap.frames, heap.ram)
    model = bytearray(1 << 20)
    r = random.Random(7)
    for i in range(3000):
        o = r.randrange(0, 1 << 20)
        n = min(r.randrange(0, 20000), (1 << 20) - o)
        op = r.random()
        if op < 0.5:
            d = r.randbytes(n)
            c.write(o, d)
            model[o:o + n] = d
        elif op < 0.6:
            c.zero(o, o + n)
            model[o:o + n] = bytes(n)
        elif op < 0.65:
            idx = r.randrange(0, 256)
            if idx in c.pages:
                c.drop([idx])
                model[idx * PAGE:(idx + 1) * PAGE] = bytes(PAGE)
        else:
            assert c.read(o, n) == bytes(model[o:o + n]), i
    assert c.read(0, 1 << 20) == bytes(model)
    c.truncate(5000)
    assert sorted(c.pages) == [0, 1] and c.read(0, 2 * PAGE) == bytes(model[:5000]) + bytes(2 * PAGE - 5000)
    free = heap.frames.free_bytes
    c.drop_all()
    assert heap.frames.free_bytes == free + 2 * PAGE


def _host_file(path, caches, flags=os.O_RDWR):
    return HostFile(os.open(path, flags), flags, str(path), owned=True, caches=caches)


def test_host_cache_shares_frames_and_writes_back(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"a" * PAGE + b"b" * 100)
    heap = HeapFrames(16 << 20)
    caches = PageCaches(heap.frames, heap.ram)
    f = _host_file(path, caches)
    g = _host_file(path, caches, os.O_RDONLY)
    st = os.stat(path)
    c = caches.cache((st.st_dev, st.st_ino), f.fd)
    c.add_writer(f.fd)
    pa = c.translate(1, True)            # a page-table entry maps page 1 writable
    heap.frames.share(pa)
    assert bytes(heap.ram[pa:pa + 101]) == b"b" * 100 + b"\0"
    heap.ram[pa:pa + 5] = b"MAPPD"
    assert g.pread(PAGE, 6) == b"MAPPDb"        # another open file sees the mapping
    f.pwrite(PAGE + 1, b"W")
    assert bytes(heap.ram[pa:pa + 5]) == b"MWPPD"  # and its writes reach the mapping
    assert path.read_bytes()[PAGE:PAGE + 5] == b"bWbbb"   # not written back yet
    f.sync()                                   # fsync: dirty pages first
    assert path.read_bytes() == b"a" * PAGE + b"MWPPD" + b"b" * 95   # never past the end
    heap.ram[pa + 10:pa + 12] = b"ZZ"
    c.trim()
    assert c.pages and caches                 # still mapped: kept
    assert heap.frames.release([pa]) == [pa]   # the mapping goes; the cache still holds it
    c.trim()                                   # munmap: written back, dropped, forgotten
    assert path.read_bytes()[PAGE + 10:PAGE + 12] == b"ZZ"
    assert not c.pages and not caches
    f.close()
    g.close()


def test_host_cache_truncate_drops_pages_and_zeroes_the_tail(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 2 * PAGE)
    heap = HeapFrames(16 << 20)
    caches = PageCaches(heap.frames, heap.ram)
    f = _host_file(path, caches)
    st = os.stat(path)
    c = caches.cache((st.st_dev, st.st_ino), f.fd)
    a, b = c.translate(0, False), c.translate(1, False)
    heap.frames.share(a)                 # page 0 is mapped, page 1 only cached
    assert a != b
    f.truncate(10)
    assert list(c.pages) == [0] and bytes(heap.ram[a:a + 12]) == b"x" * 10 + b"\0\0"
    assert f.pread(0, 100) == b"x" * 10
