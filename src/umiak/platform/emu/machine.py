"""The emu platform: guest code runs on Unicorn's software x86-64 CPU (QEMU TCG).

Design (measured with unicorn 2.1.4, see tests/test_platform_emu.py):

* Memory is the KVM platform's, unchanged. Guest RAM is one host mmap, given to
  Unicorn as *physical* memory at 0 with `mem_map_ptr`; the CPU runs with
  CR0.PG, CR4.PAE, EFER.LME|NXE and CR3 pointing at the same 4-level page
  tables (arch/x86_64/paging.py) that KVM uses. So permissions, NX, aliases of
  one frame at two addresses (shared mappings, JIT double maps) and guest
  writes to code (TCG invalidates its translations by physical page) behave
  as on hardware. Mapping the guest-virtual pages one by one with
  mem_map_ptr/mem_protect instead would create one QEMU memory region per
  page and could not express aliases or NX faults.
* TLB: any page-table edit that lowers permissions or removes a page marks
  Unicorn's TLB stale; it is flushed (UC_CTL_TLB_FLUSH) before the next run.
  `invalidate` does the same; nothing depends on the kernel calling it.
* Translated code: writes the *host* makes into guest RAM are not seen by TCG
  (guest writes are). When an executable page is unmapped or remapped, its
  translations are dropped (UC_CTL_TB_REMOVE_CACHE) while the old mapping is
  still there to find the frame, so a frame reused for new code runs it.
* Privilege: Unicorn's register API cannot load CS with CPL 3 in 64-bit mode,
  so each vCPU starts in a tiny CPL0 stub that sets XCR0 (x87|SSE) and does
  `iretq` to a user page holding `syscall`, whose hook stops emulation (using
  emu_start's instruction `count` instead leaves Unicorn unable to report
  exceptions later). From then on the CPU stays at CPL3: Unicorn never
  delivers exceptions through the IDT nor runs a real `syscall`, so privileged
  instructions fault (#GP) and user/supervisor page checks apply as on Linux.
  FCW/MXCSR are set to Linux's 0x37f/0x1f80 (Unicorn leaves FCW at 0).
* Exits: `syscall` is caught with UC_HOOK_INSN (Unicorn then skips it, RIP is
  past it) and stops emulation; CPU exceptions arrive in UC_HOOK_INTR with the
  vector and RIP at the faulting instruction (after it for int3/into), CR2
  holds the page-fault address; an invalid opcode makes emu_start fail with
  UC_ERR_INSN_INVALID, reported as #UD. Vectors >= 32 (`int N`) become #GP
  with the IDT error code, as Linux (no such gate for user mode) reports them.
* Exception bookkeeping: Unicorn exposes neither the error code nor QEMU's
  "exception in flight" marker, which it never clears (the second fault would
  become a double fault, the third a silent stop). Both are reached through a
  saved CPU context (see _ExceptionState): the error code is exact (P, W, U,
  I/D bits for page faults).
* CPUID: Unicorn's default CPU (a Haswell model filtered to what TCG runs)
  reports SSE up to SSE4.2, POPCNT, AES, PCLMUL, MOVBE, BMI1/2, XSAVE, and no
  AVX/AVX2/FMA/AVX-512, which matches what it executes; it is not hooked, except
  under --cpu=baseline (a CPUID hook answers from cpumodel.BASELINE: no XSAVE).
* kick(): emu_stop() from another thread (repeated until that run ends, as
  emu_start clears a stop request that lands just before it); a kick between
  runs is kept in a flag and makes the next run() return INTERRUPTED at once.
* Cost: a syscall round trip is emu_start (~2-3 us, with a 15-byte native
  hook that stops emulation, see _NativeStopHook) plus one batch register
  read and one write through prototype-less ctypes calls: about 5 us.

Threads: all vCPUs of one platform share the one Unicorn engine (one QEMU
CPU), so `lock cmpxchg`/`xadd` stay atomic between guest threads (one guest
instruction never interleaves with another's; tested with 4 vCPUs x 100000
`lock xadd` + `lock cmpxchg` on 4 host threads, totals exact).
* One vCPU (the fast path): exactly as above; run() checks one flag (_multi).
* From the second create_vcpu on (_multi): each vCPU has a uc_context; the
  engine holds the registers of `_engine_owner` only (lazily: a vCPU that
  returns from run() stays loaded until another needs the engine). Register
  accessors go to the engine or to the vCPU's saved context under `_mx`.
  run() takes the engine's turn (FIFO handoff, `_acquire`/`_release`), loads
  its context when another vCPU ran last (uc_context_save + restore, about
  1.5-3 us; the TLB and the translated code are shared, as is the address
  space), and emulates. A waiter whose turn is late by a time slice (SLICE,
  4 ms) asks the owner to stop; the owner hands over and queues again inside
  run() — run() returns only for a syscall, a fault, a halt or a kick. The
  turn is released on every return, so a thread blocked in the kernel never
  holds the engine. kick() of a queued vCPU takes it out of the queue
  (INTERRUPTED at once); of an emulating one, stops it. When the other vCPUs
  are closed the next run() goes back to the fast path.
* Exact stops: uc_emu_stop from another thread is NOT exact in Unicorn 2.1.4
  (cpu_tb_exec skips the PC sync when a chain of blocks is left on a stop
  request, so RIP can lie several blocks back and instructions run twice:
  measured, +1..+5 on 400000 increments). With two vCPUs a native block hook
  (_NativeBlockHook) does the stopping: others set a byte, the hook calls
  uc_emu_stop at the next block start with RIP exact. It costs about 2.4 ns
  per executed block (a tight 7-instruction loop: 1.2-1.5x slower) and stays
  installed once added. Without it (one vCPU) kick() still uses emu_stop:
  a single-threaded guest resumed after a kick that landed mid-loop can
  re-run a few instructions (a signal handler's return, SIGALRM/setitimer).
* Memory operations that need the engine while another vCPU may emulate
  (dropping translated code, flushing the TLB in invalidate/discard) take it
  urgently (queue head, owner stopped at once), so a TLB shootdown is done
  before munmap/mprotect return, and freed frames are zeroed only after it.
* Costs measured on this (shared, 2-CPU, loaded) machine, test_emu_thread_costs:
  context switch between vCPUs 1.5-3 us (save+restore of a 5.6 KB context);
  syscall round trip 3-5.7 us with one vCPU, 4.8-8 us with 4 vCPUs of which 3
  are idle (turn acquire/release and the _mx lock); with 4 threads all making
  syscalls 20-70 us of wall time per syscall (each syscall hands the engine to
  another host thread: an OS wakeup). A CPU-bound loop on 2 threads gets
  0.6-0.9x the throughput of 1 thread: one engine runs at a time, and the
  block hook costs on top; there is no parallel speed-up on this platform.
"""

import collections
import ctypes
import mmap
import struct
import sys
import threading
import time

