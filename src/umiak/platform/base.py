"""The platform interface: what the kernel may ask of a CPU and its memory.

Guest RAM is one host buffer; a guest-physical address is an offset into it.
The kernel allocates frames in `Platform.usable` and asks the platform to map
them at guest-virtual pages; the platform owns how the CPU sees that mapping
(page tables, TLB and shadow-MMU invalidation).
"""

import functools
from array import array
from enum import IntEnum
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable

# Register order of Linux's struct kvm_regs, used for every platform.
REG_NAMES = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags")
RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP = range(8)
R8, R9, R10, R11, R12, R13, R14, R15, RIP, RFLAGS = range(8, 18)


def frame_runs(frames: "list[int] | FrameRuns"):
    """Contiguous runs (start, length) of guest-physical frames (the low 12 bits of each
    are ignored, so page-table-like entries may be given), so host calls on guest RAM
    (madvise, mprotect) are made once per run, not once per page. A frame given twice
    ends a run there and starts the next (share_many counts it twice). FrameRuns found
    already pass through."""
    if isinstance(frames, FrameRuns):
        yield from frames
        return
    for first, length in entry_runs(frames):
        yield first & ~0xFFF, length


def entry_runs(entries: "Iterable[int]"):
    """Runs (first entry, length in bytes) of entries (frame | low bits) whose frames follow
    each other and whose low 12 bits are the same, so a run is all writable or all not.

    A fork hands in every page of the process: past a few entries the gaps are found on
    the entries packed as one integer (a 64-bit lane each) by C loops, with no object
    made per entry, so the Python work is per run."""
    s = sorted(entries)
    n = len(s)
    if n < 32:
        first = prev = -1
        for e in s:
            if first < 0:
                first = prev = e
            elif e == prev + 4096:
                prev = e
            else:
                yield first, prev + 4096 - first
                first = prev = e
        if first >= 0:
            yield first, prev + 4096 - first
        return
    # A chunk of entries at a time: its temporaries (32 KiB) are memory the allocator hands
    # out again, where one 512 KiB integer per step for a 256 MiB fork met fresh pages (a
    # first-touch fault each) and took twice as long. A run may go on into the next chunk.
    full = _full_chunk()
    first = last = -8192
    for c0 in range(0, n, _RUNS_CHUNK):
        m = min(_RUNS_CHUNK, n - c0)
        lanes = int.from_bytes(array("Q", s[c0:c0 + m]), "little")
        page = full if m == _RUNS_CHUNK else int.from_bytes(_LANE_PAGE * m, "little")
        # Lane i of the XOR is zero where entry i+1 is entry i's next frame with the same low
        # bits (the last lane never is).
        gaps = ((lanes >> 64) ^ (lanes + page)).to_bytes(8 * m, "little").translate(_NONZERO)
        i = 0
        while i < m:
            j = gaps.find(1, 8 * i) >> 3    # the lane where this run ends
            a = s[c0 + i]
            if a != last + 4096:            # not the previous chunk's last run going on
                if first >= 0:
                    yield first, last + 4096 - first
                first = a
            last = s[c0 + j]
            i = j + 1
    yield first, last + 4096 - first


class FrameRuns(list):
    """What frame_runs found, kept to be handed on instead of the frames (a fork gives
    the same frames new references and drops their writable translations)."""


@functools.cache
def _full_chunk() -> int:
    """A chunk of lanes each holding 4096 (made once: a 32 KiB integer takes ~80 us)."""
    return int.from_bytes(_LANE_PAGE * _RUNS_CHUNK, "little")


_LANE_PAGE = (4096).to_bytes(8, "little")
_RUNS_CHUNK = 4096   # entries entry_runs looks at a step
_NONZERO = bytes([0] + [1] * 255)


class PageRoot:
    """One address space's page-table root, as the kernel's AddressSpace sees the platform.

    Each process has its own; a vCPU runs on the root it was created with (or was
    moved to with Vcpu.set_root). Invalidation is by frame and reaches every root,
    so lowering a permission here also drops what other roots cached for the frame."""

    __slots__ = ("platform", "pt", "ram", "cr3")

    def __init__(self, platform, pt):
        self.platform = platform
        self.pt = pt            # arch PageTables
        self.ram = platform.ram
        self.cr3 = pt.root

    def map_page(self, va: int, pa: int, prot: int) -> None:
        self.platform.map_page(va, pa, prot, self.pt)

    def map_run(self, va: int, pa: int, count: int, prot: int) -> None:
        self.platform.map_run(va, pa, count, prot, self.pt)

    def unmap_page(self, va: int) -> None:
        self.platform.unmap_page(va, self.pt)

    def invalidate(self, frames: list[int]) -> None:
        self.platform.invalidate(frames)

    def write_protect(self, frames: list[int]) -> None:
        self.platform.write_protect(frames)

    def copy_to(self, dst: "PageRoot", start: int, end: int, clear_write: bool) -> None:
        """fork: dst maps [start, end) as this root does; clear_write makes both read-only
        (the caller invalidates the frames whose write permission went)."""
        self.platform.copy_ptes(self.pt, dst.pt, start, end, clear_write)

    def discard(self, frames: list[int]) -> None:
        self.platform.discard(frames)


