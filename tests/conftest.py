"""Shared fixtures: the real data folder beside the checkout, skipped cleanly when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: ../shared/data beside the checkout (override with CHESTCT_SHARED_DATA).
SHARED_DATA = Path(
    os.environ.get("CHESTCT_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (it is present in CI, beside the checkout)")
    return path


@pytest.fixture
def shared_data() -> Path:
    """The ../shared/data folder; skips the test when absent."""
    return shared_path()
