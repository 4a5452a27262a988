"""``chestct demo``: score the bundled synthetic trial (``sample_data/``) and compare its arms.

The same steps a researcher runs on a real export:
``chestct score sample_data/studies -o OUT`` then ``chestct compare OUT/scores.csv
sample_data/arms.csv -o OUT/report``; the arms table lies beside the image folder, so
the scoring stays blind.  When the sample trial's truth table is present, the demo also
says how far the measured percent opacity is from the truth.  It ends with where the
report is.
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
                        help="output folder (default ./out/demo)")
    parser.add_argument("-j", "--workers", type=int, default=None, help="parallel scans (default: all cores)")
    parser.add_argument("--no-qc", action="store_true", help="do not write QC pictures")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def truth_agreement(scores: "object", truth_path: Path) -> str | None:
    """One line comparing measured and true percent opacity, or None without a usable truth table.

    The truth table is joined on ``series_uid`` when it has that column, else on
    ``patient_id`` and ``study_date``; its true percent opacity is the column
    ``percent_opacity`` (or ``true_percent_opacity`` / ``truth_percent_opacity``).
    """
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
    merged = scored[keys + ["percent_opacity"]].merge(  # type: ignore[index]
        truth[keys + [value]].rename(columns={value: "_truth"}), on=keys, how="inner")
    merged = merged.dropna()
    if merged.empty:
        return None
    diff = merged["percent_opacity"].to_numpy(float) - merged["_truth"].to_numpy(float)
    return (f"percent opacity vs truth over {len(merged)} scans: mean absolute difference "
            f"{np.mean(np.abs(diff)):.2f} points, largest {np.max(np.abs(diff)):.2f} points")


def run(args: argparse.Namespace) -> int:
    """Run ``chestct demo``; returns the exit code."""
    import pandas as pd

    from imaging.batch import BatchSummary, score_studies
    from imaging.compare import compare_arms
    from imaging.errors import NoDicomFoundError
    from imaging.report import write_report

    data = Path(args.data)
    studies, arms_path = data / "studies", data / "arms.csv"
    if not studies.is_dir() or not arms_path.is_file():
        raise NoDicomFoundError(f"sample trial not found: expected {studies}/ and {arms_path} "
                                "(generate it with `python scripts/make_sample_data.py`)")
    out = Path(args.out)
    print(f"scoring {studies} -> {out}")
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
