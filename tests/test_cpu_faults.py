"""CPU exceptions and fatal signals end the program as Linux ends it.

Natively the program is killed by the signal (subprocess status -N); under umiak
the status is 128+N and stderr ends with the shell's wording of the signal.
"""

import signal

import pytest

from harness import build, compare

CASES = {
    "divide": signal.SIGFPE,
    "divide-overflow": signal.SIGFPE,
    "ud2": signal.SIGILL,
    "int3": signal.SIGTRAP,
    "hlt": signal.SIGSEGV,
    "abort": signal.SIGABRT,
    "sigterm": signal.SIGTERM,
    "sigkill": signal.SIGKILL,
}


@pytest.mark.parametrize("case", list(CASES))
def test_fatal_signal(platform, variant, case):
    native = compare(platform, [build("cpu_fault", variant), case])
    assert native.status == -CASES[case], "the guest program itself is wrong: " + native.describe()
