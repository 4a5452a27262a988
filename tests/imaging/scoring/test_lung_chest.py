"""The chest part of a longer scan: the patient without the table, no head air or bowel gas.

A user's PET/CT attenuation CT (4.25 mm slices, hollow carbon-fibre table, arms down)
was read as 4.9 L of lungs made of the air inside the table (about 50 mL a slice), and
another series took the head's sinuses and airway as lung.  The synthetic whole-body
volume of :mod:`tests.imaging.scoring.whole_body` reproduces it: before the fix the
classical mask found 18.2 L (13.1 L of table air, 57 mL of head air, 248 mL of bowel gas)
for 4.1 L of lungs.
"""

from __future__ import annotations

import numpy as np
import pytest

from imaging.common.volume import CTVolume
from imaging.phantom.make import make_phantom
from imaging.scoring.lung_chest import chest_part, patient_interior
from imaging.scoring.lungs import segment_lungs
from imaging.scoring.scores import score_scan
from tests.imaging.chest_toy import dice
from tests.imaging.scoring.whole_body import make_whole_body


@pytest.fixture(scope="module", params=[True, False], ids=["glottis_open", "glottis_closed"])
def whole_body(request):
    wb = make_whole_body(np.random.default_rng(0 if request.param else 3), glottis_open=request.param)
    return wb, segment_lungs(wb.volume)


def test_whole_body_lungs_without_table_head_or_bowel_air(whole_body):
    wb, lab = whole_body
    lung = lab > 0
    assert not (lung & wb.table_air).any()
    assert not (lung & wb.head_air).any()
    assert not (lung & wb.bowel_gas).any()
    assert not lung[: wb.chest_slices.start].any() and not lung[wb.chest_slices.stop:].any()
    assert dice(lung, wb.lungs > 0) >= 0.95
    assert abs(np.count_nonzero(lung) * wb.voxel_ml / wb.lung_ml - 1.0) <= 0.05
    assert set(np.unique(lab).tolist()) == {0, 1, 2}


def test_whole_body_score_is_flagged_as_lungs_in_part_of_volume(whole_body):
    wb, lab = whole_body
    score = score_scan(wb.volume, lung_labels=lab)
    assert "lungs_in_part_of_volume" in score.quality_flags
    assert "implausible_lung_volume" not in score.quality_flags
    assert "lungs_cut_off_by_fov" not in score.quality_flags


def test_chest_phantom_is_not_flagged_as_lungs_in_part_of_volume():
    p = make_phantom(shape=(40, 96, 96), spacing_mm=(7.5, 3.6, 3.6), rng=np.random.default_rng(4))
    assert "lungs_in_part_of_volume" not in score_scan(p.volume).quality_flags


def _body_on_hollow_table(touching: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HU (3 mm pixels) of a body with two lungs lying on a closed 3 mm shell round air;
    the lung and the table-air masks."""
    z, y, x = np.indices((6, 80, 100))
    body = ((y - 35) / 22.0) ** 2 + ((x - 50) / 40.0) ** 2 <= 1.0
    lungs = (((y - 35) / 14.0) ** 2 + ((x - 32) / 13.0) ** 2 <= 1.0) | (((y - 35) / 14.0) ** 2 + ((x - 68) / 13.0) ** 2 <= 1.0)
    top = 57 if touching else 60
    shell = (y >= top) & (y <= top + 10) & (x >= 10) & (x <= 89)
    table_air = (y > top) & (y < top + 10) & (x > 10) & (x < 89)
    hu = np.full(body.shape, -1000.0)
    hu[shell] = 200.0
    hu[table_air] = -1000.0
    hu[body] = 40.0
    hu[lungs] = -850.0
    return hu.astype(np.float32), lungs, table_air


@pytest.mark.parametrize("touching", [True, False])
def test_patient_interior_leaves_out_the_air_in_a_hollow_table(touching):
    hu, lungs, table_air = _body_on_hollow_table(touching)
    inside = patient_interior(hu, -400.0, (3.0, 3.0, 3.0))
    assert inside[lungs].all()
    assert not inside[table_air].any()


def test_patient_interior_keeps_everything_when_no_tissue_is_thick():
    hu = np.full((3, 20, 20), -1000.0, np.float32)
    hu[:, 5, :] = 0.0  # a 2 mm line: no patient to tell by
    assert patient_interior(hu, -400.0, (2.0, 2.0, 2.0)).all()


def _airways(head: bool) -> np.ndarray:
    """Lung candidates on a 4 x 2 x 2 mm grid: two lungs over slices 10-29, a trachea from
    slice 20 up to slice 50 (head) or 33 (a chest CT's top), a bowel pocket below, and,
    with ``head``, the nasal cavity apart from the airway at slices 52-56."""
    c = np.zeros((60, 60, 80), dtype=bool)
    c[10:30, 10:50, 5:35] = True
    c[10:30, 10:50, 45:75] = True
    top = 51 if head else 34
    c[20:top, 25:32, 37:44] = True  # trachea (49 voxels = 196 mm²)
    c[20:22, 25:32, 30:50] = True  # main bronchi
    c[2:6, 20:40, 20:60] = True  # bowel gas below the lungs
    if head:
        c[52:57, 10:20, 30:50] = True
    return c


def test_chest_part_cuts_the_air_above_the_apices_and_drops_bowel_and_head():
    out = chest_part(_airways(head=True), (4.0, 2.0, 2.0))
    zs = np.flatnonzero(out.any(axis=(1, 2)))
    assert zs[0] == 10  # the bowel pocket is gone
    assert zs[-1] == 29 + 5  # apex (slice 29) + 20 mm of trachea
    assert out[10:30].sum() == _airways(head=True)[10:30].sum()  # the lungs untouched


def test_chest_part_leaves_a_chest_ct_alone():
    c = _airways(head=False)
    c[2:6] = False  # nothing below the lungs
    assert np.array_equal(chest_part(c, (4.0, 2.0, 2.0)), c)


def test_chest_part_drops_head_air_apart_from_the_lungs_above_them():
    # the neck never narrows to the trachea alone (an air-filled oesophagus beside it up
    # to the head), so nothing is cut; the head's air, a component wholly above the
    # lungs and their airway, is still dropped
    c = _airways(head=False)
    c[2:6] = False
    c[34:50, 25:32, 37:44] = True  # trachea up to slice 49
    c[20:50, 35:40, 37:44] = True  # oesophagus beside it
    c[50:56, 10:20, 30:55] = True  # nasal cavity and sinuses (1000 mm² a slice)
    out = chest_part(c, (4.0, 2.0, 2.0))
    assert not out[50:].any()
    assert np.array_equal(out[:50], c[:50])
