"""The atomic file write: the target appears whole or keeps its old content."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.core.files import atomic_write


def test_atomic_write_creates_parents_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.bin"
    assert atomic_write(target, lambda f: f.write(b"one")) == target
    atomic_write(target, lambda f: f.write(b"two"))
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["b.bin"]


def test_a_failing_writer_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "b.bin"
    target.write_bytes(b"old")

    def broken(stream) -> None:
        stream.write(b"half")
        raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.bin"]
