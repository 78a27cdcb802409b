"""`umiak appliance boot`: the disk in QEMU, as a Nitro machine would see it, the console on stdout.

The disk is an NVMe device (the root's name is then the one it has on Nitro), the NIC a
virtio one on QEMU's user-mode network with -p ports forwarded from 127.0.0.1, the
firmware OVMF, the serial console on stdio (Ctrl-C stops the machine). KVM is used when
QEMU can start a KVM machine here, else TCG (much slower). The appliance's init prints
STATUS_MARK and the program's status last; that is the status returned here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from umiak.appliance import STATUS_MARK
from umiak.errors import UmiakError

OVMF = ("/usr/share/ovmf/OVMF.fd", "/usr/share/OVMF/OVMF.fd", "/usr/share/qemu/OVMF.fd")


def firmware() -> str | None:
    return next((p for p in OVMF if os.path.exists(p)), None)


def qemu_binary() -> str | None:
    return shutil.which("qemu-system-x86_64")


# A 64 KiB firmware whose reset vector runs FNINIT (where OVMF stops on a PVM host) and
# writes 0x31 to QEMU's isa-debug-exit port: QEMU then exits with (0x31 << 1) | 1.
PROBE_EXIT = 0x63
_PROBE_CODE = bytes([0x9B, 0xDB, 0xE3, 0xB0, 0x31, 0xE6, 0xF4, 0xF4, 0xEB, 0xFE])


def kvm_usable(qemu: str) -> str | None:
    """None when QEMU can run a firmware under KVM here, else why not. /dev/kvm is not
    enough: a PVM or nested host may run 64-bit guests and fail in the firmware's code.
    The answer is kept in umiak's cache for this boot of the host and this QEMU binary:
    the probe costs its whole 5 s time-out on a host where it hangs."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "no usable /dev/kvm"
    import json

    from umiak.config import cache_dir
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot_id = f.read().strip()
        st = os.stat(qemu)
        key = f"{boot_id} {os.path.realpath(qemu)} {st.st_size} {st.st_mtime_ns}"
    except OSError:
        return _kvm_probe(qemu)
    path = os.path.join(cache_dir(), "appliance", "kvm-probe.json")
    try:
        with open(path) as f:
            known = json.load(f)
        if isinstance(known, dict) and known.get("key") == key:
            return known.get("problem")
    except (OSError, ValueError):
        pass
    problem = _kvm_probe(qemu)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"key": key, "problem": problem}, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return problem


def _kvm_probe(qemu: str) -> str | None:
    import tempfile
    rom = bytearray(b"\xf4" * 0x10000)
    rom[0xFFF0:0xFFF0 + len(_PROBE_CODE)] = _PROBE_CODE
    with tempfile.NamedTemporaryFile(prefix="umiak-kvm-probe-", suffix=".rom") as f:
        f.write(rom)
        f.flush()
        try:
            proc = subprocess.run([qemu, "-accel", "kvm", "-machine", "q35", "-cpu", "host", "-m", "32",
                                   "-bios", f.name, "-display", "none", "-nodefaults", "-no-reboot",
                                   "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=5)
        except subprocess.TimeoutExpired:
            return "a KVM guest did not get through its firmware's first instructions (a PVM or nested host?)"
        except OSError as e:
            return str(e)
    if proc.returncode != PROBE_EXIT:
        err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        return err[0] if err else f"qemu status {proc.returncode}"
    return None


def qemu_command(disk: str, publish: list[str], memory: str, cpus: int, accel: str,
                 volumes: list[str], snapshot: bool) -> list[str]:
    qemu, fw = qemu_binary(), firmware()
    if qemu is None:
        raise UmiakError("qemu-system-x86_64 not found (Debian: apt-get install qemu-system-x86)")
    if fw is None:
        raise UmiakError("no OVMF firmware found (Debian: apt-get install ovmf)")
    if not os.path.isfile(disk):
        raise UmiakError(f"{disk}: No such file")
    fwd = []
    for p in publish:
        spec, _, proto = p.partition("/")
        parts = spec.split(":")
        if proto not in ("", "tcp", "udp") or len(parts) not in (1, 2) or not all(x.isdigit() for x in parts):
            raise UmiakError(f"bad -p {p!r} (use HOST:GUEST[/udp])")
        fwd.append(f",hostfwd={proto or 'tcp'}:127.0.0.1:{parts[0]}-:{parts[-1]}")
    if accel == "auto":
        accel = "kvm" if kvm_usable(qemu) is None else "tcg"
    elif accel == "kvm":
        why = kvm_usable(qemu)
        if why:
            raise UmiakError(f"--accel kvm: QEMU cannot use KVM here: {why}")
    # romfile= : no iPXE option ROM on the NIC (OVMF would start its driver, seconds under TCG).
    cmd = [qemu, "-accel", accel, "-machine", "q35", "-cpu", "host" if accel == "kvm" else "Nehalem",
           "-m", memory, "-smp", str(cpus), "-bios", fw, "-display", "none", "-nodefaults", "-no-reboot",
           "-chardev", "stdio,id=con,signal=on", "-serial", "chardev:con",
           "-drive", f"file={disk},format=raw,if=none,id=root" + (",snapshot=on" if snapshot else ""),
           "-device", "nvme,drive=root,serial=umiak-root",
           "-netdev", "user,id=net0" + "".join(fwd), "-device", "virtio-net-pci,netdev=net0,romfile=",
           "-device", "virtio-rng-pci"]
    for i, v in enumerate(volumes):
        if not os.path.isfile(v):
            raise UmiakError(f"--volume {v}: No such file")
        cmd += ["-drive", f"file={v},format=raw,if=none,id=vol{i}", "-device", f"nvme,drive=vol{i},serial=umiak-vol{i}"]
    return cmd


def boot(disk: str, publish: list[str] = (), memory: str = "2G", cpus: int = 2, accel: str = "auto",  # type: ignore[assignment]
         volumes: list[str] = (), timeout: float | None = None, snapshot: bool = True) -> int:  # type: ignore[assignment]
    cmd = qemu_command(disk, list(publish), memory, cpus, accel, list(volumes), snapshot)
    sys.stdout.flush()
    print(f"umiak: booting {disk} ({'KVM' if cmd[2] == 'kvm' else 'TCG, a software CPU: slow'})", file=sys.stderr)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=None if sys.stdin and sys.stdin.isatty() else subprocess.DEVNULL)
    assert proc.stdout is not None
    out = sys.stdout.buffer
    status: int | None = None
    line = b""
    deadline = time.monotonic() + timeout if timeout else None
    fd = proc.stdout.fileno()
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    try:
        while True:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                proc.kill()
                proc.wait()
                print(f"\numiak: {disk}: still running after {timeout:g} s: stopped", file=sys.stderr)
                return 124
            if not sel.select(wait):
                continue
            data = os.read(fd, 65536)
            if not data:
                break
            out.write(data)
            out.flush()
            line += data
            *done, line = line.split(b"\n")
            for ln in done:
                text = ln.decode("utf-8", "replace").strip()
                if text.startswith(STATUS_MARK):
                    try:
                        status = int(text[len(STATUS_MARK):].split()[0])
                    except (ValueError, IndexError):
                        pass
    except KeyboardInterrupt:       # Ctrl-C when stdin is no terminal (else QEMU takes it)
        proc.terminate()
        proc.wait()
        raise
    finally:
        sel.close()
    rc = proc.wait()
    if status is None:
        raise UmiakError(f"{disk}: the machine stopped without reporting a status (qemu status {rc})")
    return status
