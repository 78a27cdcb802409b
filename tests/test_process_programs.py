"""Real programs that are trees of processes (issue 10), compared with Linux where their
output is deterministic: make running gcc (cc1, as, collect2, ld) and the program it
built, git, Python multiprocessing, find -exec and xargs -P, a python3 that is a shell
shim; and servers checked from the host: nginx with a master and two workers, redis
BGSAVE (a forked child writes the dump)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from harness import compare, umiak_command, umiak_env


def need(*tools: str) -> None:
    for t in tools:
        if shutil.which(t) is None and not os.path.exists(t):
            pytest.skip(f"{t} is not installed")


HELLO_C = '#include <stdio.h>\n#include "greet.h"\nint main(void) { greet("make"); return 0; }\n'
GREET_C = ('#include <stdio.h>\n#include "greet.h"\n'
           'void greet(const char *who) { printf("hello from %s\\n", who); }\n')
MAKEFILE = """hello: hello.o greet.o
\t$(CC) -o $@ $^
%.o: %.c greet.h
\t$(CC) -O1 -c -o $@ $<
run: hello
\t./hello
clean:
\trm -f hello *.o
"""


def test_make_builds_with_gcc_and_runs_the_result(platform, tmp_path):
    """make -j2 (a jobserver pipe) runs cc, which runs cc1, as and collect2/ld; then the
    built program. The source stays on a volume; clean leaves it as it was for the next run."""
    need("/usr/bin/make", "/usr/bin/cc")
    (tmp_path / "hello.c").write_text(HELLO_C)
    (tmp_path / "greet.c").write_text(GREET_C)
    (tmp_path / "greet.h").write_text("void greet(const char *who);\n")
    (tmp_path / "Makefile").write_text(MAKEFILE)
    argv = ["/bin/sh", "-c", "make -j2 run && ls && make -s clean"]
    native = compare(platform, argv, options=[f"--volume={tmp_path}:{tmp_path}"], cwd=tmp_path)
    assert b"hello from make\n" in native.stdout


GIT_SCRIPT = """set -e
export GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z
export GIT_CONFIG_NOSYSTEM=1 HOME="$PWD"
rm -rf repo && mkdir repo && cd repo
git init -q -b main .
git config user.email dev@example.org && git config user.name Dev
echo one > a.txt && mkdir d && echo two > d/b.txt
git add -A && git commit -q -m first
echo three >> a.txt && git commit -qam second
git log --format='%H %an %s'
git status --short
git diff HEAD~1 --stat
git cat-file -p HEAD^{tree}
cd .. && rm -rf repo
"""


def test_git_init_add_commit_log(platform, tmp_path):
    need("/usr/bin/git")
    argv = ["/bin/sh", "-c", GIT_SCRIPT]
    native = compare(platform, argv, options=[f"--volume={tmp_path}:{tmp_path}"], cwd=tmp_path)
    assert native.stdout.count(b" Dev ") == 2


MULTIPROCESSING = """
import multiprocessing as mp, sys
def sq(x):
    return x * x
if __name__ == "__main__":
    for method in sys.argv[1:]:
        with mp.get_context(method).Pool(2 if method == "fork" else 1) as p:
            print(method, p.map(sq, range(10)), sum(p.imap_unordered(sq, range(100))))
    q = mp.get_context("fork").Queue()
    pr = mp.get_context("fork").Process(target=q.put, args=("through a queue",))
    pr.start(); print(q.get()); pr.join(); print("exitcode", pr.exitcode)
"""


def test_python_multiprocessing_pools(platform, tmp_path):
    """Pools with the fork and (on kvm: three interpreters start) spawn methods; their
    queues' locks are process-shared semaphores in /dev/shm, mapped at different
    addresses by spawned workers."""
    script = tmp_path / "mp.py"
    script.write_text(MULTIPROCESSING)
    methods = ["fork", "spawn"] if platform == "kvm" else ["fork"]
    compare(platform, ["/usr/bin/python3", str(script), *methods], options=[f"--volume={tmp_path}:{tmp_path}"])


def test_find_exec_and_xargs(platform, tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for i in range(5):
        (tmp_path / "a" / f"f{i}.txt").write_text(f"file {i}\n")
    (tmp_path / "a" / "b" / "g.txt").write_text("deep\n")
    script = ('find . -name "*.txt" -exec wc -c {} \\; | sort; '
              'find . -name "*.txt" -exec cat {} + | sort | uniq -c; '
              'find . -type f -print0 | sort -z | xargs -0 -n2 echo; '
              'printf "%s\\n" 1 2 3 4 5 6 | xargs -P2 -I{} sh -c "echo item {}" | sort; '
              'seq 10 | xargs -n3 echo | wc -l')
    compare(platform, ["/bin/sh", "-c", script], options=[f"--volume={tmp_path}:{tmp_path}"], cwd=tmp_path)


def test_python3_through_a_shell_shim(platform, tmp_path):
    """A version manager's shim: a bash script on PATH that execs the real interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "python3"
    shim.write_text('#!/bin/bash\nset -e\nprogram="${0##*/}"\nexec "/usr/bin/$program" "$@"\n')
    shim.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": "/root", "LANG": "C", "LC_ALL": "C"}
    code = "import sys, subprocess; print(sys.executable, sys.prefix); print(subprocess.check_output(['python3', '-c', 'print(6*7)']))"
    compare(platform, ["python3", "-c", code], env=env, options=[f"--volume={tmp_path}:{tmp_path}"])


