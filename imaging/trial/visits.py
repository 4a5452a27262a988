"""Visits: every scan gets a day since baseline and a visit label, or is marked unusable.

:func:`check_visits` checks a nominal-visit mapping ``label -> (target_day,
window_days)`` and :func:`assign_visits` snaps days to those windows.
:func:`prepare_scans` runs the steps on the scores table: exclude scans without a
patient or with an error, give each scan its day (from ``day`` or ``study_date``), give
each a visit (nominal windows, a ``visit`` column, or each distinct day), and keep one
scan per patient and visit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from imaging.common.errors import InvalidTableError
from imaging.trial.dates import ACCEPTED_DATES, parse_study_dates
from imaging.trial.tables import _ids, _scan_label, _table_label, _warn

__all__ = ["check_visits", "assign_visits", "prepare_scans"]

#: Tolerance on days (float noise in date arithmetic), in days.
_EPS = 1e-9


def assign_visits(
    days: Any,
    visits: Mapping[str, tuple[float, float]],
) -> tuple[np.ndarray, np.ndarray]:
    """Snap days since baseline to nominal visits with windows.

    Parameters
    ----------
    days : (n,) array_like of float
        Days since each patient's baseline scan.
    visits : mapping of str to (target_day, half_width_days)
        E.g. ``{"baseline": (0, 0), "day 7": (7, 2)}``: a day within ``target ± width``
        (inclusive) belongs to that visit; where windows overlap the nearest target wins.

    Returns
    -------
    labels : (n,) ndarray of object
        Visit label, or None outside every window.
    targets : (n,) ndarray of float
        The nominal day of the visit (NaN outside every window).

    Examples
    --------
    >>> labels, _ = assign_visits([0, 6, 9, 20, 30], {"baseline": (0, 0), "day 7": (7, 2), "day 21": (21, 3)})
    >>> labels.tolist()
    ['baseline', 'day 7', 'day 7', 'day 21', None]
    """
    d = np.asarray(days, dtype=float)
    if d.ndim != 1:
        raise ValueError(f"days must be 1-D, got shape {d.shape}")
    names = list(visits)
    targets = np.array([float(visits[k][0]) for k in names])
    widths = np.array([float(visits[k][1]) for k in names])
    labels = np.full(d.shape, None, dtype=object)
    out_targets = np.full(d.shape, np.nan)
    if not names:
        return labels, out_targets
    dist = np.abs(d[:, None] - targets[None, :])
    inside = dist <= widths[None, :] + _EPS
    dist = np.where(inside, dist, np.inf)
    best = np.argmin(dist, axis=1)
    ok = np.isfinite(dist[np.arange(d.size), best])
    labels[ok] = np.array(names, dtype=object)[best[ok]]
    out_targets[ok] = targets[best[ok]]
    return labels, out_targets


def check_visits(visits: Any) -> dict[str, tuple[float, float]]:
    """Validate a nominal-visit mapping ``label -> (target_day, window_days)``."""
    if not isinstance(visits, Mapping) or not visits:
        raise ValueError(f"visits must be a non-empty mapping label -> (target_day, window_days), got {visits!r}")
    out: dict[str, tuple[float, float]] = {}
    for label, spec in visits.items():
        try:
            target, width = (float(v) for v in spec)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"visits[{label!r}] must be (target_day, window_days), got {spec!r}") from exc
        if not (math.isfinite(target) and math.isfinite(width) and width >= 0):
            raise ValueError(f"visits[{label!r}] needs a finite target and a window >= 0, got {spec!r}")
        out[str(label)] = (target, width)
    return out


def _day_label(day: float) -> str:
    return f"day {day:g}"


def prepare_scans(
    scores: pd.DataFrame,
    visits: dict[str, tuple[float, float]] | None,
    baseline_visit: str | None,
    warn: list[dict[str, Any]],
    *,
    date_format: str | None = None,
) -> tuple[pd.DataFrame, str, list[str]]:
    """Give every scan a day and a visit; mark the scans that cannot be used.

    Parameters
    ----------
    scores : DataFrame
        The scores table (see :func:`imaging.trial.compare.compare_arms`).
    visits : dict or None
        Checked nominal visits (:func:`check_visits`).
    baseline_visit : str or None
        Baseline label when visits come from a ``visit`` column.
    warn : list of dict
        Warnings rows are appended here.
    date_format : str, optional
        Format of ``study_date`` text that is neither ISO nor ``YYYYMMDD``
        (:func:`imaging.trial.dates.parse_study_dates`).

    Returns
    -------
    scans : DataFrame
        ``scores`` plus ``day``, ``visit``, ``target_day`` and ``status`` (``"used"`` or
        the warning kind that excluded the scan).
    baseline : str
        The baseline visit label.
    visit_order : list of str
        Visit labels in time order, baseline first.
    """
    # positional index: labels repeated by pd.concat would make .loc hit several scans at once
    scans = scores.reset_index(drop=True)
    scans["patient_id"] = _ids(scans["patient_id"])
    scans["status"] = "used"
    _exclude_unusable(scans, warn)
    _add_days(scans, scores, warn, date_format)
    if visits is not None:
        baseline, order = _nominal_visits(scans, visits, warn)
    elif "visit" in scans.columns:
        baseline, order = _labelled_visits(scans, baseline_visit, warn)
    else:
        baseline, order = _day_visits(scans)
    order = _baseline_first(order, baseline)
    _exclude_duplicates(scans, warn)
    return scans, baseline, order


def _exclude(scans: pd.DataFrame, mask: pd.Series, kind: str, detail: Callable[[pd.Series], str],
             warn: list[dict[str, Any]]) -> None:
    """Mark the still-used scans selected by ``mask`` as ``kind`` (in place), one warning each."""
    for idx in scans.index[mask & (scans["status"] == "used")]:
        row = scans.loc[idx]
        _warn(warn, kind, row["patient_id"], row.get("visit"), detail(row))
        scans.loc[idx, "status"] = kind


def _exclude_unusable(scans: pd.DataFrame, warn: list[dict[str, Any]]) -> None:
    """Exclude scans without a patient_id and scans with a non-empty ``error``."""
    _exclude(scans, scans["patient_id"].isna(), "missing_patient_id",
             lambda r: f"{_scan_label(r)} has no patient_id", warn)
    if "error" in scans.columns:
        err = scans["error"].astype("object").where(scans["error"].notna(), "").map(str).str.strip()
        _exclude(scans, err != "", "failed_scan", lambda r: f"{_scan_label(r)} failed: {str(r['error'])[:200]}", warn)


def _add_days(scans: pd.DataFrame, scores: pd.DataFrame, warn: list[dict[str, Any]],
              date_format: str | None) -> None:
    """Set ``scans["day"]``, days since the patient's baseline, from ``day`` or ``study_date``.

    A ``day`` that is not a number, or a study date in no accepted format, is a
    ``bad_date`` warning and excludes the scan.
    """
    if "day" in scans.columns:
        day = pd.to_numeric(scans["day"], errors="coerce")
        _exclude(scans, day.isna(), "bad_date", lambda r: f"{_scan_label(r)}: day {r['day']!r} is not a number", warn)
        scans["day"] = day
        return
    try:
        dates = parse_study_dates(scans["study_date"], date_format=date_format)
    except InvalidTableError as exc:
        raise InvalidTableError(f"{_table_label(scores, 'scores')}: {exc}") from exc
    formats = ACCEPTED_DATES if date_format is None else f"{date_format!r} or {ACCEPTED_DATES}"
    _exclude(scans, dates.isna(), "bad_date",
             lambda r: f"{_scan_label(r)}: study_date {r['study_date']!r} is not a date in {formats}", warn)
    # day 0 is the patient's earliest study date, failed scans included: a failed
    # baseline then shows as a missing baseline, not as the next scan relabelled.
    # Days count calendar dates (study days): a time of day (ISO "T10:30", DICOM DT)
    # must not make 6.9 and 7.1 two visits.
    dates = dates.dt.normalize()
    first = dates.groupby(scans["patient_id"]).transform("min")
    scans["day"] = (dates - first).dt.total_seconds() / 86400.0


def _nominal_visits(scans: pd.DataFrame, visits: dict[str, tuple[float, float]],
                    warn: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """Visits from nominal windows (a baseline ``(0, 0)`` added when none has target 0).

    Returns
    -------
    baseline, order
        The baseline label and the visit labels by target day.
    """
    used = scans["status"] == "used"
    full = dict(visits)
    if not any(abs(t) < _EPS for t, _ in full.values()):
        full = {"baseline": (0.0, 0.0), **full}
    baseline = next(k for k, (t, _) in full.items() if abs(t) < _EPS)
    labels, targets = assign_visits(scans["day"].to_numpy(dtype=float), full)
    scans["visit"] = labels
    scans["target_day"] = targets
    _exclude(scans, used & scans["visit"].isna(), "outside_window",
             lambda r: f"{_scan_label(r)} at day {r['day']:g} is in no visit window {full}", warn)
    return baseline, sorted(full, key=lambda k: full[k][0])


def _labelled_visits(scans: pd.DataFrame, baseline_visit: str | None,
                     warn: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """Visits from the scores table's ``visit`` column, ordered by their median day.

    The baseline is ``baseline_visit``, else the label of most patients' earliest scan.
    """
    used = scans["status"] == "used"
    scans["visit"] = scans["visit"].astype("object").where(scans["visit"].notna(), None).map(
        lambda v: None if v is None else str(v))
    _exclude(scans, used & scans["visit"].isna(), "outside_window", lambda r: f"{_scan_label(r)} has no visit label", warn)
    used = scans["status"] == "used"
    median_day = scans[used].groupby("visit")["day"].median()
    scans["target_day"] = scans["visit"].map(median_day)
    order = list(median_day.sort_values(kind="stable").index)
    if baseline_visit is None:
        first_visits = scans[used].sort_values("day", kind="stable").groupby("patient_id")["visit"].first()
        if first_visits.empty:
            raise InvalidTableError("scores table has no usable scan (see the warnings)")
        return str(first_visits.mode().iloc[0]), order
    baseline = str(baseline_visit)
    if baseline not in order:
        raise ValueError(f"baseline_visit {baseline_visit!r} is not a visit label in scores; labels: {order}")
    return baseline, order


def _day_visits(scans: pd.DataFrame) -> tuple[str, list[str]]:
    """Each distinct day is a visit (``"day 7"``); the baseline is ``"day 0"``."""
    scans["visit"] = scans["day"].map(lambda d: None if pd.isna(d) else _day_label(float(d)))
    scans["target_day"] = scans["day"]
    baseline = _day_label(0.0)
    order = [_day_label(d) for d in sorted(scans.loc[scans["status"] == "used", "day"].unique())]
    if baseline not in order:
        order.insert(0, baseline)
    return baseline, order


def _baseline_first(order: list[str], baseline: str) -> list[str]:
    """``order`` with ``baseline`` moved to the front."""
    if baseline in order:
        order.remove(baseline)
    order.insert(0, baseline)
    return order


def _exclude_duplicates(scans: pd.DataFrame, warn: list[dict[str, Any]]) -> None:
    """Keep one scan per patient and visit: the one nearest the nominal day, then the earliest row."""
    used = scans["status"] == "used"
    key = scans.loc[used].assign(
        _dist=(scans.loc[used, "day"] - scans.loc[used, "target_day"]).abs(),
        _row=np.arange(int(used.sum())),
    ).sort_values(["patient_id", "visit", "_dist", "_row"], kind="stable")
    dup = key.duplicated(["patient_id", "visit"], keep="first")
    for (pid, visit), group in key.groupby(["patient_id", "visit"], sort=False):
        if len(group) > 1:
            kept = scans.loc[group.index[0]]
            others = ", ".join(f"{_scan_label(scans.loc[i])} (day {scans.loc[i, 'day']:g})" for i in group.index[1:])
            _warn(warn, "duplicate_in_window", pid, visit,
                  f"{len(group)} scans in visit {visit!r}: kept {_scan_label(kept)} (day {kept['day']:g}), dropped {others}")
    scans.loc[dup[dup].index, "status"] = "duplicate_in_window"
