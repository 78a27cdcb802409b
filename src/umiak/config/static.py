"""Static analysis: the syscalls an ELF program and its libraries can make, without running it.

Every object of the closure (umiak.elfdeps) is disassembled with capstone (a linear
sweep of its executable sections) and cut into regions: one per function start
known from the symbols, direct call targets, PLT entries and code addresses that
relocations or RIP-relative `lea`s name. Per region we keep
  - its `syscall` sites with the number recovered: the constant last put into
    eax/rax in the same straight-line code (through register copies), or, for a
    call to a syscall wrapper, the constant in the register that carries the number
    at the call: edi for libc's `syscall()`, eax for Go's syscall.Syscall family
    (Go's register ABI passes the first argument in rax);
  - its edges: direct calls and jumps, falling through into the next region,
    code addresses it takes (`lea`), and calls through GOT slots (to a symbol,
    resolved in ld.so's global scope order, or to a local address).
Roots (as Confine and sysfilter do): all of the program's and the interpreter's
own code; in the libraries, the functions the other objects import (found
through those edges), the functions data relocations point to (vtables,
init/fini arrays, callbacks: a safe over-approximation) and ld.so's callbacks
into libc. Only syscall sites in regions reachable from the roots count, so
linking libc does not pull all of libc in. Sites whose number is not a constant
are counted as unresolved: a traced run or exploration must cover those.

Results per file are cached in $XDG_CACHE_HOME/umiak/static-*.json, keyed by path,
size and mtime (libc takes about a second to analyse).
"""

import bisect
import os
import re
from typing import Any

from umiak.errors import UmiakError

FORMAT = 10
# Go's syscall wrappers (in a Go program's .symtab): the number is their first
# argument, in rax under Go's register ABI. Both the syscall package's and the
# runtime's; the .abi0 assembly bodies behind them are wrappers too (their own
# `syscall` sites read the number from the stack).
_GO_WRAPPER = re.compile(r"(syscall|runtime/internal/syscall|internal/runtime/syscall(/linux)?|"
                         r"golang\.org/x/sys/unix)\.(Raw)?Syscall(6|NoError)?(\.abi0)?\Z"
                         r"|syscall\.(rawSyscallNoError|rawVforkSyscall)(\.abi0)?\Z")
_HEX = re.compile(r"0x[0-9a-f]+\Z|[0-9]+\Z")
_RIP = re.compile(r"\[rip ([+-]) (0x[0-9a-f]+|[0-9]+)\]")
# register name -> canonical register (only 32- and 64-bit writes keep a constant)
_REGS: dict[str, str] = {}
for _c, _names in {"a": "rax eax ax al ah", "b": "rbx ebx bx bl bh", "c": "rcx ecx cx cl ch",
                   "d": "rdx edx dx dl dh", "si": "rsi esi si sil", "di": "rdi edi di dil",
                   "bp": "rbp ebp bp bpl", "sp": "rsp esp sp spl"}.items():
    for _n in _names.split():
        _REGS[_n] = _c
for _i in range(8, 16):
    for _n in (f"r{_i}", f"r{_i}d", f"r{_i}w", f"r{_i}b"):
        _REGS[_n] = f"r{_i}"
_FULL = {n for n in _REGS if n.startswith(("r", "e")) and not n.endswith(("w", "b"))} - {"rip"}
_CALL_CLOBBERS = ("a", "c", "d", "si", "di", "r8", "r9", "r10", "r11")
_IMPLICIT = {"mul": "ad", "div": "ad", "idiv": "ad", "cdq": "d", "cqo": "d", "cdqe": "a", "cwde": "a",
             "rdtsc": "ad", "rdtscp": "adc", "cpuid": "abcd", "xgetbv": "ad", "rdpid": "a", "lodsb": "a",
             "lodsd": "a", "lodsq": "a", "cmpxchg": "a", "rdrand": "", "syscall": "ac"}
_ENDS = {"ret", "jmp", "ud2", "hlt", "retf", "iretq"}


def _reg_writes(mn: str, ops: str) -> tuple[str, ...]:
    out = tuple(_IMPLICIT.get(mn, ""))
    first = ops.split(",", 1)[0].strip()
    c = _REGS.get(first)
    if c is not None and not mn.startswith(("cmp", "test", "push", "bt")) and mn not in ("jmp", "call"):
        return out + (c,)
    return out


