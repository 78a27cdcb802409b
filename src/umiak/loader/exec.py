"""exec: map a program (and its PT_INTERP interpreter) and build the initial stack.

The layout follows Linux's: ET_EXEC at its link address, a PIE with an
interpreter at ELF_ET_DYN_BASE, a static PIE or an interpreter run directly in
the mmap area, the brk heap after the program, the stack at the top of the user
half, and the auxiliary vector Linux gives.
"""

import os
import random

from umiak.errors import ExecFormatError
from umiak.kernel import abi
from umiak.kernel.abi import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, page_down, page_up
from umiak.loader.elf import ET_DYN, PF_R, PF_W, PF_X, PT_PHDR, ElfImage, parse_elf

ELF_ET_DYN_BASE = 0x555555554000
STACK_TOP = 0x7FFFFFFFF000
STACK_SIZE = 8 << 20
MMAP_GAP = 128 << 20


def _prot(flags: int) -> int:
    return ((abi.PROT_READ if flags & PF_R else 0) | (abi.PROT_WRITE if flags & PF_W else 0)
            | (abi.PROT_EXEC if flags & PF_X else 0))


def _span(image: ElfImage) -> tuple[int, int]:
    loads = image.loads
    return page_down(min(s.vaddr for s in loads)), page_up(max(s.vaddr + s.memsz for s in loads))


def map_image(mm, image: ElfImage, bias: int, name: str) -> int:
    """Map every PT_LOAD segment at bias; returns the end of the highest segment."""
    end = 0
    data = memoryview(image.data)
    for seg in image.loads:
        start = page_down(bias + seg.vaddr)
        stop = page_up(bias + seg.vaddr + seg.memsz)
        # The file's bytes from the segment's page on (the rest of its last page and the
        # bss are the zeros of fresh frames).
        content = data[page_down(seg.offset):seg.offset + seg.filesz] if seg.filesz else None
        mm.mmap(start, stop - start, _prot(seg.flags), MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, name=name,
                data=content)
        end = max(end, bias + seg.vaddr + seg.memsz)
    return end


def _phdr_addr(image: ElfImage, bias: int) -> int:
    for s in image.segments:
        if s.type == PT_PHDR:
            return bias + s.vaddr
    for s in image.loads:
        if s.offset <= image.phoff < s.offset + s.filesz:
            return bias + s.vaddr + (image.phoff - s.offset)
    return 0


def _dyn_base(mm, image: ElfImage) -> int:
    lo, hi = _span(image)
    return mm.find_free(hi - lo) - lo


def exec_program(kernel, process, image: ElfImage, exe_path: str, argv: list[bytes], envp: list[bytes],
                 open_interp, aslr: bool, execfn: str | None = None) -> tuple[int, int]:
    """Load image (and its interpreter via open_interp(path) -> bytes) into process.mm.

    Returns (entry, stack pointer) for the first thread.
    """
    mm = process.mm
    rng = layout_random(mm, 1)
    interp = None
    interp_path = image.interp or ""   # PT_INTERP, "" for a static program
    if interp_path:
        data = open_interp(interp_path)
        interp = parse_elf(data, interp_path)
        if interp.interp:
            raise ExecFormatError(f"{interp_path}: an interpreter that needs an interpreter")

    # Main program.
    if image.type == ET_DYN:
        if interp is not None:
            bias = ELF_ET_DYN_BASE + ((rng.getrandbits(28) << 12) if aslr else 0)
            bias -= _span(image)[0]
        else:
            bias = _dyn_base(mm, image)
    else:
        bias = 0
    end = map_image(mm, image, bias, exe_path)
    if image.type == ET_DYN and interp is None:
        # A static PIE lies in the mmap area, where a brk after it could not grow: Linux
        # (6.x, with or without ASLR) moves its brk to the page after ELF_ET_DYN_BASE.
        end = ELF_ET_DYN_BASE + 4096
    brk = page_up(end) + ((rng.getrandbits(13) << 12) if aslr else 0)
    mm.brk_start = mm.brk_end = brk

    entry = bias + image.entry
    base = 0
    if interp is not None:
        base = _dyn_base(mm, interp)
        map_image(mm, interp, base, interp_path)
        start = base + interp.entry
    else:
        start = entry

    top = mm.stack_top
    sp = _build_stack(kernel, process, top, argv, envp, execfn or exe_path, [
        (abi.AT_PHDR, _phdr_addr(image, bias)),
        (abi.AT_PHENT, image.phentsize),
        (abi.AT_PHNUM, image.phnum),
        (abi.AT_PAGESZ, 4096),
        (abi.AT_BASE, base),
        (abi.AT_FLAGS, 0),
        (abi.AT_ENTRY, entry),
        (abi.AT_UID, process.creds.uid),
        (abi.AT_EUID, process.creds.euid),
        (abi.AT_GID, process.creds.gid),
        (abi.AT_EGID, process.creds.egid),
        (abi.AT_SECURE, 0),
    ] + ([(abi.AT_SYSINFO_EHDR, kernel.vdso.base)] if kernel.vdso is not None else []))
    return start, sp