class ExitKind(IntEnum):
    SYSCALL = 1      # the guest executed `syscall`; see Vcpu.syscall_args
    FAULT = 2        # a CPU exception in user code; see Vcpu.fault
    INTERRUPTED = 3  # stopped on request (Vcpu.kick) or by a host signal
    HALT = 4         # the guest cannot continue (reason in Vcpu.error)


class Fault(NamedTuple):
    vector: int      # x86 exception vector (14 = page fault, 13 = #GP, 6 = #UD, 0 = #DE, 3 = #BP)
    error_code: int
    address: int     # CR2 for page faults, else 0
    rip: int         # user instruction pointer of the faulting instruction


class Vcpu(Protocol):
    """One guest CPU, run by one host thread."""

    error: str

    def run(self) -> ExitKind: ...
    def syscall_args(self) -> tuple[int, int, int, int, int, int, int]: ...
    def set_syscall_result(self, value: int) -> None: ...
    def get_regs(self) -> list[int]: ...
    def set_regs(self, regs: list[int]) -> None: ...
    def fault(self) -> Fault: ...
    def resume_fault(self) -> None: ...
    def get_fs_base(self) -> int: ...
    def set_fs_base(self, value: int) -> None: ...
    def get_gs_base(self) -> int: ...
    def set_gs_base(self, value: int) -> None: ...
    def kick(self) -> None: ...
    def at_user(self) -> bool: ...            # stopped in user code, not inside a kernel stub
    def get_fpu(self) -> bytes: ...           # XSAVE image of the FPU/SSE/AVX state
    def set_fpu(self, image: bytes) -> None: ...
    def set_root(self, root: PageRoot) -> None: ...   # run on another address space (execve)
    def close(self, defer: bool = False) -> int | None: ...


class Platform(Protocol):
    """A machine the kernel runs on (kvm, emu). Both subclass it, so the optional
    methods at the end are inherited with their no-op defaults where a platform has
    no use for them: the kernel calls them without asking whether they exist."""

    name: str
    ram: memoryview           # guest RAM, writable bytes; index = guest-physical address
    mem_size: int
    usable: tuple[int, int]   # guest-physical range the kernel may allocate frames from
    reserved_va: list[tuple[int, int]]   # guest-virtual ranges user mappings must avoid
    xsave_size: int           # bytes of the XSAVE image get_fpu returns
    cpu_model: str            # the CPU it presents (umiak.arch.x86_64.cpumodel): host | baseline

    def create_vcpu(self, entry: int, stack: int, root: PageRoot | None = None) -> Vcpu: ...
    def new_root(self) -> PageRoot: ...               # a page-table root for a new address space
    def release_root(self, root: PageRoot) -> None: ...   # its pages are all unmapped: reuse it
    def map_page(self, va: int, pa: int, prot: int, pt=None) -> None: ...   # pt: a PageRoot's tables
    def unmap_page(self, va: int, pt=None) -> None: ...
    def copy_ptes(self, src, dst, start: int, end: int, clear_write: bool) -> None: ...
    def invalidate(self, frames: list[int]) -> None: ...
    def discard(self, frames: list[int]) -> None: ...
    def cpu_features(self) -> dict[str, int]: ...   # hwcap, hwcap2, minsigstksz for the auxv
    def describe(self) -> str: ...
    def close(self) -> None: ...         # may finish on a background thread: see platform.wait_released

    # -- optional, with defaults ---------------------------------------------------------
    def map_run(self, va: int, pa: int, count: int, prot: int, pt=None) -> None:
        """map_page() for count pages from va onto the consecutive frames from pa, none of
        them mapped now (a fresh mapping's pages): a platform may write them in bulk."""
        for i in range(count):
            self.map_page(va + i * 4096, pa + i * 4096, prot, pt)

    def write_protect(self, frames: list[int]) -> None:
        """invalidate() where only the write permission of the frames went and every one
        stays mapped where it was (a fork), so a platform may keep read translations."""
        self.invalidate(frames)

    def tsc_clock(self, vcpu) -> tuple[int, int] | None:
        """(guest TSC kHz, guest TSC - host TSC) when guest code reads the TSC natively
        (the kernel then serves clocks from the vDSO), else None."""
        return None

    def precise_interrupts(self) -> None:
        """From now on a kick must stop the vCPU exactly (a signal handler may resume the
        program): the kernel calls this when a program installs its first handler."""
        return None

    def prepare(self) -> None:
        """Do ahead what the first run would (a warm VM waiting for its program)."""
        return None

    # Frames below this guest-physical address may hold an earlier run's data (a recycled
    # VM): the kernel's FrameAllocator clears each one as it hands it out.
    dirty_end: int = 0

    def clear(self, pa: int, length: int) -> None:
        """Zero guest RAM in place (its translations stay: unlike discard)."""
        self.ram[pa:pa + length] = bytes(length)

    def recycle(self, used_end: int) -> bool:
        """Keep this VM for its Machine's next run instead of closing it (the run is over:
        no vCPU runs any more, frames below used_end were handed out). False: close it as usual."""
        return False
