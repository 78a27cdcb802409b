"""The `umiak` command: `umiak run [options] PROGRAM [ARGS]`, `umiak platforms`."""

import sys
from types import SimpleNamespace

from umiak.errors import EXIT_UMIAK_FAILURE


def _parser(only_run: bool = False):
    """The command line (an argparse parser); only_run: the `run` subcommand alone, for
    `umiak run ...` (each argparse parser built costs its share of start-up: ~1 ms for the
    other ten)."""
    import argparse
    p = argparse.ArgumentParser(prog="umiak", description="Run Linux x86-64 programs in a micro-VM whose kernel is Python.")
    from umiak import __version__
    p.add_argument("--version", action="version", version=f"umiak {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    r = sub.add_parser("run", help="run a program in a fresh micro-VM",
                       description="Run PROGRAM in a fresh micro-VM. The exit status is the program's "
                                   "(128+N when killed by signal N); 125 means umiak itself failed.")
    r.add_argument("program", metavar="PROGRAM", nargs="?")
    r.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS")
    _run_options(r)
    if only_run:
        return p
    sub.add_parser("platforms", help="list the CPU platforms and whether they can run here")
    # `umiak config ...` parses its own arguments (umiak.config.cli), so that building
    # this parser for `umiak run` imports nothing of the config package.
    c = sub.add_parser("config", add_help=False,
                       help="configure the kernel: menus, profiles, .config files (umiak config --help)")
    c.add_argument("config_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    # `umiak build` and `umiak inspect` parse their own arguments too (umiak.image.cli).
    sub.add_parser("build", add_help=False, help="build an image from programs, a tree, an OCI image or "
                   "Debian packages (umiak build --help)")
    sub.add_parser("inspect", add_help=False, help="show an image's command, env, ports, config, files")
    sub.add_parser("oci", add_help=False, help="the OCI runtime for Docker and containerd (umiak oci --help)")
    sub.add_parser("snapshot", add_help=False, help="save a running program's state (umiak snapshot --help)")
    sub.add_parser("cache", add_help=False, help="the prelinked snapshot cache: ls, prune (umiak cache --help)")
    sub.add_parser("appliance", add_help=False, help="a bootable disk of an image, booted in QEMU (umiak appliance --help)")
    sub.add_parser("deploy", add_help=False, help="run an image on a cloud machine: aws, ls, logs, rm (umiak deploy --help)")
    return p


def _run_options(r) -> None:
    """`umiak run`'s options, added to r: its argparse parser, or _Defaults."""
    r.add_argument("--platform", default="auto", choices=["auto", "kvm", "emu"],
                   help="CPU platform: kvm (hardware virtualization), emu (Unicorn software CPU) or auto")
    r.add_argument("--cpu", choices=["host", "baseline"], default=None,
                   help="the CPU the program sees: host (default: the platform's own) or baseline (one CPU kvm "
                        "and emu both present, so a snapshot taken under it restores on either)")
    r.add_argument("-m", "--memory", metavar="SIZE",
                   help="guest RAM, e.g. 256M, 2G (default 1G, or the kernel config's)")
    r.add_argument("-e", "--env", action="append", default=[], metavar="K=V",
                   help="set a guest environment variable (K alone copies it from the host)")
    r.add_argument("--cwd", metavar="DIR", help="guest working directory (default: the current one)")
    r.add_argument("--hostname", default="umiak", help="the guest's host name (uname nodename)")
    r.add_argument("--no-aslr", action="store_true", help="load at fixed addresses, as with setarch -R")
    r.add_argument("--no-rewrite", action="store_true",
                   help="never rewrite the program's syscall sites (with the exitless path; for programs that check their own code)")
    r.add_argument("-c", "--cpus", type=int, metavar="N", help="vCPUs the guest may use (default: host cores)")
    r.add_argument("--max-threads", type=int, metavar="N",
                   help="threads the program may have; more gives EAGAIN (default 4096, or the kernel config's)")
    r.add_argument("--strace", action="store_true", help="print one strace-style line per system call on stderr")
    r.add_argument("--trace", metavar="GLOBS", help="only trace matching calls, e.g. 'mmap|brk|open*'")
    r.add_argument("--strace-file", metavar="PATH", help="write strace lines to PATH instead of stderr")
    r.add_argument("-r", "--strace-timestamps", action="store_true", help="relative timestamps on strace lines")
    r.add_argument("--syscall-summary", action="store_true", help="a table of calls, errors and time at exit (like strace -c)")
    r.add_argument("--net", default="host", choices=["host", "private", "none"],
                   help="network: host (share the host's), private (own namespace with loopback and -p ports), "
                        "none (own loopback only)")
    r.add_argument("-p", "--publish", action="append", default=[], metavar="HOST:GUEST[/udp]",
                   help="with --net=private: forward the host's 127.0.0.1:HOST (or ADDR:HOST:GUEST) to the guest's GUEST port")
    r.add_argument("-v", "--volume", action="append", default=[], metavar="HOST:GUEST[:ro]",
                   help="mount a host directory or file in the guest; writes reach the host unless :ro")
    r.add_argument("--root", metavar="DIR", help="the guest's / is this host directory (default: the host's /, read-only)")
    r.add_argument("--tmpfs", action="append", default=[], metavar="PATH",
                   help="mount an in-memory file system at PATH (/tmp has one already)")
    r.add_argument("--user", metavar="UID:GID", help="run the program as this uid and gid (default 0:0)")
    r.add_argument("--verbose", action="store_true", help="say which platform runs and why; details of faults")
    r.add_argument("--config", metavar="FILE",
                   help="run under the kernel this .config describes (default: $KCONFIG_CONFIG, else the full kernel)")
    r.add_argument("--profile", metavar="NAME", help="run under a shipped kernel profile (umiak config profiles)")
    r.add_argument("--record-config", metavar="FILE",
                   help="write the syscalls this run used as a .config (an app-specific kernel; umiak config app)")
    r.add_argument("--image", metavar="IMAGE", help="run PROGRAM from this image (its / is the image's)")
    r.add_argument("--record-missing", action="store_true",
                   help="at exit, list every path the program looked up and did not find (for build --add-missing)")
    r.add_argument("--missing-file", metavar="PATH", help="write the --record-missing list here instead of stderr")
    r.add_argument("--restore", metavar="FILE", help="continue the program saved by `umiak snapshot` (no PROGRAM)")
    r.add_argument("--restore-count", type=int, default=1, metavar="N",
                   help="with --restore: run the snapshot N times, each in a fresh VM")
    r.add_argument("--snapshot-cache", dest="snapshot_cache", action="store_true", default=None,
                   help="start dynamic programs from a cached prelinked snapshot (the default, unless "
                        "UMIAK_SNAPSHOT_CACHE=0; umiak cache ls)")
    r.add_argument("--no-snapshot-cache", dest="snapshot_cache", action="store_false",
                   help="never use the prelinked snapshot cache: ld.so runs every time")


class _Defaults:
    """What argparse makes of `umiak run PROGRAM [ARGS]` with no option: each option's
    default, collected from _run_options without building a parser (argparse's parsers
    and their gettext lookups, which import locale, cost 5-9 ms of every start here)."""

    def __init__(self, argv: list[str]):
        self.args = SimpleNamespace(command="run", program=argv[1], args=argv[2:])

    def add_argument(self, *names: str, **kw) -> None:
        dest = kw.get("dest") or next(n for n in names if n.startswith("--"))[2:].replace("-", "_")
        if not hasattr(self.args, dest):   # as argparse: the first option of a dest sets it
            value = kw.get("default", False if kw.get("action") == "store_true" else None)
            setattr(self.args, dest, list(value) if isinstance(value, list) else value)

    @classmethod
    def parse(cls, argv: list[str]):
        """The arguments of a plain `run` command line, or None for argparse to parse."""
        if len(argv) < 2 or argv[1].startswith("-") or "--" in argv:
            return None
        d = cls(argv)
        _run_options(d)
        return d.args


def main(argv: list[str] | None = None) -> int:
    """The command; called without argv it is the program (the console script, `python -m
    umiak`): after `umiak run` it then ends the process itself (_exit_now)."""
    if argv is None:
        if sys.argv[1:2] == ["run"]:
            import gc
            gc.disable()   # until the program starts (_collect_again): see _run
        status = main(sys.argv[1:])
        if sys.argv[1:2] == ["run"]:
            _exit_now(status)
        return status
    if argv[:1] == ["config"]:   # its own parser, options included (umiak.config.cli)
        args = SimpleNamespace(command="config", config_args=argv[1:])
    elif argv[:1] == ["oci"]:   # runc's command line (umiak.oci.cli), errors in its own format
        from umiak.oci.cli import main as oci_main
        return oci_main(argv[1:])
    elif argv[:1] in (["build"], ["inspect"], ["snapshot"], ["cache"],
                      ["appliance"], ["deploy"]):
        args = SimpleNamespace(command=argv[0], sub_args=argv[1:])
    else:
        args = (argv[:1] == ["run"] and _Defaults.parse(argv)) or _parser(only_run=argv[:1] == ["run"]).parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "platforms":
            return _platforms()
        if args.command == "config":
            from umiak.config.cli import main as config_main
            return config_main(args.config_args)
        if args.command in ("build", "inspect"):
            from umiak.image import cli as image_cli
            return (image_cli.build_main if args.command == "build" else image_cli.inspect_main)(args.sub_args)
        if args.command in ("snapshot", "cache"):
            from umiak.snapshot import cli as snapshot_cli
            return (snapshot_cli.snapshot_main if args.command == "snapshot" else snapshot_cli.cache_main)(args.sub_args)
        if args.command == "appliance":
            from umiak.appliance.cli import main as appliance_main
            return appliance_main(args.sub_args)
        if args.command == "deploy":
            from umiak.deploy.cli import main as deploy_main
            return deploy_main(args.sub_args)
        _parser().print_help()
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - one line for the user, never a traceback
        from umiak.errors import UmiakError
        if isinstance(e, UmiakError):
            print(f"umiak: {e}", file=sys.stderr)
            return e.status
        if isinstance(e, MemoryError):
            print("umiak: out of host memory", file=sys.stderr)
            return EXIT_UMIAK_FAILURE
        import traceback
        if getattr(args, "verbose", False):
            traceback.print_exc()
        print(f"umiak: internal error: {type(e).__name__}: {e} (run with --verbose for details)", file=sys.stderr)
        return EXIT_UMIAK_FAILURE


def _exit_now(status: int) -> None:
    """End the process once the run is over, without the interpreter's finalization: tearing
    down every module and object (and the VM's mappings with them) took 10-30 ms of every
    `umiak run`, after the program had exited. What finalization would do that matters is
    done first: the atexit handlers (a Machine's close), stdout and stderr flushed (umiak's
    own files are closed where they are written). With a thread that is not a daemon still
    running, or output that cannot be flushed, the ordinary exit does its usual work."""
    import threading
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.current_thread()):
        return
    import atexit
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    import os
    os._exit(0 if status is None else status & 0xFF if isinstance(status, int) else 1)   # as sys.exit(status)


