"""CPU models a VM can present to its program (`umiak run --cpu=host|baseline`).

host      the platform's own CPU: on kvm the host's supported CPUID (glibc keeps its
          AVX2/AVX-512 code), on emu Unicorn's. A program that chose code for it
          (glibc's ifuncs, ld.so's XSAVE area) may not run on another CPU.
baseline  one fixed CPU both platforms present, so a snapshot taken under it
          restores on either (umiak.snapshot): the CPUID of Unicorn 2.1.4's default
          CPU (SSE4.2, POPCNT, AES, PCLMUL, MOVBE, BMI1/2, ERMS; no AVX/FMA/AVX-512)
          with two changes, both for what KVM under PVM can present (measured):
          - no XSAVE (so CR4.OSXSAVE is clear): the vCPU's XCR0 cannot be
            restricted there (KVM_SET_XCRS is accepted, yet XGETBV in the guest reads
            the host's XCR0), and PVM shows the hardware's feature bits in leaves 1
            (ECX/EDX), 7 and 0xD whatever KVM_SET_CPUID2 says (vendor, family/model,
            cache and extended leaves are taken). With OSXSAVE clear glibc finds
            AVX/AVX2/AVX-512 unusable on every CPU and ld.so saves registers with
            fxsave (512 bytes) instead of xsave into an area sized by leaf 0xD;
          - family 6 model 0x2c (an Intel Core i7, Westmere) instead of Haswell's
            0x3c: glibc's tuning for 0x3c depends on the AVX bit, which PVM shows.
          Under `ld.so --list-diagnostics` both platforms then make the same
          choices (tests/test_cpu_model.py); the hardware's extra leaf 7 bits stay
          visible on kvm (RDSEED, ADX, SHA, FSRM, ...: no glibc ifunc picks by them).
"""

from __future__ import annotations

MODELS = ("host", "baseline")

# Leaf 1 ECX: XSAVE (26) and OSXSAVE (27), masked off in the baseline (see above).
_XSAVE_BITS = (1 << 26) | (1 << 27)


def _brand(text: str) -> tuple[tuple[int, int, int, int, int, int], ...]:
    """Leaves 0x80000002-4: the processor brand string, 48 bytes NUL-padded."""
    raw = text.encode().ljust(48, b"\0")
    w = [int.from_bytes(raw[i:i + 4], "little") for i in range(0, 48, 4)]
    return tuple((0x80000002 + n, 0, w[4 * n], w[4 * n + 1], w[4 * n + 2], w[4 * n + 3]) for n in range(3))


# (function, index, eax, ebx, ecx, edx), measured with a CPUID loop under --platform=emu
# (Unicorn 2.1.4); leaf 1 EAX family 6 model 0x2c stepping 2 (Unicorn: 0x306c4), ECX
# without XSAVE/OSXSAVE, leaf 0xD (XSAVE state) all zero, another brand string.
BASELINE: tuple[tuple[int, int, int, int, int, int], ...] = (
    (0x0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69),          # max leaf 0xD, "GenuineIntel"
    (0x1, 0, 0x206c2, 0x800, 0xced82203 & ~_XSAVE_BITS, 0x78bfbfd),
    (0x2, 0, 0x1, 0x0, 0x0, 0x2c307d),
    (0x3, 0, 0, 0, 0, 0),
    (0x4, 0, 0x121, 0x1c0003f, 0x3f, 0x1),
    (0x4, 1, 0x122, 0x1c0003f, 0x3f, 0x1),
    (0x4, 2, 0x143, 0x3c0003f, 0xfff, 0x1),
    (0x4, 3, 0, 0, 0, 0),
    (0x5, 0, 0x0, 0x0, 0x3, 0x0),
    (0x6, 0, 0x4, 0x0, 0x0, 0x0),
    (0x7, 0, 0x0, 0x389, 0x0, 0x0),                             # FSGSBASE BMI1 SMEP BMI2 ERMS
    (0x7, 1, 0, 0, 0, 0),
    (0x8, 0, 0, 0, 0, 0), (0x9, 0, 0, 0, 0, 0), (0xa, 0, 0, 0, 0, 0),
    (0xb, 0, 0, 0, 0, 0), (0xc, 0, 0, 0, 0, 0),
    (0xd, 0, 0, 0, 0, 0), (0xd, 1, 0, 0, 0, 0),
    (0x80000000, 0, 0x80000008, 0x756e6547, 0x6c65746e, 0x49656e69),
    (0x80000001, 0, 0x206c2, 0x0, 0x21, 0x28100800),            # LAHF ABM; SYSCALL NX RDTSCP LM
    *_brand("umiak baseline x86-64 CPU"),
    (0x80000005, 0, 0x1ff01ff, 0x1ff01ff, 0x40020140, 0x40020140),
    (0x80000006, 0, 0x0, 0x42004200, 0x2008140, 0x0),
    (0x80000007, 0, 0, 0, 0, 0),
    (0x80000008, 0, 0x3028, 0x0, 0x0, 0x0),
)

