"""Rewritten syscall sites (issue 15 §3): calls that enter the exitless stub without `syscall`.

Under PVM the `syscall` instruction itself costs ~22 µs (PVM delivers it to LSTAR). A site
seen at a syscall exit for the first time, where the five bytes before the `syscall` are one
instruction the trampoline can run as well (it does not depend on where it is), gets them
replaced by `jmp rel32` to a trampoline of its own, which begins with them:

    b8 imm32        mov $nr,%eax          glibc's and musl's wrappers (imm32 must be the call's nr)
    4c 8b 4c 24 08  mov 0x8(%rsp),%r9     glibc's syscall(): its sixth argument, from the stack
                                          (r9 must hold that word: the site is what it seems)

    <those five bytes> ; movabs $site+7,%rcx ; jmp *%gs:RW_PTR       (32 bytes a site)

glibc's read() has only `xor %eax,%eax; syscall` (31 c0 0f 05), too short for the jump: its
`xor` becomes `jmp rel8` (the same two bytes, so no instruction is cut) to the alignment
padding after the wrapper's next `ret`, whose first five bytes become the `jmp rel32` to a
trampoline beginning with the `xor` (a three-byte nop making it five, the padding's own
bytes kept at its end for putting back). The padding is found by disassembling (capstone)
from the `syscall` on: glibc's error check (cmp $-4096,%rax) first, then the first `ret`
followed by nops up to a 16-byte boundary, within the rel8's reach. Code after a `ret` up
to an aligned label is never run: no branch lands inside padding a compiler emitted.

%gs is the vCPU's slot page (platform/kvm/exitless.py), whose RW_PTR is that vCPU's
rewritten-site entry: it saves the flags in r11 and goes on as the stub's `syscall` entry,
so rax, rcx and r11 are what `syscall` leaves and the red zone below rsp is not touched.
The `syscall` after the jump stays: a thread that had run the old instruction (or a branch
to the `syscall`) still makes the real call, and a stop inside a trampoline is reported at
the site (RIP at its first byte, or at the `syscall` once the instruction has run:
fix_rip), so a signal frame is what a native run would show and sigreturn resumes there.

Why it is safe:
- No vCPU runs the bytes while they change: the caller's is stopped in this exit, and
  every other task of the address space (threads, a CLONE_VM child) is kept out of the
  guest for the write (Platform.hold: kicked out of KVM_RUN, waited for, let in again,
  which serialises it as cross-modifying code needs). A thread stopped anywhere is at an
  instruction boundary: at the `mov` (it runs the jump) or at the `syscall` (it stays).
- The site must be what the call came through: eax's number is the `mov`'s (r9 the word
  at 8(%rsp)), and the byte before it is not a prefix that would make it part of another
  instruction.
- Only private mappings: a file's text is a private copy (mm.write(force) breaks COW),
  never the host file or a MAP_SHARED page.
- Trampolines live where no mapping of the program can be, in pages /proc/<pid>/maps
  leaves out (fork copies them with the text). A site uses the first area within ±2 GiB
  of it (rel32):
  - below mmap_min_addr, a page at a time from 0xFFFF down (to 0xC000: 512 sites), for
    non-PIE executables at 0x400000; touching a low address (a NULL pointer's field)
    still faults as natively unless it is one of those pages;
  - the 64 KiB just above the mmap area's top (2048 sites), in the gap Linux also keeps
    below the stack, near the shared libraries ld.so mapped from that top down. The range
    is the kernel's (mm.reserved): no mmap lands there, MAP_FIXED there fails (ENOMEM),
    and munmap or mprotect leave its pages alone.
- Only calls the exitless poller may serve (FastCalls.may_serve): the others gain little.
- --no-rewrite (UMIAK_REWRITE=n) turns it off, for programs that check their own code.
"""

import contextlib
from typing import Any

from umiak.kernel import abi
from umiak.kernel.errors import SyscallError
from umiak.kernel.mm import KERNEL_VMA