def _run(args, extra: dict | None = None) -> int:
    import os

    from umiak.errors import UmiakError
    from umiak.machine import Machine
    from umiak.options import RunOptions, parse_size
    if args.program is None and not args.restore:
        import argparse
        argparse.ArgumentParser(prog="umiak run").error("the following arguments are required: PROGRAM")
    argv = [args.program, *args.args]
    args.image_root = None
    if args.image or args.record_missing or _is_image(args.program):   # an image as / (umiak.image)
        from umiak.image.cli import apply_image
        argv = apply_image(args) if (args.image or _is_image(args.program)) else argv
    kconfig = None
    if args.config is not None or args.profile is not None or os.environ.get("KCONFIG_CONFIG"):
        from umiak.config import load
        kconfig = load(args.config, args.profile)
    try:
        mem = parse_size(args.memory) if args.memory is not None else getattr(kconfig, "guest_memory", 1 << 30)
    except ValueError:
        raise UmiakError(f"bad memory size {args.memory!r} (use e.g. 256M or 2G)") from None
    max_threads = args.max_threads if args.max_threads is not None else getattr(kconfig, "max_threads", 4096)
    env = {}
    for item in args.env:
        k, sep, v = item.partition("=")
        if not k:
            raise UmiakError(f"bad --env {item!r} (use K=V)")
        if sep:
            env[k] = v
        elif k in os.environ:
            env[k] = os.environ[k]
    opts = RunOptions(mem_size=mem, platform=args.platform, env=env, cwd=args.cwd, aslr=not args.no_aslr, rewrite=not args.no_rewrite,
                      hostname=args.hostname, verbose=args.verbose, strace=args.strace or (bool(args.trace) and not args.syscall_summary),
                      strace_file=args.strace_file, trace_filter=args.trace,
                      strace_timestamps=args.strace_timestamps, syscall_summary=args.syscall_summary,
                      cpus=args.cpus, cpu=args.cpu, max_threads=max_threads, prewarm=False, net=args.net, publish=_publish(args, kconfig),
                      volumes=list(args.volume), root=args.root, tmpfs=list(args.tmpfs),
                      kernel_config=kconfig, **_user(args.user))
    if args.image_root:
        opts.image_root = args.image_root
    opts.extra.update(extra or {})
    ignored = _ignored_signals()
    if ignored:
        opts.extra["ignored_signals"] = ignored
    import gc
    if not gc.isenabled() and "started" not in opts.extra:
        # main() turned the cyclic collector off: start-up makes many objects (modules, the
        # kernel's tables) and no garbage cycles, and its collections cost ~15 collections,
        # 3-15 ms of every run. The collector is back on, as ever, when the program starts.
        opts.extra["started"] = _collect_again
    if args.restore:
        from umiak.snapshot.cli import restore_main
        return restore_main(args, opts)
    cache = args.snapshot_cache if args.snapshot_cache is not None else os.environ.get("UMIAK_SNAPSHOT_CACHE", "1") != "0"
    if cache and "snapshot_hook" not in opts.extra and not (opts.strace or opts.syscall_summary):
        opts.extra["snapshot_cache"] = True
    if args.record_missing:
        if opts.strace or opts.syscall_summary:
            raise UmiakError("--record-missing cannot be combined with --strace or --syscall-summary")
        from umiak.image.cli import missing_recorder
        opts.extra["tracer"] = missing_recorder(args.missing_file)
    sys.stdout.flush()
    if args.record_config:
        from umiak.config.record import Recorder
        opts.extra["recorder"] = recorder = Recorder()
        status = Machine(opts).run(argv)
        from umiak.config.app import record_config
        record_config(recorder, argv, args.record_config)
        return status
    return Machine(opts).run(argv)


