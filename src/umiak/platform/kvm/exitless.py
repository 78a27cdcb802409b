"""System calls without VM exits: a per-vCPU slot, a spinning entry stub, a native host poller.

Under PVM a VM exit costs ~90 µs; handing a request across cores through shared memory
costs ~0.5 µs. So each vCPU gets its own `syscall` entry (its own MSR_LSTAR) in three
pages of the kernel area: the stub's code, its slot, and an alias of the syscall exit
page. The stub posts the request in the slot and spins for a short deadline for it to be
claimed, then on while the poller serves it (a 64 KiB read outlasts the deadline); one
poller thread per VM watches every slot in native code, the GIL released, and returns to Python
only to serve a claimed request through the kernel's one dispatcher. Anything the
poller must not do (a call that may block, touches vCPU state or changes the task, a
thread with a pending signal) it answers "take the real exit", and the stub exits as
before. The poller sleeps after ~1 ms without requests (the stubs then exit at once),
and is woken lazily by the exits that it could have served. It runs nicer than the VM, so
the host's other work takes its core rather than a vCPU's (_yield_to_host).

Slot states (a u32 both sides change; only the host uses atomic operations on it):
  IDLE 0 -> POSTED 1 (stub) -> CLAIMED 2 (poller, CAS) -> DONE 3 / EXIT 4 / DONE_SIG 5;
  POSTED -> IDLE (the vCPU's host thread, CAS, when the vCPU left the stub first).
A request is claimed exactly once: by the poller's CAS or by the host thread's. Whenever
KVM_RUN returns with RIP inside the stub, the host thread settles the state (resolve):
it takes an unclaimed request itself, waits for one the poller holds, or finishes the
stub's return itself, so the kernel only ever sees a vCPU in user code or stopped at a
syscall exit (at_user and get/set regs stay as they were).

The stub's code (code page C, slot S = C + 0x1000, exit page M = C + 0x2000):

    entry:  mov [S+NR], rax ; cmp eax, 202 ; je futex
    back:   cmp dword [S+ENABLED], 0 ; je slow
            mov [S+A0..A5], rdi, rsi, rdx, r10, r8, r9 ; mov [S+AT], rcx
            mov dword [S+STATE], POSTED
    wait:   mov eax, [S+SPIN]
    spin:   pause ; cmp dword [S+STATE], DONE ; je done
            cmp dword [S+STATE], EXIT ; jae slow ; dec eax ; jnz spin
            cmp dword [S+STATE], CLAIMED ; je wait   ; the poller is serving it: wait on
    slow:   mov byte [M], 0             ; the ordinary syscall exit
            sysretq                     ; (VMX/SVM only; unused: PVM only)
    done:   mov rax, [S+REPLY]
            mov [S+USER_RSP], rsp ; lea rsp, [S+STACK_TOP] ; push r11 ; popfq
            mov rsp, [S+USER_RSP] ; mov dword [S+STATE], IDLE
    last:   jmp rcx

It changes no register but rax (and rsp for four instructions, restored from the slot),
so a user state is always at hand. futex (FUTEX_AT..FUTEX_END) answers two calls in the
guest itself, where the host allows it (S+FUTEX: no tracer, the table's own futex):

    futex:  cmp dword [S+FUTEX], 0 ; je back ; test dil, 3 ; jnz back
            mov rax, rdi ; shr rax, 32 ; cmp eax, 0x4000 ; je fbail   ; umiak's kernel area,
            cmp rax, 0x8000 ; jae fbail                     ; or past user space: EFAULT there
            cmp esi, 0x81 ; je fwake                        ; FUTEX_WAKE_PRIVATE
            mov eax, esi ; and eax, ~0x180 ; cmp eax, 9 ; je fbitset  ; FUTEX_WAIT_BITSET,
            test esi, ~0x80 ; jnz fbail ; jmp fwait         ; or FUTEX_WAIT,
    fbitset: cmp r9d, -1 ; jne fbail                        ; any bit (glibc's condvars)
    fwait:  test r10, r10 ; jnz fbail                       ; and no timeout
            mov eax, [S+FSPIN]
    fload:  cmp edx, [rdi] ; jne fagain                     ; a fault here bails (run)
            sub eax, 1 ; jb fbail ; pause ; jmp fload
    fbail:  mov rax, [S+NR] ; jmp back                      ; the call as any other
    fwake:  mfence ; mov eax, edi ; shr eax, 2 ; and eax, 63
            bt qword [S+WAITERS], rax ; jc fbail            ; a waiter on the host may match
            xor eax, eax ; jmp freply                       ; nobody to wake: 0
    fagain: mov rax, -EAGAIN
    freply: mov [S+REPLY], rax ; mov dword [S+STATE], DONE ; jmp done

A wait whose word differs is EAGAIN, as Linux checks it; one that still matches spins
for FSPIN pauses first (the partner of a ping-pong answers within them), then blocks on
the host as before. A private wake is 0 with no host waiter in its bucket of WAITERS (a
bit per (uaddr >> 2) & 63, set by the host before it reads the word of a wait it
queues: mfence on both sides, so a wake either sees the bit or the waiter sees the new
word). The program's wait in the guest is a waiter not yet queued, which Linux has too. Under PVM the slot is writable by the program: the
host reads a request once and sanitises the flags it returns with.
"""

