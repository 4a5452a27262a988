"""Lung masks against a reference, on the real scans of ../shared/data (skipped when absent)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from imaging.validation.lungs import (
    CIP_LUNG_THIRDS,
    check_not_a_chest,
    evaluate_cip_ct64,
    first_dicom_series,
    zone_agreement,
)
from tests.conftest import shared_path


def test_cip_ct64_dice_and_lung_thirds():
    rows = evaluate_cip_ct64(shared_path("cip_ct64"), ["classical"])
    assert [r["method"] for r in rows] == ["classical"]
    row = rows[0]
    assert list(row) == ["method", "dice", "volume_ml", "ref_volume_ml", "thirds_agree_height",
                         "thirds_agree_volume", "seconds"]
    assert row["dice"] >= 0.95
    assert 0.8 < row["thirds_agree_height"] <= 1.0 and 0.9 < row["thirds_agree_volume"] <= 1.0
    assert abs(row["volume_ml"] - row["ref_volume_ml"]) < 0.1 * row["ref_volume_ml"]


def test_zone_agreement_is_one_against_our_own_thirds():
    from imaging.io.load import load_scan
    from imaging.scoring.lung_zones import ZONE_CODES, lung_zones
    from imaging.scoring.lungs import segment_lungs

    volume = load_scan(shared_path("cip_ct64", "ct-64.nrrd"))
    labels = segment_lungs(volume, method="classical_basic")
    zones = lung_zones(labels, volume, thirds="volume")
    # our own thirds as a reference: code of <lung>_<third> = its ventral zone
    regions = np.zeros(zones.shape, np.int64)
    for code, name in CIP_LUNG_THIRDS.items():
        for half in ("ventral", "dorsal"):
            regions[zones == ZONE_CODES[f"{name}_{half}"]] = code
    assert zone_agreement(labels, volume, regions, CIP_LUNG_THIRDS, thirds="volume") == 1.0


def test_no_dicom_series_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no DICOM series under"):
        first_dicom_series(tmp_path)


def test_an_abdomen_is_flagged_not_scored():
    row = check_not_a_chest(shared_path("dicom_variants", "jpeg2000_abdomen"))[0]
    assert "not_a_chest" in row["flags"].split(";") and math.isnan(row["percent_opacity"])
