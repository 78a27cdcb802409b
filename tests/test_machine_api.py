"""The embeddable API: `from umiak import Machine`, several VMs one after another in one process.

The API is driven from a child Python process (so a crash of umiak fails this
test instead of killing pytest) that prints what each run returned.
"""

import json
import subprocess
import sys

from harness import build, run_native, umiak_env

SCRIPT = r"""
import json, sys
from umiak import Machine
platform, hello, exit_status, stdio = sys.argv[1:5]
out = []
m = Machine(platform=platform, mem_size=256 << 20)
for argv, data in [([hello], b""), ([exit_status, "42", "exit"], b""), ([hello], b""),
                   ([stdio, "cat"], b"piped input\n")]:
    r = m.run_captured(argv, input=data)
    out.append([r.status, r.stdout.decode(), r.stderr.decode()])
status = Machine(platform=platform).run([exit_status, "3", "_exit"])
out.append([status])
print(json.dumps(out))
"""


def test_machine_runs_several_programs_in_one_process(platform, variant):
    hello, exit_status, stdio = (build(n, variant) for n in ("hello", "exit_status", "stdio_io"))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, platform, str(hello), str(exit_status), str(stdio)],
                          capture_output=True, timeout=120, env=umiak_env())
    assert proc.returncode == 0, proc.stderr.decode()
    results = json.loads(proc.stdout.decode().splitlines()[-1])
    expected = []
    for argv, data in [([hello], b""), ([exit_status, "42", "exit"], b""), ([hello], b""),
                       ([stdio, "cat"], b"piped input\n")]:
        n = run_native(argv, input=data)
        expected.append([n.status, n.stdout.decode(), n.stderr.decode()])
    expected.append([3])
    assert results == expected


RECYCLE_SCRIPT = r"""
import json, sys
from umiak import Machine
platform, prog, hello, threads = sys.argv[1:5]
out = []
for aslr in (False, True):
    m = Machine(platform=platform, mem_size=256 << 20, aslr=aslr)
    last, kept = None, 0
    for argv in ([prog, "a"], [prog, "a"], [prog, "b"], [threads], [prog, "b"], [hello], [threads], [prog, "a"]):
        r = m.run_captured(argv)
        out.append([r.status, r.stdout.decode(), r.stderr.decode()])
        kept += m.last_kernel.platform is last
        last = m.last_kernel.platform
    m.close()
    out.append(["kept", kept])
print(json.dumps(out))
"""


def test_a_recycled_vm_gives_the_next_program_nothing_of_the_last(platform, variant):
    """A Machine runs each program on the VM the one before ran on, when it can
    (Platform.recycle: under PVM a fresh VM's first touch of each page costs a shadow
    fault). The next program must still find its memory zero and the last one's
    mappings gone: the same addresses mapped again, and others probed, fault as on
    Linux; with ASLR off every run lands on the same addresses."""
    prog, hello = build("recycle_memory", variant), build("hello", variant)
    threads = build("threads_basic", variant, ("-pthread",))   # 64 threads: the next run gets a used vCPU
    proc = subprocess.run([sys.executable, "-c", RECYCLE_SCRIPT, platform, str(prog), str(hello), str(threads)],
                          capture_output=True, timeout=180, env=umiak_env())
    assert proc.returncode == 0, proc.stderr.decode()
    results = json.loads(proc.stdout.decode().splitlines()[-1])
    expected = []
    for _aslr in (False, True):
        for argv in ([prog, "a"], [prog, "a"], [prog, "b"], [threads], [prog, "b"], [hello], [threads], [prog, "a"]):
            n = run_native(argv)
            expected.append([n.status, n.stdout.decode(), n.stderr.decode()])
        expected.append(["kept", results[len(expected)][1]])
    assert results == expected
    from umiak.platform.kvm.device import flavour
    if platform.startswith("kvm") and platform != "kvm-exitless" and flavour() == "pvm":
        assert [r[1] for r in results if r[0] == "kept"] == [7, 7]   # each run after the first on the same VM


MANY_SCRIPT = r"""
import json, sys
from umiak import Machine
platform, hello, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Machine(platform=platform, mem_size=256 << 20) as m:
    got = [m.run_captured([hello]) for _ in range(n)]
print(json.dumps(sorted({(r.status, r.stdout.decode(), r.stderr.decode()) for r in got})))
"""


def test_a_hundred_runs_of_a_dynamic_program_on_one_recycled_vm(platform):
    """Each run on the VM the run before left: the old kernel's leftovers (its files'
    finalizers, run by the garbage collector during a later run) must not reach the VM
    any more (FrameAllocator.retire); before that, about 1 run in 70 crashed."""
    hello = build("hello", "glibc-dynamic")
    proc = subprocess.run([sys.executable, "-c", MANY_SCRIPT, platform, str(hello), "100"],
                          capture_output=True, timeout=300, env=umiak_env())
    assert proc.returncode == 0, proc.stderr.decode()
    n = run_native([hello])
    assert json.loads(proc.stdout.decode().splitlines()[-1]) == [[n.status, n.stdout.decode(), n.stderr.decode()]]
