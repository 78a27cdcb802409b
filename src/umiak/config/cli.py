"""`umiak config ...`: the Kconfig tools (kconfiglib's menuconfig and guiconfig, defconfig,
olddefconfig, savedefconfig, set) and what a config contains (show, profiles, size).

Only imported for `umiak config ...`: `umiak run` never loads it.
"""

import os
import sys

from umiak.errors import UmiakError


def _default_config() -> str:
    return os.environ.get("KCONFIG_CONFIG") or ".config"


def _parser():
    import argparse
    c = argparse.ArgumentParser(prog="umiak config",
                                description="Configure which components the kernel has (Kconfig, read with "
                                            "kconfiglib). FILE defaults to $KCONFIG_CONFIG, else ./.config.")
    cs = c.add_subparsers(dest="config_command", metavar="SUBCOMMAND")

    def with_config(p, help_="the .config to read and write"):
        p.add_argument("--config", metavar="FILE", help=f"{help_} (default: $KCONFIG_CONFIG or .config)")
        return p
    with_config(cs.add_parser("menuconfig", help="the curses menu (kconfiglib menuconfig); writes the .config"))
    with_config(cs.add_parser("guiconfig", help="the graphical menu (kconfiglib guiconfig, Tk): xconfig"))
    d = cs.add_parser("defconfig", help="write a .config from a shipped profile")
    d.add_argument("profile", metavar="PROFILE")
    d.add_argument("-o", "--output", metavar="FILE", help="where to write it (default: $KCONFIG_CONFIG or .config)")
    with_config(cs.add_parser("olddefconfig", help="bring an old .config up to date (new symbols get defaults)"))
    s = with_config(cs.add_parser("savedefconfig", help="write the minimal file that reproduces the .config"))
    s.add_argument("-o", "--output", metavar="FILE", default="defconfig", help="where to write it (default: defconfig)")
    st = with_config(cs.add_parser("set", help="set symbols: umiak config set STRACE=n EPOLL=y"))
    st.add_argument("assignments", nargs="+", metavar="SYM=VALUE")
    sh = cs.add_parser("show", help="what a config contains: components, syscalls, values")
    sh.add_argument("--config", metavar="FILE", help="the .config (default: $KCONFIG_CONFIG or .config, else full)")
    sh.add_argument("--profile", metavar="NAME", help="a shipped profile instead of a .config")
    cs.add_parser("profiles", help="the shipped profiles, one line each")
    sz = cs.add_parser("size", help="the kernel size of configs: syscalls, components, modules, RSS, start time")
    sz.add_argument("--profile", action="append", default=[], metavar="NAME", help="a profile (repeatable)")
    sz.add_argument("--config", action="append", default=[], metavar="FILE", help="a .config (repeatable)")
    sz.add_argument("--program", metavar="PROG", help="the program to start (default: a static hello, built now)")
    sz.add_argument("--runs", type=int, default=3, metavar="N", help="runs per config; the best is shown (default 3)")
    sz.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = cs.add_parser("app", help="an app-specific kernel: the syscalls one program needs (ELF analysis, a traced "
                                  "run, exploration)",
                      description="Write a .config with only the syscalls PROG uses: found by static analysis of "
                                  "its ELF files (capstone), a traced run under the full kernel, and with --explore "
                                  "by answering each traced call -ENOSYS, then 0, and rerunning the check.")
    a.add_argument("-o", "--output", metavar="FILE", required=True, help="the .config to write")
    a.add_argument("--static-only", action="store_true", help="no run: ELF analysis alone")
    a.add_argument("--no-static", action="store_true", help="no ELF analysis: what the traced run used")
    a.add_argument("--timeout", type=float, metavar="S", help="end the traced run after S seconds (SIGTERM)")
    a.add_argument("--explore", action="store_true", help="classify each traced call needed / stub / fake (Loupe)")
    a.add_argument("--check", metavar="CMD", help="with --explore: a shell command that passes (status 0) when the "
                                                  "program worked; default: output and status equal the full kernel's")
    a.add_argument("--serve", action="store_true", help="with --check: run CMD while the program runs (a server), "
                                                        "then stop the program")
    a.add_argument("--explore-only", metavar="NAMES",
                   help="with --explore: try only these traced calls (comma-separated); the others stay needed")
    a.add_argument("--trial-timeout", type=float, default=20.0, metavar="S",
                   help="with --explore: a trial still running after S seconds fails (default 20)")
    a.add_argument("--sources", action="store_true", help="print where static analysis found each syscall")
    a.add_argument("--platform", default="auto", choices=["auto", "kvm", "emu"], help="platform of the runs")
    a.add_argument("--root", metavar="DIR", help="the guest's / (libraries are resolved there too)")
    a.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- PROG ARGS")
    ab = cs.add_parser("abi", help="the ABI this kernel exports: syscalls, ioctl/fcntl/prctl codes, socket families, "
                                   "/proc and /sys files")
    ab.add_argument("--config", metavar="FILE", help="a .config (default: the full kernel)")
    ab.add_argument("--profile", metavar="NAME", help="a shipped profile instead of a .config")
    ab.add_argument("--markdown", action="store_true",
                    help="the compatibility table (syscalls with status and notes, codes, families, files) "
                         "in Markdown")
    ab.add_argument("-o", "--output", metavar="FILE",
                    help="with --markdown: write it to FILE (between the umiak-compat markers when FILE has them)")
    return c


