"""`umiak deploy aws`: the appliance of an image as an EBS snapshot, an AMI and an EC2 instance.

    deploy(DeployOptions(image="redis.img", region="eu-west-1", instance_type="c8i.large", ports=["6379"]))

The path (no S3 bucket, no vmimport role): the EBS direct APIs (StartSnapshot;
PutSnapshotBlock for every 512 KiB block that is not all zeros, with its SHA-256;
CompleteSnapshot with the linear aggregate of those checksums), RegisterImage (UEFI,
ENA, the snapshot as /dev/xvda), a security group opening the published ports, then
RunInstances, with nested virtualization on where the type supports it (CpuOptions),
else on a *.metal type, else only with --platform emu (a software CPU in the appliance).
Every resource is tagged umiak:deployment=NAME; a failure removes what this run made.
Credentials and region come from boto3's chain; --endpoint-url points every client
elsewhere (the tests: a moto server).
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from umiak.errors import UmiakError

BLOCK = 512 * 1024              # the EBS direct APIs' block size
GIB = 1 << 30
TAG = "umiak:deployment"
NESTED_FAMILIES = ("c8i", "m8i", "r8i", "c8i-flex", "m8i-flex", "r8i-flex")
UPLOAD_THREADS = 8
RETRYABLE = {"Throttling", "ThrottlingException", "RequestThrottled", "RequestLimitExceeded",
             "InternalError", "InternalServerException", "ServiceUnavailable", "ServiceUnavailableException",
             "RequestTimeout", "RequestTimeoutException", "DependencyViolation", "InvalidGroup.InUse"}


@dataclass
class DeployOptions:
    image: str
    region: str | None = None
    instance_type: str = "c8i.large"
    ports: list[str] = field(default_factory=list)
    endpoint_url: str | None = None
    platform: str = "auto"
    name: str | None = None
    subnet_id: str | None = None
    key_name: str | None = None
    on_exit: str = "stop"                       # what EC2 does when the appliance powers off
    appliance: dict = field(default_factory=dict)   # ApplianceSpec fields (volumes, restart, net, ...)
    quiet: bool = False


def _boto3():
    try:
        import boto3  # type: ignore[import-untyped]
        import botocore  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        raise UmiakError("umiak deploy aws needs boto3 (pip install boto3)") from None
    return boto3


class Aws:
    """The clients of one region, with umiak's error messages and retries."""

    def __init__(self, region: str | None, endpoint_url: str | None):
        boto3 = _boto3()
        from botocore.config import Config  # type: ignore[import-untyped]
        from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]
        try:
            session = boto3.session.Session(region_name=region)
        except BotoCoreError as e:      # ProfileNotFound, a bad ~/.aws/config
            raise UmiakError(f"AWS: {e}") from None
        self.region = session.region_name
        if not self.region:
            raise UmiakError("no AWS region: give --region or set AWS_REGION (or a region in ~/.aws/config)")
        if endpoint_url is None and self.region not in session.get_available_regions("ec2"):
            raise UmiakError(f"unknown AWS region {self.region!r}")
        try:
            creds = session.get_credentials()
        except BotoCoreError as e:
            raise UmiakError(f"AWS credentials: {e}") from None
        if creds is None:
            raise UmiakError("no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                             "AWS_PROFILE, or ~/.aws/credentials)")
        cfg = Config(retries={"max_attempts": 8, "mode": "adaptive"}, max_pool_connections=UPLOAD_THREADS * 2,
                     connect_timeout=10, read_timeout=60)
        self.ec2 = session.client("ec2", endpoint_url=endpoint_url, config=cfg)
        self.ebs = session.client("ebs", endpoint_url=endpoint_url, config=cfg)
        self.endpoint_url = endpoint_url

    def call(self, client, op: str, attempts: int = 6, **kw):
        """client.op(**kw); throttling and transient errors retried with backoff; any other
        failure a UmiakError with AWS's own message."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
        delay = 0.5
        for attempt in range(attempts):
            try:
                return getattr(client, op)(**kw)
            except ClientError as e:
                err = e.response.get("Error", {})
                code, msg = err.get("Code", "?"), err.get("Message", str(e))
                if code in RETRYABLE and attempt + 1 < attempts:
                    time.sleep(delay)
                    delay = min(delay * 2, 8)
                    continue
                raise AwsError(op, code, msg) from None
            except NoCredentialsError:
                raise UmiakError("no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                                 "AWS_PROFILE, or ~/.aws/credentials)") from None
            except BotoCoreError as e:
                if attempt + 1 < attempts and "Connect" in type(e).__name__:
                    time.sleep(delay)
                    delay = min(delay * 2, 8)
                    continue
                raise UmiakError(f"AWS {op}: {e}") from None
        raise AssertionError("unreachable")


class AwsError(UmiakError):
    def __init__(self, op: str, code: str, message: str):
        self.op, self.code = op, code
        super().__init__(f"AWS {op}: {code}: {message}")


def _say(opts: DeployOptions, msg: str) -> None:
    if not opts.quiet:
        print(f"umiak: {msg}", file=sys.stderr)


class Undo:
    """What this run made, removed in reverse order when it fails."""

    def __init__(self, aws: Aws):
        self.aws = aws
        self.items: list[tuple[str, str]] = []

    def add(self, kind: str, rid: str) -> None:
        self.items.append((kind, rid))

    def run(self) -> list[str]:
        left = []
        for kind, rid in reversed(self.items):
            try:
                _remove(self.aws, kind, rid)
            except UmiakError as e:
                left.append(f"{kind} {rid} ({e})")
        return left


def _remove(aws: Aws, kind: str, rid: str) -> None:
    if kind == "instance":
        aws.call(aws.ec2, "terminate_instances", InstanceIds=[rid])
        _wait_terminated(aws, rid)
    elif kind == "security-group":
        aws.call(aws.ec2, "delete_security_group", attempts=12, GroupId=rid)
    elif kind == "image":
        aws.call(aws.ec2, "deregister_image", ImageId=rid)
    elif kind == "snapshot":
        aws.call(aws.ec2, "delete_snapshot", SnapshotId=rid)


def _pause(n: int) -> None:
    """The n-th wait of a poll: 0.5 s, then longer, up to 5 s."""
    time.sleep(min(0.5 * 1.5 ** n, 5.0))


def _wait_terminated(aws: Aws, iid: str, timeout: float = 600) -> None:
    end = time.monotonic() + timeout
    n = 0
    while time.monotonic() < end:
        r = aws.call(aws.ec2, "describe_instances", InstanceIds=[iid])
        states = [i["State"]["Name"] for res in r["Reservations"] for i in res["Instances"]]
        if not states or all(s == "terminated" for s in states):
            return
        _pause(n)
        n += 1
    raise UmiakError(f"{iid} is not terminated after {timeout:g} s")


def _tags(name: str, kind: str, opts: DeployOptions) -> list[dict]:
    return [{"Key": TAG, "Value": name}, {"Key": "Name", "Value": f"{name}-{kind}" if kind != "instance" else name},
            {"Key": "umiak:image", "Value": os.path.basename(opts.image)},
            {"Key": "umiak:ports", "Value": " ".join(opts.ports) or "-"}]


def check_instance_type(aws: Aws, itype: str, platform: str) -> tuple[bool, str]:
    """(turn on nested virtualization?, the appliance's platform) for this type; an unknown
    type, or one without UEFI, or without a way to run KVM (unless --platform emu), is an error."""
    try:
        r = aws.call(aws.ec2, "describe_instance_types", InstanceTypes=[itype])
    except AwsError as e:
        if "InvalidInstanceType" in e.code or "InvalidParameterValue" in e.code:
            raise UmiakError(f"unknown instance type {itype!r} in {aws.region}") from None
        raise
    infos = r.get("InstanceTypes") or []
    if not infos:
        raise UmiakError(f"unknown instance type {itype!r} in {aws.region}")
    info = infos[0]
    arch = info.get("ProcessorInfo", {}).get("SupportedArchitectures") or ["x86_64"]
    if "x86_64" not in arch:
        raise UmiakError(f"{itype} is not x86-64 ({', '.join(arch)}): umiak runs x86-64 programs")
    modes = info.get("SupportedBootModes")
    if modes is not None and "uefi" not in modes:
        raise UmiakError(f"{itype} cannot boot UEFI (boot modes: {', '.join(modes)}); the appliance needs it")
    features = info.get("ProcessorInfo", {}).get("SupportedFeatures")
    family = itype.split(".", 1)[0]
    nested = ("nested-virtualization" in features) if features is not None else family in NESTED_FAMILIES
    metal = bool(info.get("BareMetal")) or itype.endswith(".metal") or "-metal" in itype
    if platform == "emu":
        return False, "emu"
    if nested or metal:
        return nested and not metal, "kvm" if platform == "kvm" else "auto"
    raise UmiakError(f"{itype} offers no virtualization to its guest, so umiak's kvm platform cannot run there: "
                     f"use a c8i, m8i or r8i type (nested virtualization), a *.metal type, or --platform emu "
                     f"(a software CPU, much slower)")


def is_appliance_disk(path: str) -> bool:
    """A GPT disk (umiak appliance build's output) rather than an image."""
    try:
        with open(path, "rb") as f:
            f.seek(512)
            return f.read(8) == b"EFI PART"
    except OSError:
        return False


def upload(aws: Aws, disk: str, name: str, opts: DeployOptions, undo: Undo) -> tuple[str, int]:
    """The disk as a completed EBS snapshot: (snapshot id, blocks written)."""
    size = os.path.getsize(disk)
    gib = max(1, -(-size // GIB))
    r = aws.call(aws.ebs, "start_snapshot", VolumeSize=gib, Timeout=60, Description=f"umiak appliance {name}",
                 Tags=_tags(name, "snapshot", opts), ClientToken=f"{name}-{int(time.time())}")
    sid = r["SnapshotId"]
    undo.add("snapshot", sid)
    blocks = [i for i in _nonzero_blocks(disk)]
    sums: dict[int, bytes] = {}
    bar = _Progress(len(blocks), f"uploading {os.path.basename(disk)} to {sid}", opts.quiet)

    def put(index: int) -> None:
        with open(disk, "rb") as f:
            f.seek(index * BLOCK)
            data = f.read(BLOCK)
        data += bytes(BLOCK - len(data))
        digest = hashlib.sha256(data).digest()
        aws.call(aws.ebs, "put_snapshot_block", attempts=8, SnapshotId=sid, BlockIndex=index, BlockData=data,
                 DataLength=BLOCK, Checksum=base64.b64encode(digest).decode(), ChecksumAlgorithm="SHA256")
        sums[index] = digest
        bar.advance()
    pool = ThreadPoolExecutor(UPLOAD_THREADS)
    try:
        for fut in [pool.submit(put, i) for i in blocks]:
            fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)   # a failure: the blocks not yet sent are not
        bar.close()
    aggregate = hashlib.sha256(b"".join(sums[i] for i in sorted(sums))).digest()
    aws.call(aws.ebs, "complete_snapshot", SnapshotId=sid, ChangedBlocksCount=len(blocks),
             Checksum=base64.b64encode(aggregate).decode(), ChecksumAlgorithm="SHA256",
             ChecksumAggregationMethod="LINEAR")
    _wait_snapshot(aws, sid)
    return sid, len(blocks)


def _nonzero_blocks(disk: str):
    zero = bytes(BLOCK)
    with open(disk, "rb") as f:
        index = 0
        while True:
            try:   # skip the holes of a sparse file without reading them
                pos = os.lseek(f.fileno(), index * BLOCK, os.SEEK_DATA)
            except OSError:
                return
            index = pos // BLOCK
            f.seek(index * BLOCK)
            data = f.read(BLOCK)
            if not data:
                return
            if data != zero[:len(data)]:
                yield index
            index += 1


def _wait_snapshot(aws: Aws, sid: str, timeout: float = 1800) -> None:
    end = time.monotonic() + timeout
    n = 0
    while time.monotonic() < end:
        r = aws.call(aws.ec2, "describe_snapshots", SnapshotIds=[sid])
        state = (r.get("Snapshots") or [{}])[0].get("State", "pending")
        if state == "completed":
            return
        if state == "error":
            raise UmiakError(f"snapshot {sid} failed: {(r['Snapshots'][0]).get('StateMessage', 'state error')}")
        _pause(n)
        n += 1
    raise UmiakError(f"snapshot {sid} is not completed after {timeout:g} s")


class _Progress:
    """A rich progress bar on a terminal, else a line every quarter."""

    def __init__(self, total: int, what: str, quiet: bool):
        import threading
        self.total, self.done, self.what, self.quiet = total, 0, what, quiet
        self._lock = threading.Lock()
        self._rich = None
        self._last = -1
        if not quiet and sys.stderr.isatty():
            try:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
                self._rich = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                      TimeRemainingColumn(), transient=False)
                self._rich.start()
                self._task = self._rich.add_task(what, total=total)
            except ImportError:
                self._rich = None
        elif not quiet:
            print(f"umiak: {what}: {total} blocks of 512 KiB", file=sys.stderr)

    def advance(self) -> None:
        with self._lock:
            self.done += 1
            if self._rich is not None:
                self._rich.update(self._task, completed=self.done)
            elif not self.quiet and self.total:
                q = self.done * 4 // self.total
                if q != self._last and q > 0:
                    self._last = q
                    print(f"umiak: {self.what}: {self.done}/{self.total}", file=sys.stderr)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()


def _default_vpc(aws: Aws, subnet_id: str | None) -> str:
    if subnet_id:
        r = aws.call(aws.ec2, "describe_subnets", SubnetIds=[subnet_id])
        return r["Subnets"][0]["VpcId"]
    r = aws.call(aws.ec2, "describe_vpcs", Filters=[{"Name": "isDefault", "Values": ["true"]}])
    vpcs = r.get("Vpcs") or []
    if not vpcs:
        raise UmiakError(f"no default VPC in {aws.region}: give --subnet-id")
    return vpcs[0]["VpcId"]


def _permissions(ports: list[str]) -> list[dict]:
    out = []
    for p in ports:
        spec, _, proto = p.partition("/")
        port = spec.split(":")[0]
        out.append({"IpProtocol": proto or "tcp", "FromPort": int(port), "ToPort": int(port),
                    "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "umiak -p"}],
                    "Ipv6Ranges": [{"CidrIpv6": "::/0", "Description": "umiak -p"}]})
    return out


def deploy(opts: DeployOptions) -> dict:
    """Build, upload, register, open, run; returns the instance's id and addresses."""
    if not os.path.exists(opts.image):
        raise UmiakError(f"{opts.image}: No such file or directory")
    if opts.on_exit not in ("stop", "terminate"):
        raise UmiakError(f"bad --on-exit {opts.on_exit!r} (stop or terminate)")
    from umiak.appliance.build import _publish
    _publish(opts.ports)     # a bad -p is an error before anything is made
    aws = Aws(opts.region, opts.endpoint_url)
    nested, platform = check_instance_type(aws, opts.instance_type, opts.platform)
    base = opts.name or os.path.splitext(os.path.basename(opts.image))[0]
    name = f"umiak-{''.join(c if c.isalnum() or c in '-_' else '-' for c in base)[:40]}-{os.urandom(3).hex()}"
    import shutil
    import tempfile
    tmp = None
    undo = Undo(aws)
    try:
        if is_appliance_disk(opts.image):
            disk = opts.image
        else:
            from umiak.appliance.build import ApplianceSpec, build
            tmp = tempfile.mkdtemp(prefix="umiak-deploy-", dir=os.environ.get("TMPDIR"))
            disk = os.path.join(tmp, "appliance.raw")
            fields = dict(opts.appliance)
            fields.setdefault("publish", list(opts.ports))
            fields["platform"] = platform
            _say(opts, f"building the appliance of {opts.image} (platform {platform} inside)")
            build(ApplianceSpec(image=opts.image, output=disk, **fields))
        sid, nblocks = upload(aws, disk, name, opts, undo)
        _say(opts, f"snapshot {sid}: {nblocks} blocks")
        r = aws.call(aws.ec2, "register_image", Name=name, Description=f"umiak appliance of {os.path.basename(opts.image)}",
                     Architecture="x86_64", RootDeviceName="/dev/xvda", VirtualizationType="hvm",
                     EnaSupport=True, BootMode="uefi", ImdsSupport="v2.0",
                     BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                                           "Ebs": {"SnapshotId": sid, "VolumeType": "gp3", "DeleteOnTermination": True}}])
        ami = r["ImageId"]
        undo.add("image", ami)
        aws.call(aws.ec2, "create_tags", Resources=[ami], Tags=_tags(name, "image", opts))
        _say(opts, f"image {ami} (UEFI, ENA)")
        vpc = _default_vpc(aws, opts.subnet_id)
        r = aws.call(aws.ec2, "create_security_group", GroupName=name, VpcId=vpc,
                     Description=f"umiak: the published ports of {name}",
                     TagSpecifications=[{"ResourceType": "security-group", "Tags": _tags(name, "sg", opts)}])
        sg = r["GroupId"]
        undo.add("security-group", sg)
        if opts.ports:
            aws.call(aws.ec2, "authorize_security_group_ingress", GroupId=sg, IpPermissions=_permissions(opts.ports))
        _say(opts, f"security group {sg}: {' '.join(opts.ports) or 'no port'} open")
        run = dict(ImageId=ami, InstanceType=opts.instance_type, MinCount=1, MaxCount=1,
                   InstanceInitiatedShutdownBehavior=opts.on_exit,
                   MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
                   TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(name, "instance", opts)},
                                      {"ResourceType": "volume", "Tags": _tags(name, "volume", opts)}])
        if opts.subnet_id:
            run["NetworkInterfaces"] = [{"DeviceIndex": 0, "SubnetId": opts.subnet_id, "Groups": [sg],
                                         "AssociatePublicIpAddress": True}]
        else:
            run["SecurityGroupIds"] = [sg]
        if opts.key_name:
            run["KeyName"] = opts.key_name
        if nested:
            run["CpuOptions"] = {"NestedVirtualization": "enabled"}
        r = aws.call(aws.ec2, "run_instances", attempts=3, **run)
        iid = r["Instances"][0]["InstanceId"]
        undo.add("instance", iid)
        info = _wait_running(aws, iid)
        undo.items.clear()
        info.update(name=name, image=ami, snapshot=sid, security_group=sg, nested=nested, platform=platform)
        return info
    except BaseException as e:
        if undo.items:
            what = ", ".join(f"{k} {i}" for k, i in undo.items)
            _say(opts, f"removing what this deployment made: {what}")
            left = undo.run()
            if left and isinstance(e, UmiakError):
                raise UmiakError(f"{e}; and these are left, remove them by hand: {'; '.join(left)}") from None
        raise
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _wait_running(aws: Aws, iid: str, timeout: float = 300) -> dict:
    end = time.monotonic() + timeout
    n = 0
    while True:
        r = aws.call(aws.ec2, "describe_instances", InstanceIds=[iid])
        inst = r["Reservations"][0]["Instances"][0]
        state = inst["State"]["Name"]
        if state == "running" or time.monotonic() > end:
            return {"instance": iid, "state": state, "public_ip": inst.get("PublicIpAddress"),
                    "private_ip": inst.get("PrivateIpAddress"), "type": inst.get("InstanceType")}
        if state in ("terminated", "shutting-down", "stopped"):
            raise UmiakError(f"{iid} is {state} right after launch: "
                             f"{inst.get('StateReason', {}).get('Message', 'no reason given')}")
        _pause(n)
        n += 1


