"""In-process tests of kernel buffers charged to guest RAM (frames.BufferCharge): a pipe
takes one frame per 4 KiB it has held, keeps them while it lives (a warm pipe allocates
nothing), writes short then ENOMEM when RAM runs out (said once), and gives every frame
back when both ends close."""

from types import SimpleNamespace

import pytest

from umiak.kernel import abi
from umiak.kernel.errors import ENOMEM, SyscallError
from umiak.kernel.frames import FrameAllocator
from umiak.kernel.vfs.pipe import make_pipe

PAGE = 4096


def _kernel(pages: int):
    discarded: list = []
    said: list[str] = []
    frames = FrameAllocator(0, pages * PAGE, discarded.extend)
    kernel = SimpleNamespace(frames=frames, options=SimpleNamespace(mem_size=pages * PAGE), config=None,
                             pipe_inos=iter(range(1, 1000)), warned=set(), said=said, discarded=discarded)

    def warn_once(key, msg):
        if key not in kernel.warned:
            kernel.warned.add(key)
            said.append(msg)
    kernel.warn_once = warn_once
    return kernel


def test_a_pipe_takes_frames_for_what_it_holds_and_gives_them_back():
    k = _kernel(8)
    r, w = make_pipe(k, abi.O_NONBLOCK)
    assert w.write(b"x") == 1
    assert k.frames.free_bytes == 7 * PAGE
    assert w.write(bytes(PAGE)) == PAGE
    assert k.frames.free_bytes == 6 * PAGE
    r.read(10 * PAGE)
    w.write(bytes(2 * PAGE))               # fits the frames it kept: nothing allocated
    assert k.frames.free_bytes == 6 * PAGE
    r.close()
    w.close()
    assert k.frames.free_bytes == 8 * PAGE and k.discarded == []   # never written: no discard


def test_out_of_guest_ram_a_write_is_short_then_enomem_said_once():
    k = _kernel(2)
    r, w = make_pipe(k, abi.O_NONBLOCK)
    assert w.write(bytes(3 * PAGE)) == 2 * PAGE
    for _ in range(2):
        with pytest.raises(SyscallError) as e:
            w.write(b"more")
        assert e.value.errno == ENOMEM
    assert len(k.said) == 1 and "pipe writes get ENOMEM" in k.said[0]
    r.read(PAGE)
    assert w.write(bytes(PAGE)) == PAGE    # room in its own frames again
    r.close()
    w.close()
    assert k.frames.free_bytes == 2 * PAGE