from umiak.arch.x86_64 import cpu, descriptors
from umiak.arch.x86_64.paging import ADDR_MASK, PTE_A, PTE_D, PTE_NX, PTE_P, PTE_RW, PageTables, pte_bits
from umiak.errors import PlatformUnavailable, UmiakError
from umiak.platform.base import RIP, ExitKind, Fault, PageRoot, Platform, frame_runs

PAGE = 4096
MASK64 = (1 << 64) - 1
KBASE = 0x4000_0000_0000     # kernel area, supervisor-only pages (as in the KVM platform)
GDT_PA = 0x1000
STUB_PA = 0x2000             # boot stub: set XCR0, iretq to user mode
BOOT_STACK_PA = 0x3000       # iretq frame of the boot stub
BOOT_USER_PA = 0x4000        # user-mode landing page of the boot stub: `syscall`
TABLES_PA = 0x8000
# emu_start's `until` is ignored: exits are switched to an empty set (UC_CTL_UC_USE_EXITS),
# because Unicorn translates until-1 after every run, which faults (and leaves QEMU
# believing an exception is in flight) when nothing executable is mapped there.
UNTIL = 0
MSR_EFER = 0xC0000080

# xor ecx,ecx; mov eax,3; xor edx,edx; xsetbv; iretq
_BOOT_STUB = bytes.fromhex("31c9b80300000031d20f01d148cf")
# CPUID probe, run once at CPL0, ends with hlt (which stops Unicorn):
#   rdi = KBASE+BOOT_STACK_PA+0x800; [rdi] = 1.EDX, [rdi+4] = 1.ECX, [rdi+8] = 0xD.0.EBX, [rdi+12] = 7.0.EBX
PROBE_OFF = 0x40
_PROBE_STUB = bytes.fromhex("48bf0038000000400000b80100000031c90fa28917894f04b80d00000031c90fa2895f08"
                            "b80700000031c90fa2895f0cf4")
PROBE_OUT_PA = BOOT_STACK_PA + 0x800
XSAVE_SIZE = 576  # legacy area + XSAVE header: XCR0 is x87|SSE

# Exit reasons recorded by the hooks.
_NONE, _INTR = 0, 2

# Sharing the engine between vCPUs (see the module docstring).
SLICE = 0.004          # seconds a vCPU may emulate while others wait for the engine
URGENT_POLL = 0.0002   # how often a memory operation re-asks the running vCPU to stop
_WAITING, _GRANTED, _CANCELLED = 0, 1, 2


class _Waiter:
    """One thread queued for the engine; its lock is released when its turn comes."""

    __slots__ = ("lock", "vcpu", "state")

    def __init__(self, vcpu):
        self.lock = threading.Lock()
        self.lock.acquire()
        self.vcpu = vcpu
        self.state = _WAITING


def _unicorn():
    try:
        import unicorn
        from unicorn import x86_const
        from unicorn.unicorn_py3 import unicorn as binding
    except ImportError as e:
        raise PlatformUnavailable(f"the unicorn package is not usable ({e}): pip install unicorn==2.1.4") from None
    return unicorn, x86_const, binding.uclib


class _ExceptionState:
    """Unicorn's hidden exception bookkeeping, reached through a saved CPU context.

    Unicorn hands exceptions to UC_HOOK_INTR without delivering them, so QEMU's
    `old_exception` ("an exception is in flight") is never cleared: the next
    #DE/#GP/#PF would become a double fault, then a silent triple-fault stop.
    The page-fault error code (`error_code`) is not a register either. Both
    live in CPUX86State, which uc_context_save copies verbatim; they are found
    next to the debug registers, whose reset values are a unique pattern:
    error_code, exception_is_int, exception_next_eip, dr[8], 4 pointers,
    old_exception.
    """

    _PATTERN = struct.pack("<8Q4Qi", 0, 0, 0, 0, 0, 0, 0xFFFF0FF0, 0x400, 0, 0, 0, 0, -1)

    def __init__(self, lib, h):
        self._lib, self._h = lib, h
        self._ctx = ctypes.c_void_p()
        if lib.uc_context_alloc(h, ctypes.byref(self._ctx)):
            raise UmiakError("unicorn: cannot allocate a CPU context")
        size = lib.uc_context_size(h)
        lib.uc_context_save(h, self._ctx)
        ctx = self._ctx.value or 0   # uc_context_alloc succeeded: not NULL
        blob = ctypes.string_at(ctx, size)
        at = blob.find(self._PATTERN)
        if at < 0 or blob.find(self._PATTERN, at + 1) >= 0:
            raise PlatformUnavailable("this unicorn build has an unknown CPU state layout: pip install unicorn==2.1.4")
        base = ctx + at - 16
        self._error_code = ctypes.c_int.from_address(base)
        self._old_exception = ctypes.c_int.from_address(base + 16 + 64 + 32)

    def take(self) -> int:
        """The last exception's error code; marks the exception as delivered."""
        lib, h = self._lib, self._h
        lib.uc_context_save(h, self._ctx)
        err = self._error_code.value & 0xFFFFFFFF
        self._old_exception.value = -1
        lib.uc_context_restore(h, self._ctx)
        return err

    def close(self) -> None:
        if self._ctx:
            self._lib.uc_context_free(self._ctx)
            self._ctx = ctypes.c_void_p()


class _NativeStopHook:
    """A 15-byte machine-code UC_HOOK_INSN callback: set a flag, tail-call uc_emu_stop.

    It saves the ctypes trip into Python on every syscall (about 1.5 us of
    a 5 us round trip). Only for x86-64 hosts (System V calling convention);
    elsewhere the Python callback is used.

        mov byte ptr [rsi], 1      ; rsi = user_data = &flag
        jmp qword ptr [rip+0]      ; rdi = uc, unchanged: uc_emu_stop(uc)
        .quad uc_emu_stop
    """

    def __init__(self, lib):
        import platform
        if platform.machine().lower() not in ("x86_64", "amd64") or sys.platform == "win32":
            raise OSError("not an x86-64 System V host")
        target = ctypes.cast(lib.uc_emu_stop, ctypes.c_void_p).value
        code = b"\xc6\x06\x01" + b"\xff\x25\x00\x00\x00\x00" + struct.pack("<Q", target)
        from umiak.arch.x86_64.native import CodePage
        self._page = CodePage(code)
        self.address = self._page.address
        self.flag = ctypes.c_uint8(0)


