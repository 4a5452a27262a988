"""Zone severity and visual scores (imaging.scoring.scan_score)."""

from __future__ import annotations

import pytest

from imaging.scoring.scan_score import severity_score, visual_score


@pytest.mark.parametrize("pct,sev,vis", [(0, 0, 0), (0.5, 0, 1), (1, 1, 1), (5, 1, 1), (5.5, 1, 2), (25, 1, 2),
                                         (30, 2, 3), (50, 2, 3), (60, 3, 4), (76, 4, 5), (100, 4, 5)])
def test_score_bands(pct, sev, vis):
    assert severity_score(pct) == sev and visual_score(pct) == vis


def test_score_bands_nan_and_range():
    assert severity_score(float("nan")) is None
    with pytest.raises(ValueError, match="percent must be within 0-100"):
        visual_score(120)
