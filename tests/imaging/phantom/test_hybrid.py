"""Reference lungs of a healthy scan and lesions inserted into it (imaging.phantom.real_lungs, .hybrid)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from imaging.phantom.hybrid import (
    HU_CONSOLIDATION_CORE,
    HU_GGO_CORE,
    insert_lesions,
    juxta_organ_lung,
    prepare_scan,
)
from imaging.phantom.make import make_phantom
from imaging.phantom.real_lungs import body_mask, healthy_lungs
from tests.conftest import shared_path


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


@pytest.fixture(scope="module")
def healthy():
    return make_phantom(percent_opacity=0.0, rng=np.random.default_rng(5))


def test_healthy_lungs_match_the_phantom_truth(healthy):
    lungs = healthy_lungs(healthy.volume)
    truth = healthy.lungs > 0
    assert _dice(lungs, truth) > 0.9
    assert not (lungs & ~body_mask(healthy.volume.hu)).any()


def test_insert_lesions_hits_the_involvement_inside_the_lungs(healthy):
    lungs = healthy_lungs(healthy.volume)
    case = insert_lesions(healthy.volume, lungs, 20.0, rng=3)
    lesion = case.ggo | case.consolidation
    assert case.involvement_pct == pytest.approx(20.0, abs=0.5)
    assert not (lesion & ~lungs).any() and not (case.ggo & case.consolidation).any()
    assert case.consolidation.any() and case.ggo.any() and case.juxta_organ.any()
    assert not (case.juxta_organ & ~case.consolidation).any()  # against the organs: airless
    hu = case.volume.hu.astype(float)
    core = ndi.binary_erosion(case.consolidation, structure=np.ones((1, 3, 3), bool))
    assert np.median(hu[core]) == pytest.approx(HU_CONSOLIDATION_CORE, abs=40)
    assert np.median(hu[case.ggo]) == pytest.approx(HU_GGO_CORE, abs=120)
    # outside the lungs' reach the scan is untouched
    far = ~ndi.binary_dilation(lungs, structure=np.ones((3, 7, 7), bool))
    assert np.array_equal(hu[far], healthy.volume.hu[far])


def test_insert_lesions_is_reproducible_and_zero_is_a_no_op(healthy):
    lungs = healthy_lungs(healthy.volume)
    a = insert_lesions(healthy.volume, lungs, 10.0, rng=7)
    b = insert_lesions(healthy.volume, lungs, 10.0, rng=7)
    assert np.array_equal(a.volume.hu, b.volume.hu) and np.array_equal(a.ggo, b.ggo)
    measured_once = insert_lesions(healthy.volume, lungs, 10.0, rng=7, context=prepare_scan(healthy.volume, lungs))
    assert np.array_equal(a.volume.hu, measured_once.volume.hu) and np.array_equal(a.juxta_organ, measured_once.juxta_organ)
    none = insert_lesions(healthy.volume, lungs, 0.0, rng=7)
    assert none.involvement_pct == 0.0 and not (none.ggo | none.consolidation).any()


@pytest.mark.parametrize("kwargs, message", [
    ({"involvement_pct": 95.0}, "involvement_pct"),
    ({"involvement_pct": 10.0, "consolidation_fraction": 1.5}, "consolidation_fraction"),
])
def test_insert_lesions_checks_arguments(healthy, kwargs, message):
    lungs = healthy.lungs > 0
    with pytest.raises(ValueError, match=message):
        insert_lesions(healthy.volume, lungs, **kwargs)
    with pytest.raises(ValueError, match="shape"):
        insert_lesions(healthy.volume, lungs[1:], 10.0)


def test_juxta_organ_lung_lies_against_mediastinum_or_diaphragm(healthy):
    lungs = healthy.lungs > 0
    zone = juxta_organ_lung(lungs, body_mask(healthy.volume.hu), healthy.volume.spacing_mm)
    assert zone.any() and not (zone & ~lungs).any()
    # lateral chest-wall lung (outermost columns of the widest slice's lungs) is not juxta-organ
    z = int(np.argmax(lungs.sum(axis=(1, 2))))
    cols = np.flatnonzero(lungs[z].any(axis=0))
    assert not zone[z][:, cols[0]].any() and not zone[z][:, cols[-1]].any()


def test_healthy_lungs_on_a_real_chest():
    """LIDC-IDRI-0001: plausible volume, inside the body, trachea left out."""
    from imaging import load_scan

    volume = load_scan(shared_path("lidc_idri_0001"))
    lungs = healthy_lungs(volume)
    ml = lungs.sum() * volume.voxel_volume_ml
    assert 3000 < ml < 4500  # 3.67 L when reviewed (docs/validation.md)
    assert not (lungs & ~body_mask(volume.hu)).any()
    top = int(np.flatnonzero(lungs.any(axis=(1, 2)))[-1])
    centre = lungs[top + 1:, 200:260, 220:290]  # the trachea above the apices
    assert not centre.any()
