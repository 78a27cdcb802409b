"""Rewritten syscall sites (issue 15 §3): calls that enter the exitless stub without `syscall`.

Under PVM the `syscall` instruction itself costs ~22 µs (PVM delivers it to LSTAR). A site
`mov $nr,%eax; syscall` (b8 imm32 0f 05) seen at a syscall exit for the first time gets its
five-byte `mov` replaced by `jmp rel32` to a trampoline of its own:

    mov $nr,%eax ; movabs $site+7,%rcx ; jmp *%gs:RW_PTR       (32 bytes a site)

%gs is the vCPU's slot page (platform/kvm/exitless.py), whose RW_PTR is that vCPU's
rewritten-site entry: it saves the flags in r11 and goes on as the stub's `syscall` entry,
so rax, rcx and r11 are what `syscall` leaves and the red zone below rsp is not touched.
The `syscall` after the jump stays: a thread that had run the old `mov` (or a branch to
the `syscall`) still makes the real call, and a stop inside a trampoline is reported at
the site (RIP at the `mov`, or at the `syscall` once eax holds the number: fix_rip), so
a signal frame is what a native run would show and sigreturn resumes there.

Why it is safe:
- Only an address space that one task runs is rewritten (no other vCPU can execute the
  bytes while they change; the only one is stopped in this exit); with more threads
  sites are left as they are (the ones rewritten before stay).
- The site must be what the call came through: eax's number is the `mov`'s, and the byte
  before the `mov` is not a prefix that would make it part of another instruction.
- Only private mappings: a file's text is a private copy (mm.write(force) breaks COW),
  never the host file or a MAP_SHARED page.
- Trampolines live below mmap_min_addr, where no mapping of the program can be: a page
  at a time from 0xFFFF down (to 0xC000: 512 sites), so touching a low address (a NULL
  pointer's field) still faults as natively unless it is one of those pages;
  /proc/<pid>/maps leaves them out; fork copies them with the text. Only sites within
  ±2 GiB of them are rewritten (non-PIE executables at 0x400000).
- Only calls the exitless poller may serve (FastCalls.may_serve): the others gain little.
- --no-rewrite (UMIAK_REWRITE=n) turns it off, for programs that check their own code.
"""

from umiak.kernel import abi
from umiak.kernel.errors import SyscallError

AREA, AREA_END = 0xC000, 0x10000   # below MMAP_MIN_ADDR (kernel/mm.py), its top pages
TRAMP = 32
PAGE = 4096
NAME = "[umiak-rewrite]"
SITE_LEN = 7
# A byte before b8 that would make it part of a longer instruction (a REX or legacy prefix,
# the 0f escape: `41 b8 imm32` is mov $imm,%r8d): such a site is left alone.
NOT_BEFORE = frozenset(range(0x40, 0x50)) | {0x0F, 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3}


