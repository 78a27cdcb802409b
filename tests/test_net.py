"""Networking: the socket family compared with native, network modes, and real servers.

Guest C programs (tests/guest/net_*.c) run natively and under umiak with the
same output required. Servers (redis, nginx, memcached, Python) run in the VM
on 127.0.0.1 only, with bounded request counts and timeouts; clients run on the
host (and the other way round for curl/urllib in the VM). Nothing leaves loopback.
"""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import build, compare, run_native, run_umiak, umiak_command, umiak_env

PY = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"server exited early ({proc.returncode}):\n{out.decode(errors='replace')}\n"
                                 f"{err.decode(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextmanager
def guest_server(platform, argv, port, options=(), cwd=None):
    """Run argv in umiak in the background until the block ends (then SIGTERM, then SIGKILL)."""
    cmd = umiak_command(platform, argv, options, cwd=cwd)
    proc = subprocess.Popen(cmd, env=umiak_env(), cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_port(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def need(*tools):
    for t in tools:
        if shutil.which(t) is None and not os.path.exists(t):
            pytest.skip(f"{t} is not installed (Debian: apt-get install redis-server redis-tools nginx-light "
                        f"memcached curl wrk)")


# -- guest programs compared with native ---------------------------------------------------

@pytest.mark.exit_modes
@pytest.mark.parametrize("prog", ["net_tcp_echo", "net_unix", "net_udp_poll", "net_unix_backlog",
                                  "net_nonblock_rw"])
def test_socket_programs(platform, variant, prog):
    compare(platform, [build(prog, variant)])


def test_name_lookups(platform, variant):
    """getaddrinfo/getifaddrs through NETLINK_ROUTE; static glibc needs its NSS modules."""
    if variant == "glibc-static":
        pytest.skip("static glibc getaddrinfo loads NSS modules with dlopen (not a umiak matter)")
    compare(platform, [build("net_names", variant)])


# -- network modes --------------------------------------------------------------------------

PROBE = r"""
import socket, sys
port = int(sys.argv[1])
try:
    socket.create_connection(("127.0.0.1", port), timeout=3).close()
    print("host port reachable")
except OSError as e:
    print("host port:", type(e).__name__)
import ctypes, ctypes.util
print("resolv:", open("/etc/resolv.conf").read().splitlines()[0][:30])
print("interfaces:", sorted(n for _, n in socket.if_nameindex()))
"""


def test_net_none_has_only_loopback(platform):
    with socket.socket() as host:
        host.bind(("127.0.0.1", 0))
        host.listen(1)
        port = host.getsockname()[1]
        r = run_umiak(platform, [PY, "-c", PROBE, str(port)], options=["--net=none"], timeout=60)
    assert r.status == 0, r.describe()
    out = r.stdout.decode()
    assert "host port: ConnectionRefusedError" in out, r.describe()
    assert "interfaces: ['lo']" in out, r.describe()
    assert "resolv: # umiak --net=private|none" in out, r.describe()


def test_net_host_sees_host(platform):
    with socket.socket() as host:
        host.bind(("127.0.0.1", 0))
        host.listen(1)
        port = host.getsockname()[1]
        r = run_umiak(platform, [PY, "-c", PROBE, str(port)], timeout=60)
    assert "host port reachable" in r.stdout.decode(), r.describe()
    assert sorted(n for _, n in socket.if_nameindex()) == eval(r.stdout.decode().split("interfaces: ")[1])


ECHO = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8080)); s.listen(8)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 8081))
data, peer = u.recvfrom(100); u.sendto(b"udp:" + data, peer)
for _ in range(3):
    c, _ = s.accept()
    c.sendall(b"echo:" + c.recv(100)); c.close()