class ObjectFacts:
    """One ELF's analysis (what the cache holds), before reachability."""

    def __init__(self, d: dict):
        self.starts: list[int] = d["starts"]                     # sorted code region starts
        self.dstarts: list[int] = d["dstarts"]                   # sorted data region starts
        self.names: dict[int, str] = {int(k): v for k, v in d["names"].items()}
        self.exports: dict[str, list] = d["exports"]             # defined symbol -> [address, is code]
        self.regions: dict[int, dict] = {int(k): v for k, v in d["regions"].items()}
        self.dregions: dict[int, dict] = {int(k): v for k, v in d["dregions"].items()}
        self.entry_roots: list[int] = d["entry_roots"]           # DT_INIT, DT_FINI
        self.array_roots: list[int] = d["array_roots"]           # .init_array etc.: ld.so calls them
        # syscall wrappers defined here: address -> the register with the number (di | a)
        self.wrappers: dict[int, str] = {int(k): v for k, v in d.get("wrappers", {}).items()}
        self._named: list[int] | None = None

    def region_of(self, addr: int, data: bool = False) -> int | None:
        starts = self.dstarts if data else self.starts
        i = bisect.bisect_right(starts, addr) - 1
        return starts[i] if i >= 0 else None

    def name_of(self, start: int) -> str:
        if start in self.names:
            return self.names[start]
        if self._named is None:
            self._named = sorted(self.names)
        i = bisect.bisect_right(self._named, start) - 1
        if i >= 0:
            base = self._named[i]
            return f"{self.names[base]}+{start - base:#x}"
        return f"sub_{start:x}"


def _rip_ref(a: int, size: int, ops: str) -> int | None:
    m = _RIP.search(ops)
    if m is None:
        return None
    return a + size + (int(m.group(2), 0) * (1 if m.group(1) == "+" else -1))


