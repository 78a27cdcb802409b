"""`umiak snapshot -o FILE --at entry|syscall|ready|signal [run options] -- PROG ARGS`,
`umiak run --restore FILE [--restore-count N]` and `umiak cache ls|prune`."""

from __future__ import annotations

import argparse
import sys

from umiak.errors import UmiakError


def snapshot_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="umiak snapshot",
        description="Run PROG in a fresh micro-VM until the snapshot point, write its state to FILE and stop it. "
                    "Every `umiak run` option is accepted (before --). Restore with `umiak run --restore FILE`.",
        epilog="--at entry: when the program's entry point is reached (after ld.so). --at syscall: at the "
               "program's first system call, before it is made (a static program's start-up is done). --at ready: when the "
               "program calls syscall(0x554d0001) (a no-op under umiak). --at signal: when umiak gets SIGUSR2.")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the snapshot")
    p.add_argument("--at", default="entry", choices=["entry", "syscall", "ready", "signal"], help="the snapshot point")
    own, rest = p.parse_known_args(argv)
    from umiak.cli import _parser, _run
    args = _parser().parse_args(["run", *rest])
    if args.program is None:
        p.error("the program to snapshot is missing (umiak snapshot -o FILE -- PROG ARGS)")
    if args.restore:
        p.error("--restore cannot be snapshot again")
    from umiak.snapshot.point import SnapshotPoint
    saved: list = []
    point = SnapshotPoint(own.at, lambda snap: (snap.save(own.output), saved.append(own.output)))
    signals = _on_sigusr2(point) if own.at == "signal" else None
    try:
        status = _run(args, {"snapshot_hook": point})
    finally:
        if signals is not None:
            import signal
            signal.signal(signal.SIGUSR2, signals)
    if point.error is not None:
        raise point.error if isinstance(point.error, UmiakError) else UmiakError(f"snapshot failed: {point.error}")
    if not saved:
        raise UmiakError(f"the program ended (status {status}) before the snapshot point ({own.at})")
    return 0


def _on_sigusr2(point):
    import signal
    import threading

    def handler(signo, frame):
        threading.Thread(target=point.signal, daemon=True).start()
    return signal.signal(signal.SIGUSR2, handler)


def restore_main(args, opts) -> int:
    """`umiak run --restore FILE`: continue the snapshot in fresh VMs, --restore-count times."""
    from umiak.machine import Machine
    from umiak.snapshot import Snapshot
    if args.program is not None:
        raise UmiakError("--restore takes no PROGRAM (the snapshot holds the program and its arguments)")
    count = args.restore_count
    if count < 1:
        raise UmiakError("--restore-count must be 1 or more")
    snap = Snapshot.load(args.restore)
    if args.memory is None:
        opts.mem_size = int(snap.header.get("mem_size", opts.mem_size))
    opts.extra["restore"] = snap
    opts.prewarm = count > 1
    status = 0
    with Machine(opts) as m:
        for _ in range(count):
            sys.stdout.flush()
            status = m.run(["(snapshot)"])
    return status


def cache_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="umiak cache", description="The prelinked snapshot cache "
                                "($XDG_CACHE_HOME/umiak, default ~/.cache/umiak).")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("ls", help="list the cached snapshots")
    pr = sub.add_parser("prune", help="remove cached snapshots")
    pr.add_argument("--stale", action="store_true", help="only those whose program or libraries changed")
    args = p.parse_args(argv)
    from umiak.snapshot import cache
    if args.action == "ls":
        for line in cache.listing():
            print(line)
        return 0
    if args.action == "prune":
        n = cache.prune(stale_only=args.stale)
        print(f"removed {n} cached snapshot{'s' if n != 1 else ''}")
        return 0
    p.print_help()
    return 0
