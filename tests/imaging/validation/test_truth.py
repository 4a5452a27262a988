"""A trial folder with truth.csv scored with method pairs against its truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imaging.validation.truth import read_truth, score_against_truth, summarise_against_truth


def _trial_folder(root):
    from imaging.io.writers import write_dicom_series
    from imaging.phantom.make import make_phantom

    rows = []
    for day, pct in ((0, 0.0), (7, 20.0)):
        p = make_phantom(shape=(24, 96, 96), spacing_mm=(10.0, 3.5, 3.5), percent_opacity=pct,
                         rng=np.random.default_rng(day))
        study, series = f"1.2.3.{day}", f"1.2.3.{day}.1"
        write_dicom_series(p.volume, root / "studies" / "P01" / study / series, patient_id="P01",
                           study_uid=study, series_uid=series)
        rows.append({"patient_id": "P01", "visit_day": day, "study_uid": study, "series_uid": series,
                     "percent_opacity": float(p.percent_opacity)})
    pd.DataFrame(rows).to_csv(root / "truth.csv", index=False)


def test_each_scan_scored_with_each_pair(tmp_path):
    _trial_folder(tmp_path)
    assert read_truth(tmp_path)["study_uid"].tolist() == ["1.2.3.0", "1.2.3.7"]  # text, not numbers
    table = score_against_truth(tmp_path, ["classical", "classical_basic"], ["density"])
    assert list(table.columns) == ["lungs", "opacity", "patient_id", "visit_day", "truth", "measured"]
    assert len(table) == 4 and table["visit_day"].tolist() == [0, 0, 7, 7]
    assert (table["measured"] - table["truth"]).abs().max() < 15.0
    pairs = summarise_against_truth(table)
    assert [(p["lungs"], p["opacity"], p["scans"]) for p in pairs] == [("classical", "density", 2),
                                                                       ("classical_basic", "density", 2)]


def test_missing_truth_table(tmp_path):
    with pytest.raises(FileNotFoundError, match="truth.csv not found"):
        read_truth(tmp_path)
