"""In-process tests of the fd table and open-file reference counts (kernel/files.py):
Linux's lowest-free numbering after any closes, F_DUPFD's minimum, RLIMIT_NOFILE,
files closed exactly once when their last reference goes, and the cost at 16,000 fds."""

import random
import time

import pytest

from umiak.kernel.errors import EBADF, EMFILE, SyscallError
from umiak.kernel.files import FdTable, File


class Counted(File):
    """A File that counts its close() calls."""

    def __init__(self):
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


def lowest_free(used: set[int], lowest: int = 0) -> int:
    fd = lowest
    while fd in used:
        fd += 1
    return fd


def expect(fn, want: int):
    """fn() returns want, or raises EMFILE when want is past the limit."""
    try:
        got = fn()
    except SyscallError as e:
        got = -e.errno
    assert got == want


def test_lowest_free_after_arbitrary_closes():
    rng = random.Random(7)
    limit = 450
    t = FdTable(limit=limit)
    f = Counted()
    for _ in range(300):
        t.install(f)
    for _ in range(6000):
        used = set(t.files)
        r = rng.random()
        if used and r < 0.45:
            t.close(rng.choice(sorted(used)))
        elif r < 0.55:
            at = rng.randrange(0, 600)
            expect(lambda at=at: t.install_at(at, f) or at, at if at < limit else -EBADF)
        elif r < 0.7:
            lowest = rng.randrange(0, 500)
            want = lowest_free(used, lowest)
            expect(lambda lowest=lowest: t.install(f, lowest=lowest), want if want < limit else -EMFILE)
        else:
            want = lowest_free(used)
            expect(lambda: t.install(f), want if want < limit else -EMFILE)
    assert f.refs == len(t.files) and f.closes == 0
    for fd in list(t.files):
        t.close(fd)
    assert f.closes == 1


def test_lowest_argument_is_f_dupfd_minimum():
    t = FdTable()
    f = Counted()
    for _ in range(20):
        t.install(f)
    for fd in (3, 7, 12, 15):
        t.close(fd)
    assert t.install(f, lowest=8) == 12
    assert t.install(f, lowest=8) == 15
    assert t.install(f, lowest=8) == 20
    assert t.install(f, lowest=100) == 100
    assert t.install(f, lowest=100) == 101
    assert t.install(f) == 3
    assert t.install(f) == 7
    assert t.install(f) == 21
    t.install_at(22, f)
    t.install_at(23, f)
    assert t.install(f) == 24
    assert t.install(f, lowest=5) == 25


def test_limit_gives_emfile():
    t = FdTable(limit=8)
    f = Counted()
    assert [t.install(f) for _ in range(8)] == list(range(8))
    with pytest.raises(SyscallError) as e:
        t.install(f)
    assert e.value.errno == EMFILE
    with pytest.raises(SyscallError) as e:
        t.install_at(8, f)
    assert e.value.errno == EBADF
    t.close(5)
    t.limit = 4                  # setrlimit below what is open: the free 5 is out of reach
    with pytest.raises(SyscallError) as e:
        t.install(f)
    assert e.value.errno == EMFILE
    t.limit = 8
    assert t.install(f) == 5


def test_dup_keeps_the_file_open_until_the_last_close():
    t = FdTable()
    f = Counted()
    a = t.install(f)
    b = t.install(f)
    t.install_at(9, f)
    t.close(a)
    t.close(9)
    assert f.closes == 0 and f.refs == 1
    t.close(b)
    assert f.closes == 1 and f.refs == 0
    with pytest.raises(SyscallError):
        t.close(b)
    assert f.closes == 1


def test_install_at_replaces_and_closes_the_old_file_once():
    t = FdTable()
    old, new = Counted(), Counted()
    t.install_at(4, old)
    t.install_at(4, new)
    assert old.closes == 1 and new.closes == 0
    t.install_at(4, new)         # a slot given the file it holds keeps it open
    assert new.closes == 0 and new.refs == 1
    t.close(4)
    assert new.closes == 1


def test_a_reference_outside_the_table_keeps_the_file_open():
    """As an SCM_RIGHTS message in flight does: the file outlives every fd."""
    t = FdTable()
    f = Counted()
    fd = t.install(f)
    f.incref()
    t.close(fd)
    assert f.closes == 0
    f.decref()
    assert f.closes == 1


def test_watchers_run_once_at_the_last_reference():
    t = FdTable()
    f = Counted()
    seen = []
    f.watch("a", lambda g: seen.append(("a", g.closes)))
    f.watch("b", lambda g: seen.append(("b", g.closes)))
    f.unwatch("b")
    a = t.install(f)
    b = t.install(f)
    t.close(a)
    assert seen == []
    t.close(b)
    assert seen == [("a", 0)] and f.closes == 1   # before close(), as Linux's eventpoll_release


def test_16000_fds_install_and_close_in_well_under_a_second():
    n = 16_000
    t = FdTable(limit=1 << 20)
    files = [Counted() for _ in range(n)]
    t0 = time.perf_counter()
    fds = [t.install(f) for f in files]
    t1 = time.perf_counter()
    for fd in fds:
        t.close(fd)
    t2 = time.perf_counter()
    assert fds == list(range(n))
    assert all(f.closes == 1 for f in files)
    assert t1 - t0 < 0.5 and t2 - t1 < 0.5, (t1 - t0, t2 - t1)


def test_many_f_dupfd_with_a_minimum_stay_fast():
    """F_DUPFD(fd, 100) over and over must not rescan the numbers it handed out."""
    t = FdTable(limit=1 << 20)
    f = Counted()
    t0 = time.perf_counter()
    got = [t.install(f, lowest=100) for _ in range(16_000)]
    assert time.perf_counter() - t0 < 0.5
    assert got == list(range(100, 16_100))
    assert [t.install(f) for _ in range(3)] == [0, 1, 2]
    assert t.install(f, lowest=900_000) == 900_000      # far past the top: no heap of 900k numbers
    assert t.install(f, lowest=900_000) == 900_001
    assert t.install(f) == 3
