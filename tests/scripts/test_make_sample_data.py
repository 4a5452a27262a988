"""The committed sample trial: reproducible truth, trial shape, PACS-like layout, size."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data"


def _load_script():
    spec = importlib.util.spec_from_file_location("make_sample_data", REPO / "scripts" / "make_sample_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_sample_data"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


msd = _load_script()


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def truth() -> list[dict[str, str]]:
    if not (SAMPLE / "truth.csv").exists():
        pytest.fail("sample_data/truth.csv is missing: run python scripts/make_sample_data.py")
    return _rows(SAMPLE / "truth.csv")


def test_committed_truth_matches_a_fresh_generation(truth) -> None:
    plans = msd.plan_trial()
    # the design (arms, targets, dates, UIDs) of every patient, cheaply
    by_visit = {(r["patient_id"], int(r["visit_day"])): r for r in truth}
    assert len(by_visit) == 36
    for plan in plans:
        for visit, day in enumerate(msd.VISIT_DAYS):
            row = by_visit[(plan.patient_id, day)]
            assert row["study_date"] == plan.study_date(visit)
            assert float(row["target_percent_opacity"]) == pytest.approx(plan.percent_opacity[visit], abs=1e-4)
            uids = msd._uids(plan, visit, msd.SEED)
            assert (row["study_uid"], row["series_uid"]) == (uids["study"], uids["primary"])
    # the full truth (phantoms regenerated, no DICOM written) of one patient per arm
    chosen = [next(p for p in plans if p.arm == arm) for arm in msd.ARMS]
    fresh = msd._csv_text(msd.truth_rows(chosen), msd.TRUTH_COLUMNS).splitlines()[1:]
    committed = (SAMPLE / "truth.csv").read_text().splitlines()
    ids = {p.patient_id for p in chosen}
    assert fresh == [line for line in committed[1:] if line.split(",")[0] in ids]


def test_trial_shape_arms_and_course(truth) -> None:
    arms = {r["patient_id"]: r["arm"] for r in _rows(SAMPLE / "arms.csv")}
    assert sorted(arms.values()).count("MSC") == 6 and sorted(arms.values()).count("placebo") == 6
    assert not list((SAMPLE / "studies").rglob("arms.csv")), "arms.csv must sit beside, not inside, the images"
    assert "arm" not in truth[0]
    po = {(r["patient_id"], int(r["visit_day"])): float(r["percent_opacity"]) for r in truth}
    assert {day for _, day in po} == {0, 7, 21}
    change = {arm: [po[(p, 21)] - po[(p, 0)] for p, a in arms.items() if a == arm] for arm in ("MSC", "placebo")}
    assert np.mean(change["MSC"]) < np.mean(change["placebo"]), "treated arm clears faster on average"
    assert np.std(change["MSC"]) > 1 and np.std(change["placebo"]) > 1, "real spread between patients"
    baseline = [po[(p, 0)] for p in arms]
    assert min(baseline) < 15 and max(baseline) > 30, "a mix of common and severe cases"
    for r in truth:
        assert abs(float(r["percent_opacity"]) - float(r["target_percent_opacity"])) < 0.5


def test_sample_data_is_small() -> None:
    size = sum(f.stat().st_size for f in SAMPLE.rglob("*") if f.is_file())
    assert size < 25e6, f"sample_data is {size / 1e6:.1f} MB"


def test_find_series_chooses_the_truth_series_in_every_study(truth) -> None:
    import imaging

    catalog = imaging.find_series(SAMPLE / "studies")
    assert len(catalog.studies) == 36
    chosen = {s.study_uid: s.chosen.series_uid for s in catalog.studies if s.chosen is not None}
    assert chosen == {r["study_uid"]: r["series_uid"] for r in truth}
    n_series = sum(len(s.series) for s in catalog.studies)
    assert n_series > 36, "some studies hold a scout or a second reconstruction"
    files = {f.relative_to(SAMPLE / "studies").parts[:3] for f in (SAMPLE / "studies").rglob("0001.dcm")}
    assert all(len(parts) == 3 for parts in files)  # <patient>/<study>/<series>/


def test_dicom_voxels_match_a_fresh_phantom(truth) -> None:
    import imaging

    plan = msd.plan_trial()[0]
    first = next(iter(msd.visit_phantoms(plan)))
    row = next(r for r in truth if r["patient_id"] == plan.patient_id and r["visit_day"] == "0")
    folder = SAMPLE / "studies" / plan.patient_id / row["study_uid"] / row["series_uid"]
    vol = imaging.load_scan(folder)
    assert np.array_equal(vol.hu, first.volume.hu)
    assert np.allclose(vol.origin_mm, first.volume.origin_mm, atol=1e-4)
    assert vol.spacing_mm == pytest.approx(first.volume.spacing_mm)


def test_a_leftover_of_a_killed_run_does_not_block_the_next(tmp_path, monkeypatch) -> None:
    """A run killed while swapping folders left .tmp-old-studies; every later run then failed
    with 'Directory not empty'."""
    monkeypatch.setattr(msd, "plan_trial", _one_plan)  # one patient, three visits: fast
    (tmp_path / "studies" / "old").mkdir(parents=True)
    (tmp_path / ".tmp-old-studies" / "x").mkdir(parents=True)
    (tmp_path / ".tmp-old-studies" / "x" / "f").write_text("stale")
    summary = msd.write_trial(tmp_path, seed=msd.SEED)
    assert summary["scans"] == 3
    assert not (tmp_path / ".tmp-old-studies").exists() and not (tmp_path / "studies" / "old").exists()


_PLAN_TRIAL = msd.plan_trial


def _one_plan(seed):
    return _PLAN_TRIAL(seed)[:1]
