"""App-specific kernels: a .config with exactly the syscalls one program needs.

    umiak config app -o ls.config -- /bin/ls -l          # static analysis + a traced run
    umiak config app --static-only -o ls.config -- /bin/ls
    umiak config app --explore -o ls.config -- /bin/ls   # + Loupe's stub/fake exploration
    umiak run --record-config observed.config ./prog     # what one run used

Sources: the ELF and its closure read with capstone (umiak.config.static), a run under
the full kernel recorded at Kernel.dispatch (umiak.config.record), and exploration:
each traced call answered -ENOSYS, then 0 without effect, the check rerun each time
(umiak.config.explore). The result is an ordinary .config written by kconfiglib
(menuconfig opens it, savedefconfig shrinks it), with a header and one comment per
syscall saying where it was found.
"""

import os
import sys
import time

from umiak.errors import UmiakError


class AppFacts:
    """What the sources found about one program."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.static: dict[str, list[str]] | None = None   # syscall -> sources (static analysis)
        self.unresolved = 0                                # static syscall sites with no number
        self.traced = None                                 # umiak.config.record.Recorder
        self.explored: dict[str, str] | None = None        # syscall -> needed | stub | fake
        self.methods: list[str] = []
        self.dlopen: list[str] = []        # where static analysis found a reachable dlopen
        self.closure: list[str] = []       # the ELF closure's guest paths (DT_NEEDED, PT_INTERP)
        self.root = "/"

    def dlopened(self) -> list[str]:
        """Libraries the traced run opened that are not in the ELF closure: loaded with
        dlopen (extension modules, NSS modules, plugins), invisible to static analysis."""
        if self.traced is None or not self.closure:
            return []
        from umiak.elfdeps import real_path
        known = {os.path.realpath(real_path(self.root, p)) for p in self.closure}
        return sorted(p for p in self.traced.libraries if os.path.realpath(real_path(self.root, p)) not in known)


# -- traced runs -------------------------------------------------------------------------
def traced_run(argv: list[str], timeout: float | None = None, platform: str = "auto",
               root: str | None = None, stdio=None, err_out=None, during=None):
    """Run argv under the full kernel, recording every call of every thread.
    Returns (recorder, status, signal). --timeout (or Ctrl-C) sends the program
    SIGTERM, which ends the recording as the program's own end would; so does the
    end of `during` (--explore --serve's check, run in a thread while the program serves)."""
    import threading

    from umiak.config.record import Recorder
    from umiak.machine import Machine
    from umiak.options import RunOptions
    rec = Recorder()
    opts = RunOptions(platform=platform, root=root, prewarm=False, extra={"recorder": rec})
    if stdio is not None:
        opts.stdio = stdio
    timer = None
    with Machine(opts) as m:
        if timeout:
            timer = threading.Timer(timeout, _terminate, args=(m,))
            timer.daemon = True
            timer.start()
        if during is not None:
            def client() -> None:
                during()
                _terminate(m)
            threading.Thread(target=client, name="umiak-check", daemon=True).start()
        try:
            status = m.run(argv, err_out=err_out)
        finally:
            if timer is not None:
                timer.cancel()
        kernel = m.last_kernel
        signal = kernel.exit_signal if kernel is not None else 0
    return rec, status, signal


def _terminate(machine) -> None:
    """--timeout: SIGTERM to the program, as `timeout` would; a program that ignores it
    is stopped 2 s later."""
    import time as _t

    from umiak.kernel import abi
    from umiak.kernel.signals import make_siginfo, send
    kernel = machine.last_kernel
    if kernel is None:
        return
    proc = kernel.processes.get(1)
    if proc is None:
        return
    with kernel.lock:
        if proc.exiting:
            return
        send(kernel, proc, abi.SIGTERM, make_siginfo(abi.SIGTERM, 0))
    _t.sleep(2)
    from umiak.machine import _stop_guest
    _stop_guest(kernel, proc, 128 + abi.SIGTERM, "--timeout: the program ignored SIGTERM: stopping it")


def check_traced(argv: list[str], status: int, signal: int, stopped_by_us: bool) -> None:
    """A run that crashed (a fatal signal we did not send, or umiak's own failure) gives no config."""
    from umiak.errors import EXIT_UMIAK_FAILURE
    from umiak.kernel import abi
    if signal and not (stopped_by_us and signal in (abi.SIGTERM, abi.SIGINT)):
        name = abi.SIGNAL_NAMES.get(signal, str(signal))
        raise UmiakError(f"{argv[0]} crashed during tracing (killed by {name}); no config written")
    if status == EXIT_UMIAK_FAILURE:
        raise UmiakError(f"{argv[0]}: the traced run failed in umiak (status 125); no config written")


# -- writing the .config -------------------------------------------------------------------
def chosen_syscalls(facts: AppFacts) -> tuple[set[str], set[str], set[str]]:
    """(present, stubbed, faked) syscall names of the app kernel."""
    if facts.explored is not None:
        return ({n for n, k in facts.explored.items() if k == "needed"}, {n for n, k in facts.explored.items() if k == "stub"},
                {n for n, k in facts.explored.items() if k == "fake"})
    present: set[str] = set()
    if facts.static is not None:
        present |= set(facts.static)
    if facts.traced is not None:
        present |= set(facts.traced.syscall_names())
    return present, set(), set()


def build_kconf(facts: AppFacts):
    """The kconfiglib tree set to the app kernel: its syscalls, the components they
    depend on, socket families and file systems a traced run showed."""
    from umiak.config.build import open_kconfig
    from umiak.config.rules import COMPONENT_SYSCALLS, component_of, syscall_symbol
    from umiak.kernel.syscalls.table import SYSCALLS
    kconf = open_kconfig()
    present, stub, fake = chosen_syscalls(facts)
    implemented = {e[0]: e[1] for e in SYSCALLS.values()}
    needed_components = {component_of(n, implemented.get(n)) for n in present} - {None}
    # A clone may make a process (glibc's fork is one): PROCESSES unless a run showed it never does.
    if present & {"clone", "clone3"} and (facts.traced is None or facts.traced.new_processes
                                          or (facts.static is not None and facts.explored is None)):
        needed_components.add("PROCESSES")

    def setv(name: str, value: str) -> None:
        sym = kconf.syms.get(name)
        if sym is not None and sym.nodes:
            sym.set_value(value)
    for comp in COMPONENT_SYSCALLS:
        setv(comp, "y" if comp in needed_components else "n")
    rec = facts.traced
    if rec is not None and (facts.static is None or facts.explored is not None):
        # Only what a run shows can rule out files and socket families (static analysis cannot).
        from umiak.kernel import abi
        for sym, af in (("NET_UNIX", abi.AF_UNIX), ("NET_INET", abi.AF_INET), ("NET_INET6", abi.AF_INET6),
                        ("NET_NETLINK", abi.AF_NETLINK)):
            setv(sym, "y" if af in rec.families else "n")
        setv("PROCFS", "y" if any(p.startswith("/proc") for p in rec.paths) else "n")
        setv("SYSFS", "y" if any(p.startswith("/sys") for p in rec.paths) else "n")
    for name, family in implemented.items():
        if family:
            setv(syscall_symbol(name), "y" if name in present else "n")
    setv("SYSCALLS_STUB", " ".join(sorted(stub)))
    setv("SYSCALLS_FAKE", " ".join(sorted(fake)))
    return kconf


def header(facts: AppFacts) -> str:
    present, stub, fake = chosen_syscalls(facts)
    counts = []
    if facts.static is not None:
        counts.append(f"static {len(facts.static)} ({facts.unresolved} unresolved sites)")
    if facts.traced is not None:
        counts.append(f"traced {len(facts.traced.counts)}")
    if facts.explored is not None:
        counts.append(f"needed {len(present)}, stub {len(stub)}, fake {len(fake)}")
    from umiak.kernel.syscalls.table import NUMBERS, SYSCALLS
    have = {n for n in present if n in NUMBERS and SYSCALLS[NUMBERS[n]][1]}
    counts.append(f"in this kernel {len(have)}" + (f" (umiak lacks {len(present) - len(have)}: "
                                                     f"{' '.join(sorted(present - have))})" if present - have else ""))
    lines = [f"App-specific kernel for: {' '.join(facts.argv)}",
             f"Generated by umiak config app on {time.strftime('%Y-%m-%d %H:%M:%S')}",
             f"Method: {', '.join(facts.methods)}",
             f"Syscalls: {'; '.join(counts)}"]
    if facts.dlopen:
        lines.append(f"Static analysis cannot see libraries loaded with dlopen (reachable: {facts.dlopen[0]})")
    if facts.dlopened():
        lines.append("Loaded with dlopen in the traced run: " + " ".join(facts.dlopened()))
    rec = facts.traced
    if rec is not None:
        if rec.ioctls:
            lines.append("ioctl requests: " + " ".join(f"{c:#x}" for c in sorted(rec.ioctls)))
        if rec.fcntls:
            lines.append("fcntl commands: " + " ".join(str(c) for c in sorted(rec.fcntls)))
        if rec.prctls:
            lines.append("prctl options: " + " ".join(str(c) for c in sorted(rec.prctls)))
        if rec.families:
            lines.append("socket families: " + " ".join(str(c) for c in sorted(rec.families)))
        if rec.paths:
            lines.append("files: " + " ".join(sorted(rec.paths)[:40]))
    return "".join(f"# {ln}\n" for ln in lines)


def line_notes(facts: AppFacts) -> dict[str, str]:
    """syscall symbol -> the comment put above its line: where the call was found."""
    from umiak.config.rules import syscall_symbol
    notes: dict[str, list[str]] = {}
    traced: dict[str, int] = facts.traced.syscall_names() if facts.traced is not None else {}
    names = set(traced) | set(facts.static or {}) | set(facts.explored or {})
    for name in sorted(names):
        bits = []
        if facts.explored is not None and name in facts.explored:
            bits.append(facts.explored[name])
        if name in traced:
            bits.append(f"traced {traced[name]}x")
        if facts.static is not None and name in facts.static:
            src = facts.static[name]
            bits.append("static: " + "; ".join(src[:2]) + (f" (+{len(src) - 2} more)" if len(src) > 2 else ""))
        elif facts.static is not None:
            bits.append("not found statically")
        notes[syscall_symbol(name)] = [f"{name}: {', '.join(bits)}"]
    return {k: v[0] for k, v in notes.items()}


def write_app_config(facts: AppFacts, path: str) -> str:
    """Write the app kernel's .config (kconfiglib's own format, plus comments)."""
    kconf = build_kconf(facts)
    try:
        msg = kconf.write_config(path, header=header(facts), save_old=False)
    except OSError as e:
        raise UmiakError(f"{path}: {e.strerror}") from None
    notes = line_notes(facts)
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    out = []
    for ln in lines:
        sym = ln[len("CONFIG_"):].split("=", 1)[0] if ln.startswith("CONFIG_") else \
            (ln[len("# CONFIG_"):].split(" ", 1)[0] if ln.startswith("# CONFIG_SYSCALL_") else None)
        if sym in notes:
            out.append(f"# {notes[sym]}\n")
        out.append(ln)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(out)
    os.replace(tmp, path)
    return msg


# -- the commands ------------------------------------------------------------------------
def resolve(argv0: str, root: str | None) -> str:
    """The program's host path (PATH searched), checked to be an ELF before anything runs."""
    from umiak.machine import resolve_program
    path = resolve_program(argv0) if root is None else os.path.join(root, argv0.lstrip("/"))
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise UmiakError(f"{argv0}: {e.strerror}") from None
    if magic == b"#!":
        raise UmiakError(f"{argv0}: a #! script: give its interpreter and the script as arguments")
    if magic != b"\x7fELF":
        raise UmiakError(f"{argv0}: not an ELF program")
    return path


def app_command(args) -> int:
    """`umiak config app [--static-only] [--explore] ... -o FILE -- PROG ARGS`."""
    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise UmiakError("config app: give the program: umiak config app -o FILE -- PROG [ARGS]")
    if args.explore_only and not args.explore:
        raise UmiakError("config app: --explore-only goes with --explore")
    if args.static_only and args.explore:
        raise UmiakError("config app: --static-only and --explore exclude each other (exploring runs the program)")
    path = resolve(argv[0], args.root)
    facts = AppFacts(argv)
    if not args.no_static:
        from umiak.config.static import analyse
        result = analyse(path, root=args.root or "/")
        facts.static, facts.unresolved = result.syscalls, result.unresolved
        facts.dlopen, facts.closure = result.dlopen, result.objects
        facts.methods.append(f"static analysis of {len(result.objects)} ELF files (capstone)")
        if args.sources:
            for line in result.report():
                print(line, file=sys.stderr)
        elif args.static_only and result.dlopen:
            print(f"umiak: {result.dlopen_note()}", file=sys.stderr)
    elif not args.static_only:
        from umiak.elfdeps import closure
        rel = path if args.root is None else "/" + os.path.relpath(os.path.abspath(path), os.path.abspath(args.root))
        try:
            facts.closure = [p for p, _ in closure(rel, root=args.root or "/")]
        except UmiakError:
            pass   # (a library found only at run time: the run will say; no dlopen list then)
    facts.root = args.root or "/"
    if not args.static_only:
        sys.stdout.flush()
        during, checked = None, []
        if args.explore and args.serve and args.check:
            # the traced run is exercised by the check too: exploration tries what it used
            from umiak.config.explore import check_once

            def during() -> None:
                checked.append(check_once(args.check, args.trial_timeout))
        rec, status, signal = traced_run(argv, timeout=args.timeout, platform=args.platform, root=args.root,
                                         during=during)
        check_traced(argv, status, signal, stopped_by_us=bool(args.timeout or checked) or signal == 2)
        if during is not None and checked != [0]:
            raise UmiakError(f"--explore: the check failed during the traced run (status "
                             f"{checked[0] if checked else 'none: the program ended first'}); nothing to explore")
        facts.traced = rec
        facts.methods.append("a traced run under the full kernel" + (f" (--timeout {args.timeout:g} s)"
                                                                      if args.timeout else ""))
        if facts.static is not None:
            missed = sorted(set(rec.syscall_names()) - set(facts.static))
            if missed:
                libs = facts.dlopened()
                print(f"umiak: the traced run used calls static analysis did not find: {' '.join(missed)}"
                      + (f" (it loaded {len(libs)} libraries with dlopen: {' '.join(libs)})" if libs else ""),
                      file=sys.stderr)
    if args.explore:
        from umiak.config.explore import explore
        only = set(args.explore_only.replace(",", " ").split()) if args.explore_only else None
        facts.explored = explore(argv, facts.traced, check=args.check, serve=args.serve,
                                 timeout=args.trial_timeout, platform=args.platform, root=args.root, only=only)
        facts.methods.append("exploration (each traced call answered -ENOSYS, then 0; "
                             + (f"check {args.check!r})" if args.check else "output compared with the full kernel's)"))
    msg = write_app_config(facts, args.output)
    present, stub, fake = chosen_syscalls(facts)
    from umiak.kernel.syscalls.table import NUMBERS, SYSCALLS
    present = {n for n in present if n in NUMBERS and SYSCALLS[NUMBERS[n]][1]}
    print(f"{msg} ({len(present)} syscalls" + (f", {len(stub)} stubbed, {len(fake)} faked" if facts.explored else "")
          + ")", file=sys.stderr)
    return 0


def record_config(recorder, argv: list[str], path: str) -> None:
    """`umiak run --record-config FILE`: what the run used, as a .config."""
    facts = AppFacts(argv)
    facts.traced = recorder
    facts.methods.append("umiak run --record-config (one traced run)")
    write_app_config(facts, path)


__all__ = ["app_command", "record_config", "traced_run", "write_app_config", "AppFacts"]
