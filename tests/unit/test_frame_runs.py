"""platform.base.frame_runs and FrameAllocator.share_many, which fork hands every page of
a process: the runs found by C loops over the frames packed as one integer must cover
each frame exactly as often as it was given (low 12 bits ignored), and the counters
raised a run at a time must equal one increment per frame."""

import random

from umiak.kernel.frames import FrameAllocator
from umiak.platform.base import FrameRuns, entry_runs, frame_runs

PAGE = 4096


def coverage(runs) -> dict[int, int]:
    got: dict[int, int] = {}
    for start, length in runs:
        assert start % PAGE == 0 and length > 0 and length % PAGE == 0
        for pa in range(start, start + length, PAGE):
            got[pa] = got.get(pa, 0) + 1
    return got


def given(frames) -> dict[int, int]:
    want: dict[int, int] = {}
    for e in frames:
        want[e & ~0xFFF] = want.get(e & ~0xFFF, 0) + 1
    return want


def test_runs_cover_every_frame_as_often_as_given():
    r = random.Random(10)
    for _ in range(400):
        n = r.choice([0, 1, 2, 31, 32, 33, 200, 3000])
        base = r.randrange(1 << 18) * PAGE
        if r.random() < 0.5:   # scattered, with repeats and mixed protection bits
            frames = [base + r.randrange(2 * n + 1) * PAGE | r.randrange(8) for _ in range(n)]
        else:                  # a process's fresh pages: long runs, some read-only
            frames = [base + i * PAGE | r.choice((3, 3, 3, 1)) for i in range(n)]
        r.shuffle(frames)
        assert coverage(frame_runs(frames)) == given(frames)


def test_contiguous_frames_are_one_run_and_found_runs_pass_through():
    frames = [0x100000 + i * PAGE | 3 for i in range(5000)]
    runs = FrameRuns(frame_runs(frames))
    assert runs == [(0x100000, 5000 * PAGE)]
    assert list(frame_runs(runs)) == runs


def test_share_many_raises_each_counter_once_per_mention():
    r = random.Random(11)
    frames = FrameAllocator(0, 64 << 20, lambda dead: None)
    want: dict[int, int] = {}
    for _ in range(20):
        batch = [r.randrange(1, (64 << 20) // PAGE) * PAGE | 3 for _ in range(r.choice((1, 40, 2000)))]
        batch += [0x200000 + i * PAGE for i in range(r.randrange(600))]
        frames.share_many(batch if r.random() < 0.5 else FrameRuns(frame_runs(batch)))
        for pa, n in given(batch).items():
            want[pa] = want.get(pa, 0) + n
    assert {i * PAGE: n for i, n in enumerate(frames.refs) if n} == want
    alive = frames.release(list(want))
    assert sorted(alive) == sorted(want) and all(frames.users(pa) == want[pa] - 1 for pa in want)


def test_entry_runs_keep_the_low_bits_of_their_entries():
    """fork tells writable runs from read-only ones by a run's first entry."""
    r = random.Random(12)
    entries = [0x300000 + i * PAGE | r.choice((1, 3, 5)) for i in range(3000)]
    covered = []
    for first, length in entry_runs(entries):
        covered += [first + k * PAGE for k in range(length // PAGE)]
    assert sorted(covered) == sorted(entries)
