"""Guest-physical page frames: who owns which 4 KiB of guest RAM.

Free frames are always zero (they are discarded to the host when freed and the
RAM starts zeroed), so anonymous memory needs no clearing.
"""

from umiak.kernel.errors import ENOMEM, SyscallError

PAGE = 4096


class FrameAllocator:
    def __init__(self, start: int, end: int, discard):
        self._next = start
        self._end = end
        self._free: list[int] = []
        self._discard = discard  # platform.discard: return frames to the host
        self._refs: dict[int, int] = {}  # frames shared by more than one mapping: extra references

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
            raise SyscallError(ENOMEM)
        self._next = pa + PAGE
        return pa

    def share(self, pa: int) -> None:
        """One more mapping refers to the frame."""
        self._refs[pa] = self._refs.get(pa, 0) + 1

    def share_many(self, frames) -> None:
        refs = self._refs
        get = refs.get
        for pa in frames:
            refs[pa] = get(pa, 0) + 1

    def refcount(self, pa: int) -> int:
        """How many mappings use the (allocated) frame."""
        return 1 + self._refs.get(pa, 0)

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