import ctypes
import os
import threading
import time

IDLE, POSTED, CLAIMED, DONE, EXIT, DONE_SIG = range(6)

# Slot layout (byte offsets in the slot page): request, state, reply and the host's
# settings each on a cache line of their own. AT (after the six arguments) is where the
# call returns to (rcx): the poller hands back a call from a site it has not seen (rewrite.py).
NR_OFF, ARGS_OFF, STATE_OFF, REPLY_OFF, ENABLED_OFF, SPIN_OFF, USER_RSP_OFF = (
    0x00, 0x08, 0x40, 0x80, 0xC0, 0xC4, 0x100)
FUTEX_OFF, FSPIN_OFF, WAITERS_OFF = 0xC8, 0xCC, 0x180   # the guest's futex: on, spin, host waiters
STACK_LO, STACK_TOP = 0x200, 0x240

STUB_CODE = bytes.fromhex(
    "488905f90f00003dca0000000f84ce000000833da710000000746248893de60f0000488935e7"
    "0f0000488915e80f00004c8915e90f00004c8905ea0f00004c890deb0f000048890dec0f0000"
    "c705ea0f0000010000008b0568100000f390833ddb0f0000037420833dd20f000004730dffc8"
    "75e8833dc50f00000274d9c6057c1f000000480f07488b05f20f00004889256b100000488d25"
    "a411000041539d488b255a100000c705900f000000000000ffe1")
DONE_AT, LAST_AT = 0x87, 0xB0   # offsets of `done` and `last` in STUB_CODE

# The entry of rewritten syscall sites (kernel/rewrite.py), at RW_AT in the same page: a site's
# trampoline jumps here through the slot's RW_PTR (%gs is the slot page) with rax = nr and
# rcx = the return address, as `syscall` leaves them; this puts the flags in r11 (on the
# slot's stack: the program's red zone stays untouched) and goes on as the syscall entry.
# None of its instructions changes a flag, so RFLAGS is the program's until `entry`.
#   rw:   mov [S+USER_RSP], rsp ; lea rsp, [S+STACK_TOP] ; pushfq ; pop r11
#         mov rsp, [S+USER_RSP] ; jmp entry
RW_AT, RW_END = 0xC0, 0xDD
RW_CODE = bytes.fromhex("48892539100000488d25721100009c415b488b2528100000e923ffffff")
RW_PTR_OFF = 0x140   # in the slot page: the address of this vCPU's rw entry