def _ignored_signals() -> tuple[int, ...]:
    """The signals umiak itself was started with ignored (`nohup`, a shell's `&`): a program
    exec'd on Linux keeps them ignored, so the program in the VM starts so too. SIGPIPE and
    SIGXFSZ are left out: CPython ignores them itself, so their inherited state is unknown."""
    import _signal
    skip = (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGKILL, _signal.SIGSTOP)
    out = []
    for signo in range(1, _signal.NSIG):
        if signo in skip:
            continue
        try:
            if _signal.getsignal(signo) == _signal.SIG_IGN:
                out.append(signo)
        except ValueError:   # not a signal number on this host
            continue
    return tuple(out)


def _collect_again(kernel, task) -> None:
    """The program is about to start: the collector runs again, with what start-up made
    frozen out of its way (this process ends with the run; nothing of it is garbage)."""
    import gc
    gc.freeze()
    gc.enable()


def _is_image(path: str | None) -> bool:
    """An ext2/3/4 file system (superblock magic at 1080), read without importing its driver."""
    if path is None:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(1082)
    except OSError:
        return False
    return len(head) == 1082 and head[1080:1082] == b"\x53\xef" and head[:4] != b"\x7fELF" and head[:2] != b"#!"


def _user(text: str | None) -> dict:
    """--user UID[:GID] -> RunOptions fields (GID left out: the same number as UID)."""
    from umiak.errors import UmiakError
    if not text:
        return {}
    uid, _, gid = text.partition(":")
    try:
        u = int(uid)
        g = int(gid) if gid else u
    except ValueError:
        raise UmiakError(f"bad --user {text!r} (use numeric UID:GID)") from None
    if not (0 <= u < 1 << 32 and 0 <= g < 1 << 32) or u == 0xFFFFFFFF or g == 0xFFFFFFFF:
        raise UmiakError(f"bad --user {text!r}: ids must be 0..4294967294")
    return {"uid": u, "gid": g}


