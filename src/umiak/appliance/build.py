"""`umiak appliance build`: the GPT raw disk of an appliance, made without root, loop devices or mounts.

    ApplianceSpec(image="redis.img", output="redis.raw", publish=["6379"])
    build(spec)        # -> redis.raw: ESP (systemd-boot, the kernel) + ext4 root

Steps: python3 and busybox-static from Debian's packages (umiak.image.deb, unpacked,
no maintainer script), Debian's cloud kernel and the modules a VM or a Nitro machine
needs (virtio, ENA, KVM; NVMe and ext4 are built in), umiak and its Python dependencies
from this host, the image and the settings, bytecode compiled ahead (a boot under TCG
imports a lot); the root by mkfs.ext4 -d (umiak.image.mkfs), the ESP by mkfs.vfat and
mtools, the table by sfdisk on the file. The disk is a whole number of GiB, as the
EBS volume made from it will be.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field

from umiak.appliance import APPLIANCE_META
from umiak.errors import UmiakError

KERNEL_PACKAGE = "linux-image-cloud-amd64"
ROOT_PACKAGES = ["python3", "busybox-static"]
# Loaded at boot, with their dependencies (read from each module's .modinfo), those absent
# skipped, each only when the machine has its hardware: a PCI vendor:device (glob) or a CPU flag.
# Loading what is not there costs seconds under TCG (kvm.ko alone is 2.4 MB to relocate).
MODULES = {"virtio_pci": "pci:1af4:*", "virtio_net": "pci:1af4:1000,1af4:1041",
           "virtio_blk": "pci:1af4:1001,1af4:1042", "virtio_scsi": "pci:1af4:1004,1af4:1048",
           "virtio_rng": "pci:1af4:1005,1af4:1044", "ena": "pci:1d0f:*",
           "kvm_intel": "cpu:vmx", "kvm_amd": "cpu:svm"}
PY_DEPS = ["unicorn", "capstone", "kconfiglib", "elftools"]   # umiak's runtime dependencies
ESP_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
ROOT_TYPE = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"      # Linux root (x86-64)
MIB = 1 << 20
GIB = 1 << 30
ESP_MIB = 64
BOOT_EFI = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"


@dataclass
class ApplianceSpec:
    image: str
    output: str
    publish: list[str] = field(default_factory=list)   # PORT[/udp] or HOST:GUEST[/udp] on the NIC
    volumes: list[str] = field(default_factory=list)   # DEVICE:DIR
    restart: str = "no"                                # no | on-failure | always
    platform: str = "auto"                             # auto | kvm | emu (inside the appliance)
    net: str = "dhcp"                                  # dhcp | ADDR/PREFIX[,GATEWAY[,DNS]]
    memory: str | None = None
    args: list[str] = field(default_factory=list)      # replace the image's cmd
    hostname: str = "umiak"
    cmdline: str = ""                                  # more kernel parameters


def _log(msg: str) -> None:
    print(f"umiak: {msg}", file=sys.stderr)


def _tool(name: str, package: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/sbin/{name}", f"/usr/sbin/{name}") if os.path.exists(p)), None)
    if path is None:
        raise UmiakError(f"{name} not found: umiak appliance build needs {package} (Debian: apt-get install {package})")
    return path


def _run(cmd: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        err = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise UmiakError(f"{what} failed: {err[-1] if err else f'status {proc.returncode}'}")
    return proc


def _publish(items: list[str]) -> list[str]:
    """-p PORT | HOST:GUEST [/udp] -> umiak run's -p 0.0.0.0:HOST:GUEST[/udp] (every address of the NIC)."""
    out = []
    for item in items:
        spec, _, proto = str(item).partition("/")
        parts = spec.split(":")
        if proto not in ("", "tcp", "udp") or len(parts) > 2 or not all(p.isdigit() and 0 < int(p) < 65536 for p in parts):
            raise UmiakError(f"bad -p {item!r} (use PORT, HOST:GUEST, with /udp for UDP)")
        host, guest = (parts[0], parts[-1])
        out.append(f"0.0.0.0:{int(host)}:{int(guest)}" + (f"/{proto}" if proto == "udp" else ""))
    return out