# The guest's futex (see the module docstring), at FUTEX_AT in the same page; FLOAD_AT is
# its one access to the program's memory, FBAIL_AT where a fault there goes on instead.
FUTEX_AT, FLOAD_AT, FBAIL_AT, FUTEX_END = 0xE0, 0x13C, 0x149, 0x18B
FUTEX_CODE = bytes.fromhex(
    "833de10f0000000f8425ffffff40f6c7030f851bffffff4889f848c1e8203d00400000744448"
    "3d00800000733c81fe81000000744089f0257ffeffff83f809740af7c67fffffff7520eb0641"
    "83f9ff75184d85d275138b05900f00003b17752e83e8017204f390ebf3488b05b00e0000e9bd"
    "feffff0faef089f8c1e80283e03f480fa3051810000072df31c0eb0748c7c0f5ffffff488905"
    "040f0000c705ba0e000003000000e9fcfeffff")
FUTEX_SPIN_US = 20       # a guest futex wait spins this long before it blocks on the host

# The host's side: poll(states**, n, tsc_ticks, ctl*, claimed*) -> index claimed, -1 idle,
# -2 ctl set (*claimed holds the index from before the CAS until the poller answers: the one
# word that tells a real claim from a state the program wrote); claim(state*) -> 1 when
# POSTED became IDLE here; spin(n): n pauses (calibration).
#   poll:  push rbx; mov rbx,r8; mov r9,rdx; rdtsc; shl rdx,32; or rax,rdx; mov r8,rax
#   outer: xor r10d,r10d
#   inner: cmp r10,rsi; jae pass; mov r11,[rdi+r10*8]; cmp dword [r11],1; jne next
#          mov [rbx],r10; mov eax,1; mov edx,2; lock cmpxchg [r11],edx; jne undo
#          mov rax,r10; pop rbx; ret
#   undo:  mov qword [rbx],-1
#   next:  inc r10; jmp inner
#   pass:  cmp qword [rcx],0; jne stop; pause; rdtsc; shl rdx,32; or rax,rdx; sub rax,r8
#          cmp rax,r9; jb outer; mov rax,-1; pop rbx; ret
#   stop:  mov rax,-2; pop rbx; ret
#   claim: mov eax,1; xor edx,edx; lock cmpxchg [rdi],edx; sete al; movzx eax,al; ret
#   spin:  pause; dec rdi; jnz spin; ret
#   fence: mfence; ret
_HOST_CODE = bytes.fromhex(
    "534c89c34989d10f3148c1e2204809d04989c04531d24939f2732f4e8b1cd741833b0175204c"
    "8913b801000000ba02000000f0410fb11375054c89d05bc348c703ffffffff49ffc2ebcc4883"
    "3900751cf3900f3148c1e2204809d04c29c04c39c872b048c7c0ffffffff5bc348c7c0feffff"
    "ff5bc3b80100000031d2f00fb1170f94c00fb6c0c3f39048ffcf75f9c30faef0c3")
_POLL_AT, _CLAIM_AT, _SPIN_AT, _FENCE_AT = 0x00, 0x75, 0x87, 0x8F

USER_FLAGS = 0x240DD5    # CF PF AF ZF SF TF DF OF AC ID: what a program may set in RFLAGS
SPIN_US = 15             # the stub's deadline (10-20 µs suffices while the poller is on a CPU)
IDLE_MS = 1.0            # the poller sleeps after this long without a request
WAKE_AFTER = 4           # exits it could have served wake a sleeping poller
BUSY_S = 0.002            # a vCPU that entered KVM_RUN this recently counts as busy (_busy)
CHECK_EVERY = 256        # while calls flow, the poller looks at the vCPUs' load this often
BACKOFF_MAX = 1.0        # seconds a fruitless poller stays asleep at most (doubling from 10 ms)
POLLER_NICE = 10         # the poller runs this much nicer than the VM (_yield_to_host)


_CALIBRATION: tuple[float, float] | None = None   # the host's: measured once per process


