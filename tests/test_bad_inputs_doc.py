"""docs/bad-inputs.md against the tests it lists: every test of the bad-input, escape,
fuzz, soak and fault files has a row (each case of their case tables too), and every row
names a test that exists. In-process, no VM."""

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DOC = TESTS.parent / "docs" / "bad-inputs.md"
FILES = ["test_bad_inputs.py", "test_escape.py", "fuzz/test_fuzz.py", "test_soak.py", "test_faults.py"]
# file -> (test function, the module-level dict whose keys are its cases)
CASE_TABLES = {"test_bad_inputs.py": ("test_bad_program", "CASES"), "test_faults.py": ("test_guest_out_of_memory", "OOM")}


def expected_ids() -> set[str]:
    ids = set()
    for name in FILES:
        tree = ast.parse((TESTS / name).read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                ids.add(f"{name}::{node.name}")
        if name in CASE_TABLES:
            func, table = CASE_TABLES[name]
            ids.discard(f"{name}::{func}")
            for node in tree.body:
                if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == table for t in node.targets):
                    assert isinstance(node.value, ast.Dict)
                    for key in node.value.keys:
                        assert isinstance(key, ast.Constant)
                        ids.add(f"{name}::{func}[{key.value}]")
    return ids


def documented_ids() -> list[str]:
    return re.findall(r"^\| `([^`]+::[^`]+)` \|", DOC.read_text(), flags=re.M)


def test_every_test_has_a_row():
    missing = sorted(expected_ids() - set(documented_ids()))
    assert not missing, f"tests with no row in {DOC.name}: {missing}"


def test_every_row_is_a_test():
    rows = documented_ids()
    assert len(rows) == len(set(rows)), "a test listed twice"
    unknown = sorted(set(rows) - expected_ids())
    assert not unknown, f"rows of {DOC.name} naming no test: {unknown}"
