"""CPU models (umiak run/snapshot --cpu, umiak.arch.x86_64.cpumodel): under --cpu=baseline
kvm and emu present one CPU, so glibc makes the same choices on both (its IFUNC variants,
ld.so's register save in lazy binding) and a dynamic glibc program snapshot on one platform
restores on the other, with the output of a native run. Without --cpu, kvm keeps the host's
CPU (glibc's AVX2 paths)."""

from __future__ import annotations

import os

import pytest

from conftest import platform_problems
from harness import assert_same, build, run_native, run_umiak
from test_snapshot import EXIT_UMIAK_FAILURE, _both_platforms, restore, snapshot, snapshot_and_restore

BASELINE = ["--cpu=baseline"]


def test_baseline_choices_equal_on_both_platforms():
    _both_platforms()
    prog = build("ifunc_choice", "glibc-dynamic")
    kvm = run_umiak("kvm", [prog], options=BASELINE)
    emu = run_umiak("emu", [prog], options=BASELINE)
    assert kvm.status == 0 and emu.status == 0, kvm.describe() + emu.describe()
    assert b"osxsave 0" in kvm.stdout and b"memcpy 0x" in kvm.stdout, kvm.describe()
    assert kvm.stdout == emu.stdout


def test_default_is_the_host_cpu(platform):
    if platform != "kvm":
        pytest.skip("emu's own CPU is Unicorn's, not the host's")
    argv = [build("ifunc_choice", "glibc-dynamic"), "cpuid"]
    assert_same(run_native(argv), run_umiak(platform, argv))


@pytest.mark.parametrize("way", ["kvm-emu", "emu-kvm"])
def test_dynamic_glibc_moves(tmp_path, way):
    _both_platforms()
    first, second = way.split("-")
    snapshot_and_restore(first, [build("snapshot_ready", "glibc-dynamic")], tmp_path, "ready",
                         restore_on=second, options=BASELINE)


@pytest.mark.parametrize("way", ["kvm-emu", "emu-kvm"])
def test_ls_moves(tmp_path, way):
    _both_platforms()
    first, second = way.split("-")
    snapshot_and_restore(first, ["/bin/ls", "-la", "/usr/share/common-licenses"], tmp_path, "entry",
                         restore_on=second, options=BASELINE)


@pytest.mark.parametrize("way,at", [("kvm-emu", "ready"), ("emu-kvm", "entry")])
def test_python3_moves(tmp_path, way, at):
    # emu -> kvm from entry: CPython's own start takes seconds on the software CPU.
    _both_platforms()
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("/usr/bin/python3 is not installed")
    first, second = way.split("-")
    code = ("import ctypes, sys; print('before'); sys.stdout.flush(); "
            "ctypes.CDLL(None).syscall(0x554d0001); print(sorted({3: 'c', 1: 'a'}.items())); sys.exit(4)")
    snapshot_and_restore(first, ["/usr/bin/python3", "-c", code], tmp_path, at, restore_on=second, options=BASELINE)


def test_restore_keeps_the_snapshots_cpu(tmp_path):
    platform = next((p for p, problem in platform_problems().items() if problem is None), None)
    if platform is None:
        pytest.skip("no platform")
    snap = tmp_path / "b.snap"
    r = snapshot(platform, [build("snapshot_ready", "glibc-static")], snap, "ready", options=BASELINE)
    assert r.status == 0, r.describe()
    r = restore(platform, snap, ["--cpu=host"])
    lines = r.stderr.decode().splitlines()
    assert r.status == EXIT_UMIAK_FAILURE and len(lines) == 1, r.describe()
    assert lines[0] == "umiak: the snapshot was taken with --cpu=baseline: restore it without --cpu=host"
