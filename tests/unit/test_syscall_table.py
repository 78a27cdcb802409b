"""The one syscall table against the handlers, the dispatch list and the strace decoder.

In-process, no VM: the table (kernel/syscalls/table.py) names a family module and a
status for every number; these checks make a typo, a rename or a forgotten row fail
here instead of turning into "ENOSYS plus a warning" (or a crash) at run time.
"""

import ast
import errno
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import umiak.kernel.syscalls as syscalls_pkg
from umiak.kernel.errors import SyscallError
from umiak.kernel.kernel import Kernel, build_handlers
from umiak.kernel.syscalls.table import ABSENT, ENOSYS, FULL, MAX_NR, NUMBERS, PARTIAL, SYSCALLS
from umiak.trace import decode

FAMILY_MODULES = sorted(m.name for m in pkgutil.iter_modules(syscalls_pkg.__path__) if m.name != "table")


def _module(family: str):
    return importlib.import_module(f"umiak.kernel.syscalls.{family}")


def test_numbers_and_names_are_unique():
    names = [row[0] for row in SYSCALLS.values()]
    assert len(names) == len(set(names))
    assert all(0 <= nr < MAX_NR for nr in SYSCALLS)
    assert all(status in (FULL, PARTIAL, ENOSYS, ABSENT) for _, _, status, _ in SYSCALLS.values())


def test_status_vocabulary():
    """As table.py's docstring says: FULL has no note, PARTIAL and ABSENT say what or why,
    FULL and PARTIAL rows have a handler and ENOSYS rows (not written yet) have none."""
    for nr, (name, family, status, note) in SYSCALLS.items():
        if status == FULL:
            assert family and not note, (nr, name)
        elif status == PARTIAL:
            assert family and note and not note.startswith("ENOSYS"), (nr, name)
        elif status == ABSENT:
            assert note, (nr, name)
        else:
            assert family is None, (nr, name)


@pytest.mark.parametrize("nr", sorted(nr for nr, row in SYSCALLS.items() if row[1]))
def test_every_row_with_a_family_resolves(nr):
    name, family, _, _ = SYSCALLS[nr]
    assert family in FAMILY_MODULES, f"{name}: no module umiak.kernel.syscalls.{family}"
    fn = getattr(_module(family), f"sys_{name}", None)
    assert inspect.isfunction(fn), f"{name}: umiak.kernel.syscalls.{family} has no sys_{name}"
    assert fn.__module__ == f"umiak.kernel.syscalls.{family}", f"sys_{name} is defined in {fn.__module__}"
    params = list(inspect.signature(fn).parameters.values())
    varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
    assert varargs or len(params) - 1 <= 6, f"sys_{name} takes more than six syscall arguments"


@pytest.mark.parametrize("family", FAMILY_MODULES)
def test_every_handler_has_a_row(family):
    mod = _module(family)
    rows = {name for name, fam, _, _ in SYSCALLS.values() if fam == family}
    defined = {n[4:] for n, fn in vars(mod).items()
               if n.startswith("sys_") and inspect.isfunction(fn) and fn.__module__ == mod.__name__}
    assert defined - rows == set(), f"sys_* in {family} without a row of family {family!r} in the table"


# -- the dispatch list -------------------------------------------------------------

class FakeKernel:
    dispatch = Kernel.dispatch
    _beyond = Kernel._beyond

    def __init__(self, handlers):
        self.handlers, self.tracer = handlers, None
        self.unknown: list[int] = []
        self.enosys: list[str] = []

    def unknown_syscall(self, task, nr):
        self.unknown.append(nr)
        return -errno.ENOSYS

    def note_enosys(self, name):
        self.enosys.append(name)
        return -errno.ENOSYS


class FakeProcess:
    pid, ppid = 7, 0


class FakeTask:
    def __init__(self, kernel):
        self.kernel, self.process = kernel, FakeProcess()


