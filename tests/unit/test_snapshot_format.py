"""The snapshot file format (umiak.snapshot): what is written reads back the same, and a
damaged, truncated or foreign file is refused with a one-line SnapshotError. In-process."""

import pytest

from umiak.snapshot import FORMAT_VERSION, MAGIC, Snapshot, SnapshotError


def _snap() -> Snapshot:
    header = {"umiak": "test", "mm": {"vmas": []}, "task": {"regs": list(range(18))}, "extra": {"k": [1, 2]}}
    return Snapshot(header, bytes(range(256)) * 32)


def test_round_trip(tmp_path):
    path = tmp_path / "s.snap"
    _snap().save(str(path))
    back = Snapshot.load(str(path))
    assert back.header == _snap().header and back.pages == _snap().pages
    data = path.read_bytes()
    assert data[:8] == MAGIC and int.from_bytes(data[8:12], "little") == FORMAT_VERSION


@pytest.mark.parametrize("damage, words", [
    (lambda d: b"ELF" + d[3:], "not a umiak snapshot"),
    (lambda d: d[:-1], "truncated or corrupt"),
    (lambda d: d[:-5] + bytes(5), "checksum"),
    (lambda d: d[:50] + b"x" + d[51:], "checksum"),
    (lambda d: d[:8] + (FORMAT_VERSION + 1).to_bytes(4, "little") + d[12:], "snapshot format"),
    (lambda d: b"", "not a umiak snapshot"),
])
def test_damaged_files_refused(damage, words):
    data = damage(_snap().to_bytes())
    with pytest.raises(SnapshotError) as e:
        Snapshot.from_bytes(data, "f.snap")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(SnapshotError, match="No such file"):
        Snapshot.load(str(tmp_path / "none.snap"))
