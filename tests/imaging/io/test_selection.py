"""Selection rules: SECONDARY archive exports are chosen when no PRIMARY series exists; reformats never."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.uid import generate_uid

from imaging.io.load import load_scan
from imaging.io.selection import DEFAULT_EXCLUDED_IMAGE_TYPES, SelectionRules, is_secondary
from imaging.io.series import find_series
from tests.conftest import shared_path
from tests.imaging.dicom_synth import CORONAL, write_series

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

ARCHIVE_EXPORT = ("ORIGINAL", "SECONDARY", "AXIAL")


def _study(tmp_path, specs):
    """Write several series of one study, each in its own sub-folder; returns {name: series uid}."""
    study = generate_uid()
    uids = {}
    for number, (name, kwargs) in enumerate(specs.items(), start=1):
        uids[name] = write_series(tmp_path / "study" / name, study_uid=study, series_number=number, **kwargs)[3]
    return uids


def test_secondary_only_study_is_chosen_and_the_reason_says_why(tmp_path):
    uids = _study(tmp_path, {
        "export": dict(n=20, image_type=ARCHIVE_EXPORT),
        "scout": dict(n=1, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"), iop=CORONAL),
    })
    catalog = find_series(tmp_path)
    (study,) = catalog.studies
    assert study.chosen is not None and study.chosen.series_uid == uids["export"]
    reason = study.reasons[uids["export"]]
    assert reason.startswith("chosen: CT axial original, 20 slices")
    assert "ImageType ORIGINAL\\SECONDARY\\AXIAL: SECONDARY but not a reformat" in reason
    assert "no eligible PRIMARY series" in reason
    assert "localizer/scout" in study.reasons[uids["scout"]]
    frame = catalog.to_frame()  # what `chestct inspect` and the manifest show
    assert frame.loc[frame["chosen"], "reason"].item() == reason
    v = load_scan(tmp_path)
    assert v.shape == (20, 16, 16) and v.info.image_type == ARCHIVE_EXPORT


def test_primary_is_preferred_over_a_thinner_secondary(tmp_path):
    uids = _study(tmp_path, {
        "export": dict(n=40, spacing=1.0, thickness=1.0, image_type=ARCHIVE_EXPORT),
        "primary": dict(n=20, spacing=2.5, thickness=2.5),
    })
    (study,) = find_series(tmp_path).studies
    assert study.chosen.series_uid == uids["primary"]
    assert "SECONDARY" not in study.reasons[uids["primary"]]
    assert study.reasons[uids["export"]] == (
        "passed over: SECONDARY (ImageType ORIGINAL\\SECONDARY\\AXIAL), and this study has an eligible "
        "PRIMARY series, which is preferred"
    )


def test_secondary_is_chosen_when_the_primary_series_is_not_eligible(tmp_path):
    uids = _study(tmp_path, {
        "export": dict(n=20, image_type=ARCHIVE_EXPORT),
        "short_primary": dict(n=5),
    })
    (study,) = find_series(tmp_path).studies
    assert study.chosen.series_uid == uids["export"]
    assert "fewer than min_slices=20" in study.reasons[uids["short_primary"]]


@pytest.mark.parametrize("image_type", [
    ("DERIVED", "SECONDARY", "REFORMATTED"),
    ("DERIVED", "SECONDARY", "MPR"),
    ("ORIGINAL", "SECONDARY", "CSA MPR"),
    ("ORIGINAL", "SECONDARY", "CSA RESAMPLED"),
    ("DERIVED", "SECONDARY", "MIP"),
    ("DERIVED", "SECONDARY", "VOLUME RENDERING"),
    ("DERIVED", "SECONDARY", "PROJECTION IMAGE"),
])
def test_reformats_tagged_secondary_are_still_passed_over(tmp_path, image_type):
    uids = _study(tmp_path, {"reformat": dict(n=20, image_type=image_type)})
    (study,) = find_series(tmp_path).studies
    assert study.chosen is None
    shown = "\\".join(image_type)
    assert study.reasons[uids["reformat"]] == f"passed over: derived/reformatted (ImageType {shown})"


@pytest.mark.parametrize("image_type, kind", [
    (("ORIGINAL", "SECONDARY", "LOCALIZER"), "localizer/scout"),
    (("DERIVED", "SECONDARY", "DOSE INFO"), "derived/reformatted"),
    (("DERIVED", "SECONDARY", "SCREEN SAVE"), "derived/reformatted"),
    (("DERIVED", "SECONDARY", "AXIAL"), "not an original acquisition"),
])
def test_localizers_dose_reports_and_screen_saves_stay_out(tmp_path, image_type, kind):
    uids = _study(tmp_path, {"other": dict(n=20, image_type=image_type)})
    (study,) = find_series(tmp_path).studies
    assert study.chosen is None and kind in study.reasons[uids["other"]]


def test_secondary_can_still_be_excluded_or_ranked_like_primary(tmp_path):
    uids = _study(tmp_path, {
        "export": dict(n=40, spacing=1.0, thickness=1.0, image_type=ARCHIVE_EXPORT),
        "primary": dict(n=20, spacing=2.5, thickness=2.5),
    })
    never = SelectionRules(excluded_image_types=DEFAULT_EXCLUDED_IMAGE_TYPES + ("SECONDARY",))
    (study,) = find_series(tmp_path / "study" / "export", rules=never).studies
    assert study.chosen is None and "derived/reformatted" in study.reasons[uids["export"]]
    (study,) = find_series(tmp_path, rules=SelectionRules(prefer_primary=False)).studies
    assert study.chosen.series_uid == uids["export"]  # thinner wins when SECONDARY is not ranked lower
    assert "SECONDARY but not a reformat" in study.reasons[uids["export"]]


def test_is_secondary_reads_image_type_value_two():
    class Series:
        def __init__(self, image_type):
            self.image_type = image_type

    assert is_secondary(Series(ARCHIVE_EXPORT))
    assert not is_secondary(Series(("ORIGINAL", "PRIMARY", "AXIAL")))
    assert not is_secondary(Series(("SECONDARY",)))  # value 1, not value 2
    assert not is_secondary(Series(()))


def test_lidc_0002_secondary_archive_export_is_chosen_and_read():
    root = shared_path("lidc_idri_0002")
    catalog = find_series(root)
    (study,) = catalog.studies
    (series,) = study.series
    assert series.image_type == ARCHIVE_EXPORT
    assert study.chosen is series
    assert "SECONDARY but not a reformat" in study.reasons[series.series_uid]
    v = load_scan(root)
    assert v.shape == (261, 512, 512) and v.info.series_uid == series.series_uid
    assert v.info.transfer_syntax == "1.2.840.10008.1.2.4.80"  # JPEG-LS lossless
    assert v.spacing_mm == pytest.approx((1.25, 0.681641, 0.681641), abs=1e-5)
    for columns in (slice(60, 140), slice(380, 460)):  # mid-chest, right and left lung fields
        assert -950 < float(np.median(v.hu[130, 200:300, columns])) < -700
