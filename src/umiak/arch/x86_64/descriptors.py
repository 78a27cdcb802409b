"""GDT, TSS and IDT images, laid out as Linux x86-64 lays them out."""

import struct

from umiak.arch.x86_64.cpu import KERNEL_CS, VEC_BP, VEC_OF


def gdt_image(tss_base: int) -> bytes:
    """Linux's GDT order: kernel32 CS, kernel CS, kernel DS, user32 CS, user DS, user CS, -, TSS."""
    entries = [
        0,
        0x00CF9A000000FFFF,  # 0x08 kernel 32-bit code
        0x00AF9A000000FFFF,  # 0x10 kernel 64-bit code
        0x00CF92000000FFFF,  # 0x18 kernel data
        0x00CFFA000000FFFF,  # 0x23 user 32-bit code
        0x00CFF2000000FFFF,  # 0x2b user data
        0x00AFFA000000FFFF,  # 0x33 user 64-bit code
        0,
    ]
    limit = 104 - 1
    low = (limit & 0xFFFF) | ((tss_base & 0xFFFFFF) << 16) | (0x89 << 40) \
        | (((limit >> 16) & 0xF) << 48) | (((tss_base >> 24) & 0xFF) << 56)
    entries += [low, tss_base >> 32]  # 0x40 64-bit TSS, available
    return struct.pack(f"<{len(entries)}Q", *entries)


def tss_image(ist_top: int) -> bytes:
    """A 64-bit TSS whose RSP0 and IST1 both point at the one exception stack."""
    tss = bytearray(104)
    struct.pack_into("<Q", tss, 4, ist_top)    # RSP0
    struct.pack_into("<Q", tss, 36, ist_top)   # IST1
    struct.pack_into("<H", tss, 102, 104)      # I/O map base beyond the limit: no I/O bitmap
    return bytes(tss)


def idt_image(stub_addrs: list[int]) -> bytes:
    """Interrupt gates on IST1; int3 and into may be raised from ring 3, as on Linux."""
    out = bytearray()
    for vec, addr in enumerate(stub_addrs):
        dpl = 3 if vec in (VEC_BP, VEC_OF) else 0
        type_attr = 0x80 | (dpl << 5) | 0xE
        out += struct.pack("<HHBBHII", addr & 0xFFFF, KERNEL_CS, 1, type_attr,
                           (addr >> 16) & 0xFFFF, addr >> 32, 0)
    return bytes(out)