def _build_stack(kernel, process, top: int, argv: list[bytes], envp: list[bytes], execfn: str,
                 aux: list[tuple[int, int]]) -> int:
    mm = process.mm
    feats = kernel.cpu_features
    blob = bytearray()
    # Strings, low to high: argv, envp, the file name; then an 8-byte zero at the very top.
    offsets_argv, offsets_envp = [], []
    for a in argv:
        offsets_argv.append(len(blob))
        blob += a + b"\0"
    for e in envp:
        offsets_envp.append(len(blob))
        blob += e + b"\0"
    execfn_off = len(blob)
    blob += os.fsencode(execfn) + b"\0"
    strings_start = top - 8 - len(blob)
    if len(blob) > 2 << 20:
        raise ExecFormatError("argument list too long")
    mm.write(strings_start, bytes(blob) + bytes(8))
    p = strings_start & ~15
    platform = b"x86_64\0"
    p -= len(platform)
    platform_addr = p
    mm.write(p, platform)
    p -= 16
    random_addr = p
    mm.write(p, os.urandom(16))
    p &= ~15
    auxv = aux + [
        (abi.AT_HWCAP, feats.get("hwcap", 0)),
        (abi.AT_HWCAP2, feats.get("hwcap2", 0)),
        (abi.AT_CLKTCK, abi.CLK_TCK),
        (abi.AT_PLATFORM, platform_addr),
        (abi.AT_RANDOM, random_addr),
        (abi.AT_EXECFN, strings_start + execfn_off),
        (abi.AT_MINSIGSTKSZ, feats.get("minsigstksz", 2048)),
        (abi.AT_NULL, 0),
    ]
    words = [len(argv)]
    words += [strings_start + o for o in offsets_argv] + [0]
    words += [strings_start + o for o in offsets_envp] + [0]
    for k, v in auxv:
        words += [k, v]
    sp = (p - 8 * len(words)) & ~15
    mm.write(sp, b"".join((w & abi.MASK64).to_bytes(8, "little") for w in words))
    process.argv, process.envp = list(argv), list(envp)
    process.auxv = auxv
    return sp


def layout_random(mm, part: int):
    """The random source of an address space's layout: its own seed (see Kernel.new_mm)
    when it has one, so the same seed gives the same layout; part tells the draws apart."""
    seed = getattr(mm, "layout_seed", None)
    return random.SystemRandom() if seed is None else random.Random(seed * 4 + part)


def setup_address_space(mm, aslr: bool) -> None:
    """Place the stack and the mmap area as Linux's default (legacy-free) layout does."""
    rng = layout_random(mm, 0)
    stack_top = STACK_TOP - ((rng.getrandbits(22) << 12) if aslr else 0)
    mm.stack_top = stack_top
    mm.mmap(stack_top - STACK_SIZE, STACK_SIZE, abi.PROT_READ | abi.PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | abi.MAP_GROWSDOWN, name="[stack]")
    # Below the randomised stack, as Linux's mmap_base leaves room for the stack's random
    # offset: from STACK_TOP, a low stack could end up inside the mmap area (about 1% of runs),
    # and the heap of a static-pie program, placed there, could then grow over it.
    mm.mmap_top = page_down(stack_top - MMAP_GAP - ((rng.getrandbits(28) << 12) if aslr else 0))
