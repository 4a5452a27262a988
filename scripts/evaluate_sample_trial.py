"""Score the bundled sample trial with each lung / opacity method and compare with its truth.

Usage::

    python scripts/evaluate_sample_trial.py [--lungs classical model] [--opacity density model]

Prints, per method pair, the mean and largest percent-opacity error (percentage points)
against ``sample_data/truth.csv`` and how many of the 36 scans are within ±2 points,
split into scans with truth PO ≤ 30 % and above.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from imaging.cli.demo import SAMPLE_DATA
from imaging.common.errors import ChestCTError
from imaging.io.load import load_scan
from imaging.scoring.lungs import LUNG_METHODS
from imaging.scoring.scores import score_scan

OPACITY_METHODS = ("auto", "density", "model")


def evaluate(data: Path, lung_method: str, opacity_method: str) -> pd.DataFrame:
    """One row per truth scan: truth and measured percent opacity."""
    truth = pd.read_csv(data / "truth.csv", dtype={"series_uid": str, "study_uid": str})
    rows = []
    for row in truth.itertuples():
        folder = data / "studies" / row.patient_id / row.study_uid / row.series_uid
        score = score_scan(load_scan(folder), lung_method=lung_method, opacity_method=opacity_method)
        rows.append({"patient_id": row.patient_id, "visit_day": row.visit_day,
                     "truth": row.percent_opacity, "measured": score.percent_opacity})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SAMPLE_DATA)
    parser.add_argument("--lungs", nargs="+", default=["classical", "model"], choices=LUNG_METHODS)
    parser.add_argument("--opacity", nargs="+", default=["density", "model"], choices=OPACITY_METHODS)
    args = parser.parse_args(argv)
    if not (args.data / "truth.csv").is_file():
        print(f"evaluate_sample_trial: {args.data / 'truth.csv'} not found (make it with "
              "scripts/make_sample_data.py)", file=sys.stderr)
        return 1
    for lung in args.lungs:
        for opacity in args.opacity:
            try:
                table = evaluate(args.data, lung, opacity)
            except (ChestCTError, OSError) as exc:
                print(f"evaluate_sample_trial: {exc}", file=sys.stderr)
                return 1
            err = table["measured"] - table["truth"]
            low = table["truth"] <= 30
            print(f"lungs={lung:10s} opacity={opacity:8s} mean error {err.mean():+.2f}, "
                  f"mean |error| {err.abs().mean():.2f}, largest {err.abs().max():.2f} points; "
                  f"within ±2: {int((err.abs() <= 2).sum())}/{len(table)} "
                  f"(truth ≤ 30 %: {int((err.abs()[low] <= 2).sum())}/{int(low.sum())}; "
                  f"> 30 %: {int((err.abs()[~low] <= 2).sum())}/{int((~low).sum())}); "
                  f"Pearson r {np.corrcoef(table['truth'], table['measured'])[0, 1]:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
