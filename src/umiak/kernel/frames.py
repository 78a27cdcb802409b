"""Guest-physical page frames: who owns which 4 KiB of guest RAM.

Free frames are always zero (they are discarded to the host when freed and the
RAM starts zeroed), so anonymous memory needs no clearing.
"""

from umiak.kernel.errors import GuestOutOfMemory

PAGE = 4096


class FrameAllocator:
    def __init__(self, start: int, end: int, discard):
        self._next = start
        self._end = end
        self._free: list[int] = []
        self._discard = discard  # platform.discard: return frames to the host
        # Each frame has one holder when allocated (a private page, or a page cache); every
        # further holder (a page-table entry mapping a cache page, an address space sharing a
        # page copy-on-write since fork) is an extra reference here.
        self._refs: dict[int, int] = {}

    @property
    def free_bytes(self) -> int:
        return (self._end - self._next) + len(self._free) * PAGE

    @property
    def total_bytes(self) -> int:
        return self._end

    def alloc(self) -> int:
        if self._free:
            return self._free.pop()
        pa = self._next
        if pa >= self._end:
            raise GuestOutOfMemory("no free guest frame")
        self._next = pa + PAGE
        return pa

    def alloc_run(self, n: int) -> int | None:
        """n consecutive frames (their first address) from the never-used end, or None (then
        alloc() them one by one): a restored snapshot's pages are written in runs."""
        pa = self._next
        if pa + n * PAGE > self._end:
            return None
        self._next = pa + n * PAGE
        return pa

    def share(self, pa: int) -> None:
        """One more holder (a mapping of a page-cache frame, a fork's COW page) refers to the frame."""
        self._refs[pa] = self._refs.get(pa, 0) + 1

    def share_many(self, frames) -> None:
        """One more holder for each frame (fork: the child maps them too)."""
        refs = self._refs
        get = refs.get
        for pa in frames:
            refs[pa] = get(pa, 0) + 1

    def users(self, pa: int) -> int:
        """Holders of the frame besides the first (0: only its owner holds it)."""
        return self._refs.get(pa, 0)

    def release(self, frames: list[int]) -> list[int]:
        """Drop one reference to each frame; frames nobody uses are discarded and freed.

        Returns the frames that are still in use elsewhere (their translations at
        the released addresses must be invalidated by the caller)."""
        dead, alive = [], []
        refs = self._refs
        for pa in frames:
            n = refs.get(pa)
            if n:
                if n == 1:
                    del refs[pa]
                else:
                    refs[pa] = n - 1
                alive.append(pa)
            else:
                dead.append(pa)
        if dead:
            self._discard(dead)
            self._free.extend(dead)
        return alive


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
