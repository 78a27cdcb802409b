"""Faults: umiak SIGKILLed mid-write, a host volume that fills up, and a guest out of
memory wherever the kernel allocates for it (tests/guest/fault_writer.c).

The guest never loses what it fsynced, sees ENOSPC and ENOMEM as on Linux (or is
OOM-killed, said on stderr), and umiak itself never fails (status 125, a traceback).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from harness import EXIT_UMIAK_FAILURE, build, run_umiak, umiak_command, umiak_env

CHUNK = 65536


def program():
    return build("fault_writer", "glibc-static")


def _chunks_ok(data: bytes, upto: int) -> bool:
    return all(data[i * CHUNK:(i + 1) * CHUNK] == bytes([i % 251]) * CHUNK for i in range(upto // CHUNK))


def test_sigkill_mid_write_keeps_what_was_fsynced(platform, tmp_path):
    """umiak is SIGKILLed while the guest writes a volume file: every byte it had fsynced
    (said on stdout before the kill) is in the host file, intact."""
    cmd = umiak_command(platform, [program(), "sync", "/vol/data"], ["-v", f"{tmp_path}:/vol"])
    proc = subprocess.Popen(cmd, env=umiak_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    synced = 0
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while synced < (2 << 20) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            synced = int(line.split()[1])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert synced >= 2 << 20, f"the guest never reported 2 MiB synced (status {proc.returncode})"
    data = (tmp_path / "data").read_bytes()
    print(f"\nSIGKILL after {synced} bytes fsynced: {len(data)} bytes on the host")
    assert len(data) >= synced
    assert _chunks_ok(data, synced)


@pytest.fixture
def full_volume(tmp_path):
    """A 1 MiB tmpfs mounted on the host (root only), with another file already on it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (mnt / "f.keep").write_bytes(b"k" * 65536)
        (mnt / "other").write_bytes(b"untouched\n")
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_host_volume_gives_enospc_and_corrupts_nothing(platform, full_volume):
    r = run_umiak(platform, [program(), "fill", "/vol/f"], options=["-v", f"{full_volume}:/vol"])
    assert r.status == 0, r.describe()
    lines = r.stdout.decode().splitlines()
    assert lines[0].startswith("write: No space left on device after "), r.describe()
    written = int(lines[0].split()[-2])
    assert 0 < written < 1 << 20
    assert lines[1:] == ["fsync: ok", "read back: intact", "remove another file: ok",
                         "write after freeing: ok"], r.describe()
    data = (full_volume / "f").read_bytes()
    assert len(data) == written + 4096
    assert all(data[i] == (i // 4096) % 251 for i in range(0, written, 997))
    assert (full_volume / "other").read_bytes() == b"untouched\n"
    assert not (full_volume / "f.keep").exists()


# What the guest sees with -m 32M where the kernel allocates for it (Linux: ENOSPC past
# tmpfs's half of RAM, ENOMEM or the OOM killer for kernel buffers and faults). Each
# outcome: (status, the stdout line or None, a line of stderr or None). With the RAM in
# full kernel buffers, the program's next page fault may find no frame: then the OOM
# killer ends it instead of the printf, which is an outcome Linux has as well.
KILLED = (137, None, "guest out of memory (32 MiB; raise it with -m): killed process 1")
OOM = {
    "fault": [KILLED],
    "tmpfs": [(0, "tmpfs: stopped by No space left on device after more than 8 MiB", None)],
    "pipes": [(0, "pipes: stopped by Cannot allocate memory after more than 8 MiB",
               "guest out of memory (32 MiB; raise it with -m): pipe writes get ENOMEM"), KILLED],
    "unix": [(0, "unix: stopped by Cannot allocate memory after more than 8 MiB",
              "guest out of memory (32 MiB; raise it with -m): socket sends get ENOMEM"), KILLED],
    "pagecache": [KILLED],
}


@pytest.mark.parametrize("where", list(OOM))
def test_guest_out_of_memory(platform, where, tmp_path):
    """umiak stays up: the guest gets an errno or is OOM-killed, and stderr says which."""
    r = run_umiak(platform, [program(), "oom", where], options=["-m", "32M", "-v", f"{tmp_path}:/vol"],
                  timeout=120)
    text = r.stderr.decode()
    assert r.status != EXIT_UMIAK_FAILURE and "Traceback" not in text and "internal error" not in text, r.describe()
    outcomes = [o for o in OOM[where] if o[0] == r.status]
    assert outcomes, r.describe()
    status, out, err = outcomes[0]
    if out is not None:
        assert r.stdout.decode().splitlines() == [out], r.describe()
    if err is not None:
        assert f"umiak: {err}" in text, r.describe()
    if status == 137:
        assert text.rstrip().endswith("Killed"), r.describe()
