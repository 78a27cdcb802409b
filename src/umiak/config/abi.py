"""The kernel's exported ABI, per component, as checked-in lists (OSv's exported_symbols/*.symbols).

For umiak the ABI is system calls and the codes and files behind them. Each Kconfig
component has a file src/umiak/config/exported/<COMPONENT>.symbols (CORE for the
syscalls no component owns), one entry a line:

    syscall openat
    ioctl TCGETS 0x5401
    fcntl F_GETFL 3
    prctl PR_SET_NAME 15
    family AF_UNIX 1
    file /proc/<pid>/maps

`derive()` computes the same lists from the code: syscalls from table.py and the
component rules; ioctl, fcntl and prctl codes from the comparisons their handlers
make on the request argument (read with `ast`); socket families from the families
the socket code compares; /proc and /sys files by walking procfs and sysfs built on
a stand-in kernel. tests/test_appkernel.py fails when the two differ (a handler
added without its entry, or an entry with no handler);
`python -m umiak.config.abi --write` rewrites the lists after a deliberate change.
`umiak config abi [--config FILE]` prints the union a config's kernel exports;
`umiak config abi --markdown -o docs/compat.md` writes the compatibility table from the
same data (table.py's status and notes beside the lists), which a test keeps current.
"""

import ast
import importlib
import inspect
import os
import sys

from umiak.errors import UmiakError

EXPORTED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exported")

# (kind, component, module, function, index of the argument compared); a function named
# "Class.method" is a method (its first argument is self).
CODE_SITES = (
    ("ioctl", "CORE", "umiak.kernel.syscalls.fcntl", "sys_ioctl", 2),
    ("ioctl", "CORE", "umiak.kernel.files", "HostFile.ioctl", 2),
    ("ioctl", "NET", "umiak.kernel.net.base", "Socket.ioctl", 2),
    ("ioctl", "NET", "umiak.kernel.net.host", "HostSocket.ioctl", 2),
    ("fcntl", "CORE", "umiak.kernel.syscalls.fcntl", "sys_fcntl", 2),
    ("prctl", "CORE", "umiak.kernel.syscalls.process", "sys_prctl", 1),
)
FCNTL_LOCK_COMMANDS = ("F_GETLK", "F_SETLK", "F_SETLKW", "F_OFD_GETLK", "F_OFD_SETLK", "F_OFD_SETLKW")
FAMILY_COMPONENTS = (("NET_UNIX", "AF_UNIX"), ("NET_INET", "AF_INET"), ("NET_INET6", "AF_INET6"),
                     ("NET_NETLINK", "AF_NETLINK"))
PREFIX = {"ioctl": ("TC", "TIOC", "FIO", "SIOC", "FIONREAD"), "fcntl": ("F_",), "prctl": ("PR_",)}


def _function(mod, dotted: str):
    obj = mod
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _names_compared(fn, argi: int) -> list[ast.expr]:
    """The expressions `arg == X` / `arg in (X, Y)` / `arg in X` compare the argument with."""
    import textwrap
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    f = tree.body[0]
    if not isinstance(f, ast.FunctionDef):
        return []
    args = [a.arg for a in f.args.args]
    if argi >= len(args):
        return []
    var = args[argi]
    out: list[ast.expr] = []
    for node in ast.walk(f):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == var:
            for op, comp in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, (ast.Eq, ast.In)):
                    if isinstance(comp, (ast.Tuple, ast.List, ast.Set)):
                        out += comp.elts
                    else:
                        out.append(comp)
    return out


def _local_constants(fn) -> dict[str, int]:
    """NAME = 15 and A, B = 15, 16 inside the function (prctl's PR_* live there)."""
    import textwrap
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    out: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            t, v = node.targets[0], node.value
            try:
                val = ast.literal_eval(v)
            except (ValueError, TypeError, SyntaxError):
                continue
            if isinstance(t, ast.Name) and isinstance(val, int):
                out[t.id] = val
            elif isinstance(t, ast.Tuple) and isinstance(val, tuple):
                for e, x in zip(t.elts, val, strict=False):
                    if isinstance(e, ast.Name) and isinstance(x, int):
                        out[e.id] = x
    return out


