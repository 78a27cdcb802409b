"""The baseline CPU model's table (umiak.arch.x86_64.cpumodel), in-process, no VM: what
glibc reads from it, leaves past its maximum, and the check of a platform's features."""

from umiak.arch.x86_64 import cpumodel as m


def test_baseline_offers_no_xsave_and_no_avx():
    _, _, ecx1, _ = m.lookup(m.BASELINE, 1)
    assert not ecx1 & (1 << 26 | 1 << 27 | 1 << 28 | 1 << 12)   # XSAVE OSXSAVE AVX FMA
    assert m.lookup(m.BASELINE, 7)[1] & (1 << 5) == 0              # AVX2
    assert m.lookup(m.BASELINE, 0xD) == (0, 0, 0, 0)               # no XSAVE state sizes
    eax1 = m.lookup(m.BASELINE, 1)[0]
    assert (eax1 >> 8 & 0xF, (eax1 >> 12 & 0xF0) | (eax1 >> 4 & 0xF)) == (6, 0x2C)   # family, model


def test_leaves_past_the_maximum_read_the_highest_basic_leaf():
    assert m.lookup(m.BASELINE, 0x14) == m.lookup(m.BASELINE, 0xD)
    assert m.lookup(m.BASELINE, 0x80000009) == m.lookup(m.BASELINE, 0xD)
    assert m.lookup(m.BASELINE, 0x4, 2) != m.lookup(m.BASELINE, 0x4, 0)   # sub-leaves are distinct


def test_brand_string():
    words = b"".join(v.to_bytes(4, "little") for f in (0x80000002, 0x80000003, 0x80000004)
                     for v in m.lookup(m.BASELINE, f))
    assert words.rstrip(b"\0") == b"umiak baseline x86-64 CPU"


def test_missing_names_each_absent_bit():
    assert m.missing(m.BASELINE) == []
    eax, ebx, ecx, edx = m.lookup(m.BASELINE, 7)
    without_bmi2 = [row if row[:2] != (7, 0) else (7, 0, eax, ebx & ~(1 << 8), ecx, edx) for row in m.BASELINE]
    assert m.missing(without_bmi2) == ["leaf 0x7.0 ebx bit 8"]


def test_host_cpuid_reads_this_cpu():
    (row,) = m.host_cpuid([(0, 0)])
    assert row[0:2] == (0, 0) and row[2] >= 1 and row[3] != 0   # max leaf, vendor string
