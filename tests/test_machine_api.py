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
