"""`umiak deploy aws|ls|logs|rm` against a moto server (the AWS test double) started here.

What is checked is what moto keeps (the snapshot's blocks and their checksums, the
security group's rules, the instance's type, image, group, tags and shutdown behaviour)
and, through moto's request recorder, what umiak sent where moto keeps nothing
(RegisterImage's BootMode and EnaSupport, RunInstances' CpuOptions). No real AWS is used.
Most tests upload a small GPT disk made here (the upload path is the same); one deploys an
image, which builds its appliance (about 30 s). Needs boto3 and moto[server].
"""

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from harness import build, umiak_env

boto3 = pytest.importorskip("boto3", reason="boto3 is not installed (pip install boto3)")
pytest.importorskip("moto.server", reason="moto[server] is not installed (pip install 'moto[server]')")

REGION = "eu-west-1"
BLOCK = 512 * 1024
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """A moto server on a free port, recording every request."""
    d = tmp_path_factory.mktemp("moto")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MOTO_ENABLE_RECORDING="True", MOTO_RECORDER_FILEPATH=str(d / "recording"))
    code = ("import sys, time\nfrom moto.server import ThreadedMotoServer\n"
            "s = ThreadedMotoServer(ip_address='127.0.0.1', port=int(sys.argv[1]), verbose=False)\n"
            "s.start()\nprint('up', flush=True)\nsys.stdin.read()\ns.stop()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(port)], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=d)
    assert proc.stdout.readline().strip() == b"up"
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{url}/moto-api/reset", data=b"", timeout=2)
            break
        except OSError:
            time.sleep(0.1)
    yield url, d / "recording"
    proc.stdin.close()
    proc.wait(timeout=20)


def clients(url: str):
    kw = dict(region_name=REGION, endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing")
    return boto3.client("ec2", **kw), boto3.client("ebs", **kw)


def deploy_cli(url: str | None, *args, env_extra=None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**umiak_env(), **CREDS, **(env_extra or {})}
    env = {k: v for k, v in env.items() if v is not None}   # None: not set at all
    argv = [sys.executable, "-m", "umiak", "deploy", *map(str, args)]
    if url:
        argv += ["--endpoint-url", url]
    return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)


def recorded(path: Path, action: str) -> list[dict]:
    """The form fields of every recorded EC2 Query request for this action."""
    out = []
    for entry in _entries(path.read_text()):
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode("utf-8", "replace")
        fields = dict(urllib.parse.parse_qsl(body if isinstance(body, str) else ""))
        if fields.get("Action") == action:
            out.append(fields)
    return out


def _entries(text: str):
    """The recording's JSON objects (moto appends them from concurrent requests: some share a line)."""
    dec = json.JSONDecoder()
    for line in text.splitlines():
        i = 0
        while i < len(line):
            try:
                obj, i = dec.raw_decode(line, i)
            except ValueError:
                break
            if isinstance(obj, dict):
                yield obj


def small_disk(path: Path) -> Path:
    """A 1 GiB sparse GPT disk with 3 MiB of data (6 blocks) and a hole."""
    with open(path, "wb") as f:
        f.truncate(1 << 30)
    subprocess.run(["sfdisk", "-q", str(path)], input=b"label: gpt\nstart=2048, size=8192, type=uefi\n", check=True)
    with open(path, "r+b") as f:
        f.seek(1 << 20)
        f.write(hashlib.sha256(b"x").digest() * (2 << 20 >> 5))
        f.seek(600 << 20)
        f.write(b"umiak" * 1000)
    return path


def inventory(ec2) -> dict:
    """Every resource a deployment could leave behind (moto starts with its own AMIs and snapshots)."""
    return {
        "instances": sorted(i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                            if i["State"]["Name"] != "terminated"),
        "groups": sorted(g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]),
        "images": sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]),
        # moto holds thousands of snapshots of its own (listing them takes seconds): those a
        # deployment could leave are the ones umiak described or tagged
        "snapshots": sorted(s["SnapshotId"] for s in ec2.describe_snapshots(
            Filters=[{"Name": "description", "Values": ["umiak appliance *"]}])["Snapshots"]),
        "tagged": sorted(s["SnapshotId"] for s in ec2.describe_snapshots(
            Filters=[{"Name": "tag-key", "Values": ["umiak:deployment"]}])["Snapshots"]),
    }