def main(argv: list[str]) -> int:
    """`umiak config ARGS` (umiak.cli turns its errors into one line and status 125)."""
    args = _parser().parse_args(argv)
    if args.config_command is None:
        _parser().print_help()
        return 0
    return run(args)


def run(args) -> int:
    cmd = args.config_command
    if cmd is None:
        raise UmiakError("config: give a subcommand (menuconfig, guiconfig, defconfig, olddefconfig, "
                         "savedefconfig, set, show, profiles, size)")
    if cmd == "profiles":
        return _profiles()
    if cmd == "show":
        return _show(args)
    if cmd == "app":
        from umiak.config.app import app_command
        return app_command(args)
    if cmd == "abi":
        from umiak.config.abi import abi_command
        return abi_command(args)
    if cmd == "size":
        from umiak.config.size import size_command
        return size_command(args)
    from umiak.config.build import load_strict, open_kconfig
    kconf = open_kconfig()
    if cmd == "defconfig":
        from umiak.config import profile_path
        load_strict(kconf, profile_path(args.profile))
        return _write(kconf, args.output or _default_config())
    path = args.config or _default_config()
    if cmd in ("menuconfig", "guiconfig"):
        return _menu(kconf, path, cmd)
    if cmd == "set":
        if os.path.exists(path):
            load_strict(kconf, path)
        _assign(kconf, args.assignments)
        return _write(kconf, path)
    if not os.path.exists(path):
        raise UmiakError(f"config {path}: No such file or directory (umiak config defconfig PROFILE makes one)")
    load_strict(kconf, path)
    if cmd == "olddefconfig":
        return _write(kconf, path)
    if cmd == "savedefconfig":
        try:
            print(kconf.write_min_config(args.output))
        except OSError as e:
            raise UmiakError(f"{args.output}: {e.strerror}") from None
        return 0
    raise UmiakError(f"config: unknown subcommand {cmd!r}")


def _write(kconf, path: str) -> int:
    try:
        print(kconf.write_config(path))
    except OSError as e:
        raise UmiakError(f"{path}: {e.strerror}") from None
    return 0