def _net(text: str) -> dict:
    if text == "dhcp":
        return {"UMIAK_NET": "dhcp"}
    addr, gw, dns = (text.split(",") + ["", ""])[:3]
    import ipaddress
    try:
        ipaddress.ip_interface(addr)
        if "/" not in addr:
            raise ValueError
        for a in (gw, dns):
            if a:
                ipaddress.ip_address(a)
    except ValueError:
        raise UmiakError(f"bad --net {text!r} (use dhcp or ADDR/PREFIX[,GATEWAY[,DNS]])") from None
    return {"UMIAK_NET": "static", "UMIAK_ADDR": addr, "UMIAK_GW": gw, "UMIAK_DNS": dns}


def _check(spec: ApplianceSpec) -> dict:
    """The image's metadata, and every option checked before anything slow starts."""
    if not spec.output:
        raise UmiakError("no output disk given (-o FILE)")
    out_dir = os.path.dirname(os.path.abspath(spec.output))
    if not os.path.isdir(out_dir):
        raise UmiakError(f"-o {spec.output}: {out_dir} is not a directory")
    from umiak.image import read_meta
    meta = read_meta(spec.image)
    if not meta:
        raise UmiakError(f"{spec.image}: not an image made by `umiak build` (no /.umiak/image.json)")
    if spec.restart not in ("no", "on-failure", "always"):
        raise UmiakError(f"bad --restart {spec.restart!r} (no, on-failure or always)")
    if spec.platform not in ("auto", "kvm", "emu"):
        raise UmiakError(f"bad --platform {spec.platform!r} (auto, kvm or emu)")
    for v in spec.volumes:
        dev, sep, d = v.partition(":")
        if not sep or not dev.startswith("/dev/") or not d.startswith("/") or d in ("/", "/umiak") \
                or any(c.isspace() for c in v):
            raise UmiakError(f"bad --volume-device {v!r} (use /dev/DEVICE:/DIR)")
    if spec.memory:
        from umiak.options import parse_size
        try:
            parse_size(spec.memory)
        except ValueError:
            raise UmiakError(f"bad memory size {spec.memory!r} (use e.g. 256M or 2G)") from None
    _publish(spec.publish)
    _net(spec.net)
    return meta


def build(spec: ApplianceSpec, progress=None) -> dict:
    """Write the disk; returns what /umiak/appliance.json holds, with sizes added."""
    meta = _check(spec)
    say = progress or (lambda msg: None)
    for tool, pkg in (("mke2fs", "e2fsprogs"), ("sfdisk", "fdisk"), ("mkfs.vfat", "dosfstools"),
                      ("mcopy", "mtools"), ("dpkg-deb", "dpkg")):
        _tool(tool, pkg)
    tmp = tempfile.mkdtemp(prefix="umiak-appliance-", dir=os.environ.get("TMPDIR"))
    try:
        from umiak.image.stage import Stage
        stage = Stage(os.path.join(tmp, "root"))
        os.mkdir(stage.path, 0o755)
        say("python3 and busybox from Debian's packages")
        _base_root(stage, tmp)
        say(f"the kernel ({KERNEL_PACKAGE})")
        vmlinuz, version = _kernel(stage, tmp)
        say("umiak and its Python dependencies")
        _python_packages(stage)
        info = _settings(spec, meta, stage, version)
        say("bytecode")
        _compile(stage, ["/usr/lib/python3/dist-packages"])
        say("the root file system (mkfs.ext4 -d)")
        from umiak.image.mkfs import make_image
        fixed = stage.normalise(int(os.environ.get("SOURCE_DATE_EPOCH", "0") or 0) or None)
        root_img = os.path.join(tmp, "root.img")
        make_image(stage, root_img, fixed, label="umiak-root")
        say("the EFI system partition and the disk")
        digest = _digest(root_img)
        part_uuid = str(uuid.UUID(bytes=digest[:16], version=4))
        cmdline = (f"root=PARTUUID={part_uuid} rootfstype=ext4 ro init=/umiak/init console=tty0 "
                   f"console=ttyS0,115200 quiet loglevel=3 panic=-1 nvme_core.io_timeout=4294967295 "
                   f"{spec.cmdline}").strip()
        esp_img = os.path.join(tmp, "esp.img")
        _esp(esp_img, vmlinuz, cmdline, tmp)
        size = _disk(spec.output, esp_img, root_img, part_uuid, digest)
        info.update(size=size, root_bytes=os.path.getsize(root_img), kernel_cmdline=cmdline)
        return info
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cached(key: str, make) -> str:
    """A directory in umiak's cache named by key, made by make(dir) once (atomically)."""
    from umiak.config import cache_dir
    base = os.path.join(cache_dir(), "appliance")
    path = os.path.join(base, key)
    if os.path.isdir(path):
        return path
    os.makedirs(base, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f".{key[:20]}-", dir=base)
    try:
        make(work)
        os.replace(work, path)
    except OSError:
        if not os.path.isdir(path):
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def _key(pkgs: list[dict]) -> str:
    return hashlib.sha256("\n".join(f"{p['file']} {p['hash']}" for p in pkgs).encode()).hexdigest()[:24]