def test_every_slot_is_callable():
    handlers = build_handlers()
    assert len(handlers) == MAX_NR
    assert all(callable(h) for h in handlers)


def test_holes_and_numbers_past_the_end_are_unknown():
    k = FakeKernel(build_handlers())
    t = FakeTask(k)
    holes = [nr for nr in range(MAX_NR) if nr not in SYSCALLS]
    assert 400 in holes and 335 in holes and 423 in holes
    for nr in holes + [MAX_NR, 1000, (1 << 64) - 1]:
        assert k.dispatch(t, nr, 1, 2, 3, 0, 0, 0) == -errno.ENOSYS
    assert k.unknown == holes + [MAX_NR, 1000, (1 << 64) - 1]


def test_rows_without_handler_are_enosys():
    k = FakeKernel(build_handlers())
    t = FakeTask(k)
    assert k.dispatch(t, NUMBERS["ptrace"], 0, 0, 0, 0, 0, 0) == -errno.ENOSYS
    assert k.dispatch(t, NUMBERS["rseq"], 0, 0, 0, 0, 0, 0) == -errno.ENOSYS   # ABSENT: silent
    assert k.enosys == ["ptrace"]


def test_handlers_are_bound_on_first_use_of_their_family():
    handlers = build_handlers()
    k = FakeKernel(handlers)
    t = FakeTask(k)
    getpid, getppid = NUMBERS["getpid"], NUMBERS["getppid"]
    stub = handlers[getppid]
    assert k.dispatch(t, getpid, 0, 0, 0, 0, 0, 0) == 7
    assert handlers[getppid] is not stub   # the whole family was bound at once
    assert k.dispatch(t, getppid, 0, 0, 0, 0, 0, 0) == 0
    assert k.dispatch(t, (1 << 32) | getpid, 0, 0, 0, 0, 0, 0) == 7   # Linux reads eax only


def test_a_disabled_family_is_enosys_and_never_imported():
    k = FakeKernel(build_handlers(families={"process"}))
    t = FakeTask(k)
    assert k.dispatch(t, NUMBERS["getpid"], 0, 0, 0, 0, 0, 0) == 7
    assert k.dispatch(t, NUMBERS["socket"], 2, 1, 0, 0, 0, 0) == -errno.ENOSYS
    assert k.enosys == ["socket"]


def test_syscall_error_becomes_minus_errno():
    def fails(task, a, b, c, d, e, f):
        raise SyscallError(errno.EBADF)
    k = FakeKernel([fails] * MAX_NR)
    assert k.dispatch(FakeTask(k), 3, 0, 0, 0, 0, 0, 0) == -errno.EBADF


# -- the strace decoder ------------------------------------------------------------

def _spec_keys() -> list[str]:
    """The keys of decode.SPECS as written in the source (a dict drops duplicates)."""
    tree = ast.parse(Path(decode.__file__).read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "SPECS":
            return [k.value for k in node.value.keys]
    raise AssertionError("no SPECS literal in trace/decode.py")


def test_decoder_specs_have_no_duplicates_and_name_table_rows():
    keys = _spec_keys()
    dups = sorted({k for k in keys if keys.count(k) > 1})
    assert dups == [], f"duplicate SPECS entries: {dups}"
    names = {row[0] for row in SYSCALLS.values()}
    assert set(keys) == set(decode.SPECS)
    assert set(keys) - names == set(), "SPECS names calls the table does not have"


def test_every_implemented_call_is_decoded_or_listed():
    implemented = {name for name, _, status, _ in SYSCALLS.values() if status in (FULL, PARTIAL)}
    missing = sorted(implemented - set(decode.SPECS) - decode.UNDECODED)
    assert missing == [], f"implemented calls with no strace spec: {missing} (add one, or to decode.UNDECODED)"
    assert decode.UNDECODED & set(decode.SPECS) == set(), "both decoded and listed as undecoded"
    assert decode.UNDECODED <= implemented, "UNDECODED lists calls that are not implemented"
