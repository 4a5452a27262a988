"""End to end on the bundled sample trial: real reading, scoring, comparison and report.

Two patients of ``sample_data/`` (one per arm: P05, whose day-0 scan is the worst-read
scan of the whole demo, and P06, the mildest course; baseline and day 7: four scans) keep
it fast; the full trial is what ``chestct demo`` runs.  The demo runs from a scratch
folder without ``-o``, as a newcomer runs it outside the repository, so it writes
``./out/demo`` there and must say so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from imaging.cli.demo import SAMPLE_DATA

#: Percent-opacity tolerance against the phantom truth, percentage points (scores issue: ±2).
TOLERANCE_PCT_POINTS = 2.0
#: Bound on the severe under-read, percentage points.  Over the 36 scans of ``chestct demo``
#: the largest error is 12.06 points, at P05 day 0 (truth 43.1 %, read 31.1 %): the scan
#: bounded here; README "Known limits" quotes the same number.
SEVERE_TOLERANCE_PCT_POINTS = 12.5
PATIENTS = ("P05", "P06")  # placebo, severe (the demo's worst-read scan) / MSC, mild
VISIT_DAYS = (0.0, 7.0)  # baseline and one follow-up: four scans


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    if not (SAMPLE_DATA / "studies").is_dir():
        pytest.skip(f"sample trial absent: {SAMPLE_DATA} (python scripts/make_sample_data.py)")
    from imaging.cli.main import main

    base = tmp_path_factory.mktemp("demo")
    data = base / "data"
    truth = pd.read_csv(SAMPLE_DATA / "truth.csv", dtype=str)
    truth = truth[truth["patient_id"].isin(PATIENTS) & truth["visit_day"].astype(float).isin(VISIT_DAYS)]
    for row in truth.itertuples():
        shutil.copytree(SAMPLE_DATA / "studies" / row.patient_id / row.study_uid,
                        data / "studies" / row.patient_id / row.study_uid)
    truth.to_csv(data / "truth.csv", index=False)
    arms = pd.read_csv(SAMPLE_DATA / "arms.csv", dtype=str)
    arms[arms["patient_id"].isin(PATIENTS)].to_csv(data / "arms.csv", index=False)
    import contextlib
    import io
    import os

    buffer = io.StringIO()
    here = Path.cwd()
    os.chdir(base)  # no -o: the default ./out/demo of the current folder
    try:
        with contextlib.redirect_stdout(buffer):
            code = main(["demo", "--data", str(data), "-j", "1", "--no-progress"])
    finally:
        os.chdir(here)
    return base / "out" / "demo", code, buffer.getvalue()


def test_demo_scores_compares_and_ends_with_the_report(demo_run: tuple[Path, int, str]) -> None:
    out, code, printed = demo_run
    assert code == 0, printed
    lines = printed.strip().splitlines()
    assert lines[0].endswith(f" -> {out.resolve()}"), lines[0]  # says where it writes, as an absolute path
    last = lines[-1]
    assert last.startswith("report: ") and (out.parents[1] / last[len("report: "):]).is_file()  # under the folder run in
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 4 and scores["error"].isna().all()
    assert len(list(out.glob("scans/*/qc.png"))) == 4 and len(list(out.glob("scans/*/lungs.nii.gz"))) == 4


def test_sample_trial_scores_match_the_truth_table(demo_run: tuple[Path, int, str]) -> None:
    """The default scorer against the phantom truth.

    The scores issue's ±2-point tolerance holds for the mild patient (P06, truth 4-6 %).
    The severe patient (P05, truth 43-45 %) is a known, documented limitation of the
    classical lung mask, which misses consolidation lying against the heart and the
    diaphragm (README "Known limits", docs/scoring.md; ``python scripts/validate.py
    trial``): it is under-read (by 12.06 and 11.11 points at days 0 and 7, the two
    worst scans of the demo), but must stay the more opaque patient and within
    :data:`SEVERE_TOLERANCE_PCT_POINTS`.
    """
    out, _, _ = demo_run
    scores = pd.read_csv(out / "scores.csv", dtype={"series_uid": str})
    truth = pd.read_csv(out.parents[1] / "data" / "truth.csv", dtype={"series_uid": str})
    merged = scores.merge(truth[["series_uid", "percent_opacity"]], on="series_uid", suffixes=("", "_truth"))
    assert len(merged) == 4  # the chosen series are the ones the truth describes
    error = merged["percent_opacity"] - merged["percent_opacity_truth"]
    shown = merged[["patient_id", "study_date", "percent_opacity", "percent_opacity_truth"]].to_string()
    mild = merged["percent_opacity_truth"] <= 10
    assert mild.sum() == 2 and (error[mild].abs() <= TOLERANCE_PCT_POINTS).all(), shown
    assert (error[~mild].abs() <= SEVERE_TOLERANCE_PCT_POINTS).all(), shown
    assert merged.loc[~mild, "percent_opacity"].min() > 3 * merged.loc[mild, "percent_opacity"].max(), shown



def test_readme_limits_quote_the_demos_largest_error(demo_run: tuple[Path, int, str]) -> None:
    """README "Known limits" gives the demo's largest error, at the scan it names.

    Scoring is per scan, so the largest error of these four scans is the full demo's
    when they hold its worst-read scan (P05 day 0, checked over all 36 scans).
    """
    import re

    _, _, printed = demo_run
    found = re.search(r"largest (\d+\.\d+) \((P\d+ day \d+)\)", printed)
    assert found, printed
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    limits = readme.split("## Known limits", 1)[1].split("\n## ", 1)[0]
    largest, scan = float(found.group(1)), found.group(2)
    assert scan == "P05 day 0" and f"{largest:.1f} points" in limits and scan in limits, (largest, scan)

def test_truth_agreement_is_a_labelled_check_naming_the_worst_scan(tmp_path: Path) -> None:
    from imaging.cli.demo import truth_agreement

    scores = pd.DataFrame({"series_uid": ["1.1", "1.2", "2.1"], "patient_id": ["P01", "P01", "P03"],
                           "percent_opacity": [10.0, 12.0, 30.0]})
    truth = pd.DataFrame({"patient_id": ["P01", "P01", "P03"], "study_date": ["2020-02-17", "2020-02-24", "2020-02-20"],
                          "visit_day": [0, 7, 7], "series_uid": ["1.1", "1.2", "2.1"],
                          "percent_opacity": [11.0, 12.5, 20.0]})
    truth.to_csv(tmp_path / "truth.csv", index=False)
    line = truth_agreement(scores, tmp_path / "truth.csv")
    assert line.startswith("check against the phantom truth (")
    assert "truth.csv), 3 scans: mean |error| 3.83 points, largest 10.00 (P03 day 7)" in line
    assert line.endswith("see 'Known limits' in README.md")
