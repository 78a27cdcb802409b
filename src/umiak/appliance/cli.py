"""`umiak appliance build|boot`: its own argument parser, imported only for this command."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="umiak appliance",
                                description="A bootable disk (UEFI, Linux, CPython, umiak, the image) that runs "
                                            "one image on a machine of its own, and its local boot in QEMU.")
    sub = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    b = sub.add_parser("build", help="make the raw disk of an image",
                       description="Make a GPT raw disk that boots (UEFI) into `umiak run IMAGE`.",
                       epilog="Arguments after -- replace the image's command arguments.")
    b.add_argument("image", metavar="IMAGE", help="an image made by `umiak build`")
    b.add_argument("-o", "--output", metavar="DISK", required=True, help="the raw disk file to write")
    add_options(b)
    b.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary line")
    r = sub.add_parser("boot", help="boot a disk in QEMU, the serial console on this terminal",
                       description="Boot an appliance disk in QEMU (OVMF firmware, KVM when usable, else TCG). "
                                   "The exit status is the program's, read from the console.")
    r.add_argument("disk", metavar="DISK")
    r.add_argument("-p", "--publish", action="append", default=[], metavar="HOST:GUEST[/udp]",
                   help="forward this host's 127.0.0.1:HOST to the appliance's port GUEST")
    r.add_argument("-m", "--memory", default="2G", metavar="SIZE", help="the machine's RAM (default 2G)")
    r.add_argument("-c", "--cpus", type=int, default=2, metavar="N", help="its CPUs (default 2)")
    r.add_argument("--accel", default="auto", choices=["auto", "kvm", "tcg"],
                   help="kvm (hardware), tcg (QEMU's software CPU), auto: kvm when it works")
    r.add_argument("--volume", action="append", default=[], metavar="FILE",
                   help="attach a raw file as the next NVMe disk (/dev/nvme1n1, ...)")
    r.add_argument("--timeout", type=float, metavar="SECONDS", help="stop the machine after this long (status 124)")
    r.add_argument("--persist", action="store_true", help="let the machine write to DISK (default: a snapshot)")
    return p


def add_options(p: argparse.ArgumentParser) -> None:
    """What the appliance does at boot (shared with `umiak deploy aws`)."""
    p.add_argument("-p", "--publish", action="append", default=[], metavar="PORT|HOST:GUEST[/udp]",
                   help="a port the machine answers on, forwarded to the program (default: the image's ports)")
    p.add_argument("--volume-device", action="append", default=[], dest="volumes", metavar="DEVICE:DIR",
                   help="mount this block device (e.g. /dev/nvme1n1) at DIR for the program")
    p.add_argument("--restart", default="no", choices=["no", "on-failure", "always"],
                   help="run the program again when it exits (default: power off)")
    p.add_argument("--platform", default="auto", choices=["auto", "kvm", "emu"],
                   help="umiak's platform inside the machine (auto: kvm when /dev/kvm exists, else emu)")
    p.add_argument("--net", default="dhcp", metavar="dhcp|ADDR/PREFIX[,GW[,DNS]]",
                   help="the first NIC's configuration (default dhcp)")
    p.add_argument("--run-memory", dest="run_memory", metavar="SIZE", help="umiak run -m SIZE inside")
    p.add_argument("--hostname", default="umiak", help="the machine's host name")


def spec_from(args, image: str, output: str, extra: list[str]):
    from umiak.appliance.build import ApplianceSpec
    return ApplianceSpec(image=image, output=output, publish=list(args.publish), volumes=list(args.volumes),
                         restart=args.restart, platform=args.platform, net=args.net, memory=args.run_memory,
                         args=extra, hostname=args.hostname)


def main(argv: list[str]) -> int:
    from umiak.options import split_program_args
    argv, extra = split_program_args(argv)
    args = _parser().parse_args(argv)
    if args.verb == "build":
        import time

        from umiak.appliance.build import build
        t0 = time.monotonic()
        say = None if args.quiet else (lambda m: print(f"umiak: appliance: {m}", file=sys.stderr))
        info = build(spec_from(args, args.image, args.output, extra), progress=say)
        if not args.quiet:
            print(f"umiak: built {args.output}: a {info['size'] >> 30} GiB disk (root {info['root_bytes'] / 1e6:.0f} MB, "
                  f"Linux {info['kernel']}), ports {' '.join(info['ports']) or '-'} "
                  f"({time.monotonic() - t0:.0f} s)", file=sys.stderr)
        return 0
    from umiak.appliance.boot import boot
    return boot(args.disk, publish=args.publish, memory=args.memory, cpus=args.cpus, accel=args.accel,
                volumes=args.volume, timeout=args.timeout, snapshot=not args.persist)
