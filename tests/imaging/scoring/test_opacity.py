"""Density bands and vessel suppression."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imaging.scoring import constants as C
from imaging.scoring.opacity import CONSOLIDATION, GGO, density_bands, suppress_vessels


def _lung_block(shape=(6, 60, 60)):
    hu = np.full(shape, -860.0, np.float32)
    return hu, np.ones(shape, bool)


def test_ggo_and_consolidation_volumes_exact_for_blocks():
    hu, lung = _lung_block()
    hu[:, 5:25, 5:25] = -500     # GGO, 20 x 20
    hu[:, 35:55, 35:55] = -50    # consolidation, 20 x 20
    r = density_bands(hu, lung, spacing_mm=(2.0, 1.0, 1.0), vessel_radius_mm=1.0, vessel_regrow_mm=0.0)
    # an opening with a 3x3 cross removes one voxel at each square corner ...
    assert r.ggo_voxels == 6 * (400 - 4)
    assert r.consolidation_voxels == 6 * (400 - 4)
    # ... which the default regrowth restores
    r = density_bands(hu, lung, spacing_mm=(2.0, 1.0, 1.0))
    assert r.ggo_voxels == r.consolidation_voxels == 6 * 400
    assert r.lung_voxels == lung.size
    assert set(np.unique(r.labels)) == {0, GGO, CONSOLIDATION}


def test_vessels_are_suppressed_but_patches_kept():
    hu, lung = _lung_block((8, 80, 80))
    rng = np.random.default_rng(0)
    for _ in range(15):  # random thin "vessels" (2 voxels wide, 30 HU) in all directions
        y, x = rng.integers(5, 70, 2)
        hu[:, y:y + 2, x:x + 10] = 30
        hu[:, y:y + 10, x:x + 2] = 30
    hu[2:6, 50:70, 10:30] = -450
    raw = (hu >= C.HU_GGO_MIN).sum()
    r = density_bands(hu, lung, spacing_mm=(2.5, 0.8, 0.8))
    patch = np.zeros(hu.shape, bool)
    patch[2:6, 50:70, 10:30] = True
    opacity = r.labels > 0
    assert opacity[patch].mean() > 0.85
    # vessels survive only as stubs regrown from the patch: within the regrowth distance
    # of it, and a small fraction of the dense voxels
    stray = opacity & ~patch
    assert stray.sum() < 0.03 * raw
    from scipy import ndimage as ndi

    dist = np.stack([ndi.distance_transform_edt(~p, sampling=(0.8, 0.8)) for p in patch])
    assert dist[stray].max() <= C.VESSEL_REGROW_MM + 0.8


def test_healthy_lung_near_zero_and_band_percents():
    hu, lung = _lung_block()
    hu[:, :, :30] = -920
    r = density_bands(hu, lung)
    assert r.ggo_voxels == r.consolidation_voxels == 0
    assert r.aeration_percent["hyperinflated"] == pytest.approx(50.0)
    assert r.aeration_percent["well_aerated"] == pytest.approx(50.0)
    assert r.band_percent["inflated"] == pytest.approx(100.0)


def test_thresholds_overridable_and_recorded():
    hu, lung = _lung_block()
    hu[:, 10:30, 10:30] = -650
    default = density_bands(hu, lung)
    stricter = density_bands(hu, lung, ggo_min_hu=-600.0)
    assert default.ggo_voxels > 0 and stricter.ggo_voxels == 0
    assert stricter.settings["ggo_min_hu"] == -600.0
    assert default.settings["vessel_radius_mm"] == C.VESSEL_MAX_RADIUS_MM


def test_empty_lung_gives_nan_percents_not_zero():
    hu, lung = _lung_block()
    r = density_bands(hu, np.zeros_like(lung))
    assert r.lung_voxels == 0 and not r.labels.any()
    assert all(math.isnan(v) for v in r.aeration_percent.values())


def test_argument_checks():
    hu, lung = _lung_block()
    with pytest.raises(ValueError, match="lung_mask shape"):
        density_bands(hu, lung[:2])
    with pytest.raises(ValueError, match="ggo_min_hu < consolidation_min_hu"):
        density_bands(hu, lung, ggo_min_hu=-200.0)
    with pytest.raises(ValueError, match="band 'x'"):
        density_bands(hu, lung, bands={"x": (0.0, -10.0)})
    with pytest.raises(ValueError, match="radius_mm"):
        suppress_vessels(lung, spacing_mm=(1, 1, 1), radius_mm=-1)


def test_nan_inside_the_lung_is_refused_not_dropped():
    # NaN fails every band test: it counted as lung (the denominator) yet in no band
    hu, lung = _lung_block()
    hu = hu.astype(np.float32)
    hu[~lung] = np.nan  # outside the lung: harmless
    density_bands(hu, lung)
    hu[lung.nonzero()[0][0], lung.nonzero()[1][0], lung.nonzero()[2][0]] = np.nan
    with pytest.raises(ValueError, match="hu holds 1 NaN / infinite voxel"):
        density_bands(hu, lung)


def test_regrowth_restores_lesion_edges_but_not_vessel_trees():
    m = np.zeros((1, 60, 60), bool)
    m[0, 10:30, 10:30] = True        # lesion
    m[0, 20, 30:60] = True           # a vessel leaving it
    m[0, 45, :] = True               # a free vessel
    out = suppress_vessels(m, spacing_mm=(1, 1, 1), radius_mm=3, regrow_mm=3)
    assert out[0, 10:30, 10:30].all()
    assert out[0, 20, 30:33].all() and not out[0, 20, 33:].any()  # a 3 mm stub
    assert not out[0, 45].any()


def test_suppress_vessels_radius_zero_is_identity():
    m = np.zeros((2, 10, 10), bool)
    m[0, 5, :] = True
    assert (suppress_vessels(m, spacing_mm=(1, 1, 1), radius_mm=0) == m).all()
    assert not suppress_vessels(m, spacing_mm=(1, 1, 1), radius_mm=1).any()