def _evaluate(expr: ast.expr, mod, local: dict[str, int]) -> list[tuple[str, int]]:
    """(name, value) pairs of one compared expression; containers give each member."""
    from umiak.kernel import abi
    name = None
    value = None
    if isinstance(expr, ast.Name):
        name = expr.id
        value = local.get(name, getattr(mod, name, None))
    elif isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
        name = expr.attr
        base = getattr(mod, expr.value.id, None)
        value = getattr(base, name, None)
    elif isinstance(expr, ast.Constant) and isinstance(expr.value, int):
        value = expr.value
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int):
        return [(name or f"{value:#x}", value)]
    if isinstance(value, (tuple, list, set, frozenset, dict)):
        out = []
        for v in sorted(value):
            if isinstance(v, int):
                out.append((_name_of(v, mod, abi) or f"{name}[{v:#x}]", v))
        return out
    return []


def _name_of(value: int, *spaces) -> str | None:
    for space in spaces:
        for k, v in vars(space).items():
            if v == value and k.isupper() and k.startswith(("SIOC", "TIOC", "TC", "FIO")):
                return k
    return None


def _code_entries() -> list[tuple[str, str, str, int]]:
    """(component, kind, name, value) for ioctl, fcntl and prctl codes, from the handlers."""
    out = []
    for kind, comp, modname, fname, argi in CODE_SITES:
        mod = importlib.import_module(modname)
        fn = _function(mod, fname)
        if fn is None:
            raise UmiakError(f"abi: {modname}.{fname} is gone (update CODE_SITES in umiak.config.abi)")
        local = _local_constants(fn)
        for expr in _names_compared(fn, argi):
            for name, value in _evaluate(expr, mod, local):
                out.append((comp, kind, name, value))
    return out


def _synth_files(fs, top: str) -> list[str]:
    """Every file and directory of a synthetic file system; directories made on each
    look (fd/, task/, ...) show as DIR/*."""
    from umiak.kernel.vfs.nodes import SynthDir
    out: list[str] = []

    def walk(node, path: str, depth: int) -> None:
        if isinstance(node, SynthDir):
            e = node._entries
            if callable(e) and depth > 0:
                out.append(path + "/*")
                return
            entries = node.entries()
            if not entries:
                out.append(path + "/")
            for name, child in sorted(entries.items()):
                if name.isdigit() and depth == 0:
                    name = "<pid>"
                elif name.startswith(("cpu", "node")) and name[-1].isdigit():
                    name = name.rstrip("0123456789") + "<N>"
                walk(child, f"{path}/{name}", depth + 1)
        else:
            out.append(path)
    walk(fs.root, top, 0)
    return sorted(set(out))


class _StandIn:
    """Just enough of a Kernel and a Process for procfs and sysfs to list their files."""

    def __init__(self):
        import types
        self.hostname = "umiak"
        self.options = types.SimpleNamespace(max_threads=4096)
        self.ncpus = 1
        proc = types.SimpleNamespace(pid=1, tasks={}, leader=None, fds=types.SimpleNamespace(files={}),
                                     argv=[], envp=[], exe="", cwd="/",
                                     creds=types.SimpleNamespace(euid=0, egid=0, uid=0, gid=0))
        self.processes = {1: proc}

    def current_task(self):
        return None


def derive() -> dict[str, list[str]]:
    """component -> its exported lines, from the code."""
    from umiak.config.rules import component_of
    from umiak.kernel import abi
    from umiak.kernel.syscalls.table import SYSCALLS
    lists: dict[str, set[str]] = {}
    for _nr, (name, family, _status, _note) in sorted(SYSCALLS.items()):
        if family:
            lists.setdefault(component_of(name, family) or "CORE", set()).add(f"syscall {name}")
    for comp, kind, name, value in _code_entries():
        if kind == "fcntl" and name in FCNTL_LOCK_COMMANDS:
            comp = "FCNTL_LOCKS"
        lists.setdefault(comp, set()).add(f"{kind} {name} {value:#x}" if kind == "ioctl" else f"{kind} {name} {value}")
    for comp, af in FAMILY_COMPONENTS:
        lists.setdefault(comp, set()).add(f"family {af} {getattr(abi, af)}")
    from umiak.kernel.vfs.procfs import ProcFS, SysFS
    k = _StandIn()
    lists["PROCFS"] = {f"file {p}" for p in _synth_files(ProcFS(k), "/proc")}
    lists["SYSFS"] = {f"file {p}" for p in _synth_files(SysFS(k), "/sys")}
    return {c: sorted(v, key=_order) for c, v in sorted(lists.items())}


