"""`umiak deploy aws|ls|logs|rm`: its own argument parser, imported only for this command."""

from __future__ import annotations

import argparse
import sys


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--region", metavar="REGION", help="the AWS region (default: boto3's, e.g. $AWS_REGION)")
    p.add_argument("--endpoint-url", metavar="URL", help="send every AWS call here (e.g. a moto server)")


def _parser() -> argparse.ArgumentParser:
    from umiak.appliance.cli import add_options
    p = argparse.ArgumentParser(prog="umiak deploy", description="Run an image on a cloud machine of its own, "
                                "as an appliance (see umiak appliance), and manage those machines.")
    sub = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    a = sub.add_parser("aws", help="upload the appliance of IMAGE as an EBS snapshot, register it, run an instance",
                       description="Build IMAGE's appliance (or take an appliance disk), upload it with the EBS "
                                   "direct APIs, register a UEFI/ENA AMI, open the -p ports in a security group "
                                   "and run an EC2 instance. Credentials come from boto3's usual chain.",
                       epilog="Arguments after -- replace the image's command arguments.")
    a.add_argument("image", metavar="IMAGE|DISK", help="an image (umiak build) or an appliance disk")
    _common(a)
    a.add_argument("--instance-type", "-t", default="c8i.large", metavar="TYPE",
                   help="c8i/m8i/r8i (nested virtualization), *.metal, or any type with --platform emu "
                        "(default c8i.large)")
    a.add_argument("--name", metavar="NAME", help="a name for the deployment (default: the image's)")
    a.add_argument("--subnet-id", metavar="SUBNET", help="launch in this subnet (default: the default VPC's)")
    a.add_argument("--key-name", metavar="KEY", help="an EC2 key pair (the appliance runs no ssh; for the console)")
    a.add_argument("--on-exit", default="stop", choices=["stop", "terminate"],
                   help="what EC2 does when the program exits and the machine powers off (default stop)")
    add_options(a)
    a.add_argument("-q", "--quiet", action="store_true", help="only the result")
    ls = sub.add_parser("ls", help="the instances umiak made")
    _common(ls)
    lg = sub.add_parser("logs", help="an instance's serial console output")
    lg.add_argument("id", metavar="ID", help="an instance id or a deployment name")
    _common(lg)
    rm = sub.add_parser("rm", help="terminate an instance and remove its image, snapshot and security group")
    rm.add_argument("id", metavar="ID", help="an instance id or a deployment name")
    _common(rm)
    return p


def main(argv: list[str]) -> int:
    from umiak.options import split_program_args
    argv, extra = split_program_args(argv)
    args = _parser().parse_args(argv)
    from umiak.deploy import aws
    if args.verb == "aws":
        spec = {"volumes": list(args.volumes), "restart": args.restart, "net": args.net,
                "memory": args.run_memory, "args": extra, "hostname": args.hostname}
        opts = aws.DeployOptions(image=args.image, region=args.region, instance_type=args.instance_type,
                                 ports=list(args.publish), endpoint_url=args.endpoint_url, platform=args.platform,
                                 name=args.name, subnet_id=args.subnet_id, key_name=args.key_name,
                                 on_exit=args.on_exit, appliance=spec, quiet=args.quiet)
        info = aws.deploy(opts)
        print(f"{info['instance']}\t{info['public_ip'] or '-'}\t{info['state']}\t{info['name']}")
        if not args.quiet:
            print(f"umiak: {info['instance']} ({info['type']}, platform {info['platform']}"
                  f"{', nested virtualization' if info['nested'] else ''}) {info['state']}, public address "
                  f"{info['public_ip'] or 'none yet'}; `umiak deploy logs {info['instance']}` for its console, "
                  f"`umiak deploy rm {info['instance']}` to remove it and its image, snapshot and security group",
                  file=sys.stderr)
        return 0
    if args.verb == "ls":
        rows = aws.ls(args.region, args.endpoint_url)
        print("INSTANCE\tSTATE\tTYPE\tPUBLIC IP\tPORTS\tIMAGE\tNAME")
        for d in rows:
            print(f"{d['instance']}\t{d['state']}\t{d['type']}\t{d['public_ip']}\t{d['ports']}\t{d['image']}\t{d['name']}")
        return 0
    if args.verb == "logs":
        sys.stdout.write(aws.logs(args.id, args.region, args.endpoint_url))
        return 0
    for line in aws.rm(args.id, args.region, args.endpoint_url):
        print(f"removed {line}")
    return 0
