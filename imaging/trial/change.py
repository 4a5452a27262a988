"""Change from baseline: one row per patient, visit and metric.

:func:`change_table` puts each follow-up value beside the patient's baseline value, with
the absolute and relative change (values that are missing or not finite become
``missing_value`` warnings, a zero baseline a ``zero_baseline`` warning);
:func:`report_missing_visits` warns about each follow-up visit a patient missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from imaging.trial.tables import _warn

__all__ = ["change_table", "report_missing_visits"]


def change_table(used: pd.DataFrame, metrics: Sequence[str], strata: Sequence[str], baseline: str,
                 visit_order: Sequence[str], warn: list[dict[str, Any]]) -> pd.DataFrame:
    """Long table: one row per patient × visit × metric with baseline, value and change.

    Returns
    -------
    DataFrame
        ``patient_id, arm, <strata>, visit, visit_order, day, metric, baseline, value,
        change, relative_change_pct`` (the last NaN where the baseline is 0, with a
        ``zero_baseline`` warning).
    """
    long = used.melt(
        id_vars=["patient_id", "arm", *strata, "visit", "day"], value_vars=metrics,
        var_name="metric", value_name="value",
    )
    raw = pd.to_numeric(long["value"], errors="coerce").astype(float)
    long["value"] = raw.where(np.isfinite(raw))  # +-inf (e.g. a 0 mL lung ratio) counts as missing
    for row in long[long["value"].isna()].itertuples():
        what = "missing" if pd.isna(raw[row.Index]) else f"{raw[row.Index]} (not a finite number): treated as missing"
        _warn(warn, "missing_value", row.patient_id, row.visit, f"{row.metric} is {what}")
    long = long[long["value"].notna()]
    base = long[long["visit"] == baseline].set_index(["patient_id", "metric"])["value"].rename("baseline")
    long = long.join(base, on=["patient_id", "metric"])
    lost = long["baseline"].isna() & (long["visit"] != baseline)
    for (pid, metric), _g in long[lost].groupby(["patient_id", "metric"]):
        _warn(warn, "missing_value", pid, baseline, f"{metric} is missing at baseline: its follow-ups are not compared")
    long = long[~lost]
    long["change"] = long["value"] - long["baseline"]
    with np.errstate(divide="ignore", invalid="ignore"):
        long["relative_change_pct"] = np.where(long["baseline"] != 0, 100.0 * long["change"] / long["baseline"], np.nan)
    zero = long[(long["baseline"] == 0) & (long["visit"] != baseline)]
    for (pid, metric), _g in zero.groupby(["patient_id", "metric"]):
        _warn(warn, "zero_baseline", pid, baseline, f"{metric} is 0 at baseline")
    rank = {v: i for i, v in enumerate(visit_order)}
    long["visit_order"] = long["visit"].map(rank).astype(int)
    long = long.sort_values(["metric", "arm", "patient_id", "visit_order"], kind="stable").reset_index(drop=True)
    changes = long[["patient_id", "arm", *strata, "visit", "visit_order", "day", "metric",
                    "baseline", "value", "change", "relative_change_pct"]]
    return changes


def report_missing_visits(changes: pd.DataFrame, patients: pd.DataFrame, follow_visits: Sequence[str],
                          warn: list[dict[str, Any]]) -> None:
    """Warn for each patient with a baseline but no scan at a follow-up visit."""
    for v in follow_visits:
        seen = set(changes.loc[changes["visit"] == v, "patient_id"])
        for pid in sorted(set(patients["patient_id"]) - seen):
            _warn(warn, "missing_visit", pid, v, f"patient {pid} has no scan at visit {v!r}")
