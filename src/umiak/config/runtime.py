"""How a running kernel obeys its frozen config: the dispatch table of the present
syscalls, what an absent one does, the values applied at boot, options refused.

Only imported when a run has a config (Kernel.config is not None).
"""

import importlib

from umiak.errors import UmiakError
from umiak.kernel import abi
from umiak.kernel.errors import ENOSYS, EPERM
from umiak.records import replace


def _absent_handler(cfg, nr: int, name: str, configured_out: bool):
    """What a call that is not in this kernel does, by CONFIG_ABSENT_SYSCALL."""
    policy = cfg.absent
    why = f"syscall {name} is not in this kernel" if configured_out else f"unimplemented syscall {name}"
    if policy == "kill":
        def kill(task, a, b, c, d, e, f):
            task.kernel.warn(f"{why}: killing the program (SIGSYS)")
            rip = task.vcpu.get_regs()[16] if task.vcpu is not None else 0
            task.kernel.fatal_signal(task, abi.SIGSYS, 1, 0, rip)   # SYS_SECCOMP, as seccomp's kill
        kill.absent = True   # type: ignore[attr-defined]
        return kill
    errno = EPERM if policy == "eperm" else ENOSYS
    ename = "EPERM" if errno == EPERM else "ENOSYS"

    def absent(task, a, b, c, d, e, f):
        k = task.kernel
        seen = k.unimplemented if errno == ENOSYS and not configured_out else _absent_calls(k, ename)
        n = seen.get(name, 0)
        if n == 0:
            k.warn(f"{why}: returning -{ename}")
        seen[name] = n + 1
        return -errno
    absent.absent = True   # type: ignore[attr-defined]
    return absent


def _silent_enosys(task, a, b, c, d, e, f) -> int:
    return -ENOSYS


def _absent_calls(kernel, ename: str) -> dict:
    """Calls this config left out, per errno, listed at exit (Kernel.unimplemented keeps
    the ones umiak has not written)."""
    table = getattr(kernel, "absent_calls", None)
    if table is None:
        table = kernel.absent_calls = {}
    return table.setdefault(ename, {})


def _lazy(nr: int, name: str, family: str, adapt):
    """An `m` syscall: its module is imported by the first call, which then fills the slot."""
    box: list = []

    def first_call(task, a, b, c, d, e, f):
        if not box:
            mod = importlib.import_module(f"umiak.kernel.syscalls.{family}")
            box.append(adapt(getattr(mod, f"sys_{name}")))
            table = getattr(task.kernel, "handlers", None)
            if isinstance(table, list) and nr < len(table) and table[nr] is first_call:
                table[nr] = box[0]
        return box[0](task, a, b, c, d, e, f)
    return first_call


def dispatch_table(cfg, kernel) -> list:
    """nr -> handler(task, a0..a5) with only the config's syscalls; `y` families imported
    now, `m` at their first call, and nothing else. The handlers depend on the config
    alone (never on a kernel), so the list is made once per config and copied per Kernel."""
    made = cfg.__dict__.get("_dispatch")
    if made is None:
        made = cfg._dispatch = tuple(_dispatch_table(cfg))
    return list(made)


def _dispatch_table(cfg) -> list:
    from umiak.kernel.kernel import _adapt
    from umiak.kernel.syscalls.table import ABSENT, MAX_NR, SYSCALLS

    def unknown(nr):
        return lambda task, a, b, c, d, e, f: task.kernel.unknown_syscall(task, nr)
    table: list = [None] * MAX_NR   # the holes get unknown() below (a closure for each row was ~0.3 ms)
    present = cfg.syscalls
    for nr, entry in SYSCALLS.items():
        name, family, status = entry[0], entry[1], entry[2]
        mode = present.get(name)
        handler = None
        if family and mode == "y":
            handler = getattr(importlib.import_module(f"umiak.kernel.syscalls.{family}"), f"sys_{name}", None)
            if handler is not None:
                table[nr] = _adapt(handler)
                continue
        elif family and mode == "m":
            table[nr] = _lazy(nr, name, family, _adapt)
            continue
        if status == ABSENT:
            table[nr] = _silent_enosys        # on purpose, silently: programs fall back
        else:
            table[nr] = _absent_handler(cfg, nr, name, bool(family))
    if not cfg.has("PROCESSES"):   # fork and vfork answer as a clone of a new process does
        from umiak.kernel.syscalls.table import NUMBERS
        for name in ("fork", "vfork"):
            table[NUMBERS[name]] = _no_process_handler(name)
    _stub_and_fake(cfg, table)
    for nr in range(MAX_NR):
        if table[nr] is None:
            table[nr] = unknown(nr)
    return table


def no_processes(cfg, task, name: str) -> int:
    """The errno a new process gets in a kernel without PROCESSES (warned once, listed at exit)."""
    from umiak.kernel.errors import EAGAIN
    errno, ename = (EAGAIN, "EAGAIN") if cfg.value("PROCESSES_ABSENT_EAGAIN") == "y" else (ENOSYS, "ENOSYS")
    seen = _absent_calls(task.kernel, ename)
    key = f"{name} (a new process)"
    if key not in seen:
        task.kernel.warn(f"new processes are not in this kernel (CONFIG_PROCESSES is not set): {name} "
                         f"returns -{ename}")
    seen[key] = seen.get(key, 0) + 1
    return errno