def _order(line: str):
    kinds = ("syscall", "ioctl", "fcntl", "prctl", "family", "file")
    kind, _, rest = line.partition(" ")
    return (kinds.index(kind) if kind in kinds else 9, rest)


def checked_in() -> dict[str, list[str]]:
    """component -> lines of src/umiak/config/exported/<COMPONENT>.symbols."""
    out: dict[str, list[str]] = {}
    try:
        names = sorted(os.listdir(EXPORTED_DIR))
    except OSError:
        return out
    for n in names:
        if n.endswith(".symbols"):
            with open(os.path.join(EXPORTED_DIR, n), encoding="utf-8") as f:
                out[n[:-len(".symbols")]] = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    return out


def write(lists: dict[str, list[str]]) -> None:
    os.makedirs(EXPORTED_DIR, exist_ok=True)
    for n in os.listdir(EXPORTED_DIR):
        if n.endswith(".symbols") and n[:-len(".symbols")] not in lists:
            os.unlink(os.path.join(EXPORTED_DIR, n))
    for comp, lines in lists.items():
        with open(os.path.join(EXPORTED_DIR, f"{comp}.symbols"), "w", encoding="utf-8") as f:
            f.write(f"# What component {comp} exports (umiak.config.abi). Checked against the code by\n"
                    "# tests/test_appkernel.py; regenerate with: python -m umiak.config.abi --write\n")
            f.writelines(line + "\n" for line in lines)


def drift() -> list[str]:
    """Differences between the code and the checked-in lists, one line each."""
    code, lists = derive(), checked_in()
    out = []
    for comp in sorted(set(code) | set(lists)):
        have, listed = set(code.get(comp, ())), set(lists.get(comp, ()))
        out += [f"{comp}: {x} is in the code but not in exported/{comp}.symbols" for x in sorted(have - listed)]
        out += [f"{comp}: {x} is listed in exported/{comp}.symbols but not in the code" for x in sorted(listed - have)]
    return out


def exported(cfg) -> list[str]:
    """The union of the lists for a kernel config (None: the full kernel)."""
    lists = checked_in()
    if not lists:
        raise UmiakError(f"no exported ABI lists in {EXPORTED_DIR}")
    out: list[str] = []
    for comp, lines in lists.items():
        if cfg is not None and comp != "CORE" and not cfg.has(comp):
            continue
        for line in lines:
            kind, _, rest = line.partition(" ")
            if cfg is not None:
                if kind == "syscall" and rest not in cfg.syscalls:
                    continue
                if kind in ("ioctl", "fcntl", "prctl") and kind not in cfg.syscalls:
                    continue
                if kind == "family" and not cfg.has("NET"):
                    continue
            out.append(line)
    return sorted(set(out), key=_order)


