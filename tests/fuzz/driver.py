"""Runs fuzz batches in one Python process through the embedding API (one Machine, a
fresh VM per batch), so leaks across batches show: started by tests/fuzz/test_fuzz.py,
which gives each batch a deadline and restarts this process when a batch hangs.

Protocol: one batch file path per stdin line; one JSON line back per batch with the
guest's status, the calls it logged, its stderr, and this process's open fds, threads
and RSS after the run.
"""

import json
import os
import sys
import threading


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    platform, program, volume = sys.argv[1:4]
    from umiak import Machine
    machine = Machine(platform=platform, mem_size=128 << 20, cwd="/tmp",
                      volumes=[(volume, "/vol", False)])
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        try:
            r = machine.run_captured([program, path])
            status, out, err = r.status, r.stdout, r.stderr
        except BaseException as e:   # noqa: BLE001 - reported as the failure it is
            status, out, err = -1, b"", f"Machine.run raised {type(e).__name__}: {e}".encode()
        calls = sum(1 for ln in out.splitlines() if ln.startswith(b"@ "))
        done = out.rstrip().endswith(b"done " + str(calls).encode()) if calls else b"done 0" in out
        print(json.dumps({"status": status, "calls": calls, "done": done,
                          "stderr": err.decode("utf-8", "replace")[-4000:],
                          "last": out.decode("utf-8", "replace").splitlines()[-3:],
                          "fds": len(os.listdir("/proc/self/fd")),
                          "threads": threading.active_count(), "rss": rss_kib()}), flush=True)
    machine.close()


if __name__ == "__main__":
    main()
