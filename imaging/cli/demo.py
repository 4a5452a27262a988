"""``chestct demo``: score the bundled synthetic trial (``sample_data/``) and compare its arms.

The same steps a researcher runs on a real export:
``chestct score sample_data/studies -o OUT`` then ``chestct compare OUT/scores.csv
sample_data/arms.csv -o OUT/report``; the arms table lies beside the image folder, so
the scoring stays blind.  When the sample trial's truth table is present, the demo also
says how far the measured percent opacity is from the truth.  It starts with the
absolute output folder (by default ``out/demo`` under the current folder, wherever that
is) and ends with where the report is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "score the bundled sample trial, compare its arms and write the report"

#: Where the bundled sample trial lives: ``sample_data/`` beside the package.
SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``chestct demo``."""
    parser.add_argument("--data", type=Path, default=SAMPLE_DATA,
                        help=f"sample trial folder holding studies/ and arms.csv (default {SAMPLE_DATA})")
    parser.add_argument("-o", "--out", type=Path, default=Path("out") / "demo",
                        help="output folder (default ./out/demo, under the current folder)")
    parser.add_argument("-j", "--workers", type=int, default=None, help="parallel scans (default: all cores)")
    parser.add_argument("--no-qc", action="store_true", help="do not write QC pictures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def truth_agreement(scores: "object", truth_path: Path) -> str | None:
    """A labelled check of measured against true percent opacity, or None without a usable truth table.

    The truth table is joined on ``series_uid`` when it has that column, else on
    ``patient_id`` and ``study_date``; its true percent opacity is the column
    ``percent_opacity`` (or ``true_percent_opacity`` / ``truth_percent_opacity``).  The
    line names the truth file, the mean and largest absolute error in percentage points,
    the scan with the largest (patient and ``visit_day``, else study date), and where
    the known limits are described (README.md, "Known limits").
    """
    import os

    import numpy as np
    import pandas as pd

    if not truth_path.is_file():
        return None
    truth = pd.read_csv(truth_path, dtype={"patient_id": str, "series_uid": str, "study_date": str})
    value = next((c for c in ("true_percent_opacity", "truth_percent_opacity", "percent_opacity") if c in truth), None)
    keys = ["series_uid"] if "series_uid" in truth else ["patient_id", "study_date"]
    scored = scores  # type: ignore[assignment]
    if value is None or not set(keys) <= set(truth.columns) or "percent_opacity" not in scored:  # type: ignore[operator]
        return None
    labels = [c for c in ("patient_id", "visit_day", "study_date") if c in truth.columns and c not in keys]
    merged = scored[keys + ["percent_opacity"]].merge(  # type: ignore[index]
        truth[keys + labels + [value]].rename(columns={value: "_truth"}), on=keys, how="inner")
    merged = merged.dropna(subset=["percent_opacity", "_truth"]).reset_index(drop=True)
    if merged.empty:
        return None
    error = np.abs(merged["percent_opacity"].to_numpy(float) - merged["_truth"].to_numpy(float))
    worst = merged.iloc[int(np.argmax(error))]
    when = (f"day {float(worst['visit_day']):g}" if "visit_day" in merged and pd.notna(worst["visit_day"])
            else str(worst.get("study_date", "")))
    where = " ".join(str(v) for v in (worst.get("patient_id"), when) if v not in (None, "") and pd.notna(v))
    try:
        shown = os.path.relpath(truth_path)
    except ValueError:  # another drive (Windows)
        shown = str(truth_path)
    shown = shown if not shown.startswith("..") else str(truth_path)
    return (f"check against the phantom truth ({shown}), {len(merged)} scans: mean |error| "
            f"{np.mean(error):.2f} points, largest {np.max(error):.2f} ({where or 'one scan'}) in percent opacity; "
            "see 'Known limits' in README.md")


def run(args: argparse.Namespace) -> int:
    """Run ``chestct demo``; returns the exit code."""
    import pandas as pd

    from imaging.pipeline.batch import score_studies
    from imaging.pipeline.tables import BatchSummary
    from imaging.trial.compare import compare_arms
    from imaging.common.errors import NoDicomFoundError
    from imaging.trial.report import write_report

    data = Path(args.data)
    studies, arms_path = data / "studies", data / "arms.csv"
    if not studies.is_dir() or not arms_path.is_file():
        raise NoDicomFoundError(f"sample trial not found: expected {studies}/ and {arms_path} "
                                "(generate it with `python scripts/make_sample_data.py`)")
    out = Path(args.out)
    print(f"scoring {studies} -> {out.resolve()}")  # absolute: the default ./out/demo is under the current folder
    scores = score_studies(studies, out=out, workers=args.workers, qc=not args.no_qc, progress=not args.no_progress)
    for line in BatchSummary(**scores.attrs["summary"]).lines():
        print(line)
    agreement = truth_agreement(scores, data / "truth.csv")
    if agreement:
        print(agreement)
    arms = pd.read_csv(arms_path, dtype={"patient_id": str})
    comparison = compare_arms(scores, arms, rng=0)
    report = write_report(comparison, out / "report")
    print(f"report: {report}")
    return 1 if scores.attrs["summary"]["n_failed"] else 0
