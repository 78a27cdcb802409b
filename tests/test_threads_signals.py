"""Threads, signals, timers and polling (issue 4), compared with Linux.

Each guest program runs natively and under umiak with identical stdout,
stderr and exit status required.
"""


import pytest
from harness import build, compare

PTHREAD = ("-pthread",)


@pytest.mark.exit_modes
def test_threads_create_join_mutex_condvar_barrier(platform, variant):
    compare(platform, [build("threads_basic", variant, PTHREAD)])


@pytest.mark.exit_modes
def test_futex_answered_in_the_guest(platform, variant):
    """futex waits and private wakes, which kvm's exitless stubs answer in the guest where
    they can (a word that differs, a spin before blocking, a wake with nobody queued):
    errors for bad addresses and arguments, a page never touched, waiters queued on the
    host woken and requeued, a ping-pong, glibc's locks, signals during the waits."""
    compare(platform, [build("futex_guest", variant, PTHREAD)])


@pytest.mark.exit_modes
def test_signal_suite(platform, variant):
    compare(platform, [build("signals_suite", variant, PTHREAD)])


def test_crash_in_a_thread_ends_the_program(platform, variant):
    compare(platform, [build("thread_crash", variant, PTHREAD)])


@pytest.mark.exit_modes
def test_polling_epoll_eventfd_timerfd_signalfd_pipes(platform, variant):
    compare(platform, [build("polling", variant, PTHREAD)])


@pytest.mark.exit_modes
def test_interrupted_loop_counts_exactly(platform, variant):
    compare(platform, [build("signal_resume_exact", variant)])


@pytest.mark.parametrize("mode", ["stack", "stack-segv-handler", "stack-altstack", "sigreturn", "sigreturn-altstack"])
def test_unusable_signal_frame_is_sigsegv(platform, variant, mode):
    """A frame that cannot be written (rsp unmapped) or read back (rt_sigreturn) is SIGSEGV."""
    compare(platform, [build("bad_signal_frame", variant), mode])
