"""`umiak-oci` (or `umiak oci`): runc's command line, as containerd's runc shim calls it.

    umiak-oci [--root DIR] [--log FILE] [--log-format json] [--platform P] COMMAND ...

Commands: create, start, state, kill, delete, exec, ps, pause, resume, update, features.
runc's other global flags (--systemd-cgroup, --debug, --rootless, --criu) are accepted
and ignored, so a daemon's runtimeArgs pass through. An error is one line on stderr
and, with --log, a JSON line {"level":"error","msg":...} there (what Docker shows the
user); the status is then 1.
"""

import argparse
import json
import os
import sys
import time

from umiak.oci import OciError

DEFAULT_ROOT = "/run/umiak-oci"
_VALUED_GLOBALS = {"--root", "--log", "--log-format", "--criu", "--rootless", "--platform"}
COMMANDS = ("create", "start", "state", "kill", "delete", "exec", "ps", "pause", "resume", "update", "features")


class Globals:
    root = DEFAULT_ROOT
    log: str | None = None
    log_format = "text"
    platform = "auto"


def _split_globals(argv: list[str]) -> tuple[Globals, list[str]]:
    g = Globals()
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        flag, eq, value = argv[i].partition("=")
        if flag in _VALUED_GLOBALS and not eq:
            if i + 1 >= len(argv):
                raise OciError(f"flag {flag} needs a value")
            value = argv[i + 1]
            i += 1
        if flag == "--root":
            g.root = os.path.abspath(value)
        elif flag == "--log":
            g.log = value
        elif flag == "--log-format":
            g.log_format = value
        elif flag == "--platform":
            g.platform = value
        elif flag in ("-h", "--help"):
            return g, ["--help"]
        elif flag in ("-v", "--version"):
            return g, ["--version"]
        i += 1
    return g, argv[i:]


def _log(g: Globals, level: str, msg: str) -> None:
    if g.log:
        try:
            with open(g.log, "a") as f:
                if g.log_format == "json":
                    f.write(json.dumps({"level": level, "msg": msg,
                                        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
                else:
                    f.write(f"{level}: {msg}\n")
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    g = Globals()
    try:
        g, rest = _split_globals(argv)
        if not rest or rest[0] in ("--help", "help"):
            print(__doc__.strip())
            return 0
        if rest[0] == "--version":
            from umiak import __version__
            print(f"umiak-oci {__version__}\nspec: 1.0.2")
            return 0
        cmd, args = rest[0], rest[1:]
        if cmd not in COMMANDS:
            raise OciError(f"unknown command {cmd!r} (one of {', '.join(COMMANDS)})")
        from umiak.oci import commands
        return getattr(commands, "cmd_" + cmd)(g, _parse(cmd, args))
    except OciError as e:
        return _fail(g, str(e))
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - one line for the engine, never a traceback
        from umiak.errors import UmiakError
        return _fail(g, str(e) if isinstance(e, UmiakError) else f"internal error: {type(e).__name__}: {e}")


def _fail(g: Globals, msg: str) -> int:
    _log(g, "error", msg)
    print(f"umiak-oci: {msg}", file=sys.stderr)
    return 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):   # a bad command line is an OciError: logged like any other
        raise OciError(f"{self.prog}: {message}")


def _parse(cmd: str, args: list[str]) -> argparse.Namespace:
    p = _Parser(prog=f"umiak-oci {cmd}", add_help=True)
    if cmd == "create":
        p.add_argument("--bundle", "-b", default=".")
        p.add_argument("--pid-file")
        p.add_argument("--console-socket")
        for flag in ("--no-pivot", "--no-new-keyring", "--detach", "-d", "--keep"):
            p.add_argument(flag, action="store_true")
        p.add_argument("--preserve-fds", type=int, default=0)
    elif cmd == "kill":
        p.add_argument("--all", "-a", action="store_true")
        p.add_argument("id", metavar="ID")
        p.add_argument("signal", nargs="?", default="SIGTERM")
    elif cmd == "delete":
        p.add_argument("--force", "-f", action="store_true")
    elif cmd == "exec":
        p.add_argument("--process", "-p")
        p.add_argument("--detach", "-d", action="store_true")
        p.add_argument("--pid-file")
        p.add_argument("--console-socket")
        p.add_argument("--tty", "-t", action="store_true")
        p.add_argument("--cwd")
        p.add_argument("--env", "-e", action="append", default=[])
        p.add_argument("--user", "-u")
        p.add_argument("--preserve-fds", type=int, default=0)
        p.add_argument("id", metavar="ID")
        p.add_argument("command", nargs=argparse.REMAINDER)
    elif cmd == "ps":
        p.add_argument("--format", "-f", default="table")
        p.add_argument("ps_args", nargs=argparse.REMAINDER)
    elif cmd == "update":
        p.add_argument("--resources", "-r")
        for flag in ("--memory", "--memory-swap", "--memory-reservation", "--kernel-memory", "--cpu-shares",
                     "--cpu-quota", "--cpu-period", "--cpuset-cpus", "--cpuset-mems", "--pids-limit",
                     "--blkio-weight", "--cpu-rt-period", "--cpu-rt-runtime", "--l3-cache-schema"):
            p.add_argument(flag)
    if cmd not in ("features", "exec", "kill"):
        p.add_argument("id", metavar="ID")
    return p.parse_args(args)