class _NativeBlockHook:
    """A machine-code UC_HOOK_BLOCK callback: stop at this block's start if asked to.

    An emu_stop from another thread is not exact: Unicorn skips QEMU's PC
    sync when a chain of translated blocks is left on a stop request, so the
    RIP read afterwards can lie blocks behind and instructions run twice.
    Stopping from a block hook is exact (the hook helper sets RIP to the
    block's start, and the block's exit check fires before its first
    instruction). Costs about 2.4 ns per executed block.

        cmp byte ptr [rcx], 0      ; rcx = user_data = &request
        jne 1f
        ret
    1:  mov byte ptr [rcx], 0
        jmp qword ptr [rip+0]      ; rdi = uc, unchanged: uc_emu_stop(uc)
        .quad uc_emu_stop
    """

    def __init__(self, lib):
        import platform
        if platform.machine().lower() not in ("x86_64", "amd64") or sys.platform == "win32":
            raise OSError("not an x86-64 System V host")
        target = ctypes.cast(lib.uc_emu_stop, ctypes.c_void_p).value
        code = (b"\x80\x39\x00" b"\x75\x01" b"\xc3" b"\xc6\x01\x00" b"\xff\x25\x00\x00\x00\x00"
                + struct.pack("<Q", target))
        from umiak.arch.x86_64.native import CodePage
        self._page = CodePage(code)
        self.address = self._page.address


