"""epoll's ready list (kernel/syscalls/poll.py EpollFile), compared with Linux: the order
events are reported in, level-triggered round robin, EPOLLET/EPOLLONESHOT, and blocking
waits on an epoll (poll(2), a parent epoll) woken by a member."""

from harness import build, compare


def test_epoll_ready_order_edge_oneshot_and_nested_wakeups(platform, variant):
    compare(platform, [build("epoll_ready_order", variant)])


def test_epoll_of_host_fds_level_oneshot_dup_and_hup(platform, variant):
    """stdin is a host pipe: its readiness comes from the host epoll of the epoll's host files."""
    compare(platform, [build("epoll_host_fds", variant)], input=b"hello\n")
