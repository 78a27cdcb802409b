"""Appliances: `umiak appliance build` makes a GPT disk of an image and `umiak appliance boot`
boots it in QEMU (OVMF); the program's output reaches the serial console and the machine
powers off with the program's status.

One disk is built per module (a server made here as the image; about 35 s once python3,
busybox and the kernel's modules are in umiak's cache, 70 s the first time) and booted once. On this machine QEMU cannot use KVM (a PVM host: the
firmware stops at its first x87 instruction), so the boot is TCG, and the appliance,
having no /dev/kvm, runs umiak's emu platform: about 65 s from power-on to power-off.
Needs qemu-system-x86, ovmf, dosfstools, mtools, fdisk (sfdisk), e2fsprogs and apt.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import GUEST_ENV, build, umiak_command, umiak_env

TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "mkfs.vfat": "dosfstools", "mcopy": "mtools",
         "sfdisk": "fdisk", "mke2fs": "e2fsprogs", "apt-get": "apt", "dpkg-deb": "dpkg"}
OVMF = ("/usr/share/ovmf/OVMF.fd", "/usr/share/OVMF/OVMF.fd", "/usr/share/qemu/OVMF.fd")
MIB = 1 << 20


def _which(name: str) -> bool:
    return bool(shutil.which(name) or any(os.path.exists(f"{d}/{name}") for d in ("/sbin", "/usr/sbin")))


def _missing() -> str | None:
    lost = [f"{t} ({p})" for t, p in TOOLS.items() if not _which(t)]
    if not any(os.path.exists(p) for p in OVMF):
        lost.append("OVMF (ovmf)")
    return ", ".join(lost) if lost else None


needs_tools = pytest.mark.skipif(_missing() is not None, reason=f"missing: {_missing()}")


def umiak_cli(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "umiak", *map(str, args)], env=umiak_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)


@pytest.fixture(scope="module")
def appliance(tmp_path_factory):
    d = tmp_path_factory.mktemp("appliance")
    prog = build("serve_once", "glibc-static")
    img = d / "serve.img"
    r = umiak_cli("build", "-q", "-o", img, prog, "--", "8080", "3")
    assert r.returncode == 0, r.stderr.decode()
    disk = d / "serve.raw"
    t0 = time.monotonic()
    r = umiak_cli("appliance", "build", "-q", "-o", disk, img, "-p", "8080",
                  "--volume-device", "/dev/nvme1n1:/data")
    assert r.returncode == 0, r.stderr.decode()
    print(f"appliance build: {time.monotonic() - t0:.1f} s")
    return prog, img, disk


def _partitions(disk: Path) -> list[dict]:
    out = subprocess.run([shutil.which("sfdisk") or "/usr/sbin/sfdisk", "--json", str(disk)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["partitiontable"]["partitions"]


def _extract(disk: Path, part: dict, out: Path) -> Path:
    with open(disk, "rb") as f, open(out, "wb") as g:
        f.seek(part["start"] * 512)
        left = part["size"] * 512
        while left:
            chunk = f.read(min(left, 4 * MIB))
            g.write(chunk)
            left -= len(chunk)
    return out


@needs_tools
def test_disk_layout(appliance, tmp_path):
    """GPT: an ESP whose removable-media path is systemd-boot, whose loader entry boots the
    kernel with the root partition's PARTUUID; an ext4 root (clean for e2fsck) holding
    python3, umiak, the image byte for byte, and the settings; a whole number of GiB."""
    _prog, img, disk = appliance
    assert disk.stat().st_size % (1 << 30) == 0
    esp, root = _partitions(disk)
    assert esp["type"] == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    assert root["type"] == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    at = f"{disk}@@{esp['start'] * 512}"
    listing = subprocess.run(["mdir", "-b", "-i", at, "::/EFI/BOOT"], capture_output=True, text=True, env=env)
    assert "BOOTX64.EFI" in listing.stdout, listing.stdout + listing.stderr
    entry = subprocess.run(["mtype", "-i", at, "::/loader/entries/umiak.conf"], capture_output=True, text=True,
                           env=env, check=True).stdout
    assert f"root=PARTUUID={root['uuid']}".lower() in entry.lower() and "init=/umiak/init" in entry
    assert "console=ttyS0" in entry
    part = _extract(disk, root, tmp_path / "root.ext4")
    e2fsck = shutil.which("e2fsck") or "/sbin/e2fsck"
    fsck = subprocess.run([e2fsck, "-fn", str(part)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    debugfs = shutil.which("debugfs") or "/sbin/debugfs"

    def cat(path: str) -> bytes:
        return subprocess.run([debugfs, "-R", f"cat {path}", str(part)], capture_output=True, check=True).stdout
    settings = cat("/umiak/appliance.env").decode()
    assert "UMIAK_PUBLISH=0.0.0.0:8080:8080\n" in settings and "UMIAK_NETMODE=private\n" in settings
    assert "UMIAK_VOLUMES=/dev/nvme1n1:/data\n" in settings
    assert cat("/umiak/image.img") == img.read_bytes()
    assert cat("/usr/lib/python3/dist-packages/umiak/__init__.py") == \
        (Path(__file__).parent.parent / "src/umiak/__init__.py").read_bytes()
    assert cat("/usr/bin/python3.11")[:4] == b"\x7fELF"
    assert b"ena" in cat("/umiak/modules/order").split()


@needs_tools
def test_boots_serves_and_powers_off_with_the_status(appliance, tmp_path):
    """The machine boots (UEFI -> systemd-boot -> Linux -> the busybox init), DHCP on the
    virtio NIC, mounts the attached NVMe volume, says which platform it takes, runs the
    image (a server on 8080 published with -p): a connection through QEMU's forward and
    umiak's private network is answered, the program's stdout and stderr reach the serial
    console, and the machine powers off with the program's status, 3."""
    _prog, _img, disk = appliance
    vol = tmp_path / "data.ext4"
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "x").write_text("x\n")
    subprocess.run([shutil.which("mke2fs") or "/sbin/mke2fs", "-q", "-t", "ext4", "-d", str(tmp_path / "tree"),
                    str(vol), "16M"], check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "umiak", "appliance", "boot", "--timeout", "420",
                             "-p", f"{port}:8080", "--volume", str(vol), str(disk)], env=umiak_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[str] = []
    listening = threading.Event()

    def read() -> None:
        for raw in proc.stdout:
            lines.append(raw.decode("utf-8", "replace"))
            if "listening on 8080" in lines[-1]:
                listening.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    answer = b""
    try:
        if listening.wait(440):
            with socket.create_connection(("127.0.0.1", port), timeout=120) as c:
                c.sendall(b"ping\n")
                while not answer.endswith(b"\n"):
                    chunk = c.recv(100)
                    if not chunk:
                        break
                    answer += chunk
        status = proc.wait(timeout=480)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    took = time.monotonic() - t0
    out = "".join(lines)
    print(f"boot to power-off: {took:.1f} s\n{out[-3000:]}")
    assert answer == b"echo: ping\n", out[-3000:] + proc.stderr.read().decode()
    assert status == 3, out[-3000:]
    assert "answered 'ping'" in out and "exiting 3" in out
    assert "umiak-appliance: network eth0 10.0.2.15/24" in out
    assert "umiak-appliance: mounted /dev/nvme1n1 on /data" in out
    assert "platform emu" in out or "platform kvm" in out
    assert "umiak-appliance: exit status 3" in out