class EmuPlatform(Platform):
    """One Unicorn engine whose physical memory is the guest RAM buffer."""

    name = "emu"

    def __init__(self, mem_size: int, cpu: str = "host"):
        self._unicorn, self._x86, self._lib = _unicorn()
        uc_mod = self._unicorn
        self.mem_size = mem_size
        self.cpu_model = cpu   # host: Unicorn's CPUID as it is; baseline: cpumodel.BASELINE (_baseline_cpuid)
        reserved = max(4 << 20, (mem_size // 128) & ~(PAGE - 1))
        if mem_size < reserved + (4 << 20) or mem_size % PAGE:
            raise UmiakError(f"guest memory of {mem_size} bytes is too small (at least {2 * reserved >> 20} MiB)")
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000  # MAP_NORESERVE
        mem = mmap.mmap(-1, mem_size, flags=flags)
        self._mem: mmap.mmap | None = mem   # None once closed
        self.ram = memoryview(mem)
        self._hva = ctypes.addressof(ctypes.c_char.from_buffer(mem))
        self._exc_state: _ExceptionState | None = None   # made with the engine (see _setup_cpu)
        self._next_table, self._tables_end = TABLES_PA, reserved
        self.usable = (reserved, mem_size)
        self.reserved_va = [(KBASE, KBASE + (1 << 32))]  # guest-virtual range user mappings must avoid
        self.xsave_size = XSAVE_SIZE
        self.pt = PageTables(self.ram.cast("Q"), self._alloc_table)
        self._roots: list[PageRoot] = []      # released page-table roots, kept for reuse
        # Where page-table pages come from once the pool is used up (set by the kernel:
        # FrameAllocator.alloc); tables are never freed (PVM), so many processes need more.
        self.more_tables = None
        self._first_root: PageRoot | None = None
        self._engine_cr3 = self.pt.root       # the CR3 the engine's CPU state holds now
        self._tlb_stale = False
        self._vcpus: list[EmuVcpu] = []
        self._engine_owner: EmuVcpu | None = None  # whose registers the engine holds
        # Engine sharing, used once a second vCPU exists (_multi): a FIFO turn
        # guarded by _mx, which also guards _engine_owner and context switches.
        self._multi = False
        self._mx = threading.Lock()
        self._held = False              # some thread has the engine's turn
        self._holder = 0                # its thread ident
        self._queue: collections.deque[_Waiter] = collections.deque()
        self._turn_start = 0.0
        self._emulating: EmuVcpu | None = None  # the vCPU inside emu_start
        self.slice = SLICE
        self.switches = 0               # context switches between vCPUs
        self._pristine = None           # CPU state before the first vCPU's boot
        self._stop_req: ctypes.c_uint8 | None = None  # set: the block hook stops emulation

        self.uc = uc_mod.Uc(uc_mod.UC_ARCH_X86, uc_mod.UC_MODE_64)
        # Unicorn frees the engine from a weakref.finalize, which by default also runs at
        # interpreter exit, before the atexit handlers registered earlier (Machine's, which
        # stop runs still going and close the warm VM) and under any vCPU still emulating
        # or booting on another thread: a crash at exit. The engine is freed when close()
        # drops it, or with the process.
        finalizer = getattr(self.uc, "_Uc__finalizer", None)
        if finalizer is not None:
            finalizer.atexit = False
        self._h = self.uc._uch  # a c_void_p
        # The hot calls go through prototype-less functions of the same library:
        # ctypes' argument conversion costs more than the call (1.9 vs 0.8 us).
        self._fast = ctypes.CDLL(self._lib._name)
        self.uc.mem_map_ptr(0, mem_size, uc_mod.UC_PROT_ALL, self._hva)

        gdt = descriptors.gdt_image(0)  # no TSS is ever loaded
        self._gdt_limit = len(gdt) - 1
        self.ram[GDT_PA:GDT_PA + len(gdt)] = gdt
        self.ram[STUB_PA:STUB_PA + len(_BOOT_STUB)] = _BOOT_STUB
        self.ram[STUB_PA + PROBE_OFF:STUB_PA + PROBE_OFF + len(_PROBE_STUB)] = _PROBE_STUB
        kdata = PTE_P | PTE_RW | PTE_A | PTE_D | PTE_NX
        self.pt.set(KBASE + GDT_PA, GDT_PA, kdata)
        self.pt.set(KBASE + BOOT_STACK_PA, BOOT_STACK_PA, kdata)
        self.pt.set(KBASE + STUB_PA, STUB_PA, PTE_P | PTE_A)
        self.ram[BOOT_USER_PA:BOOT_USER_PA + 2] = b"\x0f\x05"
        self._setup_cpu()
        self._cpuid = self._probe_cpuid()
        if cpu == "baseline":
            self._present_baseline()
        fast = self._fast
        self._ctx_save, self._ctx_restore = fast.uc_context_save, fast.uc_context_restore
        self._pristine = self._new_context()
        self._ctx_save(self._h, self._pristine)

    def _new_context(self) -> ctypes.c_void_p:
        ctx = ctypes.c_void_p()
        if self._lib.uc_context_alloc(self._h, ctypes.byref(ctx)):
            raise UmiakError("unicorn: cannot allocate a CPU context")
        return ctx

    # -- the engine's turn (only once there are two vCPUs) -----------------------
    def _acquire(self, vcpu: "EmuVcpu | None", urgent: bool = False) -> bool:
        """Take the engine's turn, FIFO; False when `vcpu` was kicked meanwhile.

        A waiter whose turn is late by a time slice (or at once, if urgent: a
        memory operation) stops the emulating vCPU, which then hands over.
        """
        with self._mx:
            if vcpu is not None and vcpu._kicked:
                return False
            if not self._held:
                self._held, self._holder = True, threading.get_ident()
                self._turn_start = time.monotonic()
                return True
            w = _Waiter(vcpu)
            if urgent:
                self._queue.appendleft(w)
            else:
                self._queue.append(w)
            if vcpu is not None:
                vcpu._waiter = w
        if urgent:
            self._preempt()
            timeout = URGENT_POLL
        else:
            timeout = self.slice
        acquire, monotonic, slice_ = w.lock.acquire, time.monotonic, self.slice
        while not acquire(timeout=timeout):
            if urgent or monotonic() - self._turn_start >= slice_:
                self._preempt()
        if w.state != _GRANTED:
            return False
        self._holder = threading.get_ident()
        return True

    def _release(self) -> None:
        """Give the turn to the first waiter, or free the engine."""
        with self._mx:
            self._holder = 0
            if self._queue:
                w = self._queue.popleft()
                w.state = _GRANTED
                if w.vcpu is not None:
                    w.vcpu._waiter = None
                self._turn_start = time.monotonic()
                w.lock.release()
            else:
                self._held = False

    def _cancel_wait(self, vcpu: "EmuVcpu") -> None:
        """kick(): a vCPU queued for the engine stops waiting (its run() is INTERRUPTED)."""
        with self._mx:
            w = vcpu._waiter
            if w is not None and w.state == _WAITING:
                self._queue.remove(w)
                w.state = _CANCELLED
                vcpu._waiter = None
                w.lock.release()

    def _preempt(self) -> None:
        """Ask the emulating vCPU (if any) to stop at its next block boundary."""
        if self._emulating is not None:
            self._request_stop()

    def _request_stop(self) -> None:
        req = self._stop_req
        if req is not None:
            req.value = 1
        else:
            self._fast.uc_emu_stop(self._h)

    def precise_interrupts(self) -> None:
        """Make kicks exact from now on: once a signal handler may resume the program, a
        stop must not leave RIP behind and re-run instructions (see _NativeBlockHook).
        Called by the kernel from a syscall, so nothing emulates now."""
        if self._stop_req is None:
            self._add_block_hook()

    def _add_block_hook(self) -> None:
        """Exact stops from other threads (see _NativeBlockHook); nothing emulates now."""
        if self._stop_req is not None:
            return
        U = self._unicorn
        req = ctypes.c_uint8(0)
        try:
            self._native_block = _NativeBlockHook(self._lib)
        except OSError:
            def on_block(uc, _addr, _size, _data):
                if req.value:
                    req.value = 0
                    self._lib.uc_emu_stop(self._h)
            self._hooks.append(self.uc.hook_add(U.UC_HOOK_BLOCK, on_block))
        else:
            hh = ctypes.c_size_t()
            err = self._lib.uc_hook_add(self._h, ctypes.byref(hh), U.UC_HOOK_BLOCK,
                                        ctypes.c_void_p(self._native_block.address),
                                        ctypes.c_void_p(ctypes.addressof(req)), ctypes.c_uint64(1), ctypes.c_uint64(0))
            if err:
                raise UmiakError(f"unicorn refused the block hook: {U.UcError(err)}")
            self._hooks.append(hh.value)
        # Blocks translated before the hook existed would not call it.
        self.uc.ctl(U.UC_CTL_TB_FLUSH, U.UC_CTL_IO_WRITE)
        self._stop_req = req

    def _with_engine(self, fn, *args):
        """Run fn while no vCPU emulates (memory operations that touch TCG's TLB or code cache)."""
        if not self._multi or (self._held and self._holder == threading.get_ident()):
            return fn(*args)
        self._acquire(None, urgent=True)
        try:
            return fn(*args)
        finally:
            self._release()

    def _load(self, vcpu: "EmuVcpu") -> None:
        """Put vcpu's registers into the engine (the caller has the turn)."""
        with self._mx:
            old = self._engine_owner
            if old is vcpu:
                return
            if old is not None:
                self._ctx_save(self._h, old._ctx)
                old._ctx_cr3 = self._engine_cr3
            self._ctx_restore(self._h, vcpu._ctx)
            self._engine_owner = vcpu
            self.switches += 1
            if vcpu.cr3 != vcpu._ctx_cr3:
                # Moved to another root while out of the engine (execve after vfork):
                # a CR3 write (not safe on a saved context) loads it and flushes the TLB.
                self.uc.reg_write(self._x86.UC_X86_REG_CR3, vcpu.cr3)
            elif vcpu.cr3 != self._engine_cr3:
                # Another address space: a context restore is a plain copy of the CPU
                # state, so QEMU's TLB still holds the old space's translations.
                self._flush_tlb()
            self._engine_cr3 = vcpu.cr3

    def _alloc_table(self) -> int:
        pa = self._next_table
        if pa >= self._tables_end:
            if self.more_tables is not None:
                return self.more_tables()   # a zeroed frame from the kernel, never given back
            from umiak.kernel.errors import GuestOutOfMemory
            raise GuestOutOfMemory("guest page-table pool exhausted")
        self._next_table = pa + PAGE
        return pa

    def _setup_cpu(self) -> None:
        x, uc = self._x86, self.uc
        uc.reg_write(x.UC_X86_REG_GDTR, (0, KBASE + GDT_PA, self._gdt_limit, 0))
        uc.reg_write(x.UC_X86_REG_CR4, cpu.CR4_PAE | cpu.CR4_OSFXSR | cpu.CR4_OSXMMEXCPT | cpu.CR4_OSXSAVE)
        efer = cpu.EFER_SCE | cpu.EFER_LME | cpu.EFER_LMA | cpu.EFER_NXE
        uc.reg_write(x.UC_X86_REG_MSR, (MSR_EFER, efer))
        uc.reg_write(x.UC_X86_REG_CR3, self.pt.root)
        uc.reg_write(x.UC_X86_REG_CR0, cpu.CR0_PE | cpu.CR0_MP | cpu.CR0_ET | cpu.CR0_NE
                     | cpu.CR0_WP | cpu.CR0_AM | cpu.CR0_PG)
        U = self._unicorn
        uc.ctl_exits_enabled(True)
        uc.ctl_set_exits([])
        self._hooks = [uc.hook_add(U.UC_HOOK_INTR, self._on_interrupt)]
        self._native = None
        self._syscall_flag = ctypes.c_uint8(0)  # set by the syscall hook
        try:
            self._native = _NativeStopHook(self._lib)
        except OSError:
            self._hooks.append(uc.hook_add(U.UC_HOOK_INSN, self._on_syscall, None, 1, 0, x.UC_X86_INS_SYSCALL))
        else:
            hh = ctypes.c_size_t()
            err = self._lib.uc_hook_add(self._h, ctypes.byref(hh), U.UC_HOOK_INSN,
                                        ctypes.c_void_p(self._native.address),
                                        ctypes.c_void_p(ctypes.addressof(self._native.flag)),
                                        ctypes.c_uint64(1), ctypes.c_uint64(0), ctypes.c_int(x.UC_X86_INS_SYSCALL))
            if err:
                raise PlatformUnavailable(f"unicorn refused the syscall hook: {U.UcError(err)}")
            self._hooks.append(hh.value)
            self._syscall_flag = self._native.flag
        self._exc_state = _ExceptionState(self._lib, self._h)

    def _probe_cpuid(self) -> tuple[int, int, int, int]:
        """(1.EDX, 1.ECX, 0xD.0.EBX, 7.0.EBX) as the emulated CPU reports them to the guest."""
        uc, x = self.uc, self._x86
        uc.emu_start(KBASE + STUB_PA + PROBE_OFF, UNTIL)
        out = struct.unpack_from("<4I", self.ram, PROBE_OUT_PA)
        self.ram[PROBE_OUT_PA:PROBE_OUT_PA + 16] = bytes(16)
        uc.reg_write(x.UC_X86_REG_RDI, 0)
        return out

    def _present_baseline(self) -> None:
        """Answer CPUID from cpumodel.BASELINE (a hook: Unicorn's own CPUID has XSAVE),
        once sure this Unicorn runs the baseline's features (the model is Unicorn 2.1.4's)."""
        from umiak.arch.x86_64 import cpumodel
        edx1, ecx1, _, ebx7 = self._cpuid
        lack = cpumodel.missing([(1, 0, 0, 0, ecx1, edx1), (7, 0, 0, ebx7, 0, 0)],
                                ((0x1, 0, 2), (0x1, 0, 3), (0x7, 0, 1)))
        if lack:
            raise UmiakError(f"emu cannot present the baseline CPU: this Unicorn's CPU lacks {', '.join(lack)}")
        self.uc.hook_add(self._unicorn.UC_HOOK_INSN, self._baseline_cpuid, None, 1, 0, self._x86.UC_X86_INS_CPUID)

    def _baseline_cpuid(self, uc, _data) -> int:
        """CPUID hook of the baseline CPU model: the leaf from cpumodel.BASELINE (every bit
        in it is one Unicorn runs: the table is Unicorn's own CPUID, XSAVE masked off)."""
        from umiak.arch.x86_64 import cpumodel
        x = self._x86
        f, i = uc.reg_read(x.UC_X86_REG_EAX), uc.reg_read(x.UC_X86_REG_ECX)
        for reg, v in zip((x.UC_X86_REG_RAX, x.UC_X86_REG_RBX, x.UC_X86_REG_RCX, x.UC_X86_REG_RDX),
                          cpumodel.lookup(cpumodel.BASELINE, f, i), strict=True):
            uc.reg_write(reg, v)
        return 1   # skip the emulated CPUID

    def cpu_features(self) -> dict[str, int]:
        """What the auxiliary vector tells the program about this CPU."""
        # CR4.FSGSBASE stays clear, so HWCAP2_FSGSBASE is not offered (as on KVM here).
        return {"hwcap": self._cpuid[0], "hwcap2": 0, "minsigstksz": max(2048, XSAVE_SIZE + 1024)}

    # -- hooks (run on the emulating thread, inside emu_start) --------------------
    def _on_syscall(self, uc, _data) -> None:
        self._lib.uc_emu_stop(self._h)
        self._syscall_flag.value = 1

    def _on_interrupt(self, uc, intno, _data) -> None:
        self._lib.uc_emu_stop(self._h)
        v = self._engine_owner
        if v is not None:   # the engine runs for its owner only
            v._stop, v._intno = _INTR, intno

    # -- memory -------------------------------------------------------------
    def new_root(self) -> PageRoot:
        """A page-table root for a new address space; the kernel area is shared by all.
        Released roots are reused whole (every leaf was cleared when unmapped)."""
        if self._first_root is None:
            self._first_root = PageRoot(self, self.pt)
            return self._first_root
        if self._roots:
            return self._roots.pop()
        pt = PageTables(self.ram.cast("Q"), self._alloc_table, self.pt, (KBASE >> 39,))
        return PageRoot(self, pt)

    def release_root(self, root: PageRoot) -> None:
        self._roots.append(root)

    def map_page(self, va: int, pa: int, prot: int, pt=None) -> None:
        pt = pt or self.pt
        bits = pte_bits(prot)
        old = pt.get(va)
        if old & PTE_P and not old & PTE_NX and (old ^ pa) & ADDR_MASK | (bits & PTE_NX):
            self._drop_code(va, pt)
        pt.set(va, pa, bits)
        if old & PTE_P and (old & ~bits & (PTE_P | PTE_RW) or bits & ~old & PTE_NX or (old ^ pa) & ADDR_MASK):
            self._tlb_stale = True

    def unmap_page(self, va: int, pt=None) -> None:
        pt = pt or self.pt
        old = pt.get(va)
        if old & PTE_P:
            if not old & PTE_NX:
                self._drop_code(va, pt)
            pt.set(va, 0, 0)
            self._tlb_stale = True

    def copy_ptes(self, src, dst, start: int, end: int, clear_write: bool) -> None:
        """fork: the frames stay where they are, so no translated code goes stale; lowering
        the source's write permission makes the TLB stale."""
        src.copy_range(dst, start, end, clear_write)
        if clear_write:
            self._tlb_stale = True

    def _drop_code(self, va: int, pt) -> None:
        """Forget TCG's translations of the executable page at va (still mapped).

        Host writes to guest RAM bypass TCG, so a frame reused for other code
        (exec, dlopen, a JIT's munmap + mmap) would run stale translations.
        UC_CTL_TB_REMOVE_CACHE looks va up through the live page tables: those of
        the engine's CR3, so a page of another address space is looked up with
        that space's root loaded for the moment.
        """
        self._with_engine(self._drop_code_now, va, pt.root)

    def _drop_code_now(self, va: int, cr3: int) -> None:
        if self._tlb_stale:
            self._flush_tlb()
        U = self._unicorn
        own = self._engine_cr3
        if cr3 != own:
            self.uc.reg_write(self._x86.UC_X86_REG_CR3, cr3)   # QEMU flushes its TLB on a CR3 write
        try:
            self.uc.ctl(U.UC_CTL_TB_REMOVE_CACHE, U.UC_CTL_IO_WRITE, ctypes.c_uint64(va), ctypes.c_uint64(va + PAGE))
        finally:
            if cr3 != own:
                self.uc.reg_write(self._x86.UC_X86_REG_CR3, own)

    def invalidate(self, frames: list[int]) -> None:
        """Drop cached translations after lowering permissions (Unicorn: flush its TLB).

        With one vCPU the flush waits for the next run(); with more, another
        vCPU may be emulating right now, so it is stopped and the TLB flushed
        before this returns (a TLB shootdown)."""
        self._tlb_stale = True
        if self._multi:
            self._with_engine(self._flush_tlb)

    def discard(self, frames: list[int]) -> None:
        """Freed frames read as zero afterwards (their code was dropped when unmapped)."""
        if self._multi:
            # No other vCPU may write through a stale translation once the frame is zeroed.
            self._with_engine(self._discard_now, frames)
        else:
            self._discard_now(frames)

    def _discard_now(self, frames: list[int]) -> None:
        if self._multi:
            self._flush_tlb()
        mem = self._mem
        if mem is None:   # closed
            return
        for start, length in frame_runs(frames):
            mem.madvise(mmap.MADV_DONTNEED, start, length)
        self._tlb_stale = True

    def _flush_tlb(self) -> None:
        U = self._unicorn
        self.uc.ctl(U.UC_CTL_TLB_FLUSH, U.UC_CTL_IO_WRITE)
        self._tlb_stale = False

    # -- vCPUs --------------------------------------------------------------
    def create_vcpu(self, entry: int, stack: int, root: PageRoot | None = None) -> "EmuVcpu":
        cr3 = root.cr3 if root is not None else self.pt.root
        if not self._vcpus:
            vcpu = EmuVcpu(self, entry, stack, cr3)
            self._vcpus.append(vcpu)
            return vcpu
        if not self._multi:
            # The second vCPU: from now on registers of a vCPU that is not in the
            # engine live in its own context. The caller is the first vCPU's thread
            # (clone), so nothing emulates now.
            for v in self._vcpus:
                v._ensure_context()
            self._multi = True
        self._acquire(None, urgent=True)
        try:
            self._add_block_hook()
            with self._mx:
                old = self._engine_owner
                if old is not None:
                    self._ctx_save(self._h, old._ctx)
                    old._ctx_cr3 = self._engine_cr3
                    self._engine_owner = None
                # A new CPU starts from the state the first one booted from.
                self._ctx_restore(self._h, self._pristine)
                self._engine_cr3 = -1     # not known: the new vCPU loads its own
            vcpu = EmuVcpu(self, entry, stack, cr3)
            vcpu._ensure_context()
            with self._mx:
                self._vcpus.append(vcpu)
        except BaseException:
            with self._mx:
                if self._engine_owner is not None and self._engine_owner not in self._vcpus:
                    self._engine_owner = None
            raise
        finally:
            self._release()
        return vcpu

    def _forget(self, vcpu: "EmuVcpu") -> None:
        """A closed vCPU leaves the engine (its context is freed)."""
        with self._mx:
            if vcpu in self._vcpus:
                self._vcpus.remove(vcpu)
            if self._engine_owner is vcpu:
                self._engine_owner = None
            ctx, vcpu._ctx = vcpu._ctx, None
            if ctx:
                self._lib.uc_context_free(ctx)

    def describe(self) -> str:
        return f"emu (unicorn {self._unicorn.__version__}, software x86-64 CPU)"

    def close(self) -> None:
        for v in list(self._vcpus):
            v.close()
        self._vcpus.clear()
        self._engine_owner = None
        if self._pristine is not None:
            self._lib.uc_context_free(self._pristine)
            self._pristine = None
        if self._exc_state is not None:
            self._exc_state.close()
            self._exc_state = None
        # The engine is freed with its last reference, before the RAM it points into.
        self.uc = None
        self._h = None
        self.ram = memoryview(b"")
        self._mem = None


_ZERO64 = ctypes.c_uint64(0)


class _FpuRegs:
    """Buffers for one batch read/write of the x87/SSE registers."""

    def __init__(self, x):
        regs = [(x.UC_X86_REG_FPCW, 2), (x.UC_X86_REG_FPSW, 2), (x.UC_X86_REG_FPTAG, 2), (x.UC_X86_REG_MXCSR, 4)]
        regs += [(getattr(x, f"UC_X86_REG_ST{i}"), 10) for i in range(8)]
        regs += [(getattr(x, f"UC_X86_REG_XMM{i}"), 16) for i in range(16)]
        self.ids = (ctypes.c_int * len(regs))(*[r for r, _ in regs])
        self.bufs = [(ctypes.c_char * 16)() for _ in regs]
        self.ptrs = (ctypes.c_void_p * len(regs))(*[ctypes.addressof(b) for b in self.bufs])


class EmuVcpu:
    """One guest CPU. Its registers live in the Unicorn engine while it is the
    engine's owner (always, with one vCPU), else in its own saved context."""

    def __init__(self, plat: EmuPlatform, entry: int, stack: int, cr3: int):
        self.plat = plat
        self.cr3 = cr3
        self._ctx_cr3: int | None = None   # the CR3 its saved context holds (None: not saved yet)
        self.error = ""
        self._h = plat._h
        self._lib = plat._lib
        self._stop = _NONE
        self._intno = 0
        self._kicked = False
        self._running = False
        self._runs = 0
        self._ctx: ctypes.c_void_p | None = None   # saved registers while another vCPU has the engine
        self._waiter: _Waiter | None = None        # queued for the engine (see EmuPlatform._acquire)
        fast = plat._fast
        self._emu_start = fast.uc_emu_start
        self._read_batch = fast.uc_reg_read_batch
        self._write_batch = fast.uc_reg_write_batch
        self._reg_read = fast.uc_reg_read
        self._reg_write = fast.uc_reg_write
        self._ctx_read_batch = fast.uc_context_reg_read_batch
        self._ctx_write_batch = fast.uc_context_reg_write_batch
        self._ctx_read = fast.uc_context_reg_read
        self._ctx_write = fast.uc_context_reg_write
        self._begin = ctypes.c_uint64()
        self._fault: Fault | None = None
        x = plat._x86
        ids = (x.UC_X86_REG_RAX, x.UC_X86_REG_RBX, x.UC_X86_REG_RCX, x.UC_X86_REG_RDX,
               x.UC_X86_REG_RSI, x.UC_X86_REG_RDI, x.UC_X86_REG_RSP, x.UC_X86_REG_RBP,
               x.UC_X86_REG_R8, x.UC_X86_REG_R9, x.UC_X86_REG_R10, x.UC_X86_REG_R11,
               x.UC_X86_REG_R12, x.UC_X86_REG_R13, x.UC_X86_REG_R14, x.UC_X86_REG_R15,
               x.UC_X86_REG_RIP, x.UC_X86_REG_RFLAGS)
        self._ids = (ctypes.c_int * 18)(*ids)
        self._vals = (ctypes.c_uint64 * 18)()
        base = ctypes.addressof(self._vals)
        self._ptrs = (ctypes.c_void_p * 18)(*[base + 8 * i for i in range(18)])
        # Writes leave RIP out: self._rip is where the next emu_start begins, and a
        # RIP write makes Unicorn set quit_request, which later swallows emu_stop.
        self._wids = (ctypes.c_int * 17)(*(ids[:16] + ids[17:]))
        self._wptrs = (ctypes.c_void_p * 17)(*[base + 8 * i for i in list(range(16)) + [17]])
        # syscall exit: rax rdi rsi rdx r10 r8 r9 rip in one batch read
        sc = (0, 5, 4, 3, 10, 8, 9, 16)
        self._sc_ids = (ctypes.c_int * 8)(*[ids[i] for i in sc])
        self._sc_vals = (ctypes.c_uint64 * 8)()
        base = ctypes.addressof(self._sc_vals)
        self._sc_ptrs = (ctypes.c_void_p * 8)(*[base + 8 * i for i in range(8)])
        self._one = ctypes.c_uint64()
        self._one_ref = ctypes.byref(self._one)
        self._rax_id, self._rip_id = x.UC_X86_REG_RAX, x.UC_X86_REG_RIP
        self._cr2_id = x.UC_X86_REG_CR2
        self._fs_id, self._gs_id = x.UC_X86_REG_FS_BASE, x.UC_X86_REG_GS_BASE
        self._fpu = _FpuRegs(x)
        self._rip = entry
        self._boot(entry, stack)

    def _ensure_context(self) -> None:
        if self._ctx is None:
            self._ctx = self.plat._new_context()

    def _boot(self, entry: int, stack: int) -> None:
        """Run the CPL0 stub once: XCR0 = x87|SSE, then iretq to CPL3 at entry."""
        p = self.plat
        frame = memoryview(p.ram)[BOOT_STACK_PA:BOOT_STACK_PA + 40].cast("Q")
        landing = KBASE + BOOT_USER_PA
        frame[0:5] = memoryview(bytearray(
            b"".join(v.to_bytes(8, "little") for v in (landing, cpu.USER_CS, cpu.RFLAGS_RESERVED, stack, cpu.USER_DS))
        )).cast("Q")
        p._engine_owner = self
        uc, x = p.uc, p._x86
        if p._engine_cr3 != self.cr3:
            uc.reg_write(x.UC_X86_REG_CR3, self.cr3)   # flushes QEMU's TLB
            p._engine_cr3 = self.cr3
        uc.reg_write(x.UC_X86_REG_RSP, KBASE + BOOT_STACK_PA)
        p.pt.set(landing, BOOT_USER_PA, pte_bits(5))
        p._flush_tlb()
        p._syscall_flag.value = 0
        rip = KBASE + STUB_PA
        for _ in range(100):
            uc.emu_start(rip, UNTIL)
            rip = uc.reg_read(x.UC_X86_REG_RIP)
            if p._syscall_flag.value or p._stop_req is None:
                break
            # a stop request left over from a kick or a time slice: go on (block-hook stops are exact)
        if rip != landing + 2 or not p._syscall_flag.value:
            raise UmiakError(f"emu: could not enter user mode (stopped at {uc.reg_read(x.UC_X86_REG_RIP):#x})")
        p.pt.set(landing, 0, 0)
        p._tlb_stale = True
        frame[0:5] = memoryview(bytearray(40)).cast("Q")
        # The FPU state Linux gives a new program (Unicorn's reset leaves FCW at 0,
        # i.e. single precision, which breaks x87 long double math).
        uc.reg_write(x.UC_X86_REG_FPCW, 0x37F)
        uc.reg_write(x.UC_X86_REG_FPTAG, 0xFFFF)
        uc.reg_write(x.UC_X86_REG_MXCSR, 0x1F80)
        self.set_regs([0] * 6 + [stack, 0] + [0] * 8 + [entry, cpu.RFLAGS_RESERVED])

    # -- running ------------------------------------------------------------
    def run(self) -> ExitKind:
        p = self.plat
        if p._multi:
            return self._run_shared()
        while True:
            self._running = True  # before the check: see kick()
            if self._kicked:
                self._running = self._kicked = False
                return ExitKind.INTERRUPTED
            if p._tlb_stale:
                p._flush_tlb()
            self._stop = _NONE
            flag = p._syscall_flag
            flag.value = 0
            self._begin.value = self._rip
            err = self._emu_start(self._h, self._begin, _ZERO64, _ZERO64, _ZERO64)
            self._running = False
            self._runs += 1
            if flag.value:
                self._read_batch(self._h, self._sc_ids, self._sc_ptrs, 8)
                self._rip = self._sc_vals[7]
                return ExitKind.SYSCALL  # a kick that came meanwhile is reported by the next run
            kind = self._stopped(err)
            if kind is not None:
                return kind
            if p._stop_req is None:
                self.error = f"emulation stopped for no known reason at rip {self._rip:#x}"
                return ExitKind.HALT
            # a late stop request meant for a vCPU that is gone: go on

    def _stopped(self, err: int) -> ExitKind | None:
        """Why emu_start ended, if not at a syscall; None when it was only stopped."""
        self._rip = self._read_engine(self._rip_id)
        if self._stop == _INTR:
            return self._exception(self._intno)
        if err == self.plat._unicorn.UC_ERR_INSN_INVALID:
            self._fault = Fault(cpu.VEC_UD, 0, 0, self._rip)
            return ExitKind.FAULT
        if err:
            self.error = f"unicorn: {self.plat._unicorn.UcError(err)} at rip {self._rip:#x}"
            return ExitKind.HALT
        if self._kicked:
            self._kicked = False
            return ExitKind.INTERRUPTED
        return None

    def _run_shared(self) -> ExitKind:
        """run() while other vCPUs exist: emulate in time slices, taking turns on the engine.

        Returns only for a real exit or a kick; a slice that ends because
        another vCPU waits hands the engine over and queues for it again.
        """
        p = self.plat
        if self._kicked or not p._acquire(self):
            self._kicked = False
            return ExitKind.INTERRUPTED
        held = True
        try:
            if len(p._vcpus) == 1 and p._vcpus[0] is self:
                p._load(self)
                with p._mx:
                    if len(p._vcpus) == 1 and not p._queue:
                        p._multi = False   # the others are gone: back to the fast path
            flag = p._syscall_flag
            while True:
                if p._engine_owner is not self:
                    p._load(self)
                if p._tlb_stale:
                    p._flush_tlb()
                self._stop = _NONE
                flag.value = 0
                self._running = True  # before the check: see kick()
                if self._kicked:
                    self._running = self._kicked = False
                    return ExitKind.INTERRUPTED
                p._emulating = self
                self._begin.value = self._rip
                err = self._emu_start(self._h, self._begin, _ZERO64, _ZERO64, _ZERO64)
                p._emulating = None
                self._running = False
                self._runs += 1
                if flag.value:
                    self._read_batch(self._h, self._sc_ids, self._sc_ptrs, 8)
                    self._rip = self._sc_vals[7]
                    return ExitKind.SYSCALL
                kind = self._stopped(err)
                if kind is not None:
                    return kind
                # Stopped because another thread wants the engine (or a stale stop).
                if p._queue:
                    held = False
                    p._release()
                    if not p._acquire(self):
                        self._kicked = False
                        return ExitKind.INTERRUPTED
                    held = True
        finally:
            if held:
                p._release()

    def _exception(self, vec: int) -> ExitKind:
        rip = self._rip
        if vec >= 32:
            # `int N` with no user-callable gate: #GP with the IDT selector, as Linux reports.
            self._rip = rip - 2
            self._fault = Fault(cpu.VEC_GP, (vec << 3) | 2, 0, rip - 2)
            return ExitKind.FAULT
        state = self.plat._exc_state
        err = state.take() if state is not None else 0   # None: the VM is closing
        if vec not in cpu.VECTORS_WITH_ERROR_CODE:
            err = 0
        addr = self._read_engine(self._cr2_id) if vec == cpu.VEC_PF else 0
        self._fault = Fault(vec, err, addr, rip)
        return ExitKind.FAULT

    # -- register access: the engine when this vCPU is its owner, else its context --
    def _read_engine(self, reg_id: int) -> int:
        self._reg_read(self._h, reg_id, self._one_ref)
        return self._one.value

    def _read(self, reg_id: int) -> int:
        p = self.plat
        if p._multi:
            with p._mx:
                if p._engine_owner is not self:
                    self._ctx_read(self._ctx, reg_id, self._one_ref)
                    return self._one.value
                self._reg_read(self._h, reg_id, self._one_ref)
                return self._one.value
        self._reg_read(self._h, reg_id, self._one_ref)
        return self._one.value

    def _write(self, reg_id: int, value: int) -> None:
        self._one.value = value & MASK64
        p = self.plat
        if p._multi:
            with p._mx:
                if p._engine_owner is not self:
                    self._ctx_write(self._ctx, reg_id, self._one_ref)
                else:
                    self._reg_write(self._h, reg_id, self._one_ref)
            return
        self._reg_write(self._h, reg_id, self._one_ref)

    def _batch(self, write: bool, ids, ptrs, n: int) -> None:
        p = self.plat
        if p._multi:
            with p._mx:
                if p._engine_owner is not self:
                    (self._ctx_write_batch if write else self._ctx_read_batch)(self._ctx, ids, ptrs, n)
                else:
                    (self._write_batch if write else self._read_batch)(self._h, ids, ptrs, n)
            return
        (self._write_batch if write else self._read_batch)(self._h, ids, ptrs, n)

    def syscall_args(self):
        return tuple(self._sc_vals[:7])

    def set_syscall_result(self, value: int) -> None:
        self._write(self._rax_id, value)

    # -- user-visible register state -----------------------------------------
    def get_regs(self) -> list[int]:
        self._batch(False, self._ids, self._ptrs, 18)
        regs = list(self._vals)
        regs[RIP] = self._rip
        return regs

    def set_regs(self, regs: list[int]) -> None:
        vals = self._vals
        for i, v in enumerate(regs):
            vals[i] = v & MASK64
        self._batch(True, self._wids, self._wptrs, 17)
        self._rip = regs[RIP] & MASK64

    def fault(self) -> Fault:
        f = self._fault
        if f is None:
            raise RuntimeError("fault() without a fault exit")
        return f

    def resume_fault(self) -> None:
        """Re-run the faulting instruction: RIP already points at it."""
        self._fault = None

    def set_root(self, root: PageRoot) -> None:
        """Run on another address space from the next run() on (execve after vfork)."""
        p = self.plat
        self.cr3 = root.cr3
        with p._mx:
            if p._engine_owner is self:
                p.uc.reg_write(p._x86.UC_X86_REG_CR3, root.cr3)   # flushes QEMU's TLB
                p._engine_cr3 = root.cr3
            # else: loaded when the vCPU next takes the engine (EmuPlatform._load)

    def get_fs_base(self) -> int:
        return self._read(self._fs_id)

    def set_fs_base(self, value: int) -> None:
        self._write(self._fs_id, value)

    def get_gs_base(self) -> int:
        return self._read(self._gs_id)

    def set_gs_base(self, value: int) -> None:
        self._write(self._gs_id, value)

    def at_user(self) -> bool:
        """Always: the emulated CPU never stops inside kernel code."""
        return True

    def get_fpu(self) -> bytes:
        """The XSAVE image (legacy FXSAVE area + header) of the x87/SSE state."""
        f = self._fpu
        self._batch(False, f.ids, f.ptrs, len(f.ids))
        img = bytearray(XSAVE_SIZE)
        tag = int.from_bytes(f.bufs[2], "little")
        abridged = sum(1 << i for i in range(8) if (tag >> (2 * i)) & 3 != 3)
        struct.pack_into("<HHBxH", img, 0, int.from_bytes(f.bufs[0], "little"),
                         int.from_bytes(f.bufs[1], "little"), abridged, 0)
        struct.pack_into("<II", img, 24, int.from_bytes(f.bufs[3], "little"), 0xFFFF)
        for i in range(8):
            img[32 + 16 * i:32 + 16 * i + 10] = bytes(f.bufs[4 + i])[:10]
        for i in range(16):
            img[160 + 16 * i:176 + 16 * i] = bytes(f.bufs[12 + i])
        struct.pack_into("<Q", img, 512, 3)  # XSTATE_BV: x87 | SSE
        return bytes(img)

    def set_fpu(self, image: bytes) -> None:
        f = self._fpu
        img = bytes(image).ljust(512, b"\0")
        fcw, fsw, abridged = struct.unpack_from("<HHB", img, 0)
        tag = 0
        for i in range(8):
            tag |= (0 if abridged >> i & 1 else 3) << (2 * i)
        for buf, val in ((0, fcw), (1, fsw), (2, tag)):
            ctypes.memmove(f.bufs[buf], val.to_bytes(2, "little"), 2)
        ctypes.memmove(f.bufs[3], img[24:28], 4)
        # ST registers are written before FPSW's TOP would reorder them: write all,
        # then FPSW again, so ST(i) lands where the image says.
        for i in range(8):
            ctypes.memmove(f.bufs[4 + i], img[32 + 16 * i:42 + 16 * i], 10)
        for i in range(16):
            ctypes.memmove(f.bufs[12 + i], img[160 + 16 * i:176 + 16 * i], 16)
        self._batch(True, f.ids, f.ptrs, len(f.ids))
        self._batch(True, f.ids, f.ptrs, 2)  # FPCW, FPSW last (TOP), as above

    def kick(self) -> None:
        """Make a running, waiting (or the next) run() return INTERRUPTED; callable from any thread.

        A vCPU queued for the engine leaves the queue at once. One that is
        emulating is stopped; emu_start clears Unicorn's stop request when it
        begins, so a stop that lands just before it would be lost: repeat it
        until that run has ended.
        """
        self._kicked = True
        p = self.plat
        if p._multi:
            p._cancel_wait(self)
        runs = self._runs
        for _ in range(1000):
            if not self._running or self._runs != runs:
                return
            p._request_stop()
            time.sleep(0.0002)

    def close(self, defer: bool = False) -> None:
        if self._h is not None:
            self.plat._forget(self)
        self._h = None
        return None