# -- servers ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(platform, argv, port, options=()) -> subprocess.Popen:
    proc = subprocess.Popen(umiak_command(platform, argv, list(options)), env=umiak_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"server exited early ({proc.returncode}):\n{out.decode()}\n{err.decode()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    proc.communicate()
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def stop(proc: subprocess.Popen, sig: int | None = None, timeout: float = 30) -> tuple[int, str]:
    """Signal `umiak run` (or just wait for it): its status and its stdout + stderr."""
    if sig is not None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the server did not stop after {sig}:\n{err.decode(errors='replace')}") from None
    return proc.returncode, (out + err).decode(errors="replace")


def http_get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data
    return body


NGINX_CONF = """daemon off; master_process on; worker_processes 2; user root; pid {dir}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};
  uwsgi_temp_path {dir}; scgi_temp_path {dir};
  server {{ listen 127.0.0.1:{port}; root {dir}/www; location /pid {{ return 200 "$pid\\n"; }} }}
}}
"""


@pytest.mark.parametrize("sig", [signal.SIGQUIT, signal.SIGTERM], ids=["SIGQUIT", "SIGTERM"])
def test_nginx_master_and_two_workers(platform, tmp_path, sig):
    """The master (pid 1) forks two workers that accept and serve; SIGQUIT (graceful) or
    SIGTERM (fast) to `umiak run` reaches the master, which stops both workers, reaps
    them and exits 0."""
    need("/usr/sbin/nginx")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_bytes(b"<h1>served by a worker</h1>\n")
    port = free_port()
    (tmp_path / "nginx.conf").write_text(NGINX_CONF.format(dir=tmp_path, port=port))
    proc = start_server(platform, ["/usr/sbin/nginx", "-e", "stderr", "-c", str(tmp_path / "nginx.conf")], port,
                        [f"--volume={tmp_path}:{tmp_path}"])
    try:
        assert http_get(port, "/index.html") == b"<h1>served by a worker</h1>\n"
        pids = {int(http_get(port, "/pid")) for _ in range(8)}
        assert pids and pids <= {2, 3}, pids          # a worker answers, never the master
        assert (tmp_path / "nginx.pid").read_text().strip() == "1"
    finally:
        status, err = stop(proc, sig)
    assert status == 0, err
    for worker in (2, 3):
        assert f"start worker process {worker}" in err and f"worker process {worker} exited with code 0" in err, err
    assert err.rstrip().endswith("1#1: exit"), err
    assert "Traceback" not in err


def test_redis_bgsave_writes_a_dump_to_a_volume(platform, tmp_path):
    """BGSAVE forks: the child writes dump.rdb from its copy-on-write view while the
    parent serves on; redis-check-rdb accepts the file."""
    need("/usr/bin/redis-server", "/usr/bin/redis-cli", "/usr/bin/redis-check-rdb")
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    argv = ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", "/data", "--save", ""]
    proc = start_server(platform, argv, port, [f"--volume={data}:/data"])

    def cli(*args: str) -> str:
        r = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, timeout=30)
        return r.stdout.decode().strip()
    try:
        assert cli("MSET", "a", "1", "b", "2", "c", "3") == "OK"
        assert cli("RPUSH", "list", "x", "y", "z") == "3"
        assert cli("BGSAVE") == "Background saving started"
        deadline = time.monotonic() + 60
        while "rdb_bgsave_in_progress:0" not in (info := cli("INFO", "persistence")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "rdb_last_bgsave_status:ok" in info and "rdb_bgsave_in_progress:0" in info, info
        assert cli("SET", "after", "the save") == "OK"     # the parent went on serving
        cli("SHUTDOWN", "NOSAVE")
    finally:
        status, err = stop(proc)
    assert status == 0, err
    assert re.search(r"Background saving started by pid [0-9]+", err) and \
        "Background saving terminated with success" in err, err
    check = subprocess.run(["redis-check-rdb", str(data / "dump.rdb")], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "4 keys read" in check.stdout, check.stdout + check.stderr
