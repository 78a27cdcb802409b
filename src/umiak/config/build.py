"""The kconfiglib side: the Kconfig tree (with the System calls menu generated from
table.py), loading .config files strictly, and freezing a config for runs.

Imported by `umiak config ...` and the first run of a new .config only.
"""

import os

from umiak.config import FORMAT, PKG, cache_dir, tree_fingerprint
from umiak.config.rules import component_of, syscall_symbol
from umiak.errors import UmiakError


def syscalls_kconfig_text() -> str:
    """The System calls menu: one bool per implemented syscall, a menu per family (the
    table's family column, whatever its values), `depends on` its component, help from
    the table's status and note."""
    from umiak.kernel.syscalls.table import SYSCALLS
    families: dict[str, list[str]] = {}
    for nr, entry in SYSCALLS.items():
        name, family, status, note = entry[0], entry[1], entry[2], entry[3]
        if not family:
            continue   # not written: never in any kernel (CONFIG_ABSENT_SYSCALL says what it returns)
        comp = component_of(name, family)
        lines = [f"config {syscall_symbol(name)}", f'\tbool "{name} ({nr})"', "\tdefault y"]
        if comp:
            lines.append(f"\tdepends on {comp}")
        lines += ["\thelp", f"\t  {name}(2), syscall {nr}: {status}"
                  + (f", needs {comp}" if comp else "") + "."]
        if note:
            lines.append("\t  " + note.replace("\\", "\\\\"))
        families.setdefault(family, []).append("\n".join(lines))
    out = ["# Generated from umiak/kernel/syscalls/table.py by umiak.config.build: do not edit.", ""]
    for family, entries in families.items():
        out += [f'menu "{family} (umiak.kernel.syscalls.{family})"', "", "\n\n".join(entries), "", "endmenu", ""]
    return "\n".join(out)


def generated_syscalls_kconfig() -> str:
    """The path of the generated syscalls Kconfig for the current table (written once)."""
    from umiak.config import _write_atomic
    path = os.path.join(cache_dir(), f"Kconfig.syscalls-{tree_fingerprint()[:16]}")
    if not os.path.exists(path):
        _write_atomic(path, syscalls_kconfig_text())
        if not os.path.exists(path):   # no writable cache: a private temporary file
            import tempfile
            fd, path = tempfile.mkstemp(prefix="umiak-Kconfig.syscalls-")
            with os.fdopen(fd, "w") as f:
                f.write(syscalls_kconfig_text())
    return path


def open_kconfig():
    """The parsed Kconfig tree, warnings collected (not printed), no .config loaded yet."""
    try:
        import kconfiglib
    except ImportError:
        raise UmiakError("the Kconfig tools need kconfiglib (pip install kconfiglib==14.1.0)") from None
    os.environ["UMIAK_SYSCALLS_KCONFIG"] = generated_syscalls_kconfig()
    kconf = kconfiglib.Kconfig(os.path.join(PKG, "Kconfig"), warn_to_stderr=False)
    kconf.warn_assign_undef = True    # CONFIG_TYPO=y is an error, not silently ignored
    kconf.warnings.clear()
    return kconf


def _one_line(msg: str) -> str:
    msg = " ".join(msg.split()).replace(": warning: ", ": ")
    return msg[len("warning: "):] if msg.startswith("warning: ") else msg


def load_strict(kconf, path: str) -> None:
    """Load a .config or defconfig fragment; any kconfiglib warning (an unknown symbol, a
    malformed line, a bad value) is an error with its text as one line."""
    import kconfiglib
    kconf.warnings.clear()
    try:
        kconf.load_config(path)
    except OSError as e:
        raise UmiakError(f"config {path}: {e.strerror}") from None
    except kconfiglib.KconfigError as e:
        raise UmiakError(f"config {path}: {_one_line(str(e))}") from None
    if kconf.warnings:
        raise UmiakError(_one_line(kconf.warnings[0]))


def frozen_of(kconf) -> dict:
    """The frozen form of the loaded config: what FrozenConfig reads."""
    from umiak.kernel.syscalls.table import SYSCALLS
    per_syscall = {syscall_symbol(e[0]) for e in SYSCALLS.values()}
    symbols = {}
    for sym in kconf.unique_defined_syms:
        if sym.name in per_syscall or sym.name == "MODULES":
            continue
        symbols[sym.name] = sym.str_value
    syscalls = {}
    all_lazy = kconf.syms["SYSCALLS_ON_FIRST_USE"].tri_value == 2
    for entry in SYSCALLS.values():
        name, family = entry[0], entry[1]
        sym = kconf.syms.get(syscall_symbol(name))
        if not family or sym is None or sym.tri_value == 0:
            continue
        comp = component_of(name, family)
        syscalls[name] = "m" if all_lazy or (comp and kconf.syms[comp].tri_value == 1) else "y"
    absent = next((a for a in ("enosys", "eperm", "kill") if symbols.get(f"ABSENT_SYSCALL_{a.upper()}") == "y"),
                  "enosys")
    return {"format": FORMAT, "symbols": symbols, "syscalls": syscalls, "absent": absent}


def freeze(path: str) -> dict:
    kconf = open_kconfig()
    load_strict(kconf, path)
    return frozen_of(kconf)