def _instance(ec2, iid: str) -> dict:
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


@pytest.mark.skipif(subprocess.run(["which", "sfdisk"], capture_output=True).returncode != 0
                    and not os.path.exists("/usr/sbin/sfdisk"), reason="sfdisk (fdisk) is not installed")
def test_deploy_ls_logs_rm(moto, tmp_path):
    url, rec = moto
    ec2, ebs = clients(url)
    before = inventory(ec2)
    disk = small_disk(tmp_path / "app.raw")
    r = deploy_cli(url, "aws", disk, "--region", REGION, "--instance-type", "c8i.large", "-p", "6379", "-p", "53/udp")
    err = r.stderr.decode()
    assert r.returncode == 0, err
    iid, public_ip, state, name = r.stdout.decode().strip().split("\t")
    assert iid.startswith("i-") and state == "running" and name.startswith("umiak-app-")

    inst = _instance(ec2, iid)
    assert inst["InstanceType"] == "c8i.large"
    tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
    assert tags["umiak:deployment"] == name and tags["umiak:ports"] == "6379 53/udp"
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")[
        "InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    # The security group: exactly the published ports, from anywhere.
    (group,) = inst["SecurityGroups"]
    sg = ec2.describe_security_groups(GroupIds=[group["GroupId"]])["SecurityGroups"][0]
    rules = sorted((p["IpProtocol"], p["FromPort"], p["ToPort"], p["IpRanges"][0]["CidrIp"]) for p in sg["IpPermissions"])
    assert rules == [("tcp", 6379, 6379, "0.0.0.0/0"), ("udp", 53, 53, "0.0.0.0/0")]
    # The AMI: the snapshot as its root (moto keeps only an AMI's name: what was sent is
    # read from the recording); the snapshot holds the disk's non-zero blocks, checksummed.
    image = ec2.describe_images(ImageIds=[inst["ImageId"]])["Images"][0]
    (snap,) = ec2.describe_snapshots(Filters=[{"Name": "tag:umiak:deployment", "Values": [name]}])["Snapshots"]
    sid = snap["SnapshotId"]
    assert snap["State"] == "completed"
    listed = ebs.list_snapshot_blocks(SnapshotId=sid)
    indexes = sorted(b["BlockIndex"] for b in listed["Blocks"])
    zero = bytes(BLOCK)
    with open(disk, "rb") as f:
        blocks = {i: b for i, b in enumerate(iter(lambda: f.read(BLOCK), b"")) if b != zero}
    want = sorted(blocks)
    assert indexes == want and len(want) == 7   # GPT, 4 of data, 1 more, the backup GPT
    assert listed["VolumeSize"] == 1     # GiB (moto reports BlockSize 512, not the API's 524288)
    for b in listed["Blocks"]:
        got = ebs.get_snapshot_block(SnapshotId=sid, BlockIndex=b["BlockIndex"], BlockToken=b["BlockToken"])
        block = got["BlockData"].read()
        assert block == blocks[b["BlockIndex"]]
        assert got["Checksum"] == base64.b64encode(hashlib.sha256(block).digest()).decode()
    (reg,) = [f for f in recorded(rec, "RegisterImage") if f.get("Name") == name]
    assert (reg["BootMode"], reg["EnaSupport"], reg["Architecture"]) == ("uefi", "true", "x86_64")
    assert reg["BlockDeviceMapping.1.Ebs.SnapshotId"] == sid
    (run,) = [f for f in recorded(rec, "RunInstances") if f.get("ImageId") == image["ImageId"]]
    assert run["CpuOptions.NestedVirtualization"] == "enabled" and run["MetadataOptions.HttpTokens"] == "required"

    ls = deploy_cli(url, "ls", "--region", REGION)
    assert ls.returncode == 0 and iid in ls.stdout.decode() and "6379 53/udp" in ls.stdout.decode()
    logs = deploy_cli(url, "logs", iid, "--region", REGION)
    assert logs.returncode == 0 and logs.stdout, logs.stderr.decode()   # moto's canned console text

    rm = deploy_cli(url, "rm", iid, "--region", REGION)
    assert rm.returncode == 0, rm.stderr.decode()
    assert f"removed snapshot {sid}" in rm.stdout.decode()
    after = inventory(ec2)
    extra = {k: sorted(set(after[k]) - set(before[k])) for k in after}
    assert after == before, (extra, rm.stdout.decode())
    assert iid not in deploy_cli(url, "ls", "--region", REGION).stdout.decode()


