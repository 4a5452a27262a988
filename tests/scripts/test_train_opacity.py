"""scripts/train_opacity.py: argument errors are usage errors (exit 2, one clear line), found
before torch is imported or any data is read.  Training itself is never a test."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_opacity.py"


def _load():
    spec = importlib.util.spec_from_file_location("train_opacity_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("args, message", [
    (["--phantom-severities", "a"], "--phantom-severities: must be comma-separated numbers"),
    (["--phantom-table-shifts", "0,,1"], "--phantom-table-shifts: must be comma-separated numbers"),
    (["--threads", "0"], "--threads: must be an integer >= 1, got '0'"),
    (["--steps", "-1"], "--steps: must be an integer >= 1"),
    (["--crop", "-5"], "--crop: must be an integer >= 0"),
    (["--synthetic-fraction", "2"], "--synthetic-fraction: must be a number in [0, 1]"),
])
def test_bad_arguments_exit_2_with_the_option_named(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _load().main([*args, "--out", str(tmp_path / "w.pt"), "--log", str(tmp_path / "log.jsonl")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_default_data_root_does_not_depend_on_the_working_folder():
    assert _load().DEFAULT_DATA_ROOT == SCRIPT.parents[1].parent / "shared" / "data" / "covid19_ct_slices"
