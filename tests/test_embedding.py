"""Embedding umiak in a Python program: Machine from any thread, in a loop, at exit, and
two Machines in one process that do not see each other.

Every case runs in a child Python process (a crash of the host process fails the test
instead of killing pytest) that prints what it saw as JSON.
"""

import json
import subprocess
import sys

from harness import build, run_native, umiak_env

VARIANT = "glibc-static"


def _script(code: str, *args, timeout: float = 180) -> list:
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          timeout=timeout, env=umiak_env())
    assert proc.returncode == 0, f"status {proc.returncode}\n{proc.stderr.decode(errors='replace')}"
    return json.loads(proc.stdout.decode().splitlines()[-1])


def _native(prog) -> list:
    n = run_native([prog])
    return [n.status, n.stdout.decode(), n.stderr.decode()]


WORKER_THREAD = r"""
import json, sys, threading
from umiak import Machine
platform, prog = sys.argv[1:3]
out = []

def work():
    with Machine(platform=platform, mem_size=256 << 20) as m:
        for _ in range(3):
            r = m.run_captured([prog])
            out.append([r.status, r.stdout.decode(), r.stderr.decode()])
    # Never closed, with a warm VM building when the thread ends: closed at exit.
    r = Machine(platform=platform, mem_size=256 << 20).run_captured([prog])
    out.append([r.status, r.stdout.decode(), r.stderr.decode()])
    global keep
    keep = Machine(platform=platform, mem_size=256 << 20)
    r = keep.run_captured([prog])
    out.append([r.status, r.stdout.decode(), r.stderr.decode()])

# A run on the main thread first, then the kick signal reset to its default (death): the
# next VM start must put the handler back.
import signal
with Machine(platform=platform, mem_size=256 << 20) as m:
    r = m.run_captured([prog])
    out.append([r.status, r.stdout.decode(), r.stderr.decode()])
signal.signal(signal.SIGRTMIN + 2, signal.SIG_DFL)
t = threading.Thread(target=work)
t.start()
t.join()
print(json.dumps(out))
"""


def test_machine_on_a_worker_thread_stops_a_spinning_guest_thread(platform):
    """The guest's main returns while its other thread spins: the vCPU of that thread is
    kicked from a host thread that is not Python's main thread (KVM: a signal)."""
    prog = build("spin_exit", VARIANT)
    assert _script(WORKER_THREAD, platform, prog) == [_native(prog)] * 6


README_PATTERN = r"""
import sys
from umiak import Machine
m = Machine(platform=sys.argv[1])
r = m.run_captured([sys.argv[2]])
print(r.status)
"""


def test_readme_pattern_as_a_script_exits_cleanly(platform):
    """No close(): the prewarmed VM is still being built when the script ends (emu crashed
    in Unicorn's initialisation at interpreter exit). Five times, as it depended on timing."""
    prog = build("spin_exit", VARIANT)
    for _ in range(5):
        assert _script(README_PATTERN, platform, prog, timeout=60) == 7


AT_EXIT = r"""
import sys, threading, time
from umiak import Machine
platform, prog = sys.argv[1:3]
m = Machine(platform=platform, mem_size=256 << 20)
threading.Thread(target=m.run_captured, args=([prog, "forever"],), daemon=True).start()
time.sleep(1)
print(m._running)
"""


def test_a_run_still_going_on_a_daemon_thread_at_exit_is_stopped(platform):
    """The interpreter exits while a daemon thread runs a guest that never ends: the run
    is stopped before the interpreter finalises (nothing is left inside the VM)."""
    import time
    prog = build("spin_exit", VARIANT)
    t0 = time.monotonic()
    assert _script(AT_EXIT, platform, prog, timeout=60) == 1
    assert time.monotonic() - t0 < 30


LOOP = r"""
import json, os, sys
from umiak import Machine
from umiak.errors import UmiakError
platform, hello = sys.argv[1:3]

def nfds():
    return len(os.listdir("/proc/self/fd"))

with Machine(platform=platform, mem_size=256 << 20) as m:   # process-wide set-up happens once
    m.run_captured([hello])
before = nfds()
statuses = []
for _ in range(20):
    with Machine(platform=platform, mem_size=256 << 20) as m:
        statuses.append(m.run_captured([hello]).status)
after_20 = nfds()
with Machine(platform=platform, mem_size=256 << 20) as m:
    for _ in range(50):
        statuses.append(m.run_captured([hello]).status)
after_50 = nfds()
try:
    m.run([hello])
    err = None
except UmiakError as e:
    err = str(e)
print(json.dumps([statuses, before, after_20, after_50, err, m.closed]))
"""


def test_context_manager_in_a_loop_leaks_no_host_fds(platform):
    """20 `with Machine() as m` blocks, then 50 runs of one Machine: every status right, no
    host fd left behind once the Machine is closed; a run after close is a clear error."""
    hello = build("hello", VARIANT)
    want = run_native([hello]).status
    statuses, before, after_20, after_50, err, closed = _script(LOOP, platform, hello)
    assert statuses == [want] * 70
    assert (after_20, after_50) == (before, before)
    assert err == "this Machine is closed" and closed


TWO_THREADS = r"""
import json, sys, threading
from umiak import Machine
platform, spin, hello = sys.argv[1:4]
results = {}

def work(i):
    out = results[i] = []
    with Machine(platform=platform, mem_size=256 << 20) as m:
        for prog in (spin, hello, spin, hello, spin):
            r = m.run_captured([prog])
            out.append([r.status, r.stdout.decode(), r.stderr.decode()])

threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps([results[0], results[1]]))
"""


def test_two_machines_on_two_threads_at_once(platform):
    spin, hello = build("spin_exit", VARIANT), build("hello", VARIANT)
    one = [_native(p) for p in (spin, hello, spin, hello, spin)]
    assert _script(TWO_THREADS, platform, spin, hello) == [one, one]


INODES = r"""
import json, sys
from umiak import Machine
platform, prog = sys.argv[1:3]
outs = []
with Machine(platform=platform, mem_size=256 << 20) as m:
    for _ in range(2):
        r = m.run_captured([prog])
        outs.append([r.status, r.stdout.decode(), r.stderr.decode()])
with Machine(platform=platform, mem_size=256 << 20) as m:
    r = m.run_captured([prog])
    outs.append([r.status, r.stdout.decode(), r.stderr.decode()])
print(json.dumps(outs))
"""


def test_inode_and_device_numbers_are_per_vm(platform):
    """Pipe and socket inodes and tmpfs st_dev were process-wide counters: a VM's numbers
    depended on what ran before it in the process."""
    prog = build("inode_numbers", VARIANT)
    outs = _script(INODES, platform, prog)
    assert outs[0][0] == 0 and "pipe ino" in outs[0][1] and "socket ino" in outs[0][1], outs[0]
    assert outs[1] == outs[0] and outs[2] == outs[0]