def test_deploy_image_on_a_type_without_nested_virtualization(moto, tmp_path, monkeypatch, capsys):
    """An image (its appliance built on the way) on t3.micro: refused for kvm, launched
    with --platform emu, without CpuOptions; rm by the deployment's name. In-process, with
    the calls watched (the recorder is paused: it would hold every block of the upload)."""
    url, _rec = moto
    ec2, ebs = clients(url)
    before = inventory(ec2)
    img = tmp_path / "hello.img"
    r = subprocess.run([sys.executable, "-m", "umiak", "build", "-q", "-o", img, build("hello", "glibc-static")],
                       env=umiak_env(), capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    r = deploy_cli(url, "aws", img, "--region", REGION, "--instance-type", "t3.micro", "-p", "8080")
    err = r.stderr.decode()
    assert r.returncode == 125 and err.count("\n") == 1 and "t3.micro offers no virtualization" in err, err
    assert inventory(ec2) == before
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    from umiak.cli import main
    from umiak.deploy import aws
    calls: list[tuple[str, dict]] = []
    real = aws.Aws.call

    def call(self, client, op, attempts=6, **kw):
        if op != "put_snapshot_block":
            calls.append((op, kw))
        return real(self, client, op, attempts, **kw)
    monkeypatch.setattr(aws.Aws, "call", call)
    urllib.request.urlopen(f"{url}/moto-api/recorder/stop-recording", data=b"", timeout=10)
    try:
        status = main(["deploy", "aws", str(img), "--region", REGION, "--instance-type", "t3.micro", "-p", "8080",
                       "--platform", "emu", "--name", "emu test", "-q", "--endpoint-url", url])
    finally:
        urllib.request.urlopen(f"{url}/moto-api/recorder/start-recording", data=b"", timeout=10)
    out = capsys.readouterr()
    assert status == 0, out.err
    iid, _ip, _state, name = out.out.strip().split("\t")
    assert name.startswith("umiak-emu-test-")
    (run,) = [kw for op, kw in calls if op == "run_instances"]
    assert run["InstanceType"] == "t3.micro" and "CpuOptions" not in run
    (snap,) = ec2.describe_snapshots(Filters=[{"Name": "tag:umiak:deployment", "Values": [name]}])["Snapshots"]
    blocks = ebs.list_snapshot_blocks(SnapshotId=snap["SnapshotId"])["Blocks"]
    assert len(blocks) > 100      # python3, the kernel, umiak: a real appliance went up
    assert deploy_cli(url, "rm", name, "--region", REGION).returncode == 0
    assert inventory(ec2) == before


def _inject(monkeypatch, fault) -> None:
    """Credentials in the environment, and each AWS call of a deploy shown to fault(aws module,
    op, kwargs) first, which raises the injected error (moto has no quotas and never drops a
    connection)."""
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    from umiak.deploy import aws
    real = aws.Aws.call

    def call(self, client, op, attempts=6, **kw):
        fault(aws, op, kw)
        return real(self, client, op, attempts, **kw)
    monkeypatch.setattr(aws.Aws, "call", call)


def test_a_failed_launch_removes_what_it_made(moto, tmp_path, monkeypatch, capsys):
    """A quota error at RunInstances (injected: moto has no quotas) after the upload: one
    line with AWS's message, status 125, and the snapshot, AMI and group are gone."""
    url, _rec = moto
    ec2, _ebs = clients(url)
    before = inventory(ec2)

    def fault(aws, op, kw):
        if op == "run_instances":
            raise aws.AwsError(op, "VcpuLimitExceeded", "You have requested more vCPU capacity than your current "
                               "vCPU limit of 0 allows for the instance bucket that the specified instance type "
                               "belongs to.")
    _inject(monkeypatch, fault)
    from umiak.cli import main
    status = main(["deploy", "aws", str(small_disk(tmp_path / "q.raw")), "--region", REGION, "-p", "80",
                   "--endpoint-url", url])
    err = capsys.readouterr().err
    assert status == 125
    assert err.strip().splitlines()[-1].startswith("umiak: AWS run_instances: VcpuLimitExceeded: You have requested")
    assert "removing what this deployment made" in err
    assert inventory(ec2) == before


def test_a_half_finished_upload_is_removed(moto, tmp_path, monkeypatch, capsys):
    """The connection lost after some blocks (injected): the started snapshot is deleted,
    nothing else was made, one line, status 125."""
    url, _rec = moto
    ec2, _ebs = clients(url)
    before = inventory(ec2)
    sent = []

    def fault(aws, op, kw):
        if op == "put_snapshot_block":
            sent.append(kw["BlockIndex"])
            if len(sent) > 3:
                raise aws.UmiakError("AWS put_snapshot_block: Could not connect to the endpoint URL")
    _inject(monkeypatch, fault)
    from umiak.cli import main
    status = main(["deploy", "aws", str(small_disk(tmp_path / "h.raw")), "--region", REGION,
                   "--endpoint-url", url])
    err = capsys.readouterr().err
    assert status == 125 and len(sent) > 3
    assert "removing what this deployment made: snapshot snap-" in err
    assert err.strip().splitlines()[-1] == "umiak: AWS put_snapshot_block: Could not connect to the endpoint URL"
    assert inventory(ec2) == before


@pytest.mark.parametrize("args, env, message", [
    (["aws", "{disk}", "--region", REGION], {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None,
                                              "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None,
                                              "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                                              "AWS_CONFIG_FILE": "/nonexistent"},
     "no AWS credentials found"),
    (["aws", "{disk}", "--region", REGION], {"AWS_PROFILE": "nosuchprofile", "AWS_CONFIG_FILE": "/nonexistent"},
     "nosuchprofile"),
    (["aws", "{disk}", "--region", "mars-north-1"], {}, "unknown AWS region 'mars-north-1'"),
    (["aws", "{disk}", "--region", REGION, "--instance-type", "c8i.gigantic", "@moto"], {},
     "unknown instance type 'c8i.gigantic'"),
    (["aws", "{disk}", "--region", REGION, "-p", "http", "@moto"], {}, "bad -p 'http'"),
    (["aws", "{tmp}/none.img", "--region", REGION, "@moto"], {}, "none.img: No such file or directory"),
    (["logs", "i-0123456789abcdef0", "--region", REGION, "@moto"], {}, "no deployment 'i-0123456789abcdef0'"),
    (["rm", "i-0123456789abcdef0", "--region", REGION, "@moto"], {}, "no deployment 'i-0123456789abcdef0'"),
])
def test_failures_are_one_line(moto, tmp_path, args, env, message):
    url, _rec = moto
    disk = tmp_path / "d.raw"
    disk.write_bytes(b"\0" * 1024)
    argv = [a.format(disk=disk, tmp=tmp_path) for a in args if a != "@moto"]
    env = {k: v for k, v in env.items()}
    r = deploy_cli(url if "@moto" in args else None, *argv, env_extra=env, timeout=120)
    err = r.stderr.decode()
    assert r.returncode == 125 and err.startswith("umiak: ") and err.count("\n") == 1, err
    assert message in err