AREA, AREA_END = 0xC000, 0x10000   # below MMAP_MIN_ADDR (kernel/mm.py), its top pages
HIGH_SIZE = 0x10000                # the area above mm.mmap_top
TRAMP = 32
PAGE = 4096
NAME = KERNEL_VMA
SITE_LEN = 7
R9_FROM_STACK = bytes.fromhex("4c8b4c2408")   # mov 0x8(%rsp),%r9
XOR_EAX, SYSCALL = b"\x31\xc0", b"\x0f\x05"
XOR_HEAD = XOR_EAX + b"\x0f\x1f\x00"          # xor %eax,%eax; nopl (%rax): a trampoline's five bytes
ERR_CHECK = bytes.fromhex("483d00f0ffff")       # cmp $-4096,%rax, after glibc's syscall
PAD_KEPT = TRAMP - 5                            # where a trampoline keeps the padding's own bytes
RSP, R9 = 6, 9   # in the vCPU's register list
# A byte before the instruction that would make it part of a longer instruction (a REX or legacy prefix,
# the 0f escape: `41 b8 imm32` is mov $imm,%r8d): such a site is left alone.
NOT_BEFORE = frozenset(range(0x40, 0x50)) | {0x0F, 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3}


class Rewriter:
    """The kernel's side of rewritten sites: note() at syscall exits, fix_rip() at stops."""

    def __init__(self, kernel, may_serve, rw_ptr_off: int):
        self.kernel = kernel
        self.may_serve = may_serve
        self.rw_ptr_off = rw_ptr_off
        self.rewritten = 0
        self._cs: Any = None   # capstone, for glibc read()'s padding (loaded at its first site)

    def first_call(self, task, at: int) -> bool:
        """Whether the poller's call (returning to at, as the stub's slot says) comes from a
        site not seen yet in this address space: it hands such a call back, so its real exit
        shows the site (note). One exit more per site and process."""
        st = _state(task.mm)
        return not (at in st.seen or st.off)

    def note(self, task, nr: int, ret: int) -> None:
        """A syscall exit whose `syscall` ends at ret: rewrite its site if it is one."""
        mm = task.mm
        st = _state(mm)
        if ret in st.seen:
            return
        st.seen.add(ret)
        if not self.may_serve(nr) or st.off or not getattr(task.vcpu, "gs_virtual", False):
            return
        site = ret - SITE_LEN
        try:
            code = mm.read(site - 1, SITE_LEN + 1)
        except SyscallError:
            return
        if code[6:] != SYSCALL:
            return
        if code[4:6] == XOR_EAX and nr == 0 and code[3] not in NOT_BEFORE:
            self._rewrite_xor(task, mm, st, ret)
            return
        head = code[1:6]
        if code[0] in NOT_BEFORE:
            return
        if head[0] == 0xB8:
            if int.from_bytes(head[1:], "little") != nr & 0xFFFF_FFFF:
                return
        elif head == R9_FROM_STACK:
            regs = task.vcpu.get_regs()
            try:
                if mm.read_u64(regs[RSP] + 8) != regs[R9]:
                    return
            except SyscallError:
                return
        else:
            return
        vma = mm.find_vma(site)
        if vma is None or vma.flags & abi.MAP_SHARED or vma.start > site or vma.end < ret:
            return
        tramp = self._trampoline(mm, st, site, self._body(head, ret, b""))
        if tramp is None:
            return
        with self._others_held(task):
            mm.write(site, _jmp(site, tramp), force=True)
        self.rewritten += 1

    def _body(self, head: bytes, ret: int, kept: bytes) -> bytes:
        """A trampoline: the site's five bytes; movabs $ret,%rcx; jmp *%gs:RW_PTR; int3s,
        and at its end the padding bytes a read() site's jump replaced (kept)."""
        code = (head + b"\x48\xb9" + ret.to_bytes(8, "little")
                + b"\x65\xff\x24\x25" + self.rw_ptr_off.to_bytes(4, "little"))
        return code + b"\xcc" * (TRAMP - len(code) - len(kept)) + kept

    @staticmethod
    def _trampoline(mm, st, at: int, body: bytes) -> "int | None":
        """A new trampoline holding body, within a rel32 jump of at; None if none is left."""
        area = st.area_for(mm, at)
        if area is None:
            return None
        tramp = area.next()
        if not area.page(mm, tramp):
            return None
        mm.write(tramp, body, force=True)
        area.used += 1
        return tramp

    def _rewrite_xor(self, task, mm, st, ret: int) -> None:
        """glibc's read(): `xor %eax,%eax; syscall` at ret-4, through a jump in its padding."""
        site = ret - 4
        vma = mm.find_vma(site)
        if vma is None or vma.flags & abi.MAP_SHARED or vma.start > site:
            return
        pad = self._padding(mm, ret, min(vma.end, site + 2 + 127 + 16))
        if pad is None:
            return
        tramp = self._trampoline(mm, st, pad, self._body(XOR_HEAD, ret, mm.read(pad, 5)))
        if tramp is None:
            return
        with self._others_held(task):
            mm.write(pad, _jmp(pad, tramp), force=True)
            mm.write(site, bytes((0xEB, pad - (site + 2))), force=True)
        self.rewritten += 1

    def _padding(self, mm, ret: int, end: int) -> "int | None":
        """The first padding after the wrapper's next `ret`: nops from a `ret` or `jmp` to a
        16-byte boundary, five bytes at least, starting within a rel8 of ret-2; or None."""
        if self._cs is None:
            import capstone
            self._cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        try:
            code = mm.read(ret, end - ret)
        except SyscallError:
            return None
        if not code.startswith(ERR_CHECK):
            return None
        run, after_jump = None, False
        for addr, _size, mnemonic, _op in self._cs.disasm_lite(code, ret):
            if mnemonic == "nop":
                if run is None and after_jump:
                    run = addr
                continue
            if run is not None:
                if addr % 16 == 0 and addr - run >= 5 and run - (ret - 2) <= 127:
                    return run
                return None   # the first padding after a ret is the wrapper's, or none is
            after_jump = mnemonic in ("ret", "jmp")
        return None

    def _others_held(self, task):
        """Every other task running this address space (a thread, a CLONE_VM child, a vfork
        parent) out of the guest while its code changes (Platform.hold)."""
        vcpus = [t.vcpu for t in self.kernel.tasks.values()
                 if t.mm is task.mm and t is not task and t.vcpu is not None]
        return self.kernel.platform.hold(vcpus) if vcpus else contextlib.nullcontext()

    def gs_taken(self, task) -> None:
        """The program sets its own %gs base: put its address space's sites back (from
        their trampolines) and rewrite no more there, the other threads held meanwhile."""
        st = _state(task.mm)
        st.off = True
        with self._others_held(task):
            self._put_back(task.mm, st)

    def undo(self, mm) -> None:
        """Before a snapshot (one task, stopped): the original code and no trampolines, so
        the snapshot is the program's own and restores anywhere; sites may be rewritten again."""
        st = _state(mm)
        self._put_back(mm, st)
        for area in st.areas:
            for page in range(area.lo, area.hi, PAGE):
                vma = mm.find_vma(page)
                if vma is not None and vma.name == NAME:
                    mm.munmap(page, PAGE)
            area.used = 0
            if area.lo != AREA and (area.lo, area.hi) in mm.reserved:
                mm.reserved.remove((area.lo, area.hi))
        st.areas = [a for a in st.areas if a.lo == AREA]
        st.seen.clear()

    @staticmethod
    def _put_back(mm, st) -> None:
        for tramp in (a.tramp(i) for a in st.areas for i in range(a.used)):
            try:
                body = mm.read(tramp, TRAMP)
                ret = int.from_bytes(body[7:15], "little")
                if body[:5] == XOR_HEAD:
                    site = ret - 4
                    jump = mm.read(site, 2)
                    pad = site + 2 + int.from_bytes(jump[1:], "little", signed=True)
                    if jump[0] == 0xEB and mm.read(pad, 5) == _jmp(pad, tramp):
                        mm.write(site, XOR_EAX, force=True)
                        mm.write(pad, body[PAD_KEPT:], force=True)
                elif mm.read(ret - SITE_LEN, 5) == _jmp(ret - SITE_LEN, tramp):
                    mm.write(ret - SITE_LEN, body[:5], force=True)
            except SyscallError:
                continue

    def fix_rip(self, task) -> None:
        """The vCPU stopped inside a trampoline: show it at its site instead."""
        v = task.vcpu
        regs = v.get_regs()
        rip = regs[16]
        base = rip & ~(TRAMP - 1)
        areas = [a for a in _state(task.mm).areas if a.used]
        try:
            if not any(a.tramp(a.used - 1) <= base < a.hi for a in areas):
                # At a read() site's jump in its padding: it has not run the `xor` yet.
                jump = task.mm.read(rip, 5)
                tramp = rip + 5 + int.from_bytes(jump[1:], "little", signed=True)
                if (jump[0] != 0xE9 or tramp % TRAMP
                        or not any(a.tramp(a.used - 1) <= tramp < a.hi for a in areas)
                        or task.mm.read(tramp, 5) != XOR_HEAD):
                    return
                regs[16] = task.mm.read_u64(tramp + 7) - 4
            else:
                head, ret = task.mm.read(base, 5), task.mm.read_u64(base + 7)
                regs[16] = ret - (4 if head == XOR_HEAD else SITE_LEN) if rip == base else ret - 2
        except SyscallError:
            return
        v.set_regs(regs)