"""


def test_net_private_published_ports(platform):
    hp, up = free_port(), free_port()
    cmd = umiak_command(platform, [PY, "-c", ECHO], ["--net=private", "-p", f"{hp}:8080", "-p", f"{up}:8081/udp"])
    proc = subprocess.Popen(cmd, env=umiak_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(0.5)
        got = None
        for _ in range(60):            # until the guest's UDP socket is bound
            u.sendto(b"ping", ("127.0.0.1", up))
            try:
                got = u.recv(100)
                break
            except OSError:
                pass
        assert got == b"udp:ping"
        for i in range(3):
            for _ in range(50):
                try:
                    c = socket.create_connection(("127.0.0.1", hp), timeout=5)
                    c.sendall(b"hi%d" % i)
                    reply = c.recv(100)
                    c.close()
                    if reply:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            assert reply == b"echo:hi%d" % i
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_publish_needs_private():
    r = subprocess.run(umiak_command("auto", ["/bin/true"], ["-p", "8080:80"]), env=umiak_env(),
                       capture_output=True, timeout=60)
    assert r.returncode == 125 and b"-p needs --net=private" in r.stderr


# -- real programs: servers in the VM ---------------------------------------------------------

def test_redis(platform, tmp_path):
    need("/usr/bin/redis-server", "redis-cli", "redis-benchmark")
    port = free_port()
    argv = ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", "/tmp"]
    with guest_server(platform, argv, port):
        def cli(*args):
            r = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, timeout=30)
            return r.stdout.decode().strip()
        assert cli("PING") == "PONG"
        assert cli("SET", "k", "v") == "OK"
        assert cli("GET", "k") == "v"
        assert cli("INCR", "n") == "1"
        assert cli("INCR", "n") == "2"
        assert cli("LPUSH", "l", "a", "b", "c") == "3"
        assert cli("LRANGE", "l", "0", "-1").split() == ["c", "b", "a"]
        r = subprocess.run(["redis-benchmark", "-p", str(port), "-q", "-n", "20000", "-t", "set,get"],
                           capture_output=True, timeout=300)
        text = r.stdout.decode(errors="replace")
        assert r.returncode == 0 and "SET:" in text and "GET:" in text, text + r.stderr.decode()
        assert cli("DBSIZE").isdigit()


NGINX_CONF = """daemon off; master_process off; worker_processes 1; user root; pid /dev/null;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
  access_log off; sendfile on;
  client_body_temp_path /tmp; proxy_temp_path /tmp; fastcgi_temp_path /tmp;
  uwsgi_temp_path /tmp; scgi_temp_path /tmp;
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
"""


def test_nginx_static_files(platform, tmp_path):
    need("/usr/sbin/nginx", "curl")
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_bytes(b"<h1>umiak</h1>\n")
    (www / "small.bin").write_bytes(os.urandom(100_000))
    with open(www / "big.bin", "wb") as f:
        for _ in range(50):
            f.write(os.urandom(1 << 20))
    os.chmod(tmp_path, 0o755)
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(NGINX_CONF.format(port=port, root=www))
    with guest_server(platform, ["/usr/sbin/nginx", "-e", "stderr", "-c", str(conf)], port):
        for name in ("index.html", "small.bin", "big.bin"):
            out = tmp_path / f"got-{name}"
            r = subprocess.run(["curl", "-sS", "--max-time", "120", "-o", str(out),
                                f"http://127.0.0.1:{port}/{name}"], capture_output=True, timeout=150)
            assert r.returncode == 0, r.stderr
            assert out.read_bytes() == (www / name).read_bytes(), name
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                            f"http://127.0.0.1:{port}/missing"], capture_output=True, timeout=30)
        assert r.stdout == b"404"
        if shutil.which("ab"):
            r = subprocess.run(["ab", "-q", "-n", "500", "-c", "8", f"http://127.0.0.1:{port}/index.html"],
                               capture_output=True, timeout=120)
            assert b"Failed requests:        0" in r.stdout, r.stdout.decode()


def test_memcached(platform):
    need("/usr/bin/memcached")
    port = free_port()
    argv = ["/usr/bin/memcached", "-u", "root", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-t", "2"]
    server = guest_server(platform, argv, port)
    server.__enter__()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            f = c.makefile("rwb")
            for i in range(50):
                f.write(b"set key%d 0 0 %d\r\nvalue-%d\r\n" % (i, len(b"value-%d" % i), i))
            f.flush()
            for _ in range(50):
                assert f.readline() == b"STORED\r\n"
            f.write(b"get key7 key42\r\n")
            f.flush()
            assert f.readline() == b"VALUE key7 0 7\r\n"
            assert f.readline() == b"value-7\r\n"
            assert f.readline() == b"VALUE key42 0 8\r\n"
            assert f.readline() == b"value-42\r\n"
            assert f.readline() == b"END\r\n"
            f.write(b"incr counter 1\r\nadd counter 0 0 1\r\n5\r\nincr counter 2\r\n")
            f.flush()
            assert [f.readline() for _ in range(3)] == [b"NOT_FOUND\r\n", b"STORED\r\n", b"7\r\n"]
    finally:
        server.__exit__(None, None, None)


ASYNCIO_ECHO = r"""
import asyncio, sys
async def handle(r, w):
    while data := await r.read(1000):
        w.write(data.upper())
        await w.drain()
    w.close()
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
"""


def test_python_asyncio_echo(platform):
    port = free_port()
    with guest_server(platform, [PY, "-c", ASYNCIO_ECHO, str(port)], port):
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
        for i, s in enumerate(socks):
            s.sendall(b"hello %d" % i)
        for i, s in enumerate(socks):
            assert s.recv(100) == b"HELLO %d" % i
            s.close()


def test_python_http_server(platform, tmp_path):
    (tmp_path / "file.txt").write_bytes(b"served by python in umiak\n" * 1000)
    os.chmod(tmp_path, 0o755)
    port = free_port()
    argv = [PY, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(tmp_path), str(port)]
    with guest_server(platform, argv, port):
        import urllib.request
        for _ in range(5):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/file.txt", timeout=30) as resp:
                assert resp.read() == (tmp_path / "file.txt").read_bytes()


# -- clients in the VM -------------------------------------------------------------------------------

@contextmanager
def host_http_server():
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"host says hi: " + self.path.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def test_curl_in_vm(platform):
    need("/usr/bin/curl")
    with host_http_server() as port:
        url = f"http://127.0.0.1:{port}/from-curl"
        native = run_native(["/usr/bin/curl", "-sS", "--max-time", "20", url])
        r = run_umiak(platform, ["/usr/bin/curl", "-sS", "--max-time", "20", url], timeout=60)
        assert (r.status, r.stdout) == (native.status, native.stdout) == (0, b"host says hi: /from-curl"), r.describe()
        r = run_umiak(platform, ["/usr/bin/curl", "-sS", "--max-time", "20", f"http://localhost:{port}/by-name"],
                      timeout=60)
        assert r.stdout == b"host says hi: /by-name", r.describe()


def test_python_urllib_in_vm(platform):
    with host_http_server() as port:
        code = (f"import urllib.request; print(urllib.request.urlopen('http://localhost:{port}/py', "
                f"timeout=20).read().decode())")
        r = run_umiak(platform, [PY, "-c", code], timeout=60)
        assert r.status == 0 and r.stdout == b"host says hi: /py\n", r.describe()


# -- a loaded server stopped with SIGTERM --------------------------------------------------------------

def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_sigterm_under_load_no_leaks(platform):
    need("/usr/bin/redis-server", "redis-benchmark")
    port = free_port()
    argv = ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    cmd = umiak_command(platform, argv)
    proc = subprocess.Popen(cmd, env=umiak_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        wait_port(port, proc)
        time.sleep(0.5)
        before = _fds(proc.pid)
        bench = subprocess.run(["redis-benchmark", "-p", str(port), "-q", "-n", "3000", "-c", "20", "-t", "ping"],
                               capture_output=True, timeout=120)
        assert bench.returncode == 0
        deadline = time.monotonic() + 10
        while _fds(proc.pid) > before and time.monotonic() < deadline:
            time.sleep(0.2)           # the server closes the benchmark's connections
        assert _fds(proc.pid) <= before, f"umiak holds {_fds(proc.pid) - before} more fds than before the load"
        load = subprocess.Popen(["redis-benchmark", "-p", str(port), "-q", "-n", "100000", "-c", "10", "-t", "set"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=30)
        load.kill()
        load.wait()
        assert status == 0, proc.stderr.read().decode()   # redis handles SIGTERM: a clean exit
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_go_net_http_server(platform):
    """A static Go net/http server in the VM, requests from the host, clean exit on SIGTERM."""
    from test_runtimes import go_build
    need("curl")
    prog = go_build("gohttp", cgo=False)
    port = free_port()
    with guest_server(platform, [prog, str(port)], port) as proc:
        for _ in range(20):
            r = subprocess.run(["curl", "-sS", "--max-time", "30", f"http://127.0.0.1:{port}/hello"],
                               capture_output=True, timeout=60)
            assert r.stdout == b"hello from go\n", r.stderr
        r = subprocess.run(["curl", "-sS", "--max-time", "30", f"http://127.0.0.1:{port}/sum?n=1000"],
                           capture_output=True, timeout=60)
        assert r.stdout == b"500500\n", r.stderr
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert (proc.returncode, out) == (0, b"shut down cleanly\n"), err
