"""The vDSO: clocks answered inside the VM (no exit on KVM), behaving as Linux's."""

import re
import shutil
import subprocess

import pytest

from harness import REPO, build, compare, run_umiak

VDSO_DIR = REPO / "src" / "umiak" / "loader" / "vdso"


def test_clocks_match_linux(platform, variant):
    compare(platform, [build("clock_vdso", variant)])


def test_kvm_clock_reads_make_no_syscalls(platform):
    if platform != "kvm":
        pytest.skip("only KVM reads the TSC in the vDSO; emu's vDSO falls back to the syscall")
    r = run_umiak(platform, [build("clock_vdso", "glibc-static")], options=["--syscall-summary"])
    assert r.status == 0, r.describe()
    assert not re.search(rb"\bclock_gettime\b", r.stderr), r.describe()


def test_committed_image_is_built_from_its_source(tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    out = tmp_path / "vdso.so"
    subprocess.run([str(VDSO_DIR / "build.sh"), str(out)], check=True)
    assert out.read_bytes() == (VDSO_DIR / "vdso.so").read_bytes(), \
        "vdso.so is stale: run src/umiak/loader/vdso/build.sh and commit the result"
