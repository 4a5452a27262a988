"""The lungmask comparison refuses clearly what it cannot run."""

from __future__ import annotations

import pytest

from imaging.validation.lungmask import run_lungmask, single_series_folder


def test_missing_environment_and_series(tmp_path):
    with pytest.raises(FileNotFoundError, match="--setup-lungmask"):
        run_lungmask(tmp_path / "venv", tmp_path)
    with pytest.raises(FileNotFoundError, match="found 0"):
        single_series_folder(tmp_path)
