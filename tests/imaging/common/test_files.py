"""Atomic writing: a file is whole or absent, and a killed run's temporary files are removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from imaging.common.files import atomic_write, atomic_write_text, remove_stale_temps


def test_atomic_write_replaces_whole_file_and_leaves_no_temp_on_failure(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "sub" / "a.txt", "old")

    def failing(path: Path) -> None:
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, failing)
    assert target.read_text() == "old" and [p.name for p in target.parent.iterdir()] == ["a.txt"]
    (target.parent / ".tmp-abc-a.txt").write_text("left by kill -9")
    assert remove_stale_temps(tmp_path) == 1 and target.read_text() == "old"