class _Area:
    """A run of trampolines, from hi down, its pages mapped at their first use."""

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi
        self.used = 0

    def tramp(self, i: int) -> int:
        return self.hi - (i + 1) * TRAMP

    def next(self) -> int:
        return self.tramp(self.used)

    def full(self) -> bool:
        return self.used >= (self.hi - self.lo) // TRAMP

    def reaches(self, site: int) -> bool:
        return -(1 << 31) <= self.lo - (site + 5) and self.hi - (site + 5) < (1 << 31)

    def page(self, mm, tramp: int) -> bool:
        """The page of trampoline tramp, mapped at its first use."""
        page = tramp & ~(PAGE - 1)
        vma = mm.find_vma(page)
        if vma is not None:
            return vma.name == NAME
        from umiak.kernel.mm import Vma
        mm._insert(Vma(page, page + PAGE, abi.PROT_READ | abi.PROT_EXEC,
                       abi.MAP_PRIVATE | abi.MAP_ANONYMOUS, NAME))
        return True

    def count(self, mm) -> None:
        """A fork's copy holds the trampolines the parent made: count them."""
        while not self.full():
            vma = mm.find_vma(self.next())
            if vma is None or vma.name != NAME:
                break
            try:
                if mm.read(self.next(), 1) == b"\x00":
                    break
            except SyscallError:
                break
            self.used += 1