@needs_tools
@pytest.mark.parametrize("args, message", [
    (["appliance", "build", "-o", "{tmp}/x.raw", "{tmp}/none.img"], "none.img: No such file or directory"),
    (["appliance", "build", "-o", "{tmp}/x.raw", "{prog}"], "not an ext2/3/4 image"),
    (["appliance", "build", "-o", "{tmp}/x.raw", "{img}", "--volume-device", "nvme1n1"], "bad --volume-device"),
    (["appliance", "build", "-o", "{tmp}/x.raw", "{img}", "-p", "70000"], "bad -p '70000'"),
    (["appliance", "build", "-o", "{tmp}/x.raw", "{img}", "--net", "10.0.0.5"], "bad --net '10.0.0.5'"),
    (["appliance", "boot", "{tmp}/none.raw"], "none.raw: No such file"),
])
def test_bad_inputs_are_one_line(appliance, tmp_path, args, message):
    prog, img, _disk = appliance
    argv = [a.format(tmp=tmp_path, prog=prog, img=img) for a in args]
    r = umiak_cli(*argv, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 125 and err.startswith("umiak: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "x.raw").exists()


def test_tcgets_writes_the_kernels_termios(platform, variant):
    """A terminal on stdin (the appliance's serial console is one): TCGETS copies the kernel's
    36-byte termios; 60 bytes overran glibc's buffer (the guest aborted: stack smashing)."""
    prog = build("termios_size", variant)
    master, slave = os.openpty()
    try:
        native = subprocess.run([str(prog)], stdin=slave, capture_output=True, env=GUEST_ENV, timeout=60)
        umiak = subprocess.run(umiak_command(platform, [str(prog)]), stdin=slave, capture_output=True,
                               env=umiak_env(), timeout=120)
    finally:
        os.close(master)
        os.close(slave)
    assert b"past 36: yes" in native.stdout
    assert (umiak.returncode, umiak.stdout, umiak.stderr) == (native.returncode, native.stdout, native.stderr)
