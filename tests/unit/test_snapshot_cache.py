"""The prelinked cache's housekeeping (umiak.snapshot.cache), in-process: the key changes
with umiak's own files (another build never uses this one's snapshots), and the cache is
kept within its bounds, least recently used first."""

import os

from umiak.snapshot import cache


def test_build_id_follows_the_source(tmp_path):
    (tmp_path / "pkg").mkdir()
    mod = tmp_path / "pkg" / "mod.py"
    mod.write_text("x = 1\n")
    first = cache.build_id(str(tmp_path))
    assert cache.build_id(str(tmp_path)) == first
    os.utime(mod, ns=(1, 1))
    assert cache.build_id(str(tmp_path)) != first
    touched = cache.build_id(str(tmp_path))
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "mod.pyc").write_bytes(b"")
    assert cache.build_id(str(tmp_path)) == touched   # bytecode is not the source


def test_evict_keeps_the_most_recent(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    monkeypatch.setattr(cache, "MAX_MARKS", 2)
    for i in range(6):
        for ext in (".snap", ".snap.hits", ".snap.no"):
            p = tmp_path / f"e{i}{ext}"
            p.write_bytes(b"x")
            os.utime(p, ns=(i * 10**9, i * 10**9))
    cache._evict(str(tmp_path))
    left = sorted(os.listdir(tmp_path))
    assert left == ["e3.snap", "e3.snap.hits", "e4.snap", "e4.snap.hits", "e4.snap.no",
                    "e5.snap", "e5.snap.hits", "e5.snap.no"]