# Leaves whose ECX selects a sub-leaf (KVM_CPUID_FLAG_SIGNIFCANT_INDEX).
INDEXED = frozenset({0x4, 0x7, 0xb, 0xd})

# Feature registers a program selects code by: (function, index, register 0..3 = eax..edx).
# Every baseline bit in them must be one the platform runs.
FEATURE_REGS = ((0x1, 0, 2), (0x1, 0, 3), (0x7, 0, 1), (0x7, 0, 2), (0x7, 0, 3),
                (0x80000001, 0, 2), (0x80000001, 0, 3))
# Bits the hypervisor supplies itself, not checked: leaf 1 ECX OSXSAVE and HYPERVISOR.
_NOT_CHECKED = {(0x1, 0, 2): (1 << 27) | (1 << 31)}


def lookup(table, function: int, index: int = 0) -> tuple[int, int, int, int]:
    """(eax, ebx, ecx, edx) of a leaf in a (function, index, eax, ebx, ecx, edx) table. A
    leaf past the maximum reads the highest basic leaf, as Intel CPUs, KVM and QEMU do."""
    top = _max_leaf(table, 0)
    if top and (top < function < 0x80000000 or _max_leaf(table, 0x80000000) < function < 0xC0000000):
        function = top
    for f, i, a, b, c, d in table:
        if f == function and (i == index or function not in INDEXED):
            return a, b, c, d
    return 0, 0, 0, 0


def _max_leaf(table, base: int) -> int:
    return next((a for f, i, a, b, c, d in table if f == base), 0)


# mov r8,rdx; mov eax,edi; mov ecx,esi; push rbx; cpuid; mov [r8],eax; mov [r8+4],ebx;
# mov [r8+8],ecx; mov [r8+12],edx; pop rbx; ret
_CPUID_CODE = bytes.fromhex("4989d0" "89f8" "89f1" "53" "0fa2" "418900" "41895804" "41894808" "4189500c" "5b" "c3")


def host_cpuid(leaves) -> list[tuple[int, int, int, int, int, int]]:
    """The host CPU's own CPUID for (function, index) pairs, run natively (under PVM the
    guest's feature bits are the hardware's, whatever KVM_GET_SUPPORTED_CPUID says)."""
    import ctypes

    from umiak.arch.x86_64.native import CodePage
    fn = CodePage(_CPUID_CODE).function(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p)
    out = (ctypes.c_uint32 * 4)()
    rows = []
    for f, i in leaves:
        fn(f, i, ctypes.addressof(out))
        rows.append((f, i, *out))
    return rows


def missing(supported, regs=FEATURE_REGS) -> list[str]:
    """The baseline feature bits of regs absent from `supported` (a table like BASELINE),
    as 'leaf 0x7.0 ebx bit 3' strings: a platform with any cannot present the baseline."""
    out = []
    for f, i, r in regs:
        want = lookup(BASELINE, f, i)[r] & ~_NOT_CHECKED.get((f, i, r), 0)
        lack = want & ~lookup(supported, f, i)[r]
        out += [f"leaf {f:#x}.{i} e{'abcd'[r]}x bit {b}" for b in range(32) if lack >> b & 1]
    return out
