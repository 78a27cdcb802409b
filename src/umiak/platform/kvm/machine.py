"""The KVM platform: one VM, guest RAM in one host mapping, vCPUs driven by sync regs.

Every exit a guest makes is an MMIO store from a stub (see arch/x86_64/stubs.py);
registers travel through kvm_run's sync-regs area, so a syscall costs one
KVM_RUN and no other ioctl.
"""

import bisect
import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import signal
import struct
import threading
import time
from time import monotonic as _monotonic
from typing import TYPE_CHECKING

from umiak.arch.x86_64 import cpu, descriptors, stubs
from umiak.arch.x86_64.paging import ADDR_MASK, PTE_A, PTE_D, PTE_NX, PTE_P, PTE_RW, PTE_US, PageTables, pte_bits
from umiak.errors import PlatformUnavailable, UmiakError
from umiak.platform.base import RCX, RFLAGS, RIP, RSP, R11, ExitKind, Fault, PageRoot, Platform, frame_runs
from umiak.platform.kvm import api
from umiak.platform.kvm.device import flavour, open_kvm

if TYPE_CHECKING:
    from umiak.platform.kvm.exitless import Exitless, Slot

PAGE = 4096
MASK64 = (1 << 64) - 1
# Kernel area: guest-virtual, lower canonical half (PVM faults on upper-half kernels).
KBASE = 0x4000_0000_0000
MMIO_VA = KBASE + 0x8000_0000
# Guest-physical layout of the reserved low region.
# Each vCPU has a page of its own (from the table pool) holding its GDT, its TSS and
# the IST stack its exceptions are delivered on: vCPUs must never share a fault frame.
CPU_GDT_OFF, CPU_TSS_OFF = 0x000, 0x100
IDT_PA = 0x2000
STUBS_PA = 0x3000
TABLES_PA = 0x8000
# Each vCPU's exitless stub: code, slot and exit-page alias (platform/kvm/exitless.py).
EXITLESS_VA = KBASE + 0xC000_0000   # KBASE's 4 GiB: the guest futex (exitless.py) skips them
EXITLESS_STRIDE = 0x4000
FIRST_SLOT = 64 << 20   # guest RAM in KVM's first memory slot (_register)
# From this many bytes of a fork's frames in one memory slot, write_protect() write-protects
# the whole slot in KVM (one dirty-logging toggle, ~0.1-0.4 ms) instead of an mprotect pair
# on the host's pages (~0.3 us a page: 256 MiB cost 20 ms).
BULK_INVALIDATE = 4 << 20
VMA_CHUNK = 1 << 20       # guest RAM's host VMAs are at most this long (_split_vmas)...
VMA_SPLIT_END = 1 << 30   # ...below this: at most 1024 VMAs a VM (the host allows 65530 a process)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_libc.ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)
_libc.sigaction.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


def _ioctl(fd: int, req: int, arg) -> int:
    ret = _libc.ioctl(fd, req, ctypes.byref(arg) if arg is not None else None)
    if ret < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return ret


# A host signal that interrupts KVM_RUN on another thread (its handler does nothing).
KICK_SIGNAL = signal.SIGRTMIN + 2 if hasattr(signal, "SIGRTMIN") else signal.SIGUSR2
SA_RESTART = 0x10000000


class _Sigaction(ctypes.Structure):
    """struct sigaction as glibc and musl lay it out on x86-64."""
    _fields_ = [("handler", ctypes.c_void_p), ("mask", ctypes.c_uint64 * 16),
                ("flags", ctypes.c_int), ("restorer", ctypes.c_void_p)]


# Process-wide, as a signal disposition is: the page holding the native handler (never
# freed: the handler may be installed until the process ends) and the lock that makes
# two VMs starting on two threads install it once.
_kick_page = None
_kick_lock = threading.Lock()


def _install_kick_handler() -> None:
    """Make KICK_SIGNAL harmless for the whole process, from whichever thread starts a VM.

    The handler is one `ret` instruction in a page of its own, installed with sigaction(2):
    Python's signal.signal works only on the main thread, and a Python handler could not
    run on the thread the signal hits anyway. The signal's one effect is then what kick()
    wants: KVM_RUN returns EINTR. A handler someone else installed is left alone (any
    handler does that job); SIG_DFL (death) and SIG_IGN (KVM_RUN not interrupted) are not.
    Checked at every VM start (one sigaction call), so a reset to SIG_DFL is repaired."""
    global _kick_page
    old = _Sigaction()
    with _kick_lock:
        if _libc.sigaction(KICK_SIGNAL, None, ctypes.byref(old)) == 0 and (old.handler or 0) > 1:
            return
        if _kick_page is None:
            from umiak.arch.x86_64.native import CodePage
            try:
                _kick_page = CodePage(b"\xc3")   # ret
            except OSError as e:
                raise UmiakError(f"kvm: cannot map the kick signal handler ({e.strerror})") from None
        act = _Sigaction()
        act.handler = _kick_page.address
        act.flags = SA_RESTART
        if _libc.sigaction(KICK_SIGNAL, ctypes.byref(act), None) != 0:
            err = ctypes.get_errno()
            raise UmiakError(f"kvm: cannot install the kick signal handler: {os.strerror(err)}")


class _Closer:
    """Closes VM fds on a background thread (KVM frees a VM slowly), in order; wait()
    returns once everything handed over so far is closed. One per host process: it
    holds fds in flight only, never VM state."""

    def __init__(self):
        from _queue import SimpleQueue   # queue.SimpleQueue itself: the queue module costs ~1 ms to import
        self._q: SimpleQueue = SimpleQueue()   # lists of fds, and Events to set
        threading.Thread(target=self._loop, name="umiak-vm-close", daemon=True).start()

    def _loop(self) -> None:
        while True:
            item = self._q.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            for fd in item:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def close_later(self, fds: list[int]) -> None:
        self._q.put(fds)

    def wait(self) -> None:
        done = threading.Event()
        self._q.put(done)
        done.wait()


_closer: _Closer | None = None
_SUPPORTED_CPUID = None   # a property of the host: read once per process


def _close_later(fds: list[int]) -> None:
    global _closer
    with _kick_lock:
        if _closer is None:
            _closer = _Closer()
    _closer.close_later(fds)


def wait_closed() -> None:
    """Return once every VM closed so far has given its fds back to the host."""
    if _closer is not None:
        _closer.wait()