def _assign(kconf, assignments: list[str]) -> None:
    """SYM=VALUE (CONFIG_ prefix optional); an unknown symbol, a bad value or an
    assignment its dependencies do not allow is an error."""
    import kconfiglib
    for item in assignments:
        name, sep, value = item.partition("=")
        name = name.strip()
        if name.startswith("CONFIG_"):
            name = name[len("CONFIG_"):]
        if not sep or not name:
            raise UmiakError(f"config set: bad assignment {item!r} (use SYMBOL=VALUE)")
        sym = kconf.syms.get(name)
        if sym is None or not sym.nodes:
            raise UmiakError(f"config set: unknown symbol {name}")
        kconf.warnings.clear()
        if not sym.set_value(value):
            from umiak.config.build import _one_line
            why = _one_line(kconf.warnings[0]) if kconf.warnings else f"the value {value!r} is invalid for {name}"
            raise UmiakError(f"config set: {why}")
        if sym.str_value != value:
            dep = kconfiglib.expr_str(sym.direct_dep)
            raise UmiakError(f"config set: {name}={value} is not possible here (it is {sym.str_value or 'n'}; "
                             f"depends on {dep})")


def _menu(kconf, path: str, which: str) -> int:
    from umiak.config.build import load_strict
    if os.path.exists(path):
        load_strict(kconf, path)   # a malformed .config is an error before the menu starts
    os.environ["KCONFIG_CONFIG"] = path   # where kconfiglib's menus load and save
    if which == "menuconfig":
        import menuconfig
        if not sys.stdout.isatty():
            raise UmiakError("menuconfig needs a terminal")
        menuconfig.menuconfig(kconf)
        return 0
    try:
        import tkinter
    except ImportError:
        raise UmiakError("guiconfig needs Tk (python3-tk)") from None
    import guiconfig
    try:
        guiconfig.menuconfig(kconf)
    except tkinter.TclError as e:
        raise UmiakError(f"guiconfig: {e} (it needs a display: DISPLAY, or xvfb-run)") from None
    return 0


def _profiles() -> int:
    from umiak.config import profile_names, profile_path
    for name in profile_names():
        with open(profile_path(name), encoding="utf-8") as f:
            first = f.readline().strip()
        desc = first.lstrip("#").strip()
        if desc.startswith(f"{name}:"):
            desc = desc[len(name) + 1:].strip()
        print(f"{name:8} {desc}")
    return 0


def _show(args) -> int:
    from umiak.config import load
    from umiak.config.rules import COMPONENT_SYSCALLS, OTHER_COMPONENTS, VALUES
    from umiak.kernel.syscalls.table import SYSCALLS
    if args.config is None and args.profile is None:
        path = _default_config()
        cfg = load(config=path) if os.path.exists(path) else load(profile="full")
    else:
        cfg = load(args.config, args.profile)
    assert cfg is not None
    print(f"config:     {cfg.source}")
    comps = list(COMPONENT_SYSCALLS) + [c for c in OTHER_COMPONENTS if c not in COMPONENT_SYSCALLS]
    by: dict[str, list[str]] = {"y": [], "m": [], "n": []}
    for c in comps:
        v = cfg.value(c)
        by[v if v in by else "n"].append(c)
    for v, title in (("y", "built in"), ("m", "modular"), ("n", "out")):
        print(f"{title + ':':11} {' '.join(by[v]) or '-'}")
    implemented = [e for e in SYSCALLS.values() if e[1]]
    present = cfg.syscalls
    fams: dict[str, list[int]] = {}
    for e in implemented:
        n = fams.setdefault(e[1] or "", [0, 0])
        n[1] += 1
        n[0] += e[0] in present
    nm = sum(1 for v in present.values() if v == "m")
    print(f"syscalls:   {len(present)} of {len(implemented)} implemented ({nm} modular); "
          f"absent ones: {cfg.absent.upper() if cfg.absent != 'kill' else 'kill (SIGSYS)'}")
    print("families:   " + ", ".join(f"{f} {a}/{b}" for f, (a, b) in fams.items()))
    missing = [e[0] for e in implemented if e[0] not in present]
    if missing:
        print(f"left out:   {' '.join(missing)}")
    print("values:     " + " ".join(f"{v}={cfg.value(v)}" for v in VALUES))
    return 0