def _publish(args, kconfig=None) -> list:
    """-p specs, checked now so a typo is an error before the VM starts."""
    from umiak.errors import UmiakError
    if kconfig is not None:   # a kernel without this network mode refuses it first
        from umiak.config.runtime import check_net
        check_net(kconfig, args.net, bool(args.publish))
    if args.publish and args.net != "private":
        raise UmiakError("-p needs --net=private (with --net=host the guest's ports are the host's already)")
    if not args.publish and args.net == "host":
        return []   # the common case loads no networking code at start-up
    from umiak.kernel.net.stack import namespace_problem, parse_publish
    try:
        specs = [parse_publish(p) for p in args.publish]
    except ValueError as e:
        raise UmiakError(str(e)) from None
    if args.net != "host":
        problem = namespace_problem()
        if problem:
            raise UmiakError(f"--net={args.net} needs root or user namespaces: {problem}")
    return specs


def _platforms() -> int:
    from umiak.platform import available_platforms, choose_platform
    for name, problem in available_platforms().items():
        print(f"{name:5} {'available' if problem is None else 'unavailable: ' + problem}")
    try:
        chosen, why = choose_platform("auto")
        print(f"auto -> {chosen} ({why})")
    except Exception as e:  # noqa: BLE001
        print(f"auto -> none ({e})")
    return 0