def _analyse_file(host: str) -> dict:
    """Disassemble one ELF (see the module docstring); a JSON-able dict."""
    import capstone
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection, RelrRelocationSection
    from elftools.elf.sections import SymbolTableSection
    with open(host, "rb") as f:
        elf = ELFFile(f)
        secs = [s for s in elf.iter_sections() if s["sh_flags"] & 2 and s["sh_size"]]   # SHF_ALLOC
        execs = [(s["sh_addr"], s.data()) for s in secs if s["sh_flags"] & 4 and s["sh_type"] == "SHT_PROGBITS"]
        ranges = sorted((a, a + len(d)) for a, d in execs)
        dranges = sorted((s["sh_addr"], s["sh_addr"] + s["sh_size"]) for s in secs if not s["sh_flags"] & 4)
        got = [(s["sh_addr"], s["sh_addr"] + s["sh_size"]) for s in secs if s.name in (".got", ".got.plt")]
        arrays = [(s["sh_addr"], s["sh_addr"] + s["sh_size"]) for s in secs
                  if s["sh_type"] in ("SHT_INIT_ARRAY", "SHT_FINI_ARRAY", "SHT_PREINIT_ARRAY")]

        merged: dict[int, tuple[list[int], list[int]]] = {}   # id(ranges) -> their union, for bisect

        def within(rs, a: int) -> bool:
            m = merged.get(id(rs))
            if m is None:
                los: list[int] = []
                his: list[int] = []
                for lo, hi in sorted(rs):
                    if los and lo <= his[-1]:
                        his[-1] = max(his[-1], hi)
                    else:
                        los.append(lo)
                        his.append(hi)
                m = merged[id(rs)] = (los, his)
            i = bisect.bisect_right(m[0], a) - 1
            return i >= 0 and a < m[1][i]

        names: dict[int, str] = {}
        exports: dict[str, list] = {}
        dsyms: set[int] = set()
        for sec in elf.iter_sections():
            if not isinstance(sec, SymbolTableSection):
                continue
            for sym in sec.iter_symbols():
                st = sym["st_info"]["type"]
                if sym["st_shndx"] == "SHN_UNDEF" or not sym.name or st in ("STT_TLS", "STT_SECTION", "STT_FILE"):
                    continue
                v = sym["st_value"]
                code = within(ranges, v)
                if st == "STT_OBJECT" or (not code and within(dranges, v)):
                    dsyms.add(v)
                elif code and st in ("STT_FUNC", "STT_GNU_IFUNC", "STT_NOTYPE"):
                    old = names.get(v)
                    if old is None or (old.startswith("_") and not sym.name.startswith("_")) or \
                            (old.startswith("_") == sym.name.startswith("_") and len(sym.name) < len(old)):
                        names[v] = sym.name
                if sec.name == ".dynsym" and sym["st_info"]["bind"] != "STB_LOCAL" and (code or within(dranges, v)):
                    exports.setdefault(sym.name, [v, code])
        # relocations: GOT slots (what code calls and loads through) and data slots
        slot: dict[int, tuple[str, Any]] = {}        # GOT slot -> ("addr", address) | ("sym", name)
        dslots: list[tuple[int, str, Any]] = []      # (where, "addr" | "sym", target)
        dynsym = elf.get_section_by_name(".dynsym")

        def word_at(vaddr: int) -> int:
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= vaddr < seg["p_vaddr"] + seg["p_filesz"]:
                    f.seek(seg["p_offset"] + vaddr - seg["p_vaddr"])
                    return int.from_bytes(f.read(8), "little")
            return 0

        def put(off: int, kind: str, target: Any) -> None:
            if within(got, off):
                slot[off] = (kind, target)
            else:
                dslots.append((off, kind, target))
        for sec in elf.iter_sections():
            if isinstance(sec, RelrRelocationSection):
                for r in sec.iter_relocations():
                    put(r["r_offset"], "addr", word_at(r["r_offset"]))
            elif isinstance(sec, RelocationSection):
                symtab = elf.get_section(sec["sh_link"]) if sec["sh_link"] else dynsym
                symnames: dict[int, str] = {}

                def symname(i: int, symtab=symtab, symnames=symnames) -> str:
                    n = symnames.get(i)
                    if n is None:
                        sym = symtab.get_symbol(i) if symtab is not None else None
                        n = symnames[i] = sym.name if sym is not None and sym.name else ""
                    return n
                if sec.is_RELA() and sec["sh_entsize"] == 24:   # read raw: pyelftools' parse is slow
                    import struct
                    data = sec.data()
                    rels = ((off, info & 0xFFFFFFFF, info >> 32, add) for off, info, add
                            in struct.iter_unpack("<QQq", data[:len(data) // 24 * 24]))
                else:
                    rels = ((r["r_offset"], r["r_info_type"], r["r_info_sym"],
                             r["r_addend"] if sec.is_RELA() else word_at(r["r_offset"])) for r in sec.iter_relocations())
                for off, t, si, add in rels:
                    if t in (8, 37):   # RELATIVE, IRELATIVE (the resolver's address)
                        put(off, "addr", add)
                    elif t in (1, 6, 7):   # 64, GLOB_DAT, JUMP_SLOT: a symbol
                        name = symname(si)
                        if name:
                            put(off, "sym", name)
        entry_roots = set()
        dyn = next((s for s in elf.iter_sections() if isinstance(s, DynamicSection)), None)
        if dyn is not None:
            for tag in dyn.iter_tags():
                if tag.entry.d_tag in ("DT_INIT", "DT_FINI"):
                    entry_roots.add(tag.entry.d_val)
        entry = elf["e_entry"]   # a library's (libc's prints its version) runs only when executed
        if dyn is None:   # static: no relocations name its pointers; absolute ones are in the data itself
            for lo, _hi in dranges:
                for s in secs:
                    if s["sh_addr"] == lo and s["sh_type"] == "SHT_PROGBITS":
                        data = s.data()
                        for k in range(0, len(data) - 7, 8):
                            v = int.from_bytes(data[k:k + 8], "little")
                            if within(ranges, v) or within(dranges, v):
                                dslots.append((lo + k, "addr", v))

    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.skipdata = True
    insns: list[tuple] = []
    starts: set[int] = set(names) | entry_roots | {a for a, _ in execs} | ({entry} if entry else set())
    dstarts: set[int] = set(dsyms) | {lo for lo, _ in dranges}
    for base, data in execs:
        for ins in md.disasm_lite(data, base):
            mn, ops = ins[2], ins[3]
            if mn.startswith(("bnd ", "notrack ", "rep ", "repz ")):
                mn = mn.split(" ", 1)[1]   # prefixes: `bnd jmp` is a jmp (rep ret a ret)
                ins = (ins[0], ins[1], mn, ops)
            insns.append(ins)
            if mn == "call" and _HEX.match(ops):
                starts.add(int(ops, 0))
            elif "rip" in ops:
                ref = _rip_ref(ins[0], ins[1], ops)
                if ref is not None and ref not in slot:
                    if within(ranges, ref):
                        if mn == "lea":
                            starts.add(ref)
                    elif within(dranges, ref):
                        dstarts.add(ref)
    for _off, kind, target in dslots:
        if kind == "addr":
            if within(ranges, target):
                starts.add(target)
            elif within(dranges, target):
                dstarts.add(target)
    starts |= {s[1] for s in slot.values() if s[0] == "addr" and within(ranges, s[1])}
    starts_l = sorted(s for s in starts if within(ranges, s))
    dstarts_l = sorted(s for s in dstarts if within(dranges, s))
    # data regions: the pointers each holds
    dregions: dict[int, dict] = {}
    for off, kind, target in sorted(dslots, key=lambda x: x[0]):
        i = bisect.bisect_right(dstarts_l, off) - 1
        if i < 0:
            continue
        dr = dregions.setdefault(dstarts_l[i], {"edges": [], "dedges": [], "syms": []})
        if kind == "sym":
            dr["syms"].append(target)
        elif within(ranges, target):
            dr["edges"].append(target)
        elif within(dranges, target):
            dr["dedges"].append(target)
    array_roots = sorted({dstarts_l[bisect.bisect_right(dstarts_l, lo) - 1] for lo, _ in arrays
                          if bisect.bisect_right(dstarts_l, lo) > 0})
    regions: dict[int, dict] = {}
    # syscall wrappers: address -> the register holding the number at a call
    wrappers: dict[int, str] = {v[0]: "di" for n, v in exports.items() if n == "syscall" and v[1]}
    wrappers.update({a: "a" for a, n in names.items() if _GO_WRAPPER.match(n)})
    defined = dict(wrappers)   # (the PLT stubs below are not wrappers defined here)
    # PLT entries that jump to syscall(): calls to them are calls to the wrapper
    for a, size, mn, ops in insns:
        if mn == "jmp" and "rip" in ops and slot.get(_rip_ref(a, size, ops) or -1) == ("sym", "syscall"):
            k = bisect.bisect_right(starts_l, a) - 1
            if k >= 0 and a - starts_l[k] < 16:
                wrappers[starts_l[k]] = "di"
    si = 0
    cur: dict | None = None
    last_mn = ""
    padded = False
    nstarts = len(starts_l)
    spans: list[tuple[dict, int, int]] = []   # region, first and last+1 instruction index
    first = 0
    for idx, (a, size, mn, ops) in enumerate(insns):
        if si < nstarts and a >= starts_l[si]:
            while si + 1 < nstarts and a >= starts_l[si + 1]:
                si += 1
            new = starts_l[si]
            si += 1
            if cur is not None:
                # Falls through, unless it ended in a jmp/ret, or in a call followed by padding:
                # a call to a function that does not return (__stack_chk_fail, abort, exit).
                if last_mn not in _ENDS and not (last_mn == "call" and padded):
                    cur["edges"].append(new)
                spans.append((cur, first, idx))
            cur = regions[new] = {"sys": [], "unres": 0, "edges": [], "syms": [], "dedges": []}
            first, last_mn = idx, ""
        if cur is None:
            continue
        if mn in ("nop", "int3", ".byte", "endbr64") or mn.startswith(("nop", "data16")):
            padded = mn != "endbr64"
            continue   # alignment padding after a ret/jmp is not a fall-through
        last_mn, padded = mn, False
        if mn == "syscall":
            cur["has_sys"] = True
            continue
        ref = _rip_ref(a, size, ops) if "rip" in ops else None
        if ref is not None:
            s_ = slot.get(ref)
            if s_ is not None:
                if s_[0] == "sym":
                    cur["syms"].append(s_[1])
                    if mn == "call" and s_[1] == "syscall":
                        cur["has_sys"] = True
                elif within(ranges, s_[1]):
                    cur["edges"].append(s_[1])
                else:
                    cur["dedges"].append(s_[1])
            elif within(ranges, ref):
                cur["edges"].append(ref)
            elif within(dranges, ref):
                cur["dedges"].append(ref)
        if (mn == "call" or mn[0] == "j") and _HEX.match(ops):
            t = int(ops, 0)
            cur["edges"].append(t)
            if mn == "call" and t in wrappers:
                cur["has_sys"] = True
    if cur is not None:
        spans.append((cur, first, len(insns)))
    for reg, i0, i1 in spans:
        if reg.pop("has_sys", False):
            _numbers(reg, insns, i0, i1, wrappers, slot)
    for r_ in list(regions.values()) + list(dregions.values()):
        for key in ("edges", "syms", "dedges", "sys"):
            if key in r_:
                r_[key] = sorted(set(r_[key]))
    is_exec = elf["e_type"] == "ET_EXEC" or dyn is None
    return {"format": FORMAT, "starts": starts_l, "dstarts": dstarts_l,
            "names": {str(k): v for k, v in names.items()}, "exports": exports,
            "regions": {str(k): v for k, v in regions.items() if _useful(v)},
            "dregions": {str(k): v for k, v in dregions.items()},
            "entry_roots": sorted(entry_roots), "array_roots": array_roots, "wrappers": {str(k): v for k, v in defined.items()},
            "is_exec": is_exec}


def _numbers(reg: dict, insns: list, i0: int, i1: int, wrappers: dict, slot: dict) -> None:
    """The syscall numbers of one region's `syscall` sites (and the number register of
    its calls to wrappers: edi for syscall(), rax for Go's): a forward dataflow over its basic blocks, each register holding the set
    of constants it may have (absent: unknown), merged by union at joins."""
    code = insns[i0:i1]
    if not code:
        return
    at = {ins[0]: k for k, ins in enumerate(code)}
    leaders = {0}
    for k, (_a, _size, mn, ops) in enumerate(code):
        if mn[0] == "j" or mn in _ENDS:
            leaders.add(k + 1)
            if _HEX.match(ops) and int(ops, 0) in at:
                leaders.add(at[int(ops, 0)])
    order = sorted(x for x in leaders if x < len(code))
    bounds = {b: (order[n + 1] if n + 1 < len(order) else len(code)) for n, b in enumerate(order)}
    State = dict[str, frozenset]
    ins_state: dict[int, State] = {0: {}}

    def step(st: State, ins, record: bool) -> State:
        a, size, mn, ops = ins
        if mn == "syscall":
            if record:
                vals = st.get("a")
                if vals is None:
                    reg["unres"] += 1
                else:
                    reg["sys"].extend(vals)
            st = {k: v for k, v in st.items() if k not in ("a", "c", "r11")}
            return st
        if mn == "call":
            if record:
                t = int(ops, 0) if _HEX.match(ops) else None
                ref = _rip_ref(a, size, ops) if "rip" in ops else None
                via = wrappers.get(t) if t is not None else None
                if via is None and ref is not None and slot.get(ref) == ("sym", "syscall"):
                    via = "di"
                if via is not None:
                    vals = st.get(via)
                    reg.setdefault("wcalls", []).extend(sorted(vals) if vals is not None else [None])
            return {k: v for k, v in st.items() if k not in _CALL_CLOBBERS}
        if mn == "mov":
            dst, _, src = ops.partition(", ")
            c = _REGS.get(dst)
            if c is None:
                return st
            st = dict(st)
            if dst in _FULL and _HEX.match(src):
                st[c] = frozenset((int(src, 0),))
            elif dst in _FULL and src in _FULL and _REGS[src] in st:
                st[c] = st[_REGS[src]]
            else:
                st.pop(c, None)
            return st
        if mn == "xor":
            dst, _, src = ops.partition(", ")
            if dst == src and dst in _FULL:
                st = dict(st)
                st[_REGS[dst]] = frozenset((0,))
                return st
        w = _reg_writes(mn, ops)
        if w:
            st = {k: v for k, v in st.items() if k not in w}
        return st

    def merge(x: State | None, y: State) -> State:
        if x is None:
            return y
        out = {}
        for k, v in x.items():
            if k in y:
                u = v | y[k]
                if len(u) <= 8:
                    out[k] = u
        return out
    work = [0]
    rounds = 0
    while work and rounds < 20 * len(order) + 20:
        rounds += 1
        b = work.pop()
        st = ins_state[b]
        end = bounds[b]
        for k in range(b, end):
            st = step(st, code[k], False)
        last = code[end - 1]
        mn, ops = last[2], last[3]
        succ = []
        if mn[0] == "j" and _HEX.match(ops) and int(ops, 0) in at:
            succ.append(at[int(ops, 0)])
        if mn != "jmp" and mn not in _ENDS and end < len(code):
            succ.append(end)
        for n in succ:
            new = merge(ins_state.get(n), st)
            if n not in ins_state or new != ins_state[n]:
                ins_state[n] = new
                work.append(n)
    for b in order:
        if b not in ins_state:
            continue   # not reached inside the region (entered from elsewhere): unknown state
        st = ins_state[b]
        for k in range(b, bounds[b]):
            st = step(st, code[k], True)
    for b in order:   # blocks entered only from other regions: every site unknown
        if b not in ins_state:
            st = {}
            for k in range(b, bounds[b]):
                st = step(st, code[k], True)


def _useful(region: dict) -> bool:
    return bool(region["sys"] or region["unres"] or region["edges"] or region["syms"] or region["dedges"]
                or region.get("wcalls"))


def object_facts(host: str) -> tuple[ObjectFacts, bool]:
    """The analysis of one file, from the cache when its path, size and mtime match."""
    import json
    from umiak.config import _sha256, _write_atomic, cache_dir
    try:
        st = os.stat(host)
    except OSError as e:
        raise UmiakError(f"{host}: {e.strerror}") from None
    key = _sha256(f"{FORMAT}\0{os.path.realpath(host)}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:24]
    path = os.path.join(cache_dir(), f"static-{key}.json")
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        if d.get("format") == FORMAT:
            return ObjectFacts(d), d["is_exec"]
    except (OSError, ValueError):
        pass
    try:
        d = _analyse_file(host)
    except ImportError as e:
        raise UmiakError(f"static analysis needs capstone and pyelftools ({e.name} is missing)") from None
    _write_atomic(path, json.dumps(d, separators=(",", ":")))
    return ObjectFacts(d), d["is_exec"]


# libc functions ld.so calls by lookup, not through an import
RTLD_CALLBACKS = ("__libc_early_init", "_dl_catch_exception", "_dl_signal_error", "_dl_signal_exception")
# Functions that load a library at run time (dlopen for plugins and extension modules,
# glibc's own for NSS modules and iconv): what they load is in no DT_NEEDED list.
DLOPENERS = ("dlopen", "dlmopen", "__libc_dlopen_mode")


class StaticResult:
    def __init__(self):
        self.objects: list[str] = []
        self.syscalls: dict[str, list[str]] = {}   # name -> sources "libc.so.6 __open64 <- opendir <- /bin/ls"
        self.unresolved = 0
        self.unresolved_where: list[str] = []
        self.dlopen: list[str] = []                # where a reachable dlopen is ("libc.so.6 dlopen <- python3")
        self.sites = 0
        self.nodes: dict[int, tuple] = {}          # number -> one region making it (for path_of)
        self.path_of: Any = lambda node: []        # the regions from a root to a node (debugging)

    def report(self) -> list[str]:
        out = [f"{name}: {src[0]}" + (f" (+{len(src) - 1} more)" if len(src) > 1 else "")
               for name, src in sorted(self.syscalls.items())]
        out.append(f"{len(self.syscalls)} syscalls from {self.sites} sites in {len(self.objects)} files; "
                   f"{self.unresolved} sites with a number that is not a constant"
                   + (f" ({', '.join(self.unresolved_where[:6])}"
                      + (", ..." if len(self.unresolved_where) > 6 else "") + ")" if self.unresolved_where else ""))
        if self.dlopen:
            out.append(self.dlopen_note())
        return out

    def dlopen_note(self) -> str:
        return (f"dlopen is reachable ({self.dlopen[0]}): libraries loaded at run time are not in this "
                "analysis; a traced run or --explore finds their calls")


def analyse(path: str, root: str = "/") -> StaticResult:
    """The syscalls `path` (a guest path inside `root`) and its closure can make."""
    from umiak import elfdeps
    from umiak.kernel.syscalls.table import NAMES
    rel = path if root in ("/", "") else "/" + os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    objs = elfdeps.closure(rel, root)
    interp = elfdeps.interpreter(rel, root)
    res = StaticResult()
    facts: list[ObjectFacts] = []
    labels: list[str] = []
    for i, (p, _by) in enumerate(objs):
        facts.append(object_facts(elfdeps.real_path(root, p))[0])
        labels.append(p if i == 0 else os.path.basename(p))
        res.objects.append(p)
    # A name is looked up in ld.so's global scope (the program, then the libraries in load
    # order); every definition is taken, since a copy relocation's data comes from the library.
    Node = tuple[int, int, int]   # (object, region start, 0 code | 1 data)

    def lookup(name: str) -> list[Node]:
        out = []
        for j, fa in enumerate(facts):
            e = fa.exports.get(name)
            if e is not None:
                out.append((j, e[0], 0 if e[1] else 1))
        return out
    parent: dict[Node, tuple] = {}   # node -> (the node that reached it or None, a label)
    queue: list[Node] = []

    def reach(node: Node, prev, label: str | None) -> None:
        start = facts[node[0]].region_of(node[1], bool(node[2]))
        if start is None:
            return
        key = (node[0], start, node[2])
        if key not in parent:
            parent[key] = (prev, label)
            queue.append(key)
    for i, fa in enumerate(facts):
        if i == 0 or objs[i][0] == interp:   # the program's and the interpreter's own code and data
            for st in fa.starts:
                reach((i, st, 0), None, labels[i])
            for st in fa.dstarts:
                reach((i, st, 1), None, labels[i])
        for a in fa.entry_roots:
            reach((i, a, 0), None, f"{labels[i]} (entry)")
        for a in fa.array_roots:
            reach((i, a, 1), None, f"{labels[i]} (init/fini)")
    for name in RTLD_CALLBACKS:
        for n in lookup(name):
            reach(n, None, "ld.so")
    wrapper_regions = {(j, fa.region_of(w), 0) for j, fa in enumerate(facts) for w in fa.wrappers}
    while queue:
        node = queue.pop(0)
        i, start, kind = node
        fa = facts[i]
        reg = (fa.dregions if kind else fa.regions).get(start)
        if reg is None:
            continue
        for t in reg["edges"]:
            reach((i, t, 0), node, None)
        for t in reg["dedges"]:
            reach((i, t, 1), node, None)
        for name in reg["syms"]:
            for n in lookup(name):
                reach(n, node, name if n[0] != i else None)
    found: dict[int, list[str]] = {}

    def source(node) -> str:
        """libc.so.6 __open64 <- opendir <- /bin/ls: the site's function, then each import crossed."""
        i, start, _k = node
        chain = [f"{labels[i]} {facts[i].name_of(start)}"]
        prev, label = parent[node]
        while prev is not None:
            if label is not None:
                chain.append(label)
            node = prev
            prev, label = parent[node]
        if label is not None and label != chain[-1]:
            chain.append(label)
        if len(chain) > 4:
            chain = chain[:2] + ["..."] + chain[-1:]
        return " <- ".join(chain)

    for node in parent:
        i, start, kind = node
        if kind:
            continue
        reg = facts[i].regions.get(start)
        if reg is None or node in wrapper_regions:
            continue   # syscall(): its numbers come from its callers
        for nr in reg["sys"]:
            res.nodes.setdefault(nr, node)
            found.setdefault(nr, []).append(source(node))
            res.sites += 1
        if reg["unres"]:
            res.unresolved += reg["unres"]
            res.unresolved_where.append(f"{labels[i]} {facts[i].name_of(start)}")
        calls = reg.get("wcalls", [])
        for di in calls:
            if di is None:
                res.unresolved += 1
                res.unresolved_where.append(f"{labels[i]} {facts[i].name_of(start)} (a syscall wrapper)")
            else:
                res.nodes.setdefault(di, node)
                found.setdefault(di, []).append(source(node) + " via a wrapper")
                res.sites += 1
    res.path_of = lambda node: _full_chain(node, parent, facts, labels)
    for i, fa in enumerate(facts):   # (ld.so's own loader code is not a program's dlopen)
        if objs[i][0] == interp:
            continue
        by_name = {n: a for a, n in fa.names.items()}
        for name in DLOPENERS:
            addr = fa.exports[name][0] if name in fa.exports else by_name.get(name)
            at = fa.region_of(addr) if addr is not None else None
            if at is not None and (i, at, 0) in parent:
                res.dlopen.append(source((i, at, 0)))
    for nr, src in found.items():
        sname = NAMES.get(nr)
        if sname is not None:   # else not an x86-64 syscall number: a misread constant
            res.syscalls[sname] = sorted(set(src), key=len)
    return res


def _full_chain(node, parent, facts, labels) -> list[str]:
    """Every region on the way from a root to `node` (for debugging the call graph)."""
    out = []
    while node is not None:
        i, start, _k = node
        prev, label = parent[node]
        out.append(f"{labels[i]}:{facts[i].name_of(start)}" + (f" [{label}]" if label else ""))
        node = prev
    return out


__all__ = ["analyse", "StaticResult"]