def _base_root(stage, tmp: str) -> None:
    """python3 and busybox unpacked (no maintainer script), the standard library compiled:
    made once per set of package versions, then copied from the cache."""
    from umiak.image.deb import fetch, resolve
    apt = os.path.join(tmp, "apt-root")
    os.mkdir(apt)
    pkgs = resolve(ROOT_PACKAGES, apt)

    def make(d: str) -> None:
        root = os.path.join(d, "root")
        os.mkdir(root, 0o755)
        for deb in fetch(pkgs, apt):
            _run(["dpkg-deb", "-x", deb, root], f"dpkg-deb -x {os.path.basename(deb)}")
        os.chmod(root, 0o755)
        from umiak.image.stage import Stage
        _compile(Stage(root), None)
    cached = os.path.join(_cached("root-" + _key(pkgs), make), "root")
    os.rmdir(stage.path)
    from umiak.image.stage import _cp_a
    _cp_a(cached, stage.path)


def _kernel(stage, tmp: str) -> tuple[str, str]:
    """Debian's cloud kernel: (vmlinuz, version); its MODULES copied into the stage."""
    from umiak.image.deb import fetch, resolve
    apt = os.path.join(tmp, "apt-kernel")
    os.mkdir(apt)
    pkgs = [p for p in resolve([KERNEL_PACKAGE], apt) if p["file"].startswith("linux-image-")]

    def make(d: str) -> None:
        kdir = os.path.join(tmp, "kernel")
        os.mkdir(kdir)
        for deb in fetch(pkgs, apt):
            _run(["dpkg-deb", "-x", deb, kdir], f"dpkg-deb -x {os.path.basename(deb)}")
        boot = os.path.join(kdir, "boot")
        images = sorted(n for n in os.listdir(boot) if n.startswith("vmlinuz-")) if os.path.isdir(boot) else []
        if not images:
            raise UmiakError(f"{KERNEL_PACKAGE} holds no /boot/vmlinuz-*")
        version = images[-1].removeprefix("vmlinuz-")
        shutil.copyfile(os.path.join(boot, images[-1]), os.path.join(d, "vmlinuz"))
        with open(os.path.join(d, "version"), "w") as f:
            f.write(version + "\n")
        _modules(os.path.join(d, "modules"), os.path.join(kdir, "lib", "modules", version))
        shutil.rmtree(kdir, ignore_errors=True)
    cached = _cached("kernel-" + _key(pkgs + [{"file": "modules", "hash": repr(sorted(MODULES.items()))}]), make)
    with open(os.path.join(cached, "version")) as f:
        version = f.read().strip()
    shutil.copytree(os.path.join(cached, "modules"), stage.hp("/umiak/modules"))
    return os.path.join(cached, "vmlinuz"), version


def _modules(out: str, moddir: str) -> None:
    """MODULES and what they depend on (read from each module's .modinfo), copied to out
    with the order to insmod them: lines `MODULE CONDITION`, a module's dependencies
    before it with its condition (a dependency of two modules is listed under each)."""
    from elftools.elf.elffile import ELFFile
    files: dict[str, str] = {}
    for d, _dirs, names in os.walk(moddir):
        for n in names:
            if n.endswith(".ko"):
                files[n[:-3].replace("-", "_")] = os.path.join(d, n)
    order: list[tuple[str, str]] = []

    def deps(path: str) -> list[str]:
        with open(path, "rb") as f:
            sec = ELFFile(f).get_section_by_name(".modinfo")
            data = sec.data() if sec is not None else b""
        for item in data.split(b"\0"):
            if item.startswith(b"depends="):
                return [x for x in item[8:].decode().split(",") if x]
        return []

    def add(name: str, cond: str, depth: int = 0) -> None:
        if (name, cond) in order or name not in files or depth > 20:
            return
        for dep in deps(files[name]):
            add(dep, cond, depth + 1)
        order.append((name, cond))
    for m, cond in MODULES.items():
        add(m, cond)
    os.makedirs(out)
    for m in dict.fromkeys(m for m, _c in order):
        shutil.copyfile(files[m], os.path.join(out, f"{m}.ko"))
    with open(os.path.join(out, "order"), "w") as f:
        f.write("".join(f"{m} {cond}\n" for m, cond in order))


