"""A trial folder with known percent opacity: score every scan and compare with the truth.

The folder has the layout of the bundled sample trial (``sample_data/``, made by
``scripts/make_sample_data.py``): ``studies/<patient>/<study>/<series>/`` images and a
``truth.csv`` with ``patient_id``, ``visit_day``, ``study_uid``, ``series_uid`` and
``percent_opacity`` (%).  A researcher with their own reads in that form can run the same
comparison on their scans.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from imaging.io.load import load_scan
from imaging.scoring.scores import score_scan
from imaging.validation.metrics import errors_against_truth

__all__ = ["TRUTH_FILE", "read_truth", "score_against_truth", "summarise_against_truth"]

#: Name of the truth table inside a trial folder.
TRUTH_FILE = "truth.csv"


def read_truth(folder: str | Path) -> pd.DataFrame:
    """The folder's ``truth.csv`` (UIDs kept as text).

    Raises
    ------
    FileNotFoundError
        When the folder has no ``truth.csv``.
    """
    path = Path(folder) / TRUTH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    return pd.read_csv(path, dtype={"series_uid": str, "study_uid": str, "patient_id": str})


def score_against_truth(folder: str | Path, lung_methods: Sequence[str],
                        opacity_methods: Sequence[str]) -> pd.DataFrame:
    """Score each truth scan with every lung × opacity method pair (each scan read once).

    Parameters
    ----------
    folder : path
        The trial folder (``truth.csv`` and ``studies/``).
    lung_methods, opacity_methods : sequences of str
        ``lung_method`` and ``opacity_method`` values of :func:`imaging.scoring.scores.score_scan`.

    Returns
    -------
    DataFrame
        One row per scan and pair: ``lungs``, ``opacity``, ``patient_id``, ``visit_day``,
        ``truth`` and ``measured`` percent opacity (%).
    """
    folder = Path(folder)
    truth = read_truth(folder)
    rows = []
    for row in truth.itertuples():
        volume = load_scan(folder / "studies" / row.patient_id / row.study_uid / row.series_uid)
        for lungs in lung_methods:
            for opacity in opacity_methods:
                score = score_scan(volume, lung_method=lungs, opacity_method=opacity)
                rows.append({"lungs": lungs, "opacity": opacity, "patient_id": row.patient_id,
                             "visit_day": row.visit_day, "truth": float(row.percent_opacity),
                             "measured": score.percent_opacity})
    return pd.DataFrame(rows)


def summarise_against_truth(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per method pair of :func:`score_against_truth`: the errors of :func:`errors_against_truth`.

    Returns one row per (lungs, opacity) pair, in the table's order: ``lungs``,
    ``opacity``, then the keys of :func:`~imaging.validation.metrics.errors_against_truth`.
    """
    rows = []
    for (lungs, opacity), pair in table.groupby(["lungs", "opacity"], sort=False):
        rows.append({"lungs": lungs, "opacity": opacity,
                     **errors_against_truth(pair["truth"].tolist(), pair["measured"].tolist())})
    return rows
