"""Every patient's course on one page, and the QC files named for people, from a batch run.

Tiny synthetic DICOM trees scored with the threshold scorer of
:mod:`tests.imaging.batch_helpers` (seconds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imaging.io.selection import SelectionRules
from imaging.pipeline.batch import score_studies
from imaging.pipeline.course_panels import PANEL_NAMES, CoursePanels
from imaging.pipeline.course_pictures import (CELL_PX, CourseColumn, Visit, course_columns, course_width,
                                              render_course)
from imaging.pipeline.qc import THUMBNAIL_WIDTH_PX
from tests.imaging.batch_helpers import PATIENT_NAME, chest_hu, toy_scorer, write_series

RULES = SelectionRules(min_slices=4)


def _tree(root: Path) -> Path:
    """Patient PID-A: three visits (out of date order on disk) and a fourth that is not a chest;
    patient PID-B: one visit."""
    for key, date, fraction, number in (("v2", "20200321", 0.6, 4), ("v0", "20200301", 0.0, 2),
                                        ("v1", "20200311", 0.3, 3)):
        write_series(root / "PAT-A" / key, patient_id="PID-A", study_key=key, series_key="ax", study_date=date,
                     hu=chest_hu((10, 32, 32), opacity_fraction=fraction), series_number=number)
    write_series(root / "PAT-A" / "abdomen", patient_id="PID-A", study_key="abd", series_key="ax",
                 study_date="20200401", hu=np.full((6, 24, 24), 40, np.int16), series_number=5)
    write_series(root / "PAT-B" / "v0", patient_id="PID-B", study_key="v0", series_key="ax", study_date="20200305",
                 hu=chest_hu())
    return root


def _panels(value: int = 100) -> CoursePanels:
    return CoursePanels(images={n: np.full((20, 30, 3), value, np.uint8) for n in PANEL_NAMES},
                        pixel_mm={n: np.array([2.0, 1.0]) for n in PANEL_NAMES}, levels={n: 0 for n in PANEL_NAMES})


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def test_columns_are_visits_in_date_order_titled_with_day_po_and_flags():
    visits = [Visit("2020-03-21", "c", 30.0, panels=Path("c.npz")),
              Visit("2020-03-01", "a", 1.25, ("thick_slices", "contrast"), panels=Path("a.npz")),
              Visit(None, "d", error="NotAChestError: no lungs in series d"),
              Visit("2020-03-11", "b", 12.0, panels=Path("broken.npz"))]

    def read(path: Path) -> CoursePanels:
        if path.name == "broken.npz":
            raise OSError("unreadable")
        return _panels()

    columns = course_columns(visits, read=read)
    assert [c.title[:3] for c in columns] == [("day 0", "2020-03-01", "PO 1.2 %"), ("day 10", "2020-03-11", "PO 12.0 %"),
                                              ("day 20", "2020-03-21", "PO 30.0 %"),
                                              ("day ?", "no date", "failed: NotAChestError")]
    assert columns[0].title[3:] == ("thick_slices, contrast",)
    assert [c.panels is not None for c in columns] == [True, False, True, False]  # unreadable panels: a grey cell
    assert [c.note for c in columns[1:4:2]] == ["no picture", "failed"]


def test_course_picture_grows_by_one_cell_per_visit(tmp_path):
    one = render_course(tmp_path / "one.png", [CourseColumn(("day 0",), _panels())], title="P1")
    three = render_course(tmp_path / "three.png", [CourseColumn(("day 0",), _panels()),
                                                   CourseColumn(("day 3",), _panels(200)),
                                                   CourseColumn(("day 9", "failed: X"), None, "failed")], title="P1")
    assert _size(one)[0] == course_width(1) and _size(three)[0] == course_width(3)
    assert course_width(3) - course_width(1) == 2 * (CELL_PX + 6)
    assert _size(one)[1] >= len(PANEL_NAMES) * CELL_PX


def test_run_writes_a_course_per_patient_and_named_qc_files(tmp_path):
    out = tmp_path / "out"
    table = score_studies(_tree(tmp_path / "in"), out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False)
    courses = sorted(p.name for p in (out / "qc" / "courses").iterdir())
    assert courses == ["PID-A.png", "PID-B.png"]
    # PID-A: three scored visits and the failed one as a column; PID-B: one visit
    assert _size(out / "qc" / "courses" / "PID-A.png")[0] == course_width(4)
    assert _size(out / "qc" / "courses" / "PID-B.png")[0] == course_width(1)

    scored = table[table["error"].isna()]
    assert len(scored) == 4
    expected = {"PID-A_20200301_2", "PID-A_20200311_3", "PID-A_20200321_4", "PID-B_20200305_1"}
    assert {p.stem for p in (out / "qc" / "scans").iterdir()} == expected
    assert {p.stem for p in (out / "qc" / "thumbs").iterdir()} == expected
    for row in scored.itertuples():
        assert (out / row.qc_picture).read_bytes() == (out / "scans" / row.series_uid / "qc.png").read_bytes()
        assert _size(out / row.qc_thumbnail)[0] == THUMBNAIL_WIDTH_PX
        assert (out / "scans" / row.series_uid / "course_panels.npz").is_file()
    assert list(table["qc_course"]) == ["qc/courses/PID-A.png"] * 4 + ["qc/courses/PID-B.png"]
    failed = table[table["error"].notna()].iloc[0]
    assert pd.isna(failed["qc_picture"]) and pd.isna(failed["qc_thumbnail"])
    assert list(table.columns[-3:]) == ["qc_picture", "qc_thumbnail", "qc_course"]
    pd.testing.assert_frame_equal(table.reset_index(drop=True), pd.read_csv(out / "scores.csv"), check_dtype=False)


def test_a_resumed_run_writes_the_courses_from_the_stored_panels(tmp_path, monkeypatch):
    root, out = _tree(tmp_path / "in"), tmp_path / "out"
    score_studies(root, out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False)
    first = (out / "qc" / "courses" / "PID-A.png").read_bytes()
    for course in (out / "qc" / "courses").iterdir():
        course.unlink()
    import imaging.io.load

    def no_reading(*args, **kwargs):
        raise AssertionError("a resumed run read a volume")

    monkeypatch.setattr(imaging.io.load, "load_scan", no_reading)
    again = score_studies(root, out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False)
    assert again.attrs["summary"]["n_resumed"] == 5 and again.attrs["summary"]["n_scored"] == 0
    assert (out / "qc" / "courses" / "PID-A.png").read_bytes() == first
    assert (out / "qc" / "courses" / "PID-B.png").is_file()


def test_a_run_without_qc_writes_no_qc_pictures_and_no_qc_columns(tmp_path):
    out = tmp_path / "out"
    table = score_studies(_tree(tmp_path / "in"), out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False,
                          qc=False)
    assert not [p for p in out.rglob("*.png")] and not list(out.rglob("course_panels.npz"))
    assert not any(c.startswith("qc_") for c in table.columns)


def test_a_lost_qc_file_makes_the_scan_be_scored_again(tmp_path):
    root, out = _tree(tmp_path / "in"), tmp_path / "out"
    score_studies(root, out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False)
    (out / "qc" / "thumbs" / "PID-B_20200305_1.png").unlink()
    again = score_studies(root, out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False)
    assert again.attrs["summary"]["n_scored"] == 1 and (out / "qc" / "thumbs" / "PID-B_20200305_1.png").is_file()


def test_pseudonymized_run_names_every_file_by_pseudonym(tmp_path):
    key_file = tmp_path / "secret.key"
    key_file.write_text("b" * 64 + "\n")
    out = tmp_path / "out"
    table = score_studies(_tree(tmp_path / "in"), out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False,
                          pseudonym_key=key_file)
    pseudonyms = set(table["patient_id"])
    assert len(pseudonyms) == 2 and all(p.startswith("anon-") for p in pseudonyms)
    assert {p.stem for p in (out / "qc" / "courses").iterdir()} == pseudonyms
    assert {p.stem.split("_")[0] for p in (out / "qc" / "scans").iterdir()} == pseudonyms
    paths = [str(p.relative_to(out)) for p in out.rglob("*")]
    for secret in ("PID-A", "PID-B", "PAT-A", PATIENT_NAME):
        assert not [p for p in paths if secret in p], secret
    assert set(table["qc_course"]) == {f"qc/courses/{p}.png" for p in pseudonyms}


def test_two_studies_with_one_label_get_two_files(tmp_path):
    root = tmp_path / "in"
    for key in ("morning", "evening"):  # one patient, one day, series number 1 twice
        write_series(root / key, patient_id="PID-A", study_key=key, series_key="ax", study_date="20200301",
                     hu=chest_hu())
    out = tmp_path / "out"
    table = score_studies(root, out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False)
    assert table["qc_picture"].nunique() == 2
    assert all(p.startswith("qc/scans/PID-A_20200301_1-") for p in table["qc_picture"])
    assert _size(out / "qc" / "courses" / "PID-A.png")[0] == course_width(2)


@pytest.mark.parametrize("patients", [("P 1", "P/1")])
def test_patients_whose_ids_give_one_label_get_two_courses(tmp_path, patients):
    root = tmp_path / "in"
    for i, patient in enumerate(patients):
        write_series(root / f"p{i}", patient_id=patient, study_key="v0", series_key="ax", study_date="20200301",
                     hu=chest_hu())
    out = tmp_path / "out"
    table = score_studies(root, out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False)
    assert sorted(table["qc_course"]) == ["qc/courses/P-1-2.png", "qc/courses/P-1.png"]
    assert len(list((out / "qc" / "courses").iterdir())) == 2
