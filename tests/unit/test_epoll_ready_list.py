"""In-process: epoll_wait's cost is what changed, not what is registered. With thousands
of idle eventfds in an epoll, a wait after one write looks at that one file only."""

from umiak.kernel.abi import EPOLLET, EPOLLIN, EPOLLONESHOT
from umiak.kernel.syscalls.event import EventFd
from umiak.kernel.syscalls.poll import EpollFile

N = 4000


class Counted(EventFd):
    """An eventfd that counts how often its readiness is asked for."""

    asked = 0

    def poll_mask(self) -> int:
        Counted.asked += 1
        return super().poll_mask()


def bump(f: EventFd) -> None:
    f.write((1).to_bytes(8, "little"))


def test_wait_looks_only_at_changed_files():
    ep = EpollFile(0)
    files = [Counted(0, 0) for _ in range(N)]
    for fd, f in enumerate(files):
        ep.add(fd, f, EPOLLIN | (EPOLLET if fd % 2 else 0), fd)
    assert ep.ready() == []          # each new registration is looked at once
    Counted.asked = 0
    assert ep.ready() == []
    assert Counted.asked == 0        # nothing changed: nothing polled
    bump(files[1234])
    bump(files[77])
    assert ep.ready() == [(EPOLLIN, 1234), (EPOLLIN, 77)]   # in the order they became ready
    assert Counted.asked == 2
    assert ep.ready() == [(EPOLLIN, 1234)]   # level-triggered stays; 77 is EPOLLET
    files[1234].read(8)
    assert ep.ready() == []
    ep.close()
    assert all(not f.waitq.hooks for f in files)


def test_oneshot_rearm_and_remove():
    ep = EpollFile(0)
    f = EventFd(0, 0)
    ep.add(3, f, EPOLLIN | EPOLLONESHOT, 9)
    bump(f)
    assert ep.ready() == [(EPOLLIN, 9)]
    bump(f)
    assert ep.ready() == []
    ep.modify((3, id(f)), EPOLLIN, 10)
    assert ep.ready() == [(EPOLLIN, 10)]
    assert ep.ready(peek=True)
    ep.remove(3, f)
    assert ep.ready() == [] and not f.waitq.hooks
