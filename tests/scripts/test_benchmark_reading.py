"""scripts/benchmark_reading.py runs end to end on a tiny synthetic series."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.imaging.dicom_synth import write_series

REPO = Path(__file__).resolve().parents[2]


def _load_script():
    spec = importlib.util.spec_from_file_location("benchmark_reading", REPO / "scripts" / "benchmark_reading.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_benchmark_prints_both_readers_and_the_scan(tmp_path, capsys):
    write_series(tmp_path / "series", n=4)
    bench = _load_script()
    assert bench.main(["--series", str(tmp_path / "series"), "--repeat", "1", "--tree-files", "60"]) == 0
    out = capsys.readouterr().out
    assert "| load_scan |" in out and "| sitk |" in out and "(4, 16, 16)" in out
    assert "ratio load_scan / SimpleITK" in out
    assert "find_series over 60 files (50 studies)" in out


def test_benchmark_missing_data_exits_2(tmp_path, capsys):
    bench = _load_script()
    assert bench.main(["--series", str(tmp_path / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_relative_series_and_a_study_folder_are_read(tmp_path, capsys, monkeypatch):
    """A relative --series was handed to child processes that run in the repository folder
    (FileNotFoundError there); a study folder holding a series folder raised IsADirectoryError."""
    write_series(tmp_path / "study" / "series", n=4)
    monkeypatch.chdir(tmp_path)
    assert _load_script().main(["--series", "study", "--repeat", "1", "--tree-files", "0"]) == 0
    assert "(4, 16, 16)" in capsys.readouterr().out


def test_not_a_series_is_a_clear_error(tmp_path, capsys):
    bench = _load_script()
    (tmp_path / "notes.txt").write_text("x")
    assert bench.main(["--series", str(tmp_path / "notes.txt"), "--repeat", "1", "--tree-files", "0"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert bench.main(["--series", str(tmp_path), "--repeat", "1", "--tree-files", "0"]) == 1
    assert "load_scan could not read" in capsys.readouterr().err
