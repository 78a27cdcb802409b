"""Images: `umiak build` makes an ext4 file from host programs, Debian packages or an OCI
layout; `umiak run IMAGE` runs it with the image as / and compares with the native program.

Each image is built once per session (the `images` fixture) and checked with e2fsck -fn.
Needs e2fsprogs, pyelftools, apt (for --deb: network or apt's archive cache), sqlite3,
redis-server (to compare --version), golang-go, busybox (static).
"""

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from harness import REPO, assert_same, build, run_native, run_umiak, umiak_env

pytestmark = pytest.mark.skipif(shutil.which("mke2fs") is None and not os.path.exists("/sbin/mke2fs"),
                                reason="e2fsprogs is not installed (apt-get install e2fsprogs)")
PYTHON = "/usr/bin/python3"
PYLIB = "/usr/lib/python3.11"


def umiak_cli(*args, input: bytes = b"", timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "umiak", *map(str, args)], env=umiak_env(),
                          input=input, capture_output=True, timeout=timeout)


def e2fsck(img: Path) -> None:
    e2fsck = shutil.which("e2fsck") or "/sbin/e2fsck"
    proc = subprocess.run([e2fsck, "-fn", str(img)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


class Images:
    """Images built once per session, keyed by name."""

    def __init__(self, root: Path):
        self.root = root
        self.built: dict[str, Path] = {}

    def get(self, name: str, *args) -> Path:
        if name not in self.built:
            out = self.root / f"{name}.img"
            proc = umiak_cli("build", "-q", "-o", out, *args)
            assert proc.returncode == 0, proc.stderr.decode()
            e2fsck(out)
            self.built[name] = out
        return self.built[name]


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> Images:
    pytest.importorskip("elftools", reason="pyelftools is not installed (pip install pyelftools)")
    return Images(tmp_path_factory.mktemp("images"))


def hello_static() -> Path:
    return build("hello", "glibc-static")


def go_static() -> Path:
    if shutil.which("go") is None:
        pytest.skip("go is not installed (apt-get install golang-go)")
    from test_runtimes import go_build
    return go_build("go", cgo=False)


def compare_image(platform, native_argv, image: Path, args=(), options=(), input=None):
    native = run_native(native_argv, input=input)
    umiak = run_umiak(platform, [image, *args], options=list(options), input=input)
    assert_same(native, umiak)
    return umiak


# -- programs from the host --------------------------------------------------------------

def test_static_hello(platform, images):
    exe = hello_static()
    compare_image(platform, [exe], images.get("hello", exe))


def test_ls(platform, images):
    img = images.get("ls", "/bin/ls")
    # Files the image holds keep their mode, owner, size and mtime: ls -l is the host's.
    args = ["-l", "--time-style=+%s", "/bin", "/usr/bin/ls", "/lib/x86_64-linux-gnu/libc.so.6"]
    compare_image(platform, ["/bin/ls", *args], img, args)


def test_image_hides_the_host(platform, images):
    img = images.get("ls", "/bin/ls")
    assert os.path.exists("/usr/bin/sqlite3") or os.path.exists(PYTHON)
    probe = "/usr/bin/sqlite3" if os.path.exists("/usr/bin/sqlite3") else PYTHON
    r = run_umiak(platform, [img, probe])
    assert r.status == 2, r.describe()
    assert r.stderr == f"/bin/ls: cannot access '{probe}': No such file or directory\n".encode(), r.describe()
    # ... and the guest's own /dev, /proc, /tmp are there (mount points in the image's /)
    r = run_umiak(platform, [img, "-d", "/dev/null", "/proc/self", "/tmp", "/sys"])
    assert r.status == 0, r.describe()


def test_sqlite3(platform, images):
    if not os.path.exists("/usr/bin/sqlite3"):
        pytest.skip("sqlite3 is not installed (apt-get install sqlite3)")
    img = images.get("sqlite3", "/usr/bin/sqlite3")
    sql = (b"create table t(a integer, b text); insert into t values (1, 'one'), (2, 'two'), (3, 'three');\n"
           b"select a, upper(b), length(b) from t order by a desc; select sum(a), sqlite_version() from t;\n")
    compare_image(platform, ["/usr/bin/sqlite3"], img, input=sql)
    # --image IMAGE PROG runs a program of the image by its guest path
    native = run_native(["/usr/bin/sqlite3", "-version"])
    assert_same(native, run_umiak(platform, ["/usr/bin/sqlite3", "-version"], options=["--image", str(img)]))


def test_python3_with_stdlib(platform, images):
    if not os.path.isdir(PYLIB):
        pytest.skip("Debian's python3 is not installed")
    img = images.get("python3", PYTHON, f"--add={PYLIB}:{PYLIB}")
    code = ("import sys, json, re, hashlib, collections, sqlite3, os\n"
            "print(sys.version_info[:2], json.dumps({'a': [1, 2]}), re.sub('b+', '-', 'abbbc'))\n"
            "print(hashlib.sha256(b'umiak').hexdigest(), collections.Counter('hello').most_common(1))\n"
            "print(sqlite3.connect(':memory:').execute('select 6*7').fetchone())\n")
    compare_image(platform, [PYTHON, "-c", code], img, ["-c", code])


def test_go_program(platform, images):
    exe = go_static()
    img = images.get("go", exe)
    for args in ([], ["exit3"]):
        compare_image(platform, [exe, *args], img, args)


# -- what glibc loads by name at run time --------------------------------------------------------

def test_iconv_gets_gconv_modules(platform, images):
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/gconv/CP1252.so"):
        pytest.skip("glibc's gconv modules are not installed")
    img = images.get("iconv", "/usr/bin/iconv")
    compare_image(platform, ["/usr/bin/iconv", "-f", "CP1252", "-t", "UTF-8"], img, ["-f", "CP1252", "-t", "UTF-8"],
                  input=b"\x80 caf\xe9 \x93quoted\x94\n")


def test_tz_gets_its_zone_file(platform, images):
    if not os.path.exists("/usr/share/zoneinfo/Europe/Paris"):
        pytest.skip("tzdata is not installed")
    img = images.get("date-paris", "/bin/date", "--env", "TZ=Europe/Paris")
    from harness import GUEST_ENV
    args = ["-d", "@15000000", "+%c %Z"]
    native = run_native(["/bin/date", *args], env=dict(GUEST_ENV, TZ="Europe/Paris"))
    assert b"CET" in native.stdout
    assert_same(native, run_umiak(platform, [img, *args]))


def test_tls_library_brings_ca_certificates(images):
    if not os.path.exists("/usr/bin/redis-server") or not os.path.exists("/etc/ssl/certs/ca-certificates.crt"):
        pytest.skip("needs the host's redis-server (it links libssl) and ca-certificates")
    files = umiak_cli("inspect", "--files", images.get("redis-host", "/usr/bin/redis-server")).stdout.decode()
    assert "f /etc/ssl/certs/ca-certificates.crt" in files.splitlines()
    if os.path.exists("/usr/bin/sqlite3"):   # a program without TLS goes without them
        files = umiak_cli("inspect", "--files", images.get("sqlite3", "/usr/bin/sqlite3")).stdout.decode()
        assert "f /etc/ssl/certs/ca-certificates.crt" not in files.splitlines()


def test_from_dir(platform, tmp_path):
    pytest.importorskip("elftools")
    busybox = _static_busybox()
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    shutil.copy2(busybox, root / "bin" / "busybox")
    (root / "etc" / "msg").write_text("from a directory\n")
    img = tmp_path / "dir.img"
    r = umiak_cli("build", "-q", "-o", img, "--from", root, "--cmd", "/bin/busybox cat")
    assert r.returncode == 0, r.stderr
    e2fsck(img)
    native = run_native([root / "bin" / "busybox", "cat", root / "etc" / "msg"])
    assert_same(native, run_umiak(platform, [img, "cat", "/etc/msg"]))   # ARGS replace "cat"


def _static_busybox() -> str:
    busybox = "/usr/bin/busybox" if os.path.exists("/usr/bin/busybox") else "/bin/busybox"
    if not os.path.exists(busybox) or b"statically linked" not in subprocess.run(
            ["file", "-L", busybox], capture_output=True).stdout:
        pytest.skip("a static busybox is not installed (apt-get install busybox-static)")
    return busybox


# -- Debian packages ---------------------------------------------------------------------------

def _redis_image(images):
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is not available")
    return images.get("redis", "--deb", "redis-server", "--cmd", "redis-server --save '' --port 6379",
                      "--port", "6379")


def test_redis_from_deb(platform, images):
    img = _redis_image(images)
    if not os.path.exists("/usr/bin/redis-server"):
        pytest.skip("redis-server is not installed on the host to compare with")
    # ARGS replace the image's default arguments (as `docker run IMAGE ARGS`)
    compare_image(platform, ["/usr/bin/redis-server", "--version"], img, ["--version"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(platform, img: Path, args: list[str], port: int, request: bytes, until) -> bytes:
    """Start the image's server (--net=host: its port is the host's), send one request once it
    listens, read until until(reply) is true; returns the reply. The server is stopped after."""
    cmd = [sys.executable, "-m", "umiak", "run", f"--platform={platform}", str(img), *args]
    proc = subprocess.Popen(cmd, env=umiak_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "the server in the image never listened"
                time.sleep(0.2)
        with c:
            c.settimeout(30)
            c.sendall(request)
            got = b""
            while not until(got):
                chunk = c.recv(4096)
                if not chunk:
                    break
                got += chunk
        return got
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_redis_serves(platform, images):
    img = _redis_image(images)
    port = _free_port()
    got = _serve(platform, img, ["--save", "", "--port", str(port), "--bind", "127.0.0.1"], port,
                 b"PING\r\nSET k umiak\r\nGET k\r\n", lambda b: b.count(b"\r\n") >= 4)
    assert got == b"+PONG\r\n+OK\r\n$5\r\numiak\r\n", got


NGINX_CONF = """user root root;
daemon off;
master_process off;
error_log stderr;
pid /tmp/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path /tmp/body; proxy_temp_path /tmp/proxy; fastcgi_temp_path /tmp/fcgi;
    uwsgi_temp_path /tmp/uwsgi; scgi_temp_path /tmp/scgi;
    server {{ listen 127.0.0.1:{port}; root /srv/site; }}
}}
"""


def test_nginx_from_deb_with_a_site(platform, images, tmp_path_factory):
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is not available")
    d = tmp_path_factory.mktemp("nginx")
    port = _free_port()
    (d / "site").mkdir()
    page = b"<h1>served from an umiak image</h1>\n"
    (d / "site" / "index.html").write_bytes(page)
    (d / "nginx.conf").write_text(NGINX_CONF.format(port=port))
    img = images.get(f"nginx-{port}", "--deb", "nginx", "--add", f"{d / 'site'}:/srv/site",
                     "--add", f"{d / 'nginx.conf'}:/etc/nginx/nginx.conf")
    got = _serve(platform, img, [], port, b"GET /index.html HTTP/1.0\r\n\r\n",
                 lambda b: b"\r\n\r\n" in b and b.endswith(page))
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\n" + page), got


def test_python3_minimal_from_deb_runs_its_main_program(platform, images):
    if shutil.which("apt-get") is None or not os.path.exists(PYTHON):
        pytest.skip("needs apt-get and the host's python3 to compare with")
    img = images.get("python3-minimal", "--deb", "python3-minimal")
    meta = json.loads(umiak_cli("inspect", "--json", img).stdout)
    assert meta["entrypoint"] == ["/usr/bin/python3"] and meta["cmd"] == []
    code = "import sys, os; print(sys.version_info[:2], sorted(sys.builtin_module_names)[:5], 2**100)"
    compare_image(platform, [PYTHON, "-c", code], img, ["-c", code])


@pytest.mark.parametrize("spec, message", [
    ("umiak-no-such-package", "Unable to locate package umiak-no-such-package"),
    ("redis-server=0.0-umiak", "Version '0.0-umiak' for 'redis-server' was not found")])
def test_apt_cannot_find(tmp_path, spec, message):
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is not available")
    r = umiak_cli("build", "-o", tmp_path / "x.img", "--deb", spec)
    assert r.returncode == 125
    assert r.stderr == f"umiak: apt-get: {message}\n".encode()
    assert not (tmp_path / "x.img").exists()


# -- reproducibility, metadata, inspect --------------------------------------------------------

def test_same_inputs_same_bytes(tmp_path):
    pytest.importorskip("elftools")
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    for out in (a, b):
        r = umiak_cli("build", "-q", "-o", out, "/bin/ls", "--env", "K=V")
        assert r.returncode == 0, r.stderr
        time.sleep(1.1)   # a new second: nothing of the build time may reach the image
    assert a.read_bytes() == b.read_bytes()


def test_same_packages_same_bytes(images, tmp_path):
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is not available")
    first = images.get("python3-minimal", "--deb", "python3-minimal")
    again = tmp_path / "again.img"
    r = umiak_cli("build", "-q", "-o", again, "--deb", "python3-minimal")
    assert r.returncode == 0, r.stderr
    assert first.read_bytes() == again.read_bytes()


def test_inspect(images):
    img = images.get("ls", "/bin/ls")
    r = umiak_cli("inspect", img)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "command   /bin/ls\n" in out
    assert "libc.so.6  (needed by /bin/ls)" in out
    assert "libpcre2-8.so.0  (needed by /lib/x86_64-linux-gnu/libselinux.so.1)" in out
    r = umiak_cli("inspect", "--json", "--files", img)
    meta = json.loads(r.stdout.decode().split("\n}\n", 1)[0] + "}")
    assert meta["entrypoint"] == ["/bin/ls"] and meta["cwd"] == "/"
    assert "f /usr/bin/ls" in r.stdout.decode().splitlines()


def test_toml_metadata_and_overrides(platform, tmp_path):
    pytest.importorskip("elftools")
    exe = build("args_env", "glibc-static")
    (tmp_path / "umiak.toml").write_text(
        f'output = "app.img"\nprograms = ["{exe}"]\nargs = ["one", "two"]\ncwd = "/etc"\nmemory = "256M"\n'
        f'ports = ["8080", "53/udp"]\n[env]\nGREETING = "hi"\n')
    r = umiak_cli("build", "-q", "-f", tmp_path / "umiak.toml")
    assert r.returncode == 0, r.stderr
    img = tmp_path / "app.img"
    e2fsck(img)
    meta = json.loads(umiak_cli("inspect", "--json", img).stdout)
    assert (meta["cmd"], meta["cwd"], meta["memory"], meta["ports"], meta["env"]["GREETING"]) == \
        (["one", "two"], "/etc", "256M", ["53/udp", "8080/tcp"], "hi")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "GREETING": "hi"}
    native = run_native([exe, "one", "two"], env=dict(env, PATH=meta["env"]["PATH"]), cwd="/etc")
    got = run_umiak(platform, [img], env={"HOME": "/root"})
    assert_same(native, got)
    # command-line options override the image's; ARGS replace its arguments
    native = run_native([exe, "three"], env=dict(env, PATH=meta["env"]["PATH"], GREETING="yo"), cwd="/")
    assert_same(native, run_umiak(platform, [img, "three"], env={"HOME": "/root", "GREETING": "yo"}, cwd="/"))


def test_carried_kernel_config(platform, images, tmp_path):
    pytest.importorskip("kconfiglib")
    exe = hello_static()
    cfg = tmp_path / "app.config"
    cfg.write_text("# CONFIG_STRACE is not set\n")
    img = tmp_path / "cfg.img"
    r = umiak_cli("build", "-q", "-o", img, "--config", cfg, exe)
    assert r.returncode == 0, r.stderr
    assert "config    /.umiak/kernel.config" in umiak_cli("inspect", img).stdout.decode()
    compare_image(platform, [exe], img)
    r = run_umiak(platform, [img], options=["--strace"])
    assert r.status == 125 and b"STRACE" in r.stderr and r.stderr.count(b"\n") == 1, r.describe()
    # an image whose config this umiak lacks an option of (made by another version, say)
    cfg.write_text("CONFIG_UMIAK_NO_SUCH_OPTION=y\n")
    debugfs = shutil.which("debugfs") or "/sbin/debugfs"
    subprocess.run([debugfs, "-w", "-R", "rm /.umiak/kernel.config", str(img)], capture_output=True, check=True)
    subprocess.run([debugfs, "-w", "-R", f"write {cfg} /.umiak/kernel.config", str(img)], capture_output=True,
                   check=True)
    r = run_umiak(platform, [img])
    assert r.status == 125 and r.stderr.startswith(f"umiak: {img}: this umiak cannot run the kernel config".encode()) \
        and b"UMIAK_NO_SUCH_OPTION" in r.stderr and r.stderr.count(b"\n") == 1, r.describe()


# -- OCI ------------------------------------------------------------------------------------------

def _tar(files: dict) -> bytes:
    """A layer: {path: bytes | ('dir',) | ('link', target) | ('exe', bytes)}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, v in files.items():
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            if isinstance(v, tuple) and v[0] == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif isinstance(v, tuple) and v[0] == "link":
                ti.type, ti.linkname = tarfile.SYMTYPE, v[1]
                t.addfile(ti)
            else:
                data, ti.mode = (v[1], 0o755) if isinstance(v, tuple) else (v, 0o644)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _oci_layout(dest: Path, layers: list[bytes], config: dict) -> Path:
    import gzip
    import hashlib
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        h = hashlib.sha256(data).hexdigest()
        (blobs / h).write_bytes(data)
        return f"sha256:{h}"
    layer_descs = []
    for i, layer in enumerate(layers):
        data = gzip.compress(layer, mtime=0) if i % 2 else layer   # one gzip layer, one plain
        layer_descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if i % 2 else ""),
                            "digest": put(data), "size": len(data)})
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": config,
                      "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": put(cfg), "size": len(cfg)},
                           "layers": layer_descs}).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                "digest": put(manifest), "size": len(manifest),
                                                "platform": {"architecture": "amd64", "os": "linux"}}]}
    (dest / "index.json").write_text(json.dumps(index))
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return _tar_of(dest)


def _tar_of(dest: Path) -> Path:
    out = dest.with_suffix(".tar")
    with tarfile.open(out, "w") as t:
        for p in sorted(dest.rglob("*")):
            t.add(p, arcname=str(p.relative_to(dest)), recursive=False)
    return out


def _docker_save(dest: Path, layers: list[bytes], config: dict) -> Path:
    """The `docker save` format: manifest.json naming a config file and layer tars."""
    dest.mkdir()
    names = []
    for i, layer in enumerate(layers):
        (dest / f"layer{i}").mkdir()
        (dest / f"layer{i}" / "layer.tar").write_bytes(layer)
        names.append(f"layer{i}/layer.tar")
    (dest / "cfg.json").write_text(json.dumps({"architecture": "amd64", "os": "linux", "config": config}))
    (dest / "manifest.json").write_text(json.dumps([{"Config": "cfg.json", "RepoTags": ["t:1"], "Layers": names}]))
    return _tar_of(dest)


@pytest.mark.parametrize("layout", ["oci-layout", "docker-save"])
def test_from_oci(platform, tmp_path, layout):
    pytest.importorskip("elftools")
    bb = Path(_static_busybox()).read_bytes()
    base = _tar({"bin": ("dir",), "bin/busybox": ("exe", bb), "bin/sh": ("link", "busybox"),
                 "etc": ("dir",), "etc/msg": b"one\n", "data": ("dir",), "data/keep": b"k\n",
                 "data/gone": b"g\n", "opq": ("dir",), "opq/old": b"o\n", "srv": ("dir",)})
    top = _tar({"etc/msg": b"two\n", "data/.wh.gone": b"", "opq/.wh..wh..opq": b"", "opq/new": b"n\n",
                "srv/site": ("link", "/data")})
    config = {"Entrypoint": ["/bin/busybox"],
              "Cmd": ["cat", "/etc/msg"],
              "Env": ["PATH=/bin", "GREETING=from-oci"], "WorkingDir": "/srv", "ExposedPorts": {"8080/tcp": {}}}
    tar = (_oci_layout if layout == "oci-layout" else _docker_save)(tmp_path / "layout", [base, top], config)
    img = tmp_path / "oci.img"
    r = umiak_cli("build", "-q", "-o", img, "--from-oci", tar)
    assert r.returncode == 0, r.stderr
    e2fsck(img)
    meta = json.loads(umiak_cli("inspect", "--json", img).stdout)
    assert (meta["entrypoint"], meta["cwd"], meta["ports"]) == (["/bin/busybox"], "/srv", ["8080/tcp"])
    # one applet a run (busybox sh would fork): Cmd, then ARGS in its place, after the Entrypoint
    for args, want in (([], b"two\n"),
                       (["ls", "/data", "/opq", "/srv/site/"], b"/data:\nkeep\n\n/opq:\nnew\n\n/srv/site/:\nkeep\n"),
                       (["env"], b"PATH=/bin\nHOME=/root\nGREETING=from-oci\n"), (["pwd"], b"/srv\n")):
        got = run_umiak(platform, [img, *args], env={"HOME": "/root"})
        assert (got.status, got.stdout, got.stderr) == (0, want, b""), got.describe()


# -- failures -------------------------------------------------------------------------------------

def _program_needing_a_library(tmp_path: Path) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    (tmp_path / "lib.c").write_text("int umiak_answer(void) { return 42; }\n")
    (tmp_path / "main.c").write_text("int umiak_answer(void);\nint main(void) { return umiak_answer(); }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", tmp_path / "libumiaktest.so", tmp_path / "lib.c"], check=True)
    subprocess.run(["gcc", "-o", tmp_path / "needs", tmp_path / "main.c", f"-L{tmp_path}", "-lumiaktest"],
                   check=True)
    (tmp_path / "libumiaktest.so").unlink()
    return tmp_path / "needs"


def test_missing_library(tmp_path):
    pytest.importorskip("elftools")
    prog = _program_needing_a_library(tmp_path)
    r = umiak_cli("build", "-o", tmp_path / "x.img", prog)
    assert r.returncode == 125
    assert r.stderr.decode().startswith(f"umiak: libumiaktest.so (needed by {prog}) not found in "), r.stderr
    assert r.stderr.count(b"\n") == 1 and not (tmp_path / "x.img").exists()
    r = umiak_cli("build", "-q", "--allow-missing", "-o", tmp_path / "x.img", prog)
    assert r.returncode == 0 and b"libumiaktest.so (needed by" in r.stderr, r.stderr
    e2fsck(tmp_path / "x.img")


@pytest.mark.parametrize("damage", ["truncated", "bad-groups", "zeros"])
def test_corrupt_image(platform, images, tmp_path, damage):
    data = bytearray(images.get("hello", hello_static()).read_bytes())
    if damage == "truncated":
        data = data[:8192]
    elif damage == "bad-groups":
        data[4096:8192] = b"\xff" * 4096     # the group descriptors
    else:
        data[1024:1080] = bytes(56)          # superblock counts gone, magic kept
    bad = tmp_path / "bad.img"
    bad.write_bytes(bytes(data))
    r = run_umiak(platform, [bad], timeout=30)
    assert r.status == 125, r.describe()
    assert r.stderr.startswith(b"umiak: ") and r.stderr.count(b"\n") == 1 and b"Traceback" not in r.stderr, \
        r.describe()


# -- closing the rest: --record-missing and --add-missing ----------------------------------------

def test_record_missing_then_add_missing(platform, images, tmp_path):
    img = images.get("ls", "/bin/ls")
    target = "/usr/bin/sqlite3" if os.path.exists("/usr/bin/sqlite3") else PYTHON
    listing = tmp_path / "missing.txt"
    r = run_umiak(platform, [img, target], options=["--record-missing", f"--missing-file={listing}"])
    assert r.status == 2, r.describe()
    missing = listing.read_text().splitlines()
    assert target in missing, missing
    out = tmp_path / "ls2.img"
    b = umiak_cli("build", "-q", "-o", out, "/bin/ls", "--add-missing", listing)
    assert b.returncode == 0, b.stderr
    compare_image(platform, ["/bin/ls", target], out, [target])


def test_record_missing_closes_a_python_image(platform, tmp_path):
    """python3 alone lacks its standard library: one --record-missing run lists what it looked
    for, and the image built with --add-missing runs the script as the host does."""
    pytest.importorskip("elftools")
    if not os.path.isdir(PYLIB):
        pytest.skip("Debian's python3 is not installed")
    code = "import json, textwrap; print(json.dumps(textwrap.wrap('closing the rest of an image', 10)))"
    bare = tmp_path / "bare.img"
    assert umiak_cli("build", "-q", "-o", bare, PYTHON).returncode == 0
    listing = tmp_path / "missing.txt"
    r = run_umiak(platform, [bare, "-c", code], options=["--record-missing", f"--missing-file={listing}"])
    assert r.status != 0 and b"encodings" in r.stderr, r.describe()
    full = tmp_path / "full.img"
    b = umiak_cli("build", "-q", "-o", full, PYTHON, "--add-missing", listing)
    assert b.returncode == 0, b.stderr
    e2fsck(full)
    compare_image(platform, [PYTHON, "-c", code], full, ["-c", code])


def test_volume_over_an_image(platform, images, tmp_path):
    img = images.get("ls", "/bin/ls")
    (tmp_path / "data").mkdir()
    for n in ("b", "a", "c"):
        (tmp_path / "data" / n).write_text(n)
    native = run_native(["/bin/ls", "-n", "--time-style=+%s", tmp_path / "data"])
    got = run_umiak(platform, [img, "-n", "--time-style=+%s", "/data"], options=["-v", f"{tmp_path / 'data'}:/data"])
    assert_same(native, got)


def test_plain_run_imports_no_image_code():
    code = ("import sys, umiak.cli\n"
            "st = umiak.cli.main(['run', '/bin/true'])\n"
            "print(st, sorted(m for m in sys.modules if m.startswith('umiak.image') or m.endswith('.ext4')))\n")
    r = subprocess.run([sys.executable, "-c", code], env=umiak_env(), capture_output=True, cwd=REPO, timeout=60)
    assert r.stdout == b"0 []\n", r.stdout + r.stderr
