"""brk, mmap, munmap and mprotect: the results Linux gives, and the faults it raises.

mm_semantics checks everything that must not crash; mem_fault makes one bad
access per run (one program per expected crash, no signal handler, no fork) and
must die of SIGSEGV exactly as natively: status 139 and "Segmentation fault".
"""

import pytest

from harness import assert_same, build, compare, run_native, run_umiak

FAULTS = ["null", "unmapped-write", "after-munmap", "munmap-middle", "prot-none-read",
          "readonly-write", "mprotect-none", "mprotect-readonly", "write-code", "exec-data",
          "noncanonical", "kernel-half"]


def test_mm_semantics(platform, variant):
    compare(platform, [build("mm_semantics", variant)])


def test_mm_semantics_small_guest_memory(platform, variant):
    """512 MiB touched sparsely still fits in a 256 MiB guest: memory is lazily backed."""
    compare(platform, [build("mm_semantics", variant)], options=["-m", "256M"])


@pytest.mark.parametrize("case", FAULTS)
def test_memory_fault_kills_with_sigsegv(platform, variant, case):
    native = compare(platform, [build("mem_fault", variant), case])
    assert native.status == -11, "the guest program itself is wrong: " + native.describe()


def test_stack_grows_to_six_mib(platform, variant):
    compare(platform, [build("stack_growth", variant)])


def test_stack_overflow_kills_with_sigsegv(platform, variant):
    native = compare(platform, [build("stack_growth", variant), "overflow"])
    assert native.status == -11, "the guest program itself is wrong: " + native.describe()


def test_file_mapping_past_eof_is_sigbus(platform, variant, tmp_path):
    small = tmp_path / "small"
    small.write_text("less than a page\n")
    native = compare(platform, [build("mem_fault", variant), "past-eof", small])
    assert native.status == -7, "the guest program itself is wrong: " + native.describe()


@pytest.mark.parametrize("where", ["/tmp", "/dev/shm"])
def test_shared_mappings_of_memfd_and_tmpfs_are_one_copy(platform, variant, where):
    """Two MAP_SHARED views, read/write and the mappings all see the same pages (a page cache)."""
    compare(platform, [build("mm_shared", variant), "check", where])


def test_shared_mappings_of_a_volume_file_are_one_copy(platform, variant, tmp_path):
    compare(platform, [build("mm_shared", variant), "check", tmp_path], options=["-v", f"{tmp_path}:{tmp_path}"])


def test_shared_writes_reach_a_volume_when_the_guest_crashes(platform, variant, tmp_path):
    """A guest killed by SIGSEGV after writing through MAP_SHARED leaves the data in the host
    file, as Linux (its page cache) does."""
    argv = [build("mm_shared", variant), "crash", tmp_path]
    native = run_native(argv)
    assert native.status == -11, "the guest program itself is wrong: " + native.describe()
    want = (tmp_path / "crashed").read_bytes()
    assert want.startswith(b"written before the crash\n") and len(want) == 4096
    (tmp_path / "crashed").unlink()
    umiak = run_umiak(platform, argv, options=["-v", f"{tmp_path}:{tmp_path}"])
    assert_same(native, umiak)
    assert (tmp_path / "crashed").read_bytes() == want