class _Native:
    """The host's machine code, mapped executable once per Exitless."""

    def __init__(self):
        from umiak.arch.x86_64.native import CodePage
        code = CodePage(_HOST_CODE)   # each function keeps it alive
        u64, vp = ctypes.c_uint64, ctypes.c_void_p
        # CFUNCTYPE releases the GIL for the call: the poller spins without it.
        self.poll = code.function(ctypes.c_int64, vp, u64, u64, vp, vp, offset=_POLL_AT)
        self.claim = code.function(ctypes.c_int, u64, offset=_CLAIM_AT)
        self.spin = code.function(None, u64, offset=_SPIN_AT)
        self.fence = code.function(None, offset=_FENCE_AT)

    def calibrate(self) -> tuple[float, float]:
        """(pauses per µs, TSC ticks per µs) here, measured once per process (a property
        of the host). The guest's `pause` costs the same: under PVM it is not trapped."""
        global _CALIBRATION
        if _CALIBRATION is None:
            _CALIBRATION = self._measure()
        return _CALIBRATION

    def _measure(self) -> tuple[float, float]:
        from umiak.arch.x86_64.tsc import host_rdtsc
        n = 10000
        best, ticks = float("inf"), 0
        for _ in range(2):
            t0, c0 = time.perf_counter_ns(), host_rdtsc()
            self.spin(n)
            t1, c1 = time.perf_counter_ns(), host_rdtsc()
            if t1 - t0 < best:
                best, ticks = t1 - t0, c1 - c0
        best = max(best, 1)
        return max(1.0, n * 1000 / best), max(1.0, ticks * 1000 / best)


class Slot:
    """One vCPU's code, slot and exit pages (guest-physical code_pa, slot_pa)."""

    __slots__ = ("index", "vcpu", "code_va", "slot_pa", "state_i", "nr_q", "reply_q", "rsp_q", "host_state")

    def __init__(self, index: int, vcpu, code_va: int, slot_pa: int, hva: int):
        self.index = index   # in Exitless.slots, as the poller reports it
        self.vcpu = vcpu
        self.code_va = code_va
        self.slot_pa = slot_pa
        self.state_i = (slot_pa + STATE_OFF) // 4
        self.nr_q = (slot_pa + NR_OFF) // 8
        self.reply_q = (slot_pa + REPLY_OFF) // 8
        self.rsp_q = (slot_pa + USER_RSP_OFF) // 8
        self.host_state = hva + slot_pa + STATE_OFF