class _State:
    """One address space's rewritten sites: the return addresses looked at (at real exits,
    rewritten or not), the trampolines' areas."""

    def __init__(self, mm):
        self.seen: set[int] = set()
        self.off = False   # the program took %gs: no more sites here
        self.areas = [_Area(AREA, AREA_END)]
        high = (mm.mmap_top, mm.mmap_top + HIGH_SIZE)
        if high in mm.reserved:   # a fork's copy of an address space that had one
            self.areas.append(_Area(*high))
        for a in self.areas:
            a.count(mm)

    def area_for(self, mm, site: int) -> "_Area | None":
        """The first area with room within reach of site; the high one made when needed."""
        for a in self.areas:
            if a.reaches(site) and not a.full():
                return a
        lo, hi = mm.mmap_top, mm.mmap_top + HIGH_SIZE
        if len(self.areas) > 1 or not mm.mmap_top or not mm._is_free(lo, hi):
            return None
        a = _Area(lo, hi)
        if not a.reaches(site):
            return None
        mm.reserved.append((lo, hi))
        self.areas.append(a)
        return a


def _jmp(at: int, to: int) -> bytes:
    """`jmp rel32` at at, to to."""
    return b"\xe9" + (to - at - 5).to_bytes(4, "little", signed=True)


def _state(mm) -> _State:
    st = getattr(mm, "rw_state", None)
    if st is None:
        st = mm.rw_state = _State(mm)
    return st