# -- the compatibility table (docs/compat.md, or a README section between the markers) ---------
BEGIN, END = "<!-- umiak-compat:begin -->", "<!-- umiak-compat:end -->"
COMPAT_COMMAND = "umiak config abi --markdown -o docs/compat.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(cfg=None) -> str:
    """The compatibility table: every x86-64 syscall with its status, component and note
    (kernel/syscalls/table.py), then the ioctl/fcntl/prctl codes, socket families and
    /proc and /sys files each component exports (the checked-in lists). With a config,
    what that kernel has."""
    from umiak.config.rules import component_of
    from umiak.kernel.syscalls.table import ABSENT, ENOSYS, FULL, PARTIAL, SYSCALLS
    lines = exported(cfg)
    syscalls = {ln.split(" ", 1)[1] for ln in lines if ln.startswith("syscall ")}
    count = {k: 0 for k in (FULL, PARTIAL, ENOSYS, ABSENT)}
    rows = []
    words = {FULL: "full", PARTIAL: "partial", ENOSYS: "ENOSYS (not written yet)", ABSENT: "absent on purpose"}
    for nr, (name, family, status, note) in sorted(SYSCALLS.items()):
        if family and name not in syscalls:
            status_text, comp = "not in this kernel", component_of(name, family) or "CORE"
        else:
            count[status] = count.get(status, 0) + 1
            status_text = words.get(status, status)
            comp = (component_of(name, family) or "CORE") if family else "-"
        rows.append(f"| {nr} | `{name}` | {status_text} | {comp} | {_cell(note)} |")
    title = "the full kernel" if cfg is None else f"the kernel of {getattr(cfg, 'source', 'a config')}"
    out = [BEGIN,
           f"<!-- Generated from umiak's ABI data by `{COMPAT_COMMAND}`: do not edit by hand. -->",
           "",
           f"Linux x86-64 compatibility of {title}: {count[FULL]} system calls full, {count[PARTIAL]} partial "
           f"(the note says what is missing), {count[ABSENT]} absent on purpose (-ENOSYS, silently: programs "
           f"fall back), {count[ENOSYS]} not written yet (-ENOSYS, warned once and listed at exit), of "
           f"{len(SYSCALLS)} numbers. The component is the Kconfig symbol a call depends on (CORE: always "
           "there unless its own symbol is off).",
           "",
           "| nr | system call | status | component | note |",
           "|---:|---|---|---|---|",
           *rows,
           ""]
    kinds = (("ioctl", "ioctl requests"), ("fcntl", "fcntl commands"), ("prctl", "prctl options"),
             ("family", "socket families"), ("file", "/proc and /sys files"))
    owner = {ln: comp for comp, lns in checked_in().items() for ln in lns}
    for kind, heading in kinds:
        entries = [ln for ln in lines if ln.startswith(kind + " ")]
        if not entries:
            continue
        out += [f"{heading[0].upper()}{heading[1:]}:", ""]
        if kind == "file":
            by: dict[str, list[str]] = {}
            for ln in entries:
                by.setdefault(owner.get(ln, "CORE"), []).append(ln.split(" ", 1)[1])
            out += ["| component | files |", "|---|---|"]
            out += [f"| {comp} | {', '.join(f'`{p}`' for p in paths)} |" for comp, paths in sorted(by.items())]
        else:
            out += ["| name | value | component |", "|---|---:|---|"]
            for ln in entries:
                _k, name, value = ln.split(" ", 2)
                out.append(f"| `{name}` | {value} | {owner.get(ln, 'CORE')} |")
        out.append("")
    out.append(END)
    return "\n".join(out) + "\n"


def splice(old: str, table: str) -> str:
    """`old` with the text between the markers replaced by the table (the whole table when
    `old` has no markers)."""
    i, j = old.find(BEGIN), old.find(END)
    if i < 0 or j < i:
        return table
    return old[:i] + table.rstrip("\n") + old[j + len(END):]


def write_markdown(path: str, cfg=None) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    except OSError as e:
        raise UmiakError(f"{path}: {e.strerror}") from None
    new = splice(old, markdown(cfg)) if old else "# umiak: Linux compatibility\n\n" + markdown(cfg)
    try:
        d = os.path.dirname(path)
        if d:
            os.makedirs(d, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    except OSError as e:
        raise UmiakError(f"{path}: {e.strerror}") from None


def abi_command(args) -> int:
    from umiak.config import load
    cfg = load(args.config, args.profile) if (args.config or args.profile) else None
    if getattr(args, "output", None) and not args.markdown:
        raise UmiakError("config abi: -o goes with --markdown")
    if args.markdown:
        if args.output:
            write_markdown(args.output, cfg)
        else:
            sys.stdout.write(markdown(cfg))
        return 0
    for line in exported(cfg):
        print(line)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write(derive())
    else:
        for line in drift():
            print(line)
