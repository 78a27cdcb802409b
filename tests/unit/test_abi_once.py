"""The Linux ABI is defined once: in kernel/abi.py (constants, flags, struct layouts) and
kernel/errors.py (errno values), and nowhere else.

In-process, no VM: the source tree is read with ast, and errors.py is checked against the
kernel's own headers (Linux x86-64 uses asm-generic's errno numbers).
"""

import ast
import re
from pathlib import Path

import pytest

from umiak.kernel import abi, errors

SRC = Path(__file__).resolve().parents[2] / "src" / "umiak"
HOMES = {"kernel/abi.py", "kernel/errors.py"}
CAPS = re.compile(r"_?[A-Z][A-Z0-9_]*")

# (file, name) pairs that may keep a module-level name that abi or errors also defines.
ALLOWED = {
    # The platform layer's own 64-bit mask for register arithmetic, not Linux ABI.
    ("platform/kvm/machine.py", "MASK64"),
    ("platform/emu/machine.py", "MASK64"),
    # The syscall table's support level "ENOSYS" (a handler that is only a stub), not an errno.
    ("kernel/syscalls/table.py", "ENOSYS"),
    # The host's sigaction flag for the kick handler (the platform layer knows nothing of the guest's ABI).
    ("platform/kvm/machine.py", "SA_RESTART"),
}
# Whole files whose copies are allowed (none today).
ALLOWED_FILES: set[str] = set()


def module_caps(path: Path) -> dict[str, int]:
    """ALL_CAPS names assigned at module level in one file: {name: line}."""
    tree = ast.parse(path.read_text(), str(path))
    names = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        else:
            continue
        for target in targets:
            for n in ast.walk(target):
                if isinstance(n, ast.Name) and CAPS.fullmatch(n.id):
                    names[n.id] = node.lineno
    return names


def abi_names() -> set[str]:
    return set(module_caps(SRC / "kernel/abi.py")) | set(module_caps(SRC / "kernel/errors.py"))


def test_the_scan_sees_the_abi():
    """The scan itself works: it finds abi's and errors' own definitions."""
    names = abi_names()
    assert {"CLONE_VM", "EPOLL_EVENT", "STACK_T", "FLOCK", "UTIME_NOW", "EAGAIN", "ENOTSUP"} <= names


def test_no_copy_of_an_abi_name_outside_abi():
    names = abi_names()
    copies = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel in HOMES or rel in ALLOWED_FILES:
            continue
        for name, line in module_caps(path).items():
            if (name in names or name.lstrip("_") in names) and (rel, name) not in ALLOWED:
                copies.append(f"{rel}:{line}: {name}")
    assert not copies, ("defined again outside kernel/abi.py and kernel/errors.py "
                        "(import it from there):\n" + "\n".join(copies))


def test_allowed_exceptions_are_still_needed():
    """An exception that no longer matches anything is stale and should go."""
    names = abi_names()
    stale = [f"{f}: {n}" for f, n in sorted(ALLOWED)
             if not (SRC / f).exists() or n not in module_caps(SRC / f) or n not in names]
    assert not stale, "stale entries in ALLOWED:\n" + "\n".join(stale)


# -- errno values are Linux's ---------------------------------------------------------

HEADERS = [Path("/usr/include/asm-generic/errno-base.h"), Path("/usr/include/asm-generic/errno.h")]


def linux_errnos() -> dict[str, int]:
    """{name: value} from the kernel's uapi headers, aliases (EWOULDBLOCK EAGAIN) resolved."""
    found: dict[str, int] = {}
    for h in HEADERS:
        for name, value in re.findall(r"^#define\s+(E[A-Z0-9]+)\s+(\w+)", h.read_text(), re.M):
            found[name] = int(value) if value.isdigit() else found[value]
    return found


@pytest.mark.skipif(not all(h.exists() for h in HEADERS), reason="no Linux uapi headers on this host")
def test_errno_values_are_linux_x86_64():
    linux = linux_errnos()
    assert len(linux) > 130   # the headers parsed: EPERM .. EHWPOISON
    wrong = {n: (getattr(errors, n, None), v) for n, v in linux.items() if getattr(errors, n, None) != v}
    assert not wrong, f"errors.py differs from Linux (ours, Linux's): {wrong}"


def test_errors_defines_no_errno_linux_lacks():
    """Every E... number in errors.py is one of Linux's (or a documented alias / restart code)."""
    linux = linux_errnos() if all(h.exists() for h in HEADERS) else {}
    extra = {"ENOTSUP": errors.EOPNOTSUPP,   # the C library's name for EOPNOTSUPP
             "ERESTARTSYS": 512, "ERESTARTNOINTR": 513, "ERESTARTNOHAND": 514, "ERESTART_RESTARTBLOCK": 516}
    ours = {n: v for n, v in vars(errors).items() if CAPS.fullmatch(n) and n.startswith("E") and type(v) is int}
    if linux:
        assert {n: v for n, v in ours.items() if n not in extra} == linux
    assert {n: ours[n] for n in extra} == extra


def test_errno_names_are_the_ones_strace_prints():
    assert errors.errno_name(errors.EAGAIN) == "EAGAIN"
    assert errors.errno_name(35) == "EDEADLK"
    assert errors.errno_name(95) == "EOPNOTSUPP"
    assert errors.errno_name(errors.ENOENT) == "ENOENT"
    assert errors.errno_name(4000) == "E4000"
    assert str(errors.SyscallError(errors.ENOENT)) == "ENOENT (No such file or directory)"


# -- the layouts are Linux x86-64's -----------------------------------------------------

@pytest.mark.parametrize("layout, size", [
    ("STAT", 144), ("STATX", 256), ("STATFS", 120), ("FLOCK", 32), ("STACK_T", 24), ("CLONE_ARGS", 88),
    ("SYSINFO", 112), ("ITIMERSPEC", 32), ("ITIMERVAL", 32), ("SIGEVENT", 64), ("EPOLL_EVENT", 12),
    ("POLLFD", 8), ("MSGHDR", 56), ("CMSGHDR", 16), ("RUSAGE", 144), ("SIGACTION", 32), ("TIMESPEC", 16),
    ("SIGNALFD_SIGINFO", 128), ("UCRED", 12), ("LINGER", 8), ("WINSIZE", 8), ("TMS", 32),
])
def test_struct_sizes(layout, size):
    assert getattr(abi, layout).size == size


def test_stack_t_has_its_padding_where_linux_has_it():
    """struct stack_t {void *ss_sp; int ss_flags; size_t ss_size;}: 4 bytes of padding after ss_flags."""
    raw = abi.STACK_T.pack(0x1000, abi.SS_ONSTACK, 0x2000)
    assert raw[8:12] == abi.SS_ONSTACK.to_bytes(4, "little") and raw[12:16] == bytes(4)
    assert raw[16:] == (0x2000).to_bytes(8, "little")


def test_flock_fields_sit_at_linux_offsets():
    raw = abi.FLOCK.pack(abi.F_WRLCK, abi.SEEK_CUR, 10, 20, 7)
    assert raw[0:2] == b"\1\0" and raw[2:4] == b"\1\0"
    assert raw[8:16] == (10).to_bytes(8, "little") and raw[16:24] == (20).to_bytes(8, "little")
    assert raw[24:28] == (7).to_bytes(4, "little")