# -- ls, logs, rm ----------------------------------------------------------------------------

def _deployments(aws: Aws, ident: str | None = None) -> list[dict]:
    filters = [{"Name": "tag-key", "Values": [TAG]},
               {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped", "shutting-down"]}]
    r = aws.call(aws.ec2, "describe_instances", Filters=filters)
    out = []
    for res in r.get("Reservations", []):
        for inst in res["Instances"]:
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
            if ident and ident not in (inst["InstanceId"], tags.get(TAG)):
                continue
            out.append({"instance": inst["InstanceId"], "name": tags.get(TAG, ""), "state": inst["State"]["Name"],
                        "type": inst.get("InstanceType", ""), "public_ip": inst.get("PublicIpAddress") or "-",
                        "image": tags.get("umiak:image", ""), "ports": tags.get("umiak:ports", "-"),
                        "ami": inst.get("ImageId", ""), "groups": [g["GroupId"] for g in inst.get("SecurityGroups", [])]})
    return out


def ls(region: str | None, endpoint_url: str | None) -> list[dict]:
    return _deployments(Aws(region, endpoint_url))


def logs(ident: str, region: str | None, endpoint_url: str | None) -> str:
    aws = Aws(region, endpoint_url)
    found = _deployments(aws, ident)
    if not found:
        raise UmiakError(f"no deployment {ident!r} made by umiak in {aws.region}")
    r = aws.call(aws.ec2, "get_console_output", InstanceId=found[0]["instance"], Latest=True)
    text = r.get("Output") or ""
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except ValueError:
        return text


def rm(ident: str, region: str | None, endpoint_url: str | None, say=None) -> list[str]:
    """Terminate the instance and remove its security group, image and snapshot (whatever
    carries its umiak:deployment tag); returns what was removed."""
    aws = Aws(region, endpoint_url)
    found = _deployments(aws, ident)
    names = {d["name"] for d in found} or ({ident} if ident.startswith("umiak-") else set())
    if not names:
        raise UmiakError(f"no deployment {ident!r} made by umiak in {aws.region}")
    removed = []
    for d in found:
        _remove(aws, "instance", d["instance"])
        removed.append(f"instance {d['instance']}")
    for name in sorted(names):
        flt = [{"Name": f"tag:{TAG}", "Values": [name]}]
        for sg in aws.call(aws.ec2, "describe_security_groups", Filters=flt).get("SecurityGroups", []):
            _remove(aws, "security-group", sg["GroupId"])
            removed.append(f"security group {sg['GroupId']}")
        for img in aws.call(aws.ec2, "describe_images", Owners=["self"], Filters=flt).get("Images", []):
            _remove(aws, "image", img["ImageId"])
            removed.append(f"image {img['ImageId']}")
        for snap in aws.call(aws.ec2, "describe_snapshots", OwnerIds=["self"], Filters=flt).get("Snapshots", []):
            _remove(aws, "snapshot", snap["SnapshotId"])
            removed.append(f"snapshot {snap['SnapshotId']}")
    return removed
