"""Linux behaviours real programs meet (issue 19), compared with Linux.

Each guest program runs natively and under umiak; stdout, stderr and exit
status must agree.
"""

from harness import build, compare


def test_blocking_pipe_io_is_interrupted_by_a_timer_signal(platform, variant):
    """A one-thread program's blocking pipe read/write waits while a timer is armed."""
    compare(platform, [build("pipe_signal_wait", variant)])