def _python_packages(stage) -> None:
    """umiak (this one) and its dependencies, from this host, into dist-packages."""
    import importlib.util

    import umiak
    dest = "/usr/lib/python3/dist-packages"
    stage.mkdirs(dest)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(os.path.dirname(umiak.__file__), stage.hp(f"{dest}/umiak"), ignore=ignore)
    for name in PY_DEPS:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            _log(f"warning: the Python module {name} is not installed here; the appliance goes without it")
            continue
        if spec.submodule_search_locations:
            src = os.path.dirname(spec.origin)
            shutil.copytree(src, stage.hp(f"{dest}/{os.path.basename(src)}"), ignore=ignore)
        else:
            shutil.copyfile(spec.origin, stage.hp(f"{dest}/{os.path.basename(spec.origin)}"))


def _settings(spec: ApplianceSpec, meta: dict, stage, version: str) -> dict:
    """The image, /umiak/init, its settings (appliance.env for the shell, appliance.json)."""
    from umiak.appliance.init import INIT, UDHCPC
    shutil.copyfile(spec.image, stage.hp("/umiak/image.img"))
    ports = list(spec.publish) or [p.removesuffix("/tcp") for p in meta.get("ports") or []]
    publish = _publish(ports)
    env = {"UMIAK_HOSTNAME": spec.hostname, "UMIAK_PLATFORM": spec.platform, "UMIAK_RESTART": spec.restart,
           "UMIAK_NETMODE": "private" if publish else "host", "UMIAK_PUBLISH": " ".join(publish),
           "UMIAK_VOLUMES": " ".join(spec.volumes), "UMIAK_IMAGE_NAME": os.path.basename(spec.image),
           "UMIAK_RUN_OPTIONS": f"-m {spec.memory}" if spec.memory else "", **_net(spec.net)}
    text = "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())
    if spec.args:
        text += f"set -- {shlex.join(spec.args)}\n"
    stage.write("/umiak/appliance.env", text.encode())
    stage.write("/umiak/init", INIT.encode(), 0o755)
    stage.write("/umiak/udhcpc", UDHCPC.encode(), 0o755)
    info = {"umiak_appliance": 1, "image": os.path.basename(spec.image), "kernel": version,
            "ports": ports, "publish": publish, "volumes": list(spec.volumes), "restart": spec.restart,
            "platform": spec.platform, "net": spec.net, "args": list(spec.args), "memory": spec.memory,
            "image_meta": {k: meta.get(k) for k in ("entrypoint", "cmd", "ports", "memory", "source")}}
    stage.write(APPLIANCE_META, (json.dumps(info, indent=1, sort_keys=True) + "\n").encode())
    for d, mode in (("/dev", 0o755), ("/proc", 0o555), ("/sys", 0o555), ("/run", 0o755), ("/tmp", 0o1777),
                    ("/mnt", 0o755), ("/etc", 0o755)):
        stage.mkdirs(d)
        os.chmod(stage.hp(d), mode)
    for v in spec.volumes:
        stage.mkdirs(v.partition(":")[2])
    for name in ("resolv.conf", "hostname"):
        if os.path.lexists(stage.hp(f"/etc/{name}")):
            os.unlink(stage.hp(f"/etc/{name}"))
    os.symlink("/run/resolv.conf", stage.hp("/etc/resolv.conf"))
    stage.write("/etc/hostname", f"{spec.hostname}\n".encode())
    if not stage.exists("/etc/passwd"):
        stage.write("/etc/passwd", b"root:x:0:0:root:/run:/bin/sh\n")
        stage.write("/etc/group", b"root:x:0:\n")
    return info


def _compile(stage, only: list[str] | None) -> None:
    """.pyc files for the root's Python (when this host's Python has the same version, its
    bytecode is the root's), checked by hash: the file times do not matter. `only`: these
    guest directories (else the standard library and dist-packages)."""
    lib = stage.hp("/usr/lib")
    vers = sorted(n for n in os.listdir(lib) if n.startswith("python3.") and n[8:].isdigit())
    if not vers or vers[-1] != f"python{sys.version_info[0]}.{sys.version_info[1]}":
        _log(f"warning: this host's Python is not the appliance's ({vers[-1] if vers else '?'}): "
             "no bytecode ahead (a slower first start)")
        return
    dirs = [stage.hp(d) for d in (only or [f"/usr/lib/{vers[-1]}", "/usr/lib/python3/dist-packages"])
            if os.path.isdir(stage.hp(d))]
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                    "-x", r"(/test/|/tests/|/idlelib/|/lib2to3/|/tkinter/|/turtledemo/|/ensurepip/)",
                    "-s", stage.path, "-p", "/", *dirs], capture_output=True, text=True)


