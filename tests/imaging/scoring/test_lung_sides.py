"""Right / left split of a lung mask (imaging.scoring.lung_sides)."""

from __future__ import annotations

import numpy as np
import pytest

from imaging.scoring.lung_sides import LEFT, RIGHT, split_lungs


def test_split_lungs_separates_touching_lungs():
    m = np.zeros((10, 30, 50), bool)
    m[1:9, 5:25, 5:23] = True
    m[1:9, 5:25, 27:45] = True
    m[3:7, 10:14, 23:27] = True  # anterior junction: the lungs touch
    lab = split_lungs(m, spacing_mm=(5.0, 5.0, 5.0))
    assert (lab[m] > 0).all()
    assert (lab[:, :, :23][m[:, :, :23]] == RIGHT).all()
    assert (lab[:, :, 27:][m[:, :, 27:]] == LEFT).all()


def test_split_lungs_midline_keeps_two_lungs_apart():
    m = np.zeros((6, 20, 40), bool)
    m[:, 4:16, 4:16] = True
    m[:, 4:16, 24:36] = True
    both = split_lungs(m, spacing_mm=(5.0, 5.0, 5.0), midline_x=19.5)
    assert np.array_equal(both, split_lungs(m, spacing_mm=(5.0, 5.0, 5.0)))
    # both parts right of the midline (columns < midline_x): one (right) lung
    one = split_lungs(m, spacing_mm=(5.0, 5.0, 5.0), midline_x=38.0)
    assert set(np.unique(one).tolist()) == {0, RIGHT} and (one[m] == RIGHT).all()
    with pytest.raises(ValueError, match="midline_x"):
        split_lungs(m, spacing_mm=(5.0, 5.0, 5.0), midline_x=float("nan"))