class Exitless:
    """The exitless path of one VM: its slots and its poller thread.

    serve(vcpu, nr, a, b, c, d, e, f, at) -> (result, signal pending) | None is the kernel's
    (at: where the call returns to, as the program left it):
    None means "take the real exit". may_serve(nr) is a cheap pre-filter the vCPU threads
    use to count exits the poller could have saved (the lazy wake)."""

    def __init__(self, plat, serve, may_serve, forced: bool = False):
        self.plat = plat
        self.forced = forced   # EXITLESS=y: poll whenever calls come, whatever the host's load
        self.serve = serve
        self.may_serve = may_serve
        # The host's code and the stub's deadline, made when the poller first starts
        # (_ready): a run whose poller never wakes does not pay for them.
        self.native: _Native | None = None
        self.ticks_per_us = 0.0
        self.spin_iters = 0
        self.slots: list[Slot] = []
        self._addrs = (ctypes.c_uint64 * 1)()
        self._n = 0
        self._ctl = ctypes.c_uint64(0)
        self._claimed = ctypes.c_int64(-1)   # the slot index the poller holds (host memory)
        self._wake = threading.Event()
        self._closing = False
        self.awake = False
        self.asleep_exits = 0
        self.quiet_until = 0.0   # time.monotonic() before which exits do not wake the poller
        self._backoff = 0.0
        self.cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        # Figures for --verbose: calls served here, syscall exits, hand-backs.
        self.served = 0
        self.exits = 0
        self.punted = 0
        self.fallbacks = 0   # requests the stub gave up on (deadline) and the host took
        self.failed = 0      # calls whose handler raised on the poller (handed back)
        self._u32 = plat.ram.cast("I")
        self._q = plat.ram.cast("Q")
        self._thread: threading.Thread | None = None
        self.rewriter = None   # kernel/rewrite.py's Rewriter, when sites are rewritten (for summary)
        self._cpu_base = 0.0   # the poller's CPU before this run (a recycled VM's: rebind)
        self.futex_on = False   # the guest answers futex calls (set by the kernel: set_futex)
        self.waiters = 0        # the WAITERS bits every slot holds (set_waiters)

    # -- the kernel it serves -----------------------------------------------------------
    def unbind(self) -> None:
        """The run is over and its VM kept (Platform.recycle): no kernel serves calls until
        rebind(); meanwhile the stubs exit at once (a kernel that does not enable the path,
        a restored snapshot's, runs them so, at the price of a plain exit)."""
        self.serve, self.may_serve = _exit_instead, _never
        self.forced = False
        self.rewriter = None   # the old kernel's
        self._set_enabled(False)
        self.set_futex(False)
        self.set_waiters(0)
        self._new_figures()

    def rebind(self, serve, may_serve, forced: bool) -> None:
        """The next run's kernel serves from now on."""
        self.serve, self.may_serve, self.forced = serve, may_serve, forced
        self.quiet_until = self._backoff = 0.0
        self._new_figures()

    def _new_figures(self) -> None:
        """--verbose's figures count from here (the next run on a recycled VM)."""
        self.served = self.exits = self.punted = self.fallbacks = self.failed = 0
        self.asleep_exits = 0
        self._cpu_base = self._thread_cpu()

    # -- slots ---------------------------------------------------------------------------
    def attach(self, vcpu, code_va: int, slot_pa: int) -> Slot:
        """Give vcpu its slot (its stub code is already in place)."""
        s = Slot(len(self.slots), vcpu, code_va, slot_pa, self.plat._hva)
        # Before the poller's calibration (_ready): ~40 pauses a µs, about a 2020s core's.
        self._u32[(slot_pa + SPIN_OFF) // 4] = self.spin_iters or SPIN_US * 40
        self._u32[(slot_pa + ENABLED_OFF) // 4] = 1 if self.awake else 0
        self._u32[(slot_pa + FUTEX_OFF) // 4] = int(self.futex_on)
        self._u32[(slot_pa + FSPIN_OFF) // 4] = self._futex_spin()
        self._q[(slot_pa + WAITERS_OFF) // 8] = self.waiters
        self.slots.append(s)
        self._ctl.value = 1   # the poller picks the new slot up
        return s

    def _set_enabled(self, on: bool) -> None:
        self._put(ENABLED_OFF, int(on))

    def _put(self, off: int, value: int) -> None:
        """A u32 of the host's settings, in every slot."""
        for s in self.slots:
            self._u32[(s.slot_pa + off) // 4] = value

    # -- the guest's futex (the module docstring) ----------------------------------------
    def _futex_spin(self) -> int:
        """FSPIN: pauses in FUTEX_SPIN_US (~40 a µs before the calibration, _ready)."""
        per_us = self.spin_iters / SPIN_US if self.spin_iters else 40
        return int(per_us * FUTEX_SPIN_US)

    def set_futex(self, on: bool) -> None:
        """Let the stubs answer futex waits and private wakes themselves, or not (a tracer
        must see every call; an app kernel may lack futex)."""
        if on != self.futex_on:
            self.futex_on = on
            self._put(FUTEX_OFF, int(on))

    def set_waiters(self, bits: int) -> None:
        """The buckets (a bit per (uaddr >> 2) & 63) that have a waiter queued on the host,
        in every slot, then a fence: the kernel reads the word of a wait only after this."""
        if bits != self.waiters:
            self.waiters = bits
            for s in self.slots:
                self._q[(s.slot_pa + WAITERS_OFF) // 8] = bits
        if bits:
            self._ready().fence()

    # -- the vCPU thread's side --------------------------------------------------------------
    def note_exit(self, nr: int) -> None:
        """A syscall exit while the poller sleeps: wake it after a few it could have served."""
        if self.may_serve(nr):
            self.asleep_exits += 1
            if self.asleep_exits >= WAKE_AFTER:
                self.asleep_exits = 0
                if self.forced or time.monotonic() >= self.quiet_until:
                    if self._thread is None:
                        self.start()
                    self._wake.set()

    def wait_reply(self, s: Slot) -> int:
        """The poller holds this vCPU's request: wait for its answer (rare: the vCPU was
        stopped while the poller served it). A CLAIMED the poller does not hold was written
        by the program: the request is then taken as EXIT (the vCPU's thread serves it)."""
        u32, i = self._u32, s.state_i
        mine = s.index
        delay = 0.0
        while True:
            st = u32[i]
            if st == CLAIMED:
                held = self._claimed.value
                if u32[i] == CLAIMED and held != mine:
                    return EXIT
            elif st != POSTED:
                return st
            time.sleep(delay)
            delay = min(delay * 2 or 0.00002, 0.001)

    # -- the poller ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="umiak-exitless", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._closing = True
        self._ctl.value = 1
        self._wake.set()

    def _busy(self) -> int:
        """vCPUs that run now or ran within BUSY_S: two threads that take turns (a futex
        ping-pong) both count, so the poller leaves them both a core."""
        since = time.monotonic() - BUSY_S
        return sum(1 for s in self.slots if s.vcpu._in_run or s.vcpu._ran_at > since)

    def _crowded(self) -> bool:
        """The vCPUs want every core (EXITLESS=y aside): the poller leaves them one."""
        return not self.forced and self._busy() >= self.cores

    def _host_full(self) -> bool:
        """Other threads of the host fill every core now. The count of threads runnable at
        this instant (not the load average: it lags by a minute and counts this VM's own
        spinning), less this poller and the VM's busy vCPUs; a client that mostly waits
        (a benchmark talking to the guest) leaves room, which the fallback count checks."""
        try:
            with open("/proc/loadavg", "rb") as f:
                running = int(f.read().split()[3].split(b"/")[0])
        except (OSError, ValueError, IndexError):
            return False
        return running - 1 - self._busy() >= self.cores

    def _ready(self) -> _Native:
        """The host's code, and each slot's spin deadline in pauses (before any is enabled)."""
        if self.native is None:
            native = _Native()
            pauses, self.ticks_per_us = native.calibrate()
            self.spin_iters = int(pauses * SPIN_US)
            self._put(SPIN_OFF, self.spin_iters)
            self._put(FSPIN_OFF, self._futex_spin())
            self.native = native
        return self.native

    def _run(self) -> None:
        _yield_to_host()
        poll = self._ready().poll
        idle_ticks = int(self.ticks_per_us * 1000 * IDLE_MS)
        while not self._closing:
            self._wake.wait()
            self._wake.clear()
            if self._closing:
                break
            if self._crowded() or not self.forced and self._host_full():
                self._fruitless()   # no core to spare: spinning here would starve a vCPU
                continue
            self.awake = True
            self._set_enabled(True)
            served = total = 0
            fallbacks = self.fallbacks
            addrs, n = self._addrs, self._n
            ctl, claimed = ctypes.addressof(self._ctl), ctypes.addressof(self._claimed)
            slots, serve_one = self.slots, self._serve_one
            crowded = False   # the vCPUs want every core
            while not self._closing:
                if self._ctl.value:   # a slot came (attach) or close() was called
                    self._ctl.value = 0
                    n = self._n = len(slots)
                    addrs = self._addrs = (ctypes.c_uint64 * max(n, 1))(*[s.host_state for s in slots])
                i = poll(addrs, n, idle_ticks, ctl, claimed)
                while i >= 0:   # the common case first: a request, and the next poll at once
                    if serve_one(slots[i]):
                        served += 1
                        total += 1
                        if not total % CHECK_EVERY and self._crowded():
                            crowded = True   # leave them one
                            break
                    i = poll(addrs, n, idle_ticks, ctl, claimed)
                if crowded:
                    break
                if i == -2:   # the control word changed: read it again
                    continue
                # A quiet millisecond, only hand-backs, or no core to spare: sleep.
                if self._crowded():
                    crowded = True
                    break
                if served == 0:
                    break
                served = 0
            self._set_enabled(False)
            self.awake = False
            self.asleep_exits = 0
            # Worth it only while the poller answers before the stubs give up: a poller
            # that is not on a CPU when calls come (a loaded host) costs them the deadline.
            # A wake that met no call at all (the program went quiet) proves nothing.
            missed = self.fallbacks - fallbacks
            if crowded or missed and total <= 2 * missed:
                self._fruitless()
            elif total:
                self._backoff = 0.0

    def _fruitless(self) -> None:
        self._backoff = min(max(self._backoff * 2, 0.01), BACKOFF_MAX)
        self.quiet_until = time.monotonic() + self._backoff

    def _serve_one(self, s: Slot) -> bool:
        """Answer one claimed request: served (DONE) or handed back (EXIT)."""
        q, u32 = self._q, self._u32
        base = s.nr_q
        nr, a, b, c, d, e, f, at = q[base:base + 8]   # read once: the program may change the slot
        try:
            got = self.serve(s.vcpu, nr, a, b, c, d, e, f, at)
        except Exception:   # noqa: BLE001 - the vCPU thread redoes the call and reports
            self.failed += 1
            got = None
        if got is None:
            self.punted += 1
            u32[s.state_i] = EXIT
            self._claimed.value = -1   # after the answer (wait_reply reads them the other way)
            return False
        ret, signal = got
        q[s.reply_q] = ret & 0xFFFF_FFFF_FFFF_FFFF
        self.served += 1
        u32[s.state_i] = DONE_SIG if signal else DONE
        self._claimed.value = -1
        return True

    def poller_cpu(self) -> float:
        """CPU seconds the poller thread used in this run so far."""
        raw = self._thread_cpu()
        return raw - self._cpu_base if raw else 0.0

    def _thread_cpu(self) -> float:
        """CPU seconds the poller thread used since it started (0 before)."""
        t = self._thread
        if t is None or t.ident is None:
            return 0.0
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(t.ident))
        except (OSError, AttributeError):
            return 0.0

    def summary(self) -> str:
        total = self.served + self.exits
        share = 100.0 * self.served / total if total else 0.0
        return (f"exitless: {self.served} of {total} syscalls ({share:.1f}%) served without a VM exit, "
                f"{self.punted} handed back ({self.failed} failed), {self.fallbacks} past the deadline; "
                f"poller CPU {self.poller_cpu() * 1000:.1f} ms"
                + (f"; {self.rewriter.rewritten} syscall sites rewritten" if self.rewriter is not None else ""))


def _yield_to_host() -> None:
    """Make this thread, the poller, give way to the host's other work. Its spin only
    saves the vCPUs their exits; at the VM's own priority it counted as one more busy
    thread, and the scheduler put a busy client (redis-benchmark, wrk) on a vCPU's core as
    often as on its own: the guest stood still while the poller spun for nothing. Nicer,
    the client shares the poller's core (redis -P 1 ~23k -> ~30k requests a second on 2
    cores, benchmarks/net.py). nice, not SCHED_IDLE: that starved the poller while it held
    a claimed request (stalls of 0.5 s); nice 10 keeps it ~10% of a contended core."""
    tid = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, now + POLLER_NICE))   # Linux: per thread
    except OSError:
        pass   # a seccomp'd or odd host: the poller keeps the VM's priority


def _exit_instead(vcpu, nr: int, *args) -> None:
    """serve() while no kernel is bound (unbind): every call takes the real exit."""
    return None


def _never(nr: int) -> bool:
    return False
