"""ELF64 headers: just what exec needs, with errors that name the problem."""

import struct
from umiak.records import record

from umiak.errors import ExecFormatError

ET_EXEC, ET_DYN = 2, 3
EM_X86_64 = 62
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE, PT_PHDR, PT_TLS = 1, 2, 3, 4, 6, 7
PT_GNU_STACK = 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4

_MACHINES = {3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 40: "ARM", 43: "SPARC V9",
             62: "x86-64", 183: "AArch64", 243: "RISC-V", 258: "LoongArch", 22: "S/390"}
_TYPES = {0: "no file type", 1: "a relocatable object (.o)", 4: "a core dump"}
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")


@record
class Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int


@record
class ElfImage:
    data: bytes
    type: int
    entry: int
    phoff: int
    phentsize: int
    phnum: int
    segments: list[Segment]
    interp: str | None
    exec_stack: bool

    @property
    def loads(self) -> list[Segment]:
        return [s for s in self.segments if s.type == PT_LOAD and s.memsz]


def parse_elf(data: bytes, name: str) -> ElfImage:
    """Parse and validate an x86-64 ELF executable; ExecFormatError says why not."""
    if len(data) < 4 or data[:4] != b"\x7fELF":
        if data[:2] == b"#!":
            raise ExecFormatError(f"{name}: is a script; run its interpreter instead (umiak runs ELF programs)")
        raise ExecFormatError(f"{name}: not an ELF executable (exec format error)")
    if len(data) < 20:
        raise ExecFormatError(f"{name}: truncated ELF file ({len(data)} bytes)")
    if data[4] == 1:
        raise ExecFormatError(f"{name}: 32-bit ELF is not supported (umiak runs x86-64 programs only)")
    if data[4] != 2:
        raise ExecFormatError(f"{name}: unknown ELF class {data[4]}")
    if data[5] != 1:
        raise ExecFormatError(f"{name}: big-endian ELF is not supported (umiak runs x86-64 programs only)")
    machine = struct.unpack_from("<H", data, 18)[0]
    if machine != EM_X86_64:
        arch = _MACHINES.get(machine, f"machine {machine}")
        raise ExecFormatError(f"{name}: ELF for {arch}, not x86-64 (umiak runs x86-64 programs only)")
    if len(data) < _EHDR.size:
        raise ExecFormatError(f"{name}: truncated ELF file (header incomplete)")
    (_ident, etype, _mach, _ver, entry, phoff, _shoff, _flags, _ehsize, phentsize, phnum,
     _shentsize, _shnum, _shstrndx) = _EHDR.unpack_from(data)
    if etype not in (ET_EXEC, ET_DYN):
        raise ExecFormatError(f"{name}: not an executable but {_TYPES.get(etype, f'ELF type {etype}')}")
    if phentsize != _PHDR.size or phnum == 0 or phnum > 512:
        raise ExecFormatError(f"{name}: bad ELF program headers")
    if phoff + phnum * phentsize > len(data):
        raise ExecFormatError(f"{name}: truncated ELF file (program headers past the end)")
    segments = []
    interp = None
    exec_stack = False
    for i in range(phnum):
        ptype, pflags, off, vaddr, _paddr, filesz, memsz, align = _PHDR.unpack_from(data, phoff + i * phentsize)
        seg = Segment(ptype, pflags, off, vaddr, filesz, memsz, align)
        segments.append(seg)
        if ptype == PT_LOAD:
            if filesz and off + filesz > len(data):
                raise ExecFormatError(f"{name}: truncated ELF file (segment past the end)")
            if filesz > memsz or (vaddr - off) % 4096:
                raise ExecFormatError(f"{name}: bad ELF segment at {vaddr:#x}")
        elif ptype == PT_INTERP:
            if off + filesz > len(data) or filesz == 0:
                raise ExecFormatError(f"{name}: truncated ELF file (interpreter name)")
            interp = data[off:off + filesz].split(b"\0", 1)[0].decode("utf-8", "replace")
        elif ptype == PT_GNU_STACK:
            exec_stack = bool(pflags & PF_X)
    if not any(s.type == PT_LOAD for s in segments):
        raise ExecFormatError(f"{name}: ELF has nothing to load")
    return ElfImage(data, etype, entry, phoff, phentsize, phnum, segments, interp, exec_stack)


_SHDR = struct.Struct("<IIQQQQIIQQ")   # Elf64_Shdr: name, type, flags, addr, offset, size, ...


def section(data: bytes, name: bytes) -> tuple[int, int] | None:
    """(sh_addr, sh_size) of a section by name, None without it: the prelinked cache's
    look at a static program's .init on its first run (pyelftools' import alone is ~30 ms)."""
    if len(data) < 64:
        return None
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if not shoff or shentsize < _SHDR.size or shstrndx >= shnum or shoff + shnum * shentsize > len(data):
        return None
    headers = [_SHDR.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    strtab, strsize = headers[shstrndx][4], headers[shstrndx][5]
    for h in headers:
        start = strtab + h[0]
        if h[0] < strsize and data[start:data.find(b"\0", start, strtab + strsize)] == name:
            return h[3], h[5]
    return None