def _no_process_handler(name: str):
    def no_process(task, a, b, c, d, e, f):
        return -no_processes(task.kernel.config, task, name)
    no_process.absent = True   # type: ignore[attr-defined]
    return no_process


def _stub_and_fake(cfg, table: list) -> None:
    """CONFIG_SYSCALLS_STUB (-ENOSYS, silently) and CONFIG_SYSCALLS_FAKE (0, no effect)
    override whatever else the config says about those calls."""
    from umiak.kernel.syscalls.table import NUMBERS
    for sym, answer in (("SYSCALLS_STUB", -ENOSYS), ("SYSCALLS_FAKE", 0)):
        text = cfg.symbols.get(sym, "")
        for name in text.split():
            nr = NUMBERS.get(name)
            if nr is not None:
                table[nr] = _answer(answer, "stub" if answer else "fake")


def _answer(value: int, kind: str):
    def answer(task, a, b, c, d, e, f):
        return value
    answer.absent = True      # type: ignore[attr-defined]  # --strace: <not in this kernel>
    answer.kind = kind        # type: ignore[attr-defined]
    return answer


def boot(cfg, kernel, proc) -> None:
    """Values the config gives the first process and the VM (Kernel.spawn calls it)."""
    nofile = proc.rlimits.get(abi.RLIMIT_NOFILE)
    if cfg.fd_limit and nofile is not None:   # 0: the host's, as without a config
        nofile[0] = min(cfg.fd_limit, nofile[1])
        proc.fds.limit = min(nofile[0], 1 << 20)
    proc.mm.fault_chunk_max = cfg.fault_chunk_max
    plat = kernel.platform
    if hasattr(plat, "slice"):
        plat.slice = cfg.emu_slice
    if getattr(plat, "name", "") == "kvm":
        if cfg.value("KVM_FLAVOUR_PVM") == "y":
            plat.flavour = "pvm"
        elif cfg.value("KVM_FLAVOUR_HARDWARE") == "y":
            plat.flavour = "hardware"


def finish(cfg, kernel) -> None:
    """At exit, list the calls that were refused for not being in this kernel, so a user
    sees why a program failed (a config made for another program, say)."""
    for ename, calls in sorted(getattr(kernel, "absent_calls", {}).items()):
        if calls:
            kernel.warn(f"syscalls not in this kernel returned -{ename}: "
                        + ", ".join(f"{n} ({c}x)" for n, c in sorted(calls.items())))


def _refuse(what: str, sym: str) -> UmiakError:
    return UmiakError(f"{what} is not in this kernel (CONFIG_{sym} is not set)")


def check_net(cfg, net: str, publish: bool) -> None:
    """--net=private / none / -p need networking and that mode (--net=host without
    networking is simply a kernel without sockets)."""
    if net == "host" and not publish:
        return
    if not cfg.has("NET"):
        raise _refuse(f"--net={net}", "NET")
    if not cfg.has(f"NET_MODE_{net.upper()}"):
        raise _refuse(f"--net={net}", f"NET_MODE_{net.upper()}")


def check_options(cfg, opts):
    """The run options this kernel can serve (a copy): options that need a component the
    config left out are refused with one line; the config's defaults are filled in."""
    if opts.strace and not cfg.has("STRACE"):
        raise _refuse("--strace", "STRACE")
    if opts.syscall_summary and not cfg.has("SYSCALL_SUMMARY"):
        raise _refuse("--syscall-summary", "SYSCALL_SUMMARY")
    check_net(cfg, getattr(opts, "net", "host"), bool(getattr(opts, "publish", None)))
    if opts.volumes and not cfg.has("VOLUMES"):
        raise _refuse("-v (volumes)", "VOLUMES")
    if opts.tmpfs and not cfg.has("TMPFS"):
        raise _refuse("--tmpfs", "TMPFS")
    if getattr(opts, "image_root", None) and not cfg.has("EXT4"):
        raise _refuse("an ext2/3/4 image", "EXT4")
    if opts.root is not None and not cfg.has("HOSTFS"):
        raise _refuse("--root", "HOSTFS")
    platform = opts.platform
    kvm, emu = cfg.has("PLATFORM_KVM"), cfg.has("PLATFORM_EMU")
    if platform == "kvm" and not kvm:
        raise _refuse("platform kvm", "PLATFORM_KVM")
    if platform == "emu" and not emu:
        raise _refuse("platform emu", "PLATFORM_EMU")
    if platform == "auto" and not (kvm and emu):
        if not (kvm or emu):
            raise UmiakError("this kernel has no platform (CONFIG_PLATFORM_KVM and CONFIG_PLATFORM_EMU are not set)")
        platform = "kvm" if kvm else "emu"
    return replace(opts, platform=platform, vdso=opts.vdso and cfg.has("VDSO"),
                   aslr=opts.aslr and cfg.has("ASLR"), verbose=opts.verbose or cfg.has("VERBOSE"))


def check_script(cfg, name: str) -> None:
    """A #! script needs BINFMT_SCRIPT."""
    if not cfg.has("BINFMT_SCRIPT"):
        raise UmiakError(f"{name}: #! scripts are not in this kernel (CONFIG_BINFMT_SCRIPT is not set)")
