"""Label-free checks of lung masks on real scans (imaging.validation.real_scans)."""

from __future__ import annotations

import numpy as np
import pytest

from imaging.common.volume import CTVolume
from imaging.phantom.real_lungs import body_mask
from imaging.validation.real_scans import gut_gas, mask_invariants


def _chest_with_stomach() -> tuple[CTVolume, np.ndarray, np.ndarray]:
    """Body of soft tissue, two tall lungs, a stomach bubble under the left one joined to it
    by a one-voxel partial-volume bridge through the diaphragm."""
    hu = np.full((60, 64, 64), -1000, np.int16)
    hu[:, 8:56, 6:58] = 40  # body
    lungs = np.zeros(hu.shape, bool)
    lungs[20:58, 14:50, 10:30] = lungs[20:58, 14:50, 34:54] = True
    hu[lungs] = -850
    stomach = np.zeros(hu.shape, bool)
    stomach[6:18, 20:44, 36:52] = True
    hu[stomach] = -1000
    hu[18:20, 30, 44] = -700  # the bridge
    return CTVolume(hu, (2.0, 2.0, 2.0)), lungs, stomach


def test_gut_gas_is_found_below_the_lungs_despite_a_thin_bridge():
    volume, lungs, stomach = _chest_with_stomach()
    gut = gut_gas(volume.hu, body_mask(volume.hu), volume.voxel_volume_ml)
    assert (gut & stomach).sum() == stomach.sum()
    assert not (gut & lungs).any()


def test_invariants_count_gut_gas_and_outside_air_in_a_mask():
    volume, lungs, stomach = _chest_with_stomach()
    clean = mask_invariants(volume, lungs)
    assert clean["outside_body_ml"] == 0 and clean["gut_gas_in_lungs_ml"] == 0
    assert clean["lung_ml"] == pytest.approx(lungs.sum() * 0.008)
    bad = lungs | stomach
    bad[:, :4, :] = True  # air in front of the patient
    checks = mask_invariants(volume, bad)
    assert checks["gut_gas_in_lungs_ml"] == pytest.approx(stomach.sum() * 0.008)
    assert checks["outside_body_ml"] == pytest.approx(60 * 4 * 64 * 0.008)
