"""Lung zones: thirds and ventral / dorsal halves (imaging.scoring.lung_zones)."""

from __future__ import annotations

import numpy as np

from imaging.common.volume import CTVolume
from imaging.scoring.lung_sides import LEFT, RIGHT
from imaging.scoring.lung_zones import ZONE_CODES, ZONE_NAMES, lung_zones


def test_zones_thirds_and_halves():
    lab = np.zeros((9, 10, 12), np.uint8)
    lab[:, 2:8, 1:5] = RIGHT
    lab[3:9, 2:8, 7:11] = LEFT
    v = CTVolume(np.zeros(lab.shape, np.int16), (2.0, 1.0, 1.0))
    z = lung_zones(lab, v)
    assert ((z > 0) == (lab > 0)).all()
    names = {ZONE_NAMES[c] for c in np.unique(z) if c}
    assert len(names) == 12
    # canonical slice 0 is the most inferior: right lung thirds by its 9 slices
    assert ZONE_NAMES[int(z[0, 2, 1])] == "right_lower_ventral"
    assert ZONE_NAMES[int(z[4, 7, 1])] == "right_middle_dorsal"
    assert ZONE_NAMES[int(z[8, 7, 1])] == "right_upper_dorsal"
    # the left lung has its own thirds (slices 3-8)
    assert ZONE_NAMES[int(z[3, 2, 8])] == "left_lower_ventral"
    assert ZONE_NAMES[int(z[8, 2, 8])] == "left_upper_ventral"
    # equal-volume thirds share cut planes between the lungs
    zv = lung_zones(lab, v, thirds="volume")
    counts = [np.isin(zv, [ZONE_CODES[f"{l}_{t}_{h}"] for l in ("right", "left") for h in ("ventral", "dorsal")]).sum()
              for t in ("upper", "middle", "lower")]
    assert max(counts) - min(counts) <= 2 * 24 * 2