def _digest(path: str) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MIB), b""):
            h.update(chunk)
    return h.digest()


def _esp(path: str, vmlinuz: str, cmdline: str, tmp: str) -> None:
    """A FAT ESP: systemd-boot at the removable-media path, the kernel, and one loader entry."""
    boot_efi = BOOT_EFI if os.path.exists(BOOT_EFI) else _fetch_boot_efi(tmp)
    with open(path, "wb") as f:
        f.truncate(ESP_MIB * MIB)
    _run([_tool("mkfs.vfat", "dosfstools"), "-F", "32", "-s", "1", "-n", "UMIAK-ESP", "-i", "554d494b", path], "mkfs.vfat")
    files = os.path.join(tmp, "esp")
    os.mkdir(files)
    with open(os.path.join(files, "loader.conf"), "w") as f:
        f.write("default umiak.conf\ntimeout 0\neditor no\nrandom-seed-mode off\n")
    with open(os.path.join(files, "umiak.conf"), "w") as f:
        f.write(f"title umiak appliance\nlinux /umiak/vmlinuz\noptions {cmdline}\n")
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    _run(["mmd", "-i", path, "::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries", "::/umiak"], "mmd", env=env)
    for src, dst in ((boot_efi, "::/EFI/BOOT/BOOTX64.EFI"), (vmlinuz, "::/umiak/vmlinuz"),
                     (os.path.join(files, "loader.conf"), "::/loader/loader.conf"),
                     (os.path.join(files, "umiak.conf"), "::/loader/entries/umiak.conf")):
        _run(["mcopy", "-i", path, "-m", src, dst], "mcopy", env=env)


def _fetch_boot_efi(tmp: str) -> str:
    """systemd-boot from Debian's systemd-boot-efi package, when the host has none installed."""
    from umiak.image.deb import fetch, resolve
    apt = os.path.join(tmp, "apt-boot")
    os.mkdir(apt)
    pkgs = [p for p in resolve(["systemd-boot-efi"], apt) if p["file"].startswith("systemd-boot-efi_")]
    out = os.path.join(tmp, "boot-efi")
    for deb in fetch(pkgs, apt):
        _run(["dpkg-deb", "-x", deb, out], "dpkg-deb -x systemd-boot-efi")
    path = out + BOOT_EFI
    if not os.path.exists(path):
        raise UmiakError(f"systemd-boot-efi holds no {BOOT_EFI}")
    return path


def _disk(output: str, esp: str, root: str, part_uuid: str, digest: bytes) -> int:
    """The GPT disk: 1 MiB, the ESP, the root, rounded up to a whole GiB (sparse)."""
    esp_start = MIB
    root_start = esp_start + os.path.getsize(esp)
    root_size = -(-os.path.getsize(root) // MIB) * MIB
    size = -(-(root_start + root_size + MIB) // GIB) * GIB
    tmp = f"{output}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.truncate(size)
        script = (f"label: gpt\nlabel-id: {uuid.UUID(bytes=digest[16:32], version=4)}\nunit: sectors\n"
                  f"start={esp_start // 512}, size={os.path.getsize(esp) // 512}, type={ESP_TYPE}, "
                  f"uuid={uuid.UUID(bytes=hashlib.sha256(digest).digest()[:16], version=4)}, name=\"EFI system\"\n"
                  f"start={root_start // 512}, size={root_size // 512}, type={ROOT_TYPE}, uuid={part_uuid}, "
                  f"name=\"umiak-root\"\n")
        _run([_tool("sfdisk", "fdisk"), "--no-reread", "--no-tell-kernel", "-q", tmp], "sfdisk", input=script)
        with open(tmp, "r+b") as out:
            for src, at in ((esp, esp_start), (root, root_start)):
                _copy_sparse(src, out, at)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return size


def _copy_sparse(src: str, out, at: int) -> None:
    zero = bytes(MIB)
    with open(src, "rb") as f:
        off = 0
        while True:
            chunk = f.read(MIB)
            if not chunk:
                break
            if chunk != zero[:len(chunk)]:
                out.seek(at + off)
                out.write(chunk)
            off += len(chunk)
