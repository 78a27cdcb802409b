"""In-process tests of the frame allocator's side of a recycled VM (Platform.recycle): the
frames the run before had are cleared as they are handed out again (unless the caller says
it fills them), and a retired allocator (its kernel shut down) gives nothing back later, so
a finalizer of the old kernel's files, run by the garbage collector while the next run has
the VM, cannot discard (zero) a frame that is the next run's by then."""

import pytest

from umiak.kernel.errors import GuestOutOfMemory
from umiak.kernel.frames import FrameAllocator

PAGE = 4096


def _ram(pages: int):
    ram = bytearray(b"\xa5" * pages * PAGE)   # what the run before left
    cleared: list[tuple[int, int]] = []

    def clear(pa: int, length: int) -> None:
        ram[pa:pa + length] = bytes(length)
        cleared.append((pa, length))
    return ram, clear, cleared


def test_frames_below_dirty_end_are_cleared_as_handed_out():
    ram, clear, cleared = _ram(16)
    fa = FrameAllocator(PAGE, 16 * PAGE, lambda frames: None, dirty_end=6 * PAGE, clear=clear)
    a = fa.alloc()
    assert a == PAGE and ram[a:a + PAGE] == bytes(PAGE)
    run = fa.alloc_run(8)   # frames 2..9: the part below dirty_end (2..5) cleared
    assert run == 2 * PAGE and cleared[-1] == (2 * PAGE, 4 * PAGE)
    assert ram[6 * PAGE:7 * PAGE] == b"\xa5" * PAGE   # above dirty_end: zero already in a real VM, untouched
    filled = fa.alloc_run(2, filled=True)   # the caller writes every byte: no clearing
    assert filled == 10 * PAGE and cleared[-1] == (2 * PAGE, 4 * PAGE)


def test_filled_frames_the_caller_did_not_fill_are_scrubbed():
    ram, clear, cleared = _ram(8)
    fa = FrameAllocator(0, 8 * PAGE, lambda frames: None, dirty_end=8 * PAGE, clear=clear)
    pa = fa.alloc_run(4, filled=True)
    assert cleared == []
    fa.scrub(pa + PAGE, PAGE)
    assert ram[pa + PAGE:pa + 2 * PAGE] == bytes(PAGE) and ram[pa:pa + PAGE] == b"\xa5" * PAGE


def test_a_retired_allocator_gives_nothing_back_and_hands_nothing_out():
    discarded: list[int] = []
    fa = FrameAllocator(0, 64 * PAGE, discarded.extend)
    frames = [fa.alloc() for _ in range(4)]
    fa.release(frames[:1])
    assert discarded == frames[:1]
    used = fa.used_end
    fa.retire()
    assert fa.used_end == used   # what the recycling platform clears next time
    assert fa.release(frames[1:]) == [] and discarded == frames[:1]
    with pytest.raises(GuestOutOfMemory):
        fa.alloc()
