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
    """The RSS of what is live: a closed emu VM's engine sits in a reference cycle of
    unicorn's own (its hook closures) until the cyclic collector runs, a few MB each;
    that is garbage, not a leak."""
    import gc
    gc.collect()
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Drain(threading.Thread):
    """Reads a pipe to its end, keeping the last KEEP bytes and counting log lines ("@ ")."""

    KEEP = 1 << 16

    def __init__(self, fd: int):
        super().__init__(daemon=True)
        self.fd, self.tail, self.calls = fd, b"", 0
        self.start()

    def run(self) -> None:
        rest = b""
        while chunk := os.read(self.fd, 1 << 16):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            self.calls += sum(1 for ln in lines if ln.startswith(b"@ "))
            self.tail = (self.tail + chunk)[-self.KEEP:]
        os.close(self.fd)


def run(machine, program: str, path: str):
    """One batch with stdout and stderr on pipes, not files: the fuzzer's lseek,
    ftruncate or fallocate of fds 1 and 2 then fail (ESPIPE, EINVAL) instead of making
    files of gigabytes for this process to read back (what the harness logs is all that counts)."""
    fin = os.open(os.devnull, os.O_RDONLY)
    (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
    out, err = Drain(out_r), Drain(err_r)
    err_stream = open(os.dup(err_w), "w")
    try:
        status = machine.run([program, path], (fin, out_w, err_w), err_stream)
    finally:
        err_stream.close()
        for fd in (fin, out_w, err_w):
            os.close(fd)
        out.join()
        err.join()
    return status, out.calls, out.tail, err.tail


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
            status, calls, out, err = run(machine, program, path)
        except BaseException as e:   # noqa: BLE001 - reported as the failure it is
            status, calls, out, err = -1, 0, b"", f"Machine.run raised {type(e).__name__}: {e}".encode()
        done = out.rstrip().endswith(b"done " + str(calls).encode())
        print(json.dumps({"status": status, "calls": calls, "done": done,
                          "stderr": err.decode("utf-8", "replace")[-4000:],
                          "last": out.decode("utf-8", "replace").splitlines()[-3:],
                          "fds": len(os.listdir("/proc/self/fd")),
                          "threads": threading.active_count(), "rss": rss_kib()}), flush=True)
    machine.close()


if __name__ == "__main__":
    main()