class Rewriter:
    """The kernel's side of rewritten sites: note() at syscall exits, fix_rip() at stops."""

    def __init__(self, kernel, may_serve, rw_ptr_off: int):
        self.kernel = kernel
        self.may_serve = may_serve
        self.rw_ptr_off = rw_ptr_off
        self.rewritten = 0

    def first_call(self, task, nr: int) -> bool:
        """Whether nr is called for the first time in this address space. The poller does
        not know where a call comes from, so it hands such a call back: its real exit shows
        the site (note). One exit more per syscall number and process."""
        st = _state(task.mm)
        if nr in st.nrs or st.off or st.full:
            return False
        st.nrs.add(nr)
        return True

    def note(self, task, nr: int, ret: int) -> None:
        """A syscall exit whose `syscall` ends at ret: rewrite its site if it is one."""
        mm = task.mm
        st = _state(mm)
        if ret in st.seen:
            return
        st.seen.add(ret)
        if not self.may_serve(nr) or st.full or st.off or not getattr(task.vcpu, "gs_virtual", False):
            return
        site = ret - SITE_LEN
        try:
            code = mm.read(site - 1, SITE_LEN + 1)
        except SyscallError:
            return
        if (code[1] != 0xB8 or code[6:] != b"\x0f\x05" or int.from_bytes(code[2:6], "little") != nr & 0xFFFF_FFFF
                or code[0] in NOT_BEFORE):
            return
        # No other task may run this address space (a thread, a CLONE_VM child, a vfork parent).
        if sum(1 for t in self.kernel.tasks.values() if t.mm is mm) != 1:
            return
        code = code[1:]
        vma = mm.find_vma(site)
        if vma is None or vma.flags & abi.MAP_SHARED or vma.start > site or vma.end < ret:
            return
        tramp = st.next_tramp()
        rel = tramp - (site + 5)
        if not -(1 << 31) <= rel < (1 << 31):
            return
        if not st.area(mm, tramp):
            return
        body = (b"\xb8" + code[1:5] + b"\x48\xb9" + ret.to_bytes(8, "little")
                + b"\x65\xff\x24\x25" + self.rw_ptr_off.to_bytes(4, "little"))
        mm.write(tramp, body + b"\xcc" * (TRAMP - len(body)), force=True)
        st.used += 1
        mm.write(site, b"\xe9" + rel.to_bytes(4, "little", signed=True), force=True)
        self.rewritten += 1

    def gs_taken(self, task) -> None:
        """The program sets its own %gs base: put its address space's sites back (from
        their trampolines) and rewrite no more there. Safe while one task runs it; with
        more, another thread could run a site half put back (then use --no-rewrite)."""
        st = _state(task.mm)
        st.off = True
        self._put_back(task.mm, st)

    def undo(self, mm) -> None:
        """Before a snapshot (one task, stopped): the original code and no trampolines, so
        the snapshot is the program's own and restores anywhere; sites may be rewritten again."""
        st = _state(mm)
        self._put_back(mm, st)
        for page in range(AREA, AREA_END, PAGE):
            vma = mm.find_vma(page)
            if vma is not None and vma.name == NAME:
                mm.munmap(page, PAGE)
        st.used = 0
        st.seen.clear()

    @staticmethod
    def _put_back(mm, st) -> None:
        for i in range(st.used):
            tramp = _tramp(i)
            try:
                body = mm.read(tramp, 15)
                site = int.from_bytes(body[7:15], "little") - SITE_LEN
                if mm.read(site, 5) == b"\xe9" + (tramp - site - 5).to_bytes(4, "little", signed=True):
                    mm.write(site, body[:5], force=True)
            except SyscallError:
                continue

    def fix_rip(self, task) -> None:
        """The vCPU stopped inside a trampoline: show it at its site instead."""
        v = task.vcpu
        regs = v.get_regs()
        rip = regs[16]
        if not AREA <= rip < AREA_END:
            return
        base = rip & ~(TRAMP - 1)
        if base < AREA_END - _state(task.mm).used * TRAMP:
            return
        try:
            ret = task.mm.read_u64(base + 7)
        except SyscallError:
            return
        regs[16] = ret - SITE_LEN if rip == base else ret - 2
        v.set_regs(regs)


def _tramp(i: int) -> int:
    """Where trampoline i is: from the top of the area down."""
    return AREA_END - (i + 1) * TRAMP


class _State:
    """One address space's rewritten sites: the return addresses looked at, trampolines used."""

    def __init__(self, mm):
        self.seen: set[int] = set()
        self.nrs: set[int] = set()   # syscall numbers handed back by the poller once (first_call)
        self.used = 0
        self.off = False   # the program took %gs: no more sites here
        # A fork's copy holds the trampolines the parent made: count them.
        while self.used < (AREA_END - AREA) // TRAMP:
            vma = mm.find_vma(_tramp(self.used))
            if vma is None or vma.name != NAME:
                break
            try:
                if mm.read(_tramp(self.used), 1) == b"\x00":
                    break
            except SyscallError:
                break
            self.used += 1

    @property
    def full(self) -> bool:
        return self.used >= (AREA_END - AREA) // TRAMP

    def next_tramp(self) -> int:
        return _tramp(self.used)

    def area(self, mm, tramp: int) -> bool:
        """The page of trampoline tramp, mapped at its first use."""
        page = tramp & ~(PAGE - 1)
        vma = mm.find_vma(page)
        if vma is not None:
            return vma.name == NAME
        from umiak.kernel.mm import Vma
        mm._insert(Vma(page, page + PAGE, abi.PROT_READ | abi.PROT_EXEC,
                       abi.MAP_PRIVATE | abi.MAP_ANONYMOUS, NAME))
        return True


def _state(mm) -> _State:
    st = getattr(mm, "rw_state", None)
    if st is None:
        st = mm.rw_state = _State(mm)
    return st
