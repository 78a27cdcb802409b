"""Guest-physical page frames: who owns which 4 KiB of guest RAM.

Free frames are always zero (they are discarded to the host when freed and the
RAM starts zeroed), so anonymous memory needs no clearing. In a recycled VM
(Platform.recycle) the frames below `dirty_end` still hold the run before's data:
each is cleared in place as it is handed out, so its translations stay warm.
"""

import mmap

from umiak.kernel.errors import GuestOutOfMemory
from umiak.platform.base import FrameRuns, frame_runs

PAGE = 4096


class FrameAllocator:
    def __init__(self, start: int, end: int, discard, dirty_end: int = 0, clear=None):
        self._next = start
        self._end = end
        self._dirty_end = dirty_end   # frames from _next below this are cleared when handed out
        self._clear = clear           # platform.clear(pa, length): zero in place
        self._retired = False         # retire(): the kernel is done with the VM
        self._ending = False          # ending(): frames released from now on stay as they are
        self._free: list[int] = []
        self._discard = discard  # platform.discard: return frames to the host
        # Each frame has one holder when allocated (a private page, or a page cache); every
        # further holder (a page-table entry mapping a cache page, an address space sharing a
        # page copy-on-write since fork) is an extra reference here, indexed by frame number
        # (pa >> 12): 32-bit counters, so fork's one increment per page neither hashes nor
        # grows a dict; in an anonymous host mapping, so the zeros cost no memory until used.
        self._refs_mem = mmap.mmap(-1, max(PAGE, 4 * (end // PAGE)))
        self.refs = memoryview(self._refs_mem).cast("I")
        self.shares = 0   # counts share/share_many calls: no frame gained a holder while unchanged

    @property
    def free_bytes(self) -> int:
        return (self._end - self._next) + len(self._free) * PAGE

    @property
    def total_bytes(self) -> int:
        return self._end

    def retire(self) -> None:
        """The kernel is done with its VM: any later release (a finalizer of one of its files
        run by the garbage collector, say) changes nothing, as the VM's frames may be the
        next run's by then (Platform.recycle): discarding one would zero that run's page."""
        self._retired = True
        self._free = []
        self._used_end, self._next = self._next, self._end   # and nothing more is handed out

    def ending(self) -> None:
        """The VM ends (pid 1 exited): frames released from now on are neither discarded nor
        handed out again. Discarding is what returns memory to a VM that goes on; at its end
        it would only cost a recycled VM (Platform.recycle) its translations: KVM drops a
        discarded frame's shadow entries, so the next run would fault in again every page it
        maps the same (the program's text, the page cache's). The frames' data stays until a
        later run's allocator clears them (dirty_end) or the VM is closed."""
        self._ending = True

    def alloc(self) -> int:
        if self._free:
            return self._free.pop()
        pa = self._next
        if pa >= self._end:
            raise GuestOutOfMemory("no free guest frame")
        self._next = pa + PAGE
        if pa < self._dirty_end:
            self._clear(pa, PAGE)
        return pa

    @property
    def used_end(self) -> int:
        """The end of the frames ever handed out (what a recycled VM must clear)."""
        return self._used_end if self._retired else self._next

    def alloc_run(self, n: int, filled: bool = False) -> int | None:
        """n consecutive frames (their first address) from the never-used end, or None (then
        alloc() them one by one): a restored snapshot's pages are written in runs.
        filled: the caller writes every byte of them (or scrub()s what it does not)."""
        pa = self._next
        if pa + n * PAGE > self._end:
            return None
        self._next = pa + n * PAGE
        if not filled:
            self.scrub(pa, n * PAGE)
        return pa

    def scrub(self, pa: int, length: int) -> None:
        """Clear what of these frames may hold a recycled VM's old data (below dirty_end):
        alloc_run's frames, or those got with filled=True that the caller did not fill."""
        if pa < self._dirty_end:
            self._clear(pa, min(length, self._dirty_end - pa))

    def share(self, pa: int) -> None:
        """One more holder (a mapping of a page-cache frame, a fork's COW page) refers to the frame."""
        self.refs[pa >> 12] += 1
        self.shares += 1

    def share_many(self, frames: "list[int] | FrameRuns") -> None:
        """One more holder for each frame (fork: the child maps them all; the low 12 bits
        of each are ignored, so page entries may be given). A run of consecutive frames
        has its counters raised as one integer (a 1 added in every 32-bit lane), so the
        Python work is per run, not per page; a frame given twice is counted twice."""
        refs = memoryview(self.refs).cast("B")
        self.shares += 1
        for start, length in frame_runs(frames):
            lo, hi = start >> 10, (start + length) >> 10    # byte offsets: 4 per frame
            ones = int.from_bytes(_ONE * (length >> 12), "little")
            refs[lo:hi] = (int.from_bytes(refs[lo:hi], "little") + ones).to_bytes(hi - lo, "little")

    def users(self, pa: int) -> int:
        """Holders of the frame besides the first (0: only its owner holds it)."""
        return self.refs[pa >> 12]

    def release(self, frames: list[int]) -> list[int]:
        """Drop one reference to each frame; frames nobody uses are discarded and freed.

        Returns the frames that are still in use elsewhere (their translations at
        the released addresses must be invalidated by the caller)."""
        if self._retired:
            return []
        dead, alive = [], []
        refs = self.refs
        for pa in frames:
            i = pa >> 12
            n = refs[i]
            if n:
                refs[i] = n - 1
                alive.append(pa)
            else:
                dead.append(pa)
        if dead and not self._ending:
            self._discard(dead)
            self._free.extend(dead)
        return alive


_ONE = (1).to_bytes(4, "little")   # one FrameAllocator.refs counter holding 1



class BufferCharge:
    """Guest frames charged for a kernel buffer held in Python (a pipe's, a socket's queue),
    as Linux takes such buffers from the machine's RAM: each 4 KiB the buffer has held
    takes a frame, never mapped nor written (the bytes stay in Python), kept until
    release() so a warm buffer's hot path allocates nothing. Without this a guest could
    fill the host's memory past -m through many full pipes."""

    __slots__ = ("frames",)

    def __init__(self):
        self.frames: list[int] = []

    def cover(self, kernel, size: int, used: int, what: str) -> int:
        """Frames for size bytes of buffer; returns how many bytes they cover (fewer when
        guest RAM ran out; ENOMEM, said once, when not one byte past `used` fits)."""
        have = len(self.frames) * PAGE
        if size <= have:
            return size
        allocator = getattr(kernel, "frames", None)
        if allocator is None:   # a buffer outside a VM (unit tests)
            return size
        try:
            while have < size:
                self.frames.append(allocator.alloc())
                have += PAGE
        except GuestOutOfMemory:
            if have <= used:
                from umiak.kernel.errors import ENOMEM, SyscallError
                kernel.warn_once(f"oom-{what}", f"guest out of memory ({kernel.options.mem_size >> 20} MiB; "
                                 f"raise it with -m): {what} get ENOMEM")
                raise SyscallError(ENOMEM) from None
        return min(size, have)

    def release(self, kernel) -> None:
        """The buffer is gone: its frames are free again (still zero: no discard, no host call)."""
        allocator = getattr(kernel, "frames", None)
        if self.frames and allocator is not None:
            allocator._free.extend(self.frames)
            self.frames = []