class KvmPlatform(Platform):
    """A KVM virtual machine with guest RAM, page tables and the kernel stubs mapped."""

    name = "kvm"

    def __init__(self, mem_size: int, cpu: str = "host"):
        self.flavour = flavour()
        self.mem_size = mem_size
        self.cpu_model = cpu                  # umiak.arch.x86_64.cpumodel: host | baseline
        self._kvm = open_kvm()
        self._vm = -1                        # made by _setup (close() may run after it failed); -1 once closed
        self._mem: mmap.mmap | None = None
        self._vcpus: list["KvmVcpu"] = []
        self._spare: KvmVcpu | None = None   # a vCPU made ahead by prepare()
        self._idle: list["KvmVcpu"] = []      # closed vCPUs kept for reuse (KVM cannot free one)
        self._roots: list[PageRoot] = []      # released page-table roots, kept for reuse
        # Where page-table pages come from once the pool is used up (set by the kernel:
        # FrameAllocator.alloc); tables are never freed (PVM), so many processes need more.
        self.more_tables = None
        self._first_root: PageRoot | None = None
        self._roots_made = 0                  # page-table trees made (recycle keeps a VM of one)
        self._more_used = False               # a table came from more_tables (a kernel's frame)
        # A recycled VM (recycle): the user leaf tables of the run before, (word index, its
        # entries then), until the next run first enters the guest (_zap_stale).
        self._stale: list[tuple[int, bytes]] | None = None
        self.dirty_end = 0
        self.exitless: "Exitless | None" = None   # set once the kernel enables the exitless path
        self._xl_count = 0                    # vCPUs given an exitless stub so far
        self.xl_rewrite = False               # rewritten syscall sites (kernel/rewrite.py)
        self._holding = False                 # hold(): no vCPU enters the guest meanwhile
        self._unheld = threading.Event()
        self._unheld.set()
        try:
            self._setup(mem_size)
        except OSError as e:
            self.close()
            raise PlatformUnavailable(f"KVM refused to create the VM: {e.strerror}") from None
        except UmiakError:
            self.close()
            raise

    def _setup(self, mem_size: int) -> None:
        if fcntl.ioctl(self._kvm, api.KVM_GET_API_VERSION, 0) != api.KVM_API_VERSION:
            raise PlatformUnavailable("unsupported KVM API version")
        if not fcntl.ioctl(self._kvm, api.KVM_CHECK_EXTENSION, api.KVM_CAP_SYNC_REGS):
            raise PlatformUnavailable("KVM lacks KVM_CAP_SYNC_REGS")
        self._vm = fcntl.ioctl(self._kvm, api.KVM_CREATE_VM, 0)
        self._run_size = fcntl.ioctl(self._kvm, api.KVM_GET_VCPU_MMAP_SIZE, 0)
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000  # MAP_NORESERVE
        mem = self._mem = mmap.mmap(-1, mem_size, flags=flags)
        self.ram = memoryview(mem)
        self._hva = ctypes.addressof(ctypes.c_char.from_buffer(mem))
        # Guest RAM is given to KVM in slots, the first at once and each further one (twice
        # the size of all before it) once a frame in it is mapped: KVM's cost of a slot grows
        # with its size (~1.4 ms for 256 MiB in one), and a small program touches the low
        # megabytes only. The guest can reach a frame only through a page table, so every
        # frame is registered before it can be touched (map_page, _alloc_table).
        self._registered = 0
        self._slots = 0
        self._slot_starts: list[int] = []   # guest-physical start of each slot, in slot order
        self._dirty_bitmaps: dict[int, ctypes.Array] = {}   # slot -> KVM_GET_DIRTY_LOG's buffer (_write_protect_slot)
        self._slot_lock = threading.Lock()
        self._register(min(mem_size, FIRST_SLOT))
        self._cpuid = self._supported_cpuid() if self.cpu_model == "host" else self._baseline_cpuid()
        self._leaf = self._leaves()
        self.xsave_size = self._xsave_size()   # get_fpu/set_fpu copy this much (fixed for the VM)
        # CR4.OSXSAVE and XCR0 are set for the host model only (the baseline has no XSAVE;
        # under PVM KVM_GET_SUPPORTED_CPUID does not list XSAVE, yet the host model uses it).
        self.xsave = self.cpu_model == "host"
        _install_kick_handler()

        # Page tables get a pool of their own that is never given back.
        reserved = max(4 << 20, (mem_size // 128) & ~(PAGE - 1))
        if mem_size < reserved + (4 << 20):
            raise UmiakError(f"guest memory of {mem_size} bytes is too small (at least {2 * reserved >> 20} MiB)")
        self._next_table, self._tables_end = TABLES_PA, reserved
        self.usable = (reserved, mem_size)
        self.reserved_va = [(KBASE, KBASE + (1 << 32))]  # guest-virtual range user mappings must avoid
        self.pt = PageTables(self.ram.cast("Q"), self._alloc_table)

        mmio_gpa = (mem_size + (1 << 30) - 1) & ~((1 << 30) - 1)
        self._mmio_syscall = mmio_gpa
        self._mmio_exception = mmio_gpa + 8
        code, self.syscall_entry, exc_entries = stubs.build_stubs(
            KBASE + STUBS_PA, MMIO_VA, MMIO_VA + 8)
        self.ram[STUBS_PA:STUBS_PA + len(code)] = code
        idt = descriptors.idt_image(exc_entries)
        self.ram[IDT_PA:IDT_PA + len(idt)] = idt
        kdata = PTE_P | PTE_RW | PTE_A | PTE_D | PTE_NX
        self.pt.set(KBASE + IDT_PA, IDT_PA, kdata)
        # The entry stub and the exit page are reachable from CPL3: under PVM the
        # `syscall` instruction does not leave ring 3.
        self.pt.set(KBASE + STUBS_PA, STUBS_PA, pte_bits(5))
        self.pt.set(MMIO_VA, mmio_gpa, pte_bits(3))

    def _register(self, end: int) -> None:
        """Give KVM guest RAM up to at least `end` (slot by slot, see _setup)."""
        with self._slot_lock:
            while self._registered < end:
                start = self._registered
                size = min(self.mem_size - start, max(FIRST_SLOT, start))
                region = api.UserMemoryRegion(self._slots, 0, start, size, self._hva + start)
                _ioctl(self._vm, api.KVM_SET_USER_MEMORY_REGION, region)
                self._split_vmas(start, start + size)
                self._slot_starts.append(start)
                self._slots += 1
                self._registered = start + size

    def _split_vmas(self, start: int, end: int) -> None:
        """Cut guest RAM into host VMAs of VMA_CHUNK (every other one VM_DONTDUMP, so that
        neighbours do not merge back), so an invalidate's mprotect pair drops the translations
        of exactly its frames. The host kernel, splitting a VMA at an address that is not
        2 MiB-aligned, first invalidates the whole 2 MiB around it in KVM when the VMA spans
        that 2 MiB (__split_huge_pmd, for a huge page there may be, called before it looks):
        with one VMA for all RAM, a program's text beside a page of its stack faulted into
        the shadow MMU again page by page after each invalidate (mprotect of RELRO, recycle).
        VM_DONTDUMP only keeps guest RAM out of a core dump of umiak."""
        mem = self._mem
        end = min(end, VMA_SPLIT_END)
        if mem is None or start >= end:
            return
        first = -(-start // VMA_CHUNK) | 1   # the odd chunks, from the first in [start, end)
        for k in range(first, -(-end // VMA_CHUNK), 2):
            mem.madvise(mmap.MADV_DONTDUMP, k * VMA_CHUNK, min(VMA_CHUNK, self.mem_size - k * VMA_CHUNK))

    def _alloc_table(self) -> int:
        pa = self._next_table
        if pa >= self._tables_end:
            if self.more_tables is not None:
                pa = self.more_tables()   # a zeroed frame from the kernel, never given back
                self._more_used = True
                if pa >= self._registered:
                    self._register(pa + PAGE)
                return pa
            from umiak.kernel.errors import GuestOutOfMemory
            raise GuestOutOfMemory("guest page-table pool exhausted")
        if pa >= self._registered:
            self._register(pa + PAGE)
        self._next_table = pa + PAGE
        return pa

    def _supported_cpuid(self):
        """The host's supported CPUID (a property of the host: read once per process)."""
        global _SUPPORTED_CPUID
        if _SUPPORTED_CPUID is None:
            n = 256
            buf = api.cpuid2_type(n)()
            buf.nent = n
            _ioctl(self._kvm, api.KVM_GET_SUPPORTED_CPUID, buf)
            _SUPPORTED_CPUID = buf
        return _SUPPORTED_CPUID

    def _baseline_cpuid(self):
        """The baseline CPU model's CPUID (cpumodel.BASELINE), if this host runs all its features.
        Under PVM the guest still sees the hardware's leaf 1 ECX/EDX, 7 and 0xD feature bits
        (measured): what makes glibc's choices equal to emu's is CR4.OSXSAVE clear (no XSAVE
        in the model): glibc then finds AVX/AVX-512 unusable and saves with fxsave."""
        from umiak.arch.x86_64 import cpumodel
        lack = cpumodel.missing(cpumodel.host_cpuid({(f, i) for f, i, _ in cpumodel.FEATURE_REGS}))
        if lack:
            raise UmiakError(f"kvm cannot present the baseline CPU: this host's CPU lacks {', '.join(lack)}")
        buf = api.cpuid2_type(len(cpumodel.BASELINE))()
        buf.nent = len(cpumodel.BASELINE)
        for e, (f, i, a, b, c, d) in zip(buf.entries, cpumodel.BASELINE, strict=True):
            e.function, e.index, e.eax, e.ebx, e.ecx, e.edx = f, i, a, b, c, d
            e.flags = 1 if f in cpumodel.INDEXED else 0   # KVM_CPUID_FLAG_SIGNIFCANT_INDEX
        return buf

    def _leaves(self) -> dict[tuple[int, int], tuple[int, int, int, int]]:
        """CPUID leaves 1 and 0xD of the model, (function, index) -> (eax, ebx, ecx, edx),
        read in one pass (each ctypes entry read makes an object: three passes cost ~0.15 ms
        of every run)."""
        return {(e.function, e.index): (e.eax, e.ebx, e.ecx, e.edx)
                for e in self._cpuid.entries[:self._cpuid.nent] if e.function in (1, 0xD)}

    def xcr0(self) -> int:
        """x87|SSE|AVX and the AVX-512 states when the CPU has them."""
        eax, _, _, edx = self._leaf.get((0xD, 0), (0, 0, 0, 0))
        return (eax | (edx << 32)) & 0xE7 or 3

    def _xsave_size(self) -> int:
        """Bytes of XSAVE state for the features in XCR0 (CPUID 0xD.0 EBX reports the maximum)."""
        size = 576
        xcr0 = self.xcr0()
        for (function, index), (eax, ebx, _, _) in self._leaf.items():
            if function == 0xD and 2 <= index < 64 and xcr0 >> index & 1:
                size = max(size, ebx + eax)
        return size

    def cpu_features(self) -> dict[str, int]:
        """What the auxiliary vector tells the program about this CPU."""
        leaf = self._leaf
        hwcap = leaf[(1, 0)][3] if (1, 0) in leaf else 0
        xsave = leaf[(0xD, 0)][1] if (0xD, 0) in leaf else 512 + 64
        # Linux: the signal frame (xsave area + rt_sigframe) rounded as the kernel reports it.
        return {"hwcap": hwcap, "hwcap2": 0, "minsigstksz": max(2048, xsave + 1024)}

    def tsc_clock(self, vcpu) -> tuple[int, int] | None:
        """(guest TSC kHz, guest TSC - host TSC), read before the vCPU first runs; guest code
        reads the TSC natively, so a vDSO can serve clocks without exits."""
        from umiak.arch.x86_64.tsc import host_rdtsc
        try:
            khz = fcntl.ioctl(vcpu.fd, api.KVM_GET_TSC_KHZ, 0)
            msrs = api.msrs_type(1)()
            msrs.nmsrs = 1
            msrs.entries[0].index = 0x10   # IA32_TSC
            before = host_rdtsc()
            _ioctl(vcpu.fd, api.KVM_GET_MSRS, msrs)
            after = host_rdtsc()
        except OSError:
            return None
        if khz <= 0:
            return None
        return khz, msrs.entries[0].data - (before + after) // 2

    # -- memory -------------------------------------------------------------
    def new_root(self) -> PageRoot:
        """A page-table root for a new address space; the kernel area is shared by all.

        Released roots are reused whole: their non-leaf entries stay as they were
        (PVM's rule) and every leaf was cleared and its frame invalidated or discarded
        when it was unmapped, so no shadow entry of the old space survives."""
        if self._first_root is None:
            self._first_root = PageRoot(self, self.pt)
            self._roots_made = 1
            return self._first_root
        if self._roots:
            return self._roots.pop()
        self._roots_made += 1
        try:
            pt = PageTables(self.ram.cast("Q"), self._alloc_table, self.pt, (KBASE >> 39,))
        except MemoryError:
            raise MemoryError("guest page-table pool exhausted") from None
        return PageRoot(self, pt)

    def release_root(self, root: PageRoot) -> None:
        self._roots.append(root)

    def map_page(self, va: int, pa: int, prot: int, pt=None) -> None:
        if pa >= self._registered:
            self._register(pa + PAGE)
        (pt or self.pt).set(va, pa, pte_bits(prot))

    def map_run(self, va: int, pa: int, count: int, prot: int, pt=None) -> None:
        end = pa + count * PAGE
        if end > self._registered:
            self._register(end)
        bits = pte_bits(prot)
        if bits:
            (pt or self.pt).fill(va, pa, count, bits)

    def unmap_page(self, va: int, pt=None) -> None:
        (pt or self.pt).set(va, 0, 0)

    def copy_ptes(self, src, dst, start: int, end: int, clear_write: bool) -> None:
        src.copy_range(dst, start, end, clear_write)

    @contextlib.contextmanager
    def hold(self, vcpus):
        """Keep these vCPUs out of the guest while the caller changes code they may run
        (kernel/rewrite.py): the ones in KVM_RUN are kicked out and waited for, and no vCPU
        enters the guest again until the block ends. Leaving KVM_RUN and entering it
        again serialise the vCPU, as cross-modifying code wants. The caller holds the
        kernel lock: a kicked vCPU only has to leave KVM_RUN, not to be served."""
        self._unheld.clear()
        self._holding = True   # before the vCPUs' _in_run are read: run() sets it first
        try:
            for v in vcpus:
                if v._in_run:
                    v.kick()
            delay = 0.00001
            while any(v._in_run for v in vcpus):
                time.sleep(delay)
                delay = min(delay * 2, 0.001)
            yield
        finally:
            self._holding = False
            self._unheld.set()

    def invalidate(self, frames: list[int]) -> None:
        """Drop cached translations of these frames after lowering permissions.

        Changing the host protection of the backing pages makes KVM zap every
        shadow/EPT entry for them (an MMU-notifier invalidation), which under PVM
        is the only host-side action that is seen; under VMX/SVM the zap also
        flushes the guest's TLB. The contents are kept.
        """
        self._mprotect_pairs(frame_runs(frames))

    def write_protect(self, frames: list[int]) -> None:
        """A fork's invalidate: the frames stay mapped where they were, read-only. A
        memory slot holding BULK_INVALIDATE bytes of them or more is write-protected in
        KVM as a whole (_write_protect_slot); the rest get invalidate's mprotect pair."""
        runs = list(frame_runs(frames))
        if sum(n for _, n in runs) >= BULK_INVALIDATE:
            runs = self._write_protect_slots(runs)
        self._mprotect_pairs(runs)

    def _mprotect_pairs(self, runs) -> None:
        for start, length in runs:
            addr = self._hva + start
            _libc.mprotect(addr, length, mmap.PROT_READ)
            _libc.mprotect(addr, length, mmap.PROT_READ | mmap.PROT_WRITE)

    def _write_protect_slots(self, runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Write-protect the slots holding BULK_INVALIDATE bytes of the runs or more;
        the parts of the runs in the other slots are returned."""
        starts = self._slot_starts
        pieces: dict[int, list[tuple[int, int]]] = {}
        for start, length in runs:
            i = bisect.bisect_right(starts, start) - 1
            while length > 0:
                end = starts[i + 1] if i + 1 < len(starts) else start + length
                part = min(length, end - start)
                pieces.setdefault(i, []).append((start, part))
                start, length, i = start + part, length - part, i + 1
        rest = []
        for i, got in pieces.items():
            if sum(n for _, n in got) < BULK_INVALIDATE or not self._write_protect_slot(i):
                rest += got
        return rest

    def _write_protect_slot(self, i: int) -> bool:
        """Write-protect every shadow/EPT entry of memory slot i, and flush the guest TLB.

        The first time, dirty logging is turned on for the slot, which makes KVM
        write-protect all its entries and flush the TLBs; it stays on, and each later
        time KVM_GET_DIRTY_LOG write-protects again the pages written since (a writable
        entry is always a dirty page: KVM marks it when it makes one). A guest write then
        faults into KVM, which (shadow paging, as PVM's) walks the guest's page table
        again and gives the guest its #PF where the entry is now read-only; under EPT
        the CPU walks the guest's tables itself and meets the read-only entry once the
        TLB is flushed. Other frames of the slot get their write permission back at
        their first write, inside KVM. Only a lowered write permission may be dropped
        this way: a read translation stays. False if KVM refuses (the caller then uses
        mprotect)."""
        start = self._slot_starts[i]
        end = self._slot_starts[i + 1] if i + 1 < len(self._slot_starts) else self._registered
        try:
            with self._slot_lock:
                bitmap = self._dirty_bitmaps.get(i)
                if bitmap is None:
                    region = api.UserMemoryRegion(i, api.KVM_MEM_LOG_DIRTY_PAGES, start, end - start,
                                                  self._hva + start)
                    _ioctl(self._vm, api.KVM_SET_USER_MEMORY_REGION, region)
                    # one bit a page, in 64-bit words
                    self._dirty_bitmaps[i] = ctypes.create_string_buffer((end - start) // (PAGE * 64) * 8 + 8)
                else:
                    log = api.DirtyLog(i, 0, ctypes.addressof(bitmap))
                    _ioctl(self._vm, api.KVM_GET_DIRTY_LOG, log)
        except OSError:
            return False
        return True

    def clear(self, pa: int, length: int) -> None:
        ctypes.memset(self._hva + pa, 0, length)

    def recycle(self, used_end: int) -> bool:
        """Keep the VM for the next run: under PVM what a fresh VM costs is less its
        creation (~0.5 ms) than its first touches, each page a program touches faulting
        into the shadow MMU once (~14 us, plus ~0.3 ms for a new vCPU's first entry).
        A recycled VM keeps its shadow entries, so a page the next run maps at the same
        address onto the same frame (fixed code and data, a restored snapshot's layout:
        the kernel hands frames out in the same order) costs nothing. Safe because
        stale entries are dropped before the next run can use them: the user leaf
        tables are saved and cleared here, and before the next run's first guest
        instruction (its first KvmVcpu.run) every old entry it did not make again the
        same has its frame invalidated (_zap_stale); the
        old run's frames keep their data until the FrameAllocator clears each as it
        hands it out again (dirty_end). Kept only as simple as that stays true: one
        address space ever (no fork), tables from the platform's pool, no vCPU running
        (an exitless path is unbound from the old kernel: its stubs exit until the next
        kernel binds it, enable_exitless), and PVM, the shadow
        MMU where this is measured (under VMX/SVM first touches are cheap); and at most
        RECYCLE_MAX of frames used, so a Machine between runs holds no more host memory
        than that."""
        if (self.flavour != "pvm" or self._vm < 0 or self._roots_made > 1
                or self._more_used or self._first_root is None or used_end - self.usable[0] > RECYCLE_MAX):
            return False
        if self.exitless is not None:
            self.exitless.unbind()   # the next run's kernel binds it again (enable_exitless)
        if self._stale is not None:   # the run made no vCPU: settle the run before it first
            self._zap_stale()
        q, user_end = self.pt._q, KBASE >> 21
        kernel_end = (KBASE + (1 << 32)) >> 21
        zero = memoryview(bytes(PAGE)).cast("Q")
        stale = []
        for key, idx in self.pt._leaf_tables.items():
            if user_end <= key < kernel_end:
                continue   # the kernel area: the same in every run
            old = bytes(q[idx:idx + 512].cast("B"))
            if old.count(0) != PAGE:
                stale.append((idx, old))
                q[idx:idx + 512] = zero
        self._stale = stale
        self.dirty_end = max(self.dirty_end, used_end)
        self._roots = [self._first_root]   # the next run's first new_root() is this tree again
        self._idle = self._vcpus[::-1]     # no task runs any more (the caller's word); vCPU 0 first
        self.more_tables = None
        return True

    def _zap_stale(self) -> None:
        """Invalidate the frames of the run before's entries that this run did not map
        again the same (recycle): their shadow entries must not outlive them."""
        stale, self._stale = self._stale, None
        q = self.pt._q
        gone = set()
        for idx, old in stale or ():
            now = q[idx:idx + 512]
            raw = bytes(now.cast("B"))
            if raw == old:   # a memcmp
                continue
            # The entries that differ, found by C loops (a byte of the XOR is 1 where the
            # tables differ), so the Python work is per changed entry.
            nz = (int.from_bytes(old, "little") ^ int.from_bytes(raw, "little")).to_bytes(
                PAGE, "little").translate(_NONZERO)
            olds = memoryview(old).cast("Q")
            at = nz.find(1)
            while at >= 0:
                i = at >> 3
                e, n = olds[i], now[i]
                # Kept too: the same frame with the same permissions or more (a raised
                # permission needs no flush: the shadow MMU re-reads the entry).
                if e and ((e ^ n) & ADDR_MASK or e & ~n & _ALLOWS or n & ~e & PTE_NX):
                    gone.add(e & ADDR_MASK)
                at = nz.find(1, (i + 1) * 8)
        if gone:
            self._mprotect_pairs(frame_runs(sorted(gone)))

    def discard(self, frames: list[int]) -> None:
        """Give freed frames back to the host; reads as zero afterwards, translations dropped."""
        mem = self._mem
        if mem is None:   # closed
            return
        for start, length in frame_runs(frames):
            mem.madvise(mmap.MADV_DONTNEED, start, length)

    # -- vCPUs --------------------------------------------------------------
    def _cpu_page(self) -> int:
        """A vCPU's own page: GDT at +0, TSS at +0x100, IST stack up to the page's end."""
        pa = self._alloc_table()
        va = KBASE + pa
        gdt = descriptors.gdt_image(va + CPU_TSS_OFF)
        self.ram[pa + CPU_GDT_OFF:pa + CPU_GDT_OFF + len(gdt)] = gdt
        self.ram[pa + CPU_TSS_OFF:pa + CPU_TSS_OFF + 104] = descriptors.tss_image(va + PAGE)
        self.pt.set(va, pa, PTE_P | PTE_RW | PTE_A | PTE_D | PTE_NX)
        self._gdt_limit = len(gdt) - 1
        return pa

    def prepare(self) -> None:
        """Create the first vCPU ahead of time (a warm VM waiting for its program)."""
        if not self._vcpus:
            self._spare = KvmVcpu(self, 0, 0, 0)

    def create_vcpu(self, entry: int, stack: int, root: PageRoot | None = None) -> "KvmVcpu":
        cr3 = root.cr3 if root is not None else self.pt.root
        spare, self._spare = self._spare, None
        if spare is None and self._idle:
            spare = self._idle.pop()
            spare._reset_state(entry, stack, cr3)
            if self.exitless is not None:
                self._attach_exitless(spare)
                self._xl_gs(spare)
            return spare
        if spare is not None:
            regs = [0] * 18
            regs[RIP], regs[RSP], regs[RFLAGS] = entry, stack, cpu.RFLAGS_RESERVED
            spare.set_regs(regs)
            vcpu = spare
            if cr3 != self.pt.root:
                vcpu._set_cr3(cr3)
        else:
            vcpu = KvmVcpu(self, len(self._vcpus), entry, stack, cr3)
        self._vcpus.append(vcpu)
        if self.exitless is not None:
            self._attach_exitless(vcpu)
            self._xl_gs(vcpu)
        return vcpu

    def enable_exitless(self, serve, may_serve, mode: str = "auto", rewrite: bool = False) -> bool:
        """Serve syscalls without VM exits where that pays (see exitless.py): mode 'y'
        wherever it can run (PVM), 'auto' also needs a host core to spare, 'n' never.
        rewrite: rewritten syscall sites enter the stub (%gs is each vCPU's slot page).
        Takes effect for vCPUs created from now on. True when enabled."""
        self.xl_rewrite = rewrite
        xl = self.exitless
        if xl is not None:   # a recycled VM's: serves this kernel from now on, unless 'n'
            if mode == "n":
                self.xl_rewrite = False
                return False
            xl.rebind(serve, may_serve, forced=mode == "y")
            return True
        if mode == "n" or self.flavour != "pvm":
            return False
        from umiak.platform.kvm.exitless import Exitless
        xl = Exitless(self, serve, may_serve, forced=mode == "y")
        if mode == "auto" and xl.cores < 2:
            return False
        self.exitless = xl   # its poller thread starts at the first calls it could serve
        return True

    def _attach_exitless(self, vcpu: "KvmVcpu") -> None:
        """Give vcpu its own syscall entry: the exitless stub and its slot."""
        from umiak.platform.kvm import exitless
        xl = self.exitless
        if xl is None or vcpu._xl is not None:
            return
        va = EXITLESS_VA + self._xl_count * EXITLESS_STRIDE
        if va + EXITLESS_STRIDE > KBASE + (1 << 32):
            return   # out of room in the kernel area: this vCPU exits as before
        code_pa, slot_pa = self._alloc_table(), self._alloc_table()
        self._xl_count += 1
        self.ram[code_pa:code_pa + PAGE] = bytes(PAGE)
        self.ram[slot_pa:slot_pa + PAGE] = bytes(PAGE)
        self.ram[code_pa:code_pa + len(exitless.STUB_CODE)] = exitless.STUB_CODE
        self.ram[code_pa + exitless.RW_AT:code_pa + exitless.RW_END] = exitless.RW_CODE
        self.ram[code_pa + exitless.FUTEX_AT:code_pa + exitless.FUTEX_END] = exitless.FUTEX_CODE
        self.ram[slot_pa + exitless.RW_PTR_OFF:slot_pa + exitless.RW_PTR_OFF + 8] = \
            (va + exitless.RW_AT).to_bytes(8, "little")
        self.pt.set(va, code_pa, pte_bits(5))
        self.pt.set(va + PAGE, slot_pa, pte_bits(3))
        self.pt.set(va + 2 * PAGE, self._mmio_syscall, pte_bits(3))
        vcpu._set_lstar(va)
        vcpu._xl = xl.attach(vcpu, va, slot_pa)
        vcpu._xlm = xl
        vcpu._xl_end = va + exitless.FUTEX_END

    def _xl_gs(self, vcpu: "KvmVcpu") -> None:
        """With rewritten sites, %gs is the vCPU's slot page: a site's trampoline finds its
        vCPU's entry there (jmp *%gs:RW_PTR)."""
        if self.xl_rewrite and vcpu._xl is not None:
            vcpu.gs_virtual = False
            vcpu.set_gs_base(vcpu._xl.code_va + PAGE)
            vcpu.gs_virtual = True

    def describe(self) -> str:
        return f"kvm ({'PVM' if self.flavour == 'pvm' else 'VMX/SVM'})"

    def close(self) -> None:
        """Tear the VM down. KVM frees a VM slowly (milliseconds), so the last
        close happens on a background thread and a finished run returns at once."""
        fds: list[int | None] = []
        if self.exitless is not None:
            self.exitless.close()
        spare, self._spare = self._spare, None
        for v in self._vcpus + ([spare] if spare is not None else []):
            fds.append(v.close(defer=True))
        self._vcpus.clear()
        self._idle.clear()
        fds += [self._vm, self._kvm]
        self._vm = self._kvm = -1
        _close_later([fd for fd in fds if fd is not None and fd >= 0])
        # ram is exported to ctypes (for the memory slot), so the mmap cannot be
        # closed explicitly; dropping the references frees it.
        self.ram = memoryview(b"")
        self._mem = None


RECYCLE_MAX = 256 << 20   # a VM whose run used more frames is closed, not kept (recycle)
_ALLOWS = PTE_P | PTE_RW | PTE_US   # the bits of a leaf entry that grant an access (_zap_stale)
_NONZERO = bytes([0] + [1] * 255)   # bytes.translate: 1 for a nonzero byte


def _user_segment(code: bool) -> api.Segment:
    if code:
        return api.Segment(0, 0xFFFFFFFF, cpu.USER_CS, 11, 1, 3, 0, 1, 1, 1, 0, 0, 0)
    return api.Segment(0, 0xFFFFFFFF, cpu.USER_DS, 3, 1, 3, 1, 1, 0, 1, 0, 0, 0)


class KvmVcpu:
    """One vCPU. Its state is read and written through kvm_run's sync-regs area."""

    def __init__(self, plat: KvmPlatform, index: int, entry: int, stack: int, cr3: int | None = None):
        self.plat = plat
        self.error = ""
        self._pvm = plat.flavour == "pvm"
        self.fd = fcntl.ioctl(plat._vm, api.KVM_CREATE_VCPU, index)
        self._run = mmap.mmap(self.fd, plat._run_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._q = memoryview(self._run).cast("Q")
        self._regs = self._q[api.RUN_SYNC_REGS // 8: api.RUN_SYNC_REGS // 8 + 18]
        self._dirty = api.RUN_DIRTY_REGS // 8
        self._fs = (api.RUN_SYNC_SREGS + api.SREGS_FS) // 8
        self._gs = (api.RUN_SYNC_SREGS + api.SREGS_GS) // 8
        self._cr2 = (api.RUN_SYNC_SREGS + api.SREGS_CR2) // 8
        self._state = 0
        self._thread: int | None = None   # ident of the host thread that runs it (for kicks)
        self._cpu_pa: int | None = None   # its GDT/TSS/IST page, kept when the vCPU is reused
        self._xl: "Slot | None" = None    # its slot, when it has an exitless stub
        self._xlm: "Exitless | None" = None   # and the VM's exitless path
        self._xl_end = 0                  # end of that stub's code (RIP below: inside it)
        self._in_run = False              # inside KVM_RUN (the poller counts busy vCPUs)
        self._ran_at = 0.0                # time.monotonic() it last entered KVM_RUN (the same)
        self.gs_virtual = False          # real %gs base = the slot page, the program's is 0
        self._init_state(entry, stack, cr3 if cr3 is not None else plat.pt.root)

    def _init_state(self, entry: int, stack: int, cr3: int) -> None:
        p = self.plat
        _ioctl(self.fd, api.KVM_SET_CPUID2, p._cpuid)  # before SREGS, or CR4.OSXSAVE is refused
        self._set_sregs(cr3)
        if p.xsave:
            xcrs = api.Xcrs()
            xcrs.nr_xcrs = 1
            xcrs.xcrs[0].xcr = 0
            xcrs.xcrs[0].value = p.xcr0()
            _ioctl(self.fd, api.KVM_SET_XCRS, xcrs)
        msrs = api.msrs_type(4)()
        msrs.nmsrs = 4
        values = [(cpu.MSR_STAR, (cpu.KERNEL_CS << 32) | ((cpu.USER32_CS & ~3) << 48)),
                  (cpu.MSR_LSTAR, p.syscall_entry), (cpu.MSR_CSTAR, p.syscall_entry),
                  (cpu.MSR_SFMASK, cpu.SYSCALL_FLAG_MASK)]
        for i, (idx, val) in enumerate(values):
            msrs.entries[i].index, msrs.entries[i].data = idx, val
        if _ioctl(self.fd, api.KVM_SET_MSRS, msrs) != 4:
            raise PlatformUnavailable("KVM refused the syscall MSRs")
        self._set_entry(entry, stack)

    def _set_lstar(self, entry: int) -> None:
        msrs = api.msrs_type(1)()
        msrs.nmsrs = 1
        msrs.entries[0].index, msrs.entries[0].data = cpu.MSR_LSTAR, entry
        if _ioctl(self.fd, api.KVM_SET_MSRS, msrs) != 1:
            raise PlatformUnavailable("KVM refused the syscall MSRs")

    def _reset_state(self, entry: int, stack: int, cr3: int) -> None:
        """Make a closed vCPU new again for another task (KVM never frees a vCPU): a new
        program on it must not start with the registers of the one before (a clone sets
        its parent's FPU state over this)."""
        if self._xl is not None and self._xlm is not None:
            from umiak.platform.kvm.exitless import IDLE
            self._xlm._u32[self._xl.state_i] = IDLE
        self.error = ""
        self._state = 0
        self._thread = None
        self._run[api.RUN_IMMEDIATE_EXIT] = 0
        self.gs_virtual = False   # set again where sites are rewritten (_xl_gs)
        self._set_sregs(cr3)
        self._set_entry(entry, stack)
        self.set_fpu(cpu.initial_fpu(self.get_fpu()))

    def _set_sregs(self, cr3: int) -> None:
        p = self.plat
        s = api.Sregs()
        _ioctl(self.fd, api.KVM_GET_SREGS, s)
        s.cr0 = cpu.CR0_PE | cpu.CR0_MP | cpu.CR0_ET | cpu.CR0_NE | cpu.CR0_WP | cpu.CR0_AM | cpu.CR0_PG
        s.cr4 = cpu.CR4_PAE | cpu.CR4_OSFXSR | cpu.CR4_OSXMMEXCPT | (cpu.CR4_OSXSAVE if p.xsave else 0)
        s.cr3 = cr3
        s.efer = cpu.EFER_SCE | cpu.EFER_LME | cpu.EFER_LMA | cpu.EFER_NXE
        s.cs = _user_segment(True)
        s.ss = s.ds = s.es = _user_segment(False)
        s.fs = _user_segment(False)
        s.gs = _user_segment(False)
        s.fs.selector = s.gs.selector = 0
        if self._cpu_pa is None:
            from umiak.kernel.errors import GuestOutOfMemory
            try:
                self._cpu_pa = p._cpu_page()
            except (MemoryError, GuestOutOfMemory):
                raise PlatformUnavailable("no room for another vCPU in the page-table pool") from None
        cpu_pa = self._cpu_pa
        s.tr = api.Segment(KBASE + cpu_pa + CPU_TSS_OFF, 103, cpu.TSS_SEL, 11, 1, 0, 0, 0, 0, 0, 0, 0, 0)
        s.ldt = api.Segment(0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0)
        s.gdt.base, s.gdt.limit = KBASE + cpu_pa + CPU_GDT_OFF, p._gdt_limit
        s.idt.base, s.idt.limit = KBASE + IDT_PA, stubs.NUM_VECTORS * 16 - 1
        _ioctl(self.fd, api.KVM_SET_SREGS, s)
        self._sregs = s

    def _set_entry(self, entry: int, stack: int) -> None:
        s = self._sregs
        r = api.Regs()
        r.rip, r.rsp, r.rflags = entry, stack, cpu.RFLAGS_RESERVED
        _ioctl(self.fd, api.KVM_SET_REGS, r)
        # Seed the sync area with the current state so later partial edits are valid.
        ctypes.memmove(ctypes.addressof(ctypes.c_char.from_buffer(self._run, api.RUN_SYNC_REGS)),
                       ctypes.addressof(r), ctypes.sizeof(r))
        ctypes.memmove(ctypes.addressof(ctypes.c_char.from_buffer(self._run, api.RUN_SYNC_SREGS)),
                       ctypes.addressof(s), ctypes.sizeof(s))
        self._q[api.RUN_VALID_REGS // 8] = api.KVM_SYNC_X86_REGS | api.KVM_SYNC_X86_SREGS
        self._q[self._dirty] = 0

    # -- running ------------------------------------------------------------
    def run(self) -> ExitKind:
        fd, q = self.fd, self._q
        if self._thread is None:   # this vCPU's first run (for this task)
            self._thread = threading.get_ident()
            if self.plat._stale is not None:   # a recycled VM: its first run since (recycle)
                self.plat._zap_stale()
        xl = self._xl
        self._in_run = True
        if self.plat._holding:   # another thread changes code this one may run (hold)
            self._in_run = False
            self.plat._unheld.wait()
            return ExitKind.INTERRUPTED   # as a kick: the loop runs again
        if xl is not None:
            self._ran_at = _monotonic()
        try:
            fcntl.ioctl(fd, api.KVM_RUN, 0)
        except InterruptedError:
            self._in_run = False
            self._run[api.RUN_IMMEDIATE_EXIT] = 0
            self._state = 0
            if xl is not None and xl.code_va <= self._regs[RIP] < self._xl_end:
                return self._xl_resolve()
            return ExitKind.INTERRUPTED
        except OSError as e:
            self._in_run = False
            if e.errno == errno.EFAULT:
                # The guest touched a page whose host protection another thread is
                # changing for an instant (see invalidate): just run again.
                self._state = 0
                if xl is not None and xl.code_va <= self._regs[RIP] < self._xl_end:
                    return self._xl_resolve()
                return ExitKind.INTERRUPTED
            raise
        self._in_run = False
        reason = q[1] & 0xFFFFFFFF
        if reason == api.KVM_EXIT_MMIO:
            phys = q[4]
            if phys == self.plat._mmio_syscall:
                self._state = 1
                x = self._xlm
                if xl is not None and x is not None:
                    if x._u32[xl.state_i] != 0:   # not IDLE: the stub had posted
                        return self._xl_resolve()
                    x.exits += 1
                    if not x.awake:
                        x.note_exit(self._regs[0])
                return ExitKind.SYSCALL
            if phys == self.plat._mmio_exception:
                self._state = 2
                if xl is not None and self._xl_futex_fault():
                    return self.run()   # the stub goes on to the call's real path
                return ExitKind.FAULT
            self.error = f"store to unbacked guest-physical address {phys:#x}"
        elif reason == api.KVM_EXIT_INTR:
            self._state = 0
            if xl is not None and xl.code_va <= self._regs[RIP] < self._xl_end:
                return self._xl_resolve()
            return ExitKind.INTERRUPTED
        elif reason == api.KVM_EXIT_INTERNAL_ERROR:
            sub = q[4] & 0xFFFFFFFF
            self.error = f"KVM internal error (suberror {sub}) at rip {self._regs[RIP]:#x}"
        elif reason == api.KVM_EXIT_SHUTDOWN:
            self.error = f"triple fault (guest shutdown) near rip {self._regs[RIP]:#x}"
        else:
            self.error = f"unexpected KVM exit {api.EXIT_NAMES.get(reason, reason)} at rip {self._regs[RIP]:#x}"
        self._state = 0
        return ExitKind.HALT

    # -- the exitless stub (exitless.py) ----------------------------------------------------
    def _xl_resolve(self) -> ExitKind:
        """KVM_RUN returned with RIP inside this vCPU's exitless stub: settle its slot so
        the vCPU is either at a syscall exit (the host serves the call) or back in user
        code with its result. The request is claimed here unless the poller has it."""
        from umiak.platform.kvm import exitless as X
        xl, s = self._xlm, self._xl
        assert xl is not None and s is not None
        u32, ram_q = xl._u32, xl._q
        r = self._regs
        off = r[RIP] - s.code_va
        if X.RW_AT <= off < X.RW_END:
            # Entering from a rewritten site: nothing posted yet, the flags still the
            # program's; rax and rcx are the call's, as `syscall` would leave them.
            lo = s.code_va + PAGE
            if lo + X.STACK_LO <= r[RSP] <= lo + X.STACK_TOP:
                r[RSP] = xl._q[s.rsp_q]
            r[R11] = r[RFLAGS]
            self._q[self._dirty] |= api.KVM_SYNC_X86_REGS
            self._state = 1
            xl.exits += 1
            return ExitKind.SYSCALL
        st = u32[s.state_i]
        # No host code yet: no poller either, so a POSTED (the program's own) is taken here.
        if st == X.POSTED and (xl.native is None or xl.native.claim(s.host_state)):
            st = X.IDLE
            xl.fallbacks += 1
            took = True
        else:
            took = False
            if st in (X.POSTED, X.CLAIMED):
                st = xl.wait_reply(s)
        if not took and st in (X.DONE, X.DONE_SIG):
            self._xl_return(ram_q[s.reply_q])
            return ExitKind.INTERRUPTED   # in user code now: the loop delivers what is pending
        if not took and st != X.EXIT and X.DONE_AT <= off < X.RW_AT:
            # Past the reply (the stub set IDLE just before `jmp rcx`): finish its return.
            # (In the guest's futex, nothing is posted: IDLE there is a syscall exit, below.)
            self._xl_return(r[0])
            return ExitKind.INTERRUPTED
        # A syscall exit with the call in the slot: before the stub posted, past its
        # deadline, handed back by the poller, or taken here.
        u32[s.state_i] = X.IDLE
        if off > 0:
            r[0] = ram_q[s.nr_q]
        self._q[self._dirty] |= api.KVM_SYNC_X86_REGS
        self._state = 1
        xl.exits += 1
        return ExitKind.SYSCALL

    def _xl_futex_fault(self) -> bool:
        """A fault at the guest futex's read of the word (a page not present, an address
        not mapped): the stub bails to the call's real path, where the kernel reads the
        word (backs the page, or EFAULT), instead of the program seeing a signal."""
        from umiak.platform.kvm import exitless as X
        s = self._xl
        assert s is not None
        ram = self.plat.ram.cast("Q")
        f = self._frame_index()
        if ram[f + 2] != s.code_va + X.FLOAD_AT:
            return False
        ram[f + 2] = s.code_va + X.FBAIL_AT
        return True

    def _xl_return(self, value: int) -> None:
        """Return from the stub as its `done` path would: result, user RIP/RFLAGS/RSP."""
        from umiak.platform.kvm import exitless as X
        xl, s = self._xlm, self._xl
        assert xl is not None and s is not None
        r = self._regs
        r[0] = value & MASK64
        r[RIP] = r[RCX]
        r[RFLAGS] = (r[R11] & X.USER_FLAGS) | 0x202
        lo = s.code_va + PAGE
        if lo + X.STACK_LO <= r[RSP] <= lo + X.STACK_TOP:
            r[RSP] = xl._q[s.rsp_q]
        xl._u32[s.state_i] = X.IDLE
        self._q[self._dirty] |= api.KVM_SYNC_X86_REGS
        self._state = 0

    def return_address(self) -> int:
        """At a syscall exit: where the call returns to (rcx, as `syscall` leaves it)."""
        return self._regs[RCX]

    def syscall_args(self):
        r = self._regs
        return r[0], r[5], r[4], r[3], r[10], r[8], r[9]

    def set_syscall_result(self, value: int) -> None:
        r = self._regs
        r[0] = value & MASK64
        if self._pvm:
            # PVM: the stub stays at CPL3 and cannot sysretq; return for it.
            r[RIP] = r[RCX]
            r[RFLAGS] = r[R11]
        # VMX/SVM: the stub continues with its own sysretq.
        self._q[self._dirty] |= api.KVM_SYNC_X86_REGS

    # -- user-visible register state -----------------------------------------
    def _frame_index(self) -> int:
        # The exception stub's frame on the IST stack: vector, error, rip, cs, rflags, rsp, ss.
        return (self._regs[RSP] - KBASE) // 8

    def get_regs(self) -> list[int]:
        regs = list(self._regs)
        if self._state == 1:
            regs[RIP], regs[RFLAGS] = regs[RCX], regs[R11]
        elif self._state == 2:
            ram = self.plat.ram.cast("Q")
            f = self._frame_index()
            regs[RIP], regs[RFLAGS], regs[RSP] = ram[f + 2], ram[f + 4], ram[f + 5]
        return regs

    def set_regs(self, regs: list[int]) -> None:
        if self._state == 2:
            ram = self.plat.ram.cast("Q")
            f = self._frame_index()
            ram[f + 2], ram[f + 4], ram[f + 5] = regs[RIP], regs[RFLAGS], regs[RSP]
            ram[f + 3], ram[f + 6] = cpu.USER_CS | 0, cpu.USER_DS
            stub_rsp, stub_rip, stub_flags = self._regs[RSP], self._regs[RIP], self._regs[RFLAGS]
            self._regs[:] = memoryview(struct.pack("<18Q", *regs)).cast("Q")
            self._regs[RSP], self._regs[RIP], self._regs[RFLAGS] = stub_rsp, stub_rip, stub_flags
            self._q[self._dirty] |= api.KVM_SYNC_X86_REGS
            return  # still in the fault frame: the stub's iretq enters the new state
        else:
            self._regs[:] = memoryview(struct.pack("<18Q", *regs)).cast("Q")
            if self._state == 1 and not self._pvm:
                self._enter_user_via_sregs()
        self._q[self._dirty] |= api.KVM_SYNC_X86_REGS
        self._state = 0

    def _enter_user_via_sregs(self) -> None:
        """VMX/SVM only: leave the CPL0 stub by loading user CS/SS instead of sysretq."""
        base = api.RUN_SYNC_SREGS
        for off, seg in ((0, _user_segment(True)), (0x50, _user_segment(False))):
            self._run[base + off: base + off + api.SEGMENT_SIZE] = bytes(seg)
        self._q[self._dirty] |= api.KVM_SYNC_X86_SREGS

    def fault(self) -> Fault:
        ram = self.plat.ram.cast("Q")
        f = self._frame_index()
        vector, err, rip = ram[f], ram[f + 1], ram[f + 2]
        addr = self._q[self._cr2] if vector == cpu.VEC_PF else 0
        return Fault(vector, err, addr, rip)

    def resume_fault(self) -> None:
        """Continue after a handled fault: the stub's iretq re-runs the instruction.

        The state stays "in a fault frame" until the next run(), so a signal
        delivered now edits the frame the stub will return through."""

    def get_fs_base(self) -> int:
        return self._q[self._fs]

    def set_fs_base(self, value: int) -> None:
        self._q[self._fs] = value
        self._q[self._dirty] |= api.KVM_SYNC_X86_SREGS

    def get_gs_base(self) -> int:
        if self.gs_virtual:
            return 0
        return self._q[self._gs]

    def set_gs_base(self, value: int) -> None:
        """The program's %gs base. With rewritten sites the vCPU's real one is its slot
        page while the program's is 0 (as it nearly always is); a program that sets one
        gets it for real (kernel/rewrite.py then puts that address space's sites back)."""
        if self.gs_virtual:
            if value == 0:
                return
            self.gs_virtual = False
        self._q[self._gs] = value
        self._q[self._dirty] |= api.KVM_SYNC_X86_SREGS

    def at_user(self) -> bool:
        """True when the vCPU stopped in user code (not inside a kernel stub)."""
        return self._state != 0 or self._regs[RIP] < KBASE

    def kick(self) -> None:
        """Make run() return INTERRUPTED soon; safe from any thread."""
        self._run[api.RUN_IMMEDIATE_EXIT] = 1
        if self._thread is not None:
            try:
                signal.pthread_kill(self._thread, KICK_SIGNAL)
            except (ProcessLookupError, OSError):
                pass

    def set_root(self, root: PageRoot) -> None:
        """Run on another address space from the next run() on (execve after vfork)."""
        self._set_cr3(root.cr3)

    def _set_cr3(self, cr3: int) -> None:
        self._q[(api.RUN_SYNC_SREGS + api.SREGS_CR3) // 8] = cr3
        self._q[self._dirty] |= api.KVM_SYNC_X86_SREGS

    def get_fpu(self) -> bytes:
        """The XSAVE image of the FPU/SSE/AVX state (the size the CPU uses for XCR0)."""
        buf = (ctypes.c_char * 4096)()
        _ioctl(self.fd, api.KVM_GET_XSAVE, buf)
        return bytes(buf)[:self.plat.xsave_size]

    def set_fpu(self, image: bytes) -> None:
        buf = (ctypes.c_char * 4096)()
        _ioctl(self.fd, api.KVM_GET_XSAVE, buf)
        ctypes.memmove(buf, image, min(len(image), self.plat.xsave_size))
        _ioctl(self.fd, api.KVM_SET_XSAVE, buf)

    def close(self, defer: bool = False) -> int | None:
        """Release the vCPU; with defer the fd is returned for the caller to close.

        Without defer (a task ended) the vCPU waits for reuse: KVM frees vCPUs only
        with the VM, and a VM holds at most KVM_CAP_MAX_VCPUS of them."""
        if not defer and self.fd >= 0 and self.plat._vm >= 0:
            if self not in self.plat._idle:
                self.plat._idle.append(self)
            return None
        fd, self.fd = self.fd, -1
        if fd < 0:
            return None
        self._regs.release()
        self._q.release()
        self._run.close()
        if defer:
            return fd
        os.close(fd)
        return None
