"""Compare the radiographic course of treatment arms from a table of scores per scan.

Inputs are two tables kept apart so that scoring stays blind to the arm:

* **scores** (one row per scan, e.g. from :func:`imaging.score_studies` or made by
  hand): ``patient_id``; ``study_date`` (ISO date) or ``day`` (days since the
  patient's baseline); optionally ``visit`` (a label) and ``series_uid``; the metric
  columns; optionally ``error`` (non-empty for scans that failed: they are excluded and
  counted in the warnings table).
* **arms**: ``patient_id``, ``arm`` and optional strata columns (e.g. baseline severity).

:func:`compare_arms` assigns each scan to a visit, joins the arms (reporting every
mismatch), computes each patient's change from baseline and a response category per
visit, then compares each treatment arm with the reference arm per visit and metric
(descriptives, Mann-Whitney U, Hodges-Lehmann shift with CI, bootstrap CI of the
median difference, Welch's t, ANCOVA on baseline), the response categories (Pearson
χ² and Fisher's exact test), and all visits together (linear mixed model).  The same
is repeated within each stratum.  **P-values are not adjusted for multiplicity.**

The statistics themselves live in :mod:`imaging.stats`; plots and the HTML report
in :mod:`imaging.report`.  The approach follows the published MSC trials: change in
lesion percentage as a median difference with 95 % CI (Shi et al., Signal Transduct
Target Ther 2021), CT scores by Mann-Whitney (Shu et al., Stem Cell Res Ther 2020),
categorical response per visit by χ² (Zhu et al., Cell Research 2021).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from imaging import constants as C
from imaging import stats as S
from imaging.errors import InvalidTableError

__all__ = [
    "DEFAULT_METRICS",
    "RESPONSE_CATEGORIES",
    "MULTIPLICITY_NOTE",
    "WARNING_KINDS",
    "ResponseCriteria",
    "Comparison",
    "compare_arms",
    "assign_visits",
]

log = logging.getLogger(__name__)

#: Metrics compared when ``metrics`` is not given (those present in the scores table).
DEFAULT_METRICS: tuple[str, ...] = (
    "percent_opacity",
    "percent_high_opacity",
    "percent_consolidation",
    "severity_score_total",
)

#: Response categories, in display order.
RESPONSE_CATEGORIES: tuple[str, ...] = ("improved", "stable", "progressed")

#: Written into every output (JSON, HTML, notes).
MULTIPLICITY_NOTE: str = (
    "P-values are not adjusted for multiplicity: many visits, metrics, tests and strata "
    "are compared, so some small p-values are expected by chance; read them as descriptive."
)

#: Kinds of rows in :attr:`Comparison.warnings` and what they mean.
WARNING_KINDS: dict[str, str] = {
    "failed_scan": "the scan has a non-empty 'error' in the scores table; excluded",
    "missing_patient_id": "a scan without patient_id; excluded",
    "bad_date": "study_date could not be read as a date; scan excluded",
    "missing_value": "a metric is missing for this scan; that metric is missing at that visit",
    "outside_window": "the scan falls in no nominal visit window; excluded",
    "duplicate_in_window": "two or more scans in one visit; the one nearest the nominal day is kept",
    "no_arm": "the patient has scans but no arm; excluded",
    "no_scans": "the patient has an arm but no usable scan",
    "arm_without_scans": "an arm in the arms table has no patient with scans",
    "missing_baseline": "the patient has no baseline scan; excluded from change and tests",
    "missing_visit": "the patient has a baseline but no scan at this visit",
    "zero_baseline": "baseline value is 0; relative change is undefined (NaN) for this patient and metric",
}

_REFERENCE_PATTERN = re.compile(r"placebo|control|standard|usual|soc\b", re.IGNORECASE)
_EPS = 1e-9


@dataclass(frozen=True)
class ResponseCriteria:
    """Thresholds that turn a change from baseline into improved / stable / progressed.

    All in units of the response metric (percentage points for percent opacity);
    relative thresholds in percent of the baseline value.

    Attributes
    ----------
    absolute : float
        A change of at least this size, either way, is improvement / progression.
    improved_relative_pct, progressed_relative_pct : float
        A relative fall of at least ``improved_relative_pct`` % (rise of at least
        ``progressed_relative_pct`` %) also counts, provided ``|change| >= min_absolute``.
    min_absolute : float
        Smallest absolute change a relative criterion may act on.

    Notes
    -----
    Defaults are :data:`imaging.constants.RESPONSE_ABSOLUTE_CHANGE` (5),
    ``RESPONSE_IMPROVED_RELATIVE_PCT`` (30 %), ``RESPONSE_PROGRESSED_RELATIVE_PCT``
    (20 %) and ``RESPONSE_MIN_ABSOLUTE_CHANGE`` (1); see that module for their origin.
    A baseline of 0 makes the relative change undefined: only the absolute rule applies.

    Examples
    --------
    >>> ResponseCriteria().classify([20.0, 20.0, 2.0, 20.0], [-6.0, -2.0, -0.8, 4.5]).tolist()
    ['improved', 'stable', 'stable', 'progressed']
    """

    absolute: float = C.RESPONSE_ABSOLUTE_CHANGE
    improved_relative_pct: float = C.RESPONSE_IMPROVED_RELATIVE_PCT
    progressed_relative_pct: float = C.RESPONSE_PROGRESSED_RELATIVE_PCT
    min_absolute: float = C.RESPONSE_MIN_ABSOLUTE_CHANGE

    def __post_init__(self) -> None:
        for name in ("absolute", "improved_relative_pct", "progressed_relative_pct"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"ResponseCriteria.{name} must be a positive number, got {value!r}")
        if not (math.isfinite(self.min_absolute) and 0 <= self.min_absolute <= self.absolute):
            raise ValueError(
                f"ResponseCriteria.min_absolute must be in [0, absolute={self.absolute}], got {self.min_absolute!r}"
            )

    def classify(self, baseline: Any, change: Any) -> np.ndarray:
        """Category per patient.

        Parameters
        ----------
        baseline, change : (n,) array_like of float
            Baseline value and change from baseline (follow-up minus baseline).

        Returns
        -------
        (n,) ndarray of str
            ``"improved"``, ``"stable"`` or ``"progressed"``.
        """
        b = np.asarray(baseline, dtype=float)
        d = np.asarray(change, dtype=float)
        if b.shape != d.shape or b.ndim != 1:
            raise ValueError(f"baseline and change must be 1-D of the same length, got {b.shape} and {d.shape}")
        if not (np.all(np.isfinite(b)) and np.all(np.isfinite(d))):
            raise ValueError("baseline and change must be finite; drop missing values first")
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(b > 0, 100.0 * d / np.where(b > 0, b, 1.0), np.nan)
        improved = (d <= -self.absolute + _EPS) | (
            (rel <= -self.improved_relative_pct + _EPS) & (d <= -self.min_absolute + _EPS)
        )
        progressed = (d >= self.absolute - _EPS) | (
            (rel >= self.progressed_relative_pct - _EPS) & (d >= self.min_absolute - _EPS)
        )
        return np.where(improved, "improved", np.where(progressed, "progressed", "stable"))

    def describe(self, metric: str) -> str:
        """One sentence stating the rule for ``metric``."""
        return (
            f"Response by {metric}: improved if it fell by >= {self.absolute:g} units, or by >= "
            f"{self.improved_relative_pct:g} % of baseline with a fall of >= {self.min_absolute:g} units; "
            f"progressed if it rose by >= {self.absolute:g} units, or by >= {self.progressed_relative_pct:g} % "
            f"of baseline with a rise of >= {self.min_absolute:g} units; otherwise stable "
            "(units of the metric: percentage points for percentages)."
        )


@dataclass(frozen=True)
class Comparison:
    """Results of :func:`compare_arms`: tidy pandas tables plus the settings used.

    Attributes
    ----------
    scans : DataFrame
        One row per input scan: ``patient_id, study_date, series_uid, day, visit, status``
        (``"used"`` or why it was left out).
    changes : DataFrame
        One row per patient × visit × metric (baseline included): ``patient_id, arm,
        <strata>, visit, visit_order, day, metric, baseline, value, change,
        relative_change_pct``.
    responses : DataFrame
        ``changes`` rows of the response metric at follow-up visits, plus ``category``.
    summary : DataFrame
        Descriptives per stratum × visit × metric × outcome (``value``, ``change``) × arm:
        ``n, median, q1, q3, mean, sd, min, max``.
    tests : DataFrame
        One row per comparison × stratum × visit × metric × test: ``n_treatment,
        n_reference, statistic, estimate, ci_low, ci_high, confidence, p_unadjusted,
        method, note``.  Estimates are treatment minus reference.  ``visit`` is
        ``"all visits"`` for the mixed model; ``metric`` is the response metric and
        ``outcome`` ``"response"`` for χ² and Fisher.
    categories : DataFrame
        Response counts per stratum × visit × arm × category (``count``, ``percent``).
    warnings : DataFrame
        ``kind, patient_id, visit, detail``; kinds are listed in :data:`WARNING_KINDS`.
    settings : dict
        Every option, the thresholds, the arms compared and the software versions.
    notes : tuple of str
        Statements every reader needs (multiplicity, reference arm, ...).
    """

    scans: pd.DataFrame
    changes: pd.DataFrame
    responses: pd.DataFrame
    summary: pd.DataFrame
    tests: pd.DataFrame
    categories: pd.DataFrame
    warnings: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    TABLES: ClassVar[tuple[str, ...]] = ("scans", "changes", "responses", "summary", "tests", "categories", "warnings")

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Every result table by name."""
        return {name: getattr(self, name) for name in self.TABLES}

    def to_dict(self) -> dict[str, Any]:
        """Settings, notes and every table as lists of records (NaN as None)."""
        out: dict[str, Any] = {"notes": list(self.notes), "settings": self.settings}
        for name, table in self.tables.items():
            out[name] = json.loads(table.to_json(orient="records", double_precision=15))
        return out

    def to_json(self, path: str | Path | None = None, *, indent: int | None = 2) -> str:
        """The results as JSON (missing numbers as ``null``); written to ``path`` if given.

        Parameters
        ----------
        path : str or Path, optional
            File to write (atomically).
        indent : int, optional

        Returns
        -------
        str
            The JSON text.
        """
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=str)
        if path is not None:
            from imaging.report import write_text_atomic

            write_text_atomic(Path(path), text)
        return text


# --------------------------------------------------------------------------- inputs


def _require_columns(table: pd.DataFrame, columns: Sequence[str], name: str, hint: str = "") -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InvalidTableError(
            f"{name} table lacks column(s) {missing}; it has {list(table.columns)}. {hint}".strip()
        )


def _warn(rows: list[dict[str, Any]], kind: str, patient_id: Any, visit: Any, detail: str) -> None:
    rows.append({"kind": kind, "patient_id": None if patient_id is None else str(patient_id),
                 "visit": None if visit is None else str(visit), "detail": detail})


def _ids(series: pd.Series) -> pd.Series:
    """Patient IDs as stripped strings (NaN stays missing)."""
    out = series.astype("object").where(series.notna(), None)
    return out.map(lambda v: None if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip()))


def _scan_label(row: pd.Series) -> str:
    for key in ("series_uid", "study_date"):
        value = row.get(key)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return f"{key}={value}"
    return f"row {row.name}"


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


def _check_visits(visits: Any) -> dict[str, tuple[float, float]]:
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


def _prepare_scans(
    scores: pd.DataFrame,
    visits: dict[str, tuple[float, float]] | None,
    baseline_visit: str | None,
    warn: list[dict[str, Any]],
) -> tuple[pd.DataFrame, str, list[str]]:
    """Scan table with patient_id, day, visit, target_day, status; returns baseline label and visit order."""
    scans = scores.copy()
    scans["patient_id"] = _ids(scans["patient_id"])
    scans["status"] = "used"

    def drop(mask: pd.Series, kind: str, detail_fn) -> None:
        for idx in scans.index[mask & (scans["status"] == "used")]:
            row = scans.loc[idx]
            _warn(warn, kind, row["patient_id"], row.get("visit"), detail_fn(row))
            scans.loc[idx, "status"] = kind

    drop(scans["patient_id"].isna(), "missing_patient_id", lambda r: f"{_scan_label(r)} has no patient_id")
    if "error" in scans.columns:
        err = scans["error"].astype("object").where(scans["error"].notna(), "").map(str).str.strip()
        drop(err != "", "failed_scan", lambda r: f"{_scan_label(r)} failed: {str(r['error'])[:200]}")

    if "day" in scans.columns:
        day = pd.to_numeric(scans["day"], errors="coerce")
        drop(day.isna(), "bad_date", lambda r: f"{_scan_label(r)}: day {r['day']!r} is not a number")
        scans["day"] = day
    else:
        dates = pd.to_datetime(scans["study_date"].astype("object"), errors="coerce", format="mixed")
        drop(dates.isna(), "bad_date", lambda r: f"{_scan_label(r)}: study_date {r['study_date']!r} is not a date")
        used = scans["status"] == "used"
        first = dates[used].groupby(scans.loc[used, "patient_id"]).transform("min")
        scans["day"] = np.nan
        scans.loc[used, "day"] = (dates[used] - first).dt.total_seconds() / 86400.0

    used = scans["status"] == "used"
    if visits is not None:
        full = dict(visits)
        if not any(abs(t) < _EPS for t, _ in full.values()):
            full = {"baseline": (0.0, 0.0), **full}
        baseline = next(k for k, (t, _) in full.items() if abs(t) < _EPS)
        labels, targets = assign_visits(scans["day"].to_numpy(dtype=float), full)
        scans["visit"] = labels
        scans["target_day"] = targets
        drop(used & scans["visit"].isna(), "outside_window",
             lambda r: f"{_scan_label(r)} at day {r['day']:g} is in no visit window {full}")
        order = sorted(full, key=lambda k: full[k][0])
    elif "visit" in scans.columns:
        scans["visit"] = scans["visit"].astype("object").where(scans["visit"].notna(), None).map(
            lambda v: None if v is None else str(v))
        drop(used & scans["visit"].isna(), "outside_window", lambda r: f"{_scan_label(r)} has no visit label")
        used = scans["status"] == "used"
        median_day = scans[used].groupby("visit")["day"].median()
        scans["target_day"] = scans["visit"].map(median_day)
        order = list(median_day.sort_values(kind="stable").index)
        if baseline_visit is None:
            first_visits = scans[used].sort_values("day", kind="stable").groupby("patient_id")["visit"].first()
            if first_visits.empty:
                raise InvalidTableError("scores table has no usable scan (see the warnings)")
            baseline = str(first_visits.mode().iloc[0])
        else:
            baseline = str(baseline_visit)
            if baseline not in order:
                raise ValueError(f"baseline_visit {baseline_visit!r} is not a visit label in scores; labels: {order}")
    else:
        scans["visit"] = scans["day"].map(lambda d: None if pd.isna(d) else _day_label(float(d)))
        scans["target_day"] = scans["day"]
        baseline = _day_label(0.0)
        order = [_day_label(d) for d in sorted(scans.loc[scans["status"] == "used", "day"].unique())]
        if baseline not in order:
            order.insert(0, baseline)
    if baseline in order:
        order.remove(baseline)
    order.insert(0, baseline)

    # duplicates: keep the scan nearest the nominal day, then the earliest row
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
    return scans, baseline, order


def _prepare_arms(
    arms: pd.DataFrame, strata: Sequence[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    _require_columns(arms, ["patient_id", "arm"], "arms", "It needs one row per patient: patient_id, arm.")
    table = arms.copy()
    table["patient_id"] = _ids(table["patient_id"])
    table = table[table["patient_id"].notna()]
    table["arm"] = table["arm"].astype("object").where(table["arm"].notna(), None).map(
        lambda v: None if v is None or str(v).strip() == "" else str(v).strip())
    if strata is None:
        strata = [c for c in table.columns if c not in ("patient_id", "arm")]
    else:
        strata = [str(s) for s in strata]
        _require_columns(table, strata, "arms", "Name only strata columns of the arms table.")
    table = table[["patient_id", "arm", *strata]].drop_duplicates()
    clash = table[table.duplicated("patient_id", keep=False)]
    if not clash.empty:
        detail = "; ".join(f"{pid}: {sorted(map(str, g['arm'].tolist()))}" for pid, g in clash.groupby("patient_id"))
        raise InvalidTableError(f"arms table gives some patients two arms or strata: {detail}. Keep one row per patient.")
    for col in strata:
        table[col] = table[col].astype("object").where(table[col].notna(), None).map(
            lambda v: None if v is None else str(v))
    return table.reset_index(drop=True), list(strata)


def _choose_reference(arm_names: list[str], reference_arm: str | None) -> str:
    if reference_arm is not None:
        if str(reference_arm) not in arm_names:
            raise ValueError(f"reference_arm {reference_arm!r} is not an arm with scans; arms: {arm_names}")
        return str(reference_arm)
    matches = [a for a in arm_names if _REFERENCE_PATTERN.search(a)]
    return matches[0] if len(matches) == 1 else sorted(arm_names)[0]


# --------------------------------------------------------------------------- tests


def _test_rows(
    x_change: np.ndarray,
    y_change: np.ndarray,
    x_pairs: np.ndarray,
    y_pairs: np.ndarray,
    *,
    outcome: str,
    confidence: float,
    n_boot: int,
    rng: np.random.Generator,
) -> list[tuple[str, S.TestResult, int, int]]:
    """(outcome, result, n_treatment, n_reference) for the per-visit tests."""
    nx, ny = len(x_change), len(y_change)
    rows = [
        (outcome, S.mann_whitney(x_change, y_change), nx, ny),
        (outcome, S.hodges_lehmann(x_change, y_change, confidence=confidence), nx, ny),
        (outcome, S.bootstrap_median_difference(x_change, y_change, rng=rng, n_boot=n_boot, confidence=confidence), nx, ny),
        (outcome, S.welch_t(x_change, y_change, confidence=confidence), nx, ny),
    ]
    follow = np.concatenate([x_pairs[:, 1], y_pairs[:, 1]])
    base = np.concatenate([x_pairs[:, 0], y_pairs[:, 0]])
    treated = np.r_[np.ones(len(x_pairs), bool), np.zeros(len(y_pairs), bool)]
    rows.append(("value | baseline", S.ancova(follow, base, treated, confidence=confidence), len(x_pairs), len(y_pairs)))
    return rows


def _stratum_masks(patients: pd.DataFrame, strata: list[str]) -> list[tuple[str, set[str]]]:
    out = [("all", set(patients["patient_id"]))]
    for col in strata:
        for level in sorted(patients[col].dropna().unique(), key=str):
            out.append((f"{col}={level}", set(patients.loc[patients[col] == level, "patient_id"])))
    return out


def _software_versions() -> dict[str, str]:
    import matplotlib
    import scipy
    import statsmodels

    from imaging import __version__

    return {"chestct": __version__, "numpy": np.__version__, "pandas": pd.__version__,
            "scipy": scipy.__version__, "statsmodels": statsmodels.__version__,
            "matplotlib": matplotlib.__version__}


def compare_arms(
    scores: pd.DataFrame,
    arms: pd.DataFrame,
    *,
    metrics: Sequence[str] | None = None,
    visits: Mapping[str, tuple[float, float]] | None = None,
    baseline_visit: str | None = None,
    reference_arm: str | None = None,
    strata: Sequence[str] | None = None,
    response_metric: str | None = None,
    response: ResponseCriteria | None = None,
    outcome: str = "change",
    confidence: float = 0.95,
    n_boot: int = 2000,
    mixed: bool = True,
    rng: np.random.Generator | int | None = None,
) -> Comparison:
    """Compare the change in CT scores between treatment arms.

    Parameters
    ----------
    scores : DataFrame
        One row per scan: ``patient_id``, ``study_date`` (ISO) or ``day`` (days since
        baseline), the metric columns, optionally ``visit``, ``series_uid``, ``error``.
    arms : DataFrame
        ``patient_id``, ``arm`` and optional strata columns.
    metrics : sequence of str, optional
        Metric columns to compare; default those of :data:`DEFAULT_METRICS` present.
    visits : mapping str -> (target_day, window_days), optional
        Nominal visits, e.g. ``{"day 7": (7, 2), "day 21": (21, 3)}``.  Baseline is the
        visit with target 0 (added as ``"baseline": (0, 0)`` when absent).  Without it,
        a ``visit`` column of ``scores`` is used, else each distinct day is a visit.
    baseline_visit : str, optional
        Baseline label when visits come from a ``visit`` column (default: the label of
        most patients' earliest scan).
    reference_arm : str, optional
        The control arm; default the one arm whose name contains placebo / control /
        standard / usual / SOC, else the alphabetically first.  Every other arm is
        compared with it; estimates are treatment minus reference.
    strata : sequence of str, optional
        Arms-table columns to repeat the analysis within; default all columns besides
        ``patient_id`` and ``arm``; ``[]`` for none.
    response_metric : str, optional
        Metric for response categories; default ``percent_opacity`` when compared,
        else the first metric.
    response : ResponseCriteria, optional
        Category thresholds (defaults documented in :class:`ResponseCriteria`).
    outcome : {"change", "value", "relative_change_pct"}
        What the per-visit two-sample tests compare (ANCOVA always models the
        follow-up value adjusted for baseline).
    confidence : float
        Level of every confidence interval.
    n_boot : int
        Bootstrap resamples.
    mixed : bool
        Fit the linear mixed model over all visits.
    rng : numpy.random.Generator or int, optional
        Bootstrap randomness (an int is a seed).  None draws fresh entropy: results then
        differ run to run in the bootstrap CI only.

    Returns
    -------
    Comparison

    Raises
    ------
    InvalidTableError
        A required column is missing, a metric is not numeric, a patient has two arms,
        or fewer than two arms have patients with a baseline.
    ValueError, TypeError
        An option is invalid.

    Notes
    -----
    Per visit and metric the tests are Mann-Whitney U, Hodges-Lehmann shift with its
    exact or normal-approximation CI, percentile bootstrap CI of the median difference,
    Welch's t, and ANCOVA; response categories by Pearson χ² and Fisher's exact test;
    over all visits a mixed model ``value ~ arm * day + (1 | patient)``.  See
    :mod:`imaging.stats`.  P-values are not adjusted for multiplicity.

    Examples
    --------
    >>> scores = pd.DataFrame({
    ...     "patient_id": ["a", "a", "b", "b", "c", "c", "d", "d"],
    ...     "day": [0, 7] * 4,
    ...     "percent_opacity": [20, 10, 30, 12, 25, 24, 22, 23]})
    >>> arms = pd.DataFrame({"patient_id": list("abcd"), "arm": ["MSC", "MSC", "placebo", "placebo"]})
    >>> res = compare_arms(scores, arms, rng=0, mixed=False)
    >>> hl = res.tests.query("test == 'hodges_lehmann'").iloc[0]
    >>> hl["visit"], float(hl["estimate"])
    ('day 7', -14.0)
    >>> res.responses["category"].tolist()
    ['improved', 'improved', 'stable', 'stable']
    """
    # ---- arguments
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(f"scores must be a pandas DataFrame, got {type(scores).__name__}")
    if not isinstance(arms, pd.DataFrame):
        raise TypeError(f"arms must be a pandas DataFrame, got {type(arms).__name__}")
    if outcome not in ("change", "value", "relative_change_pct"):
        raise ValueError(f"outcome must be 'change', 'value' or 'relative_change_pct', got {outcome!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if int(n_boot) < 100:
        raise ValueError(f"n_boot must be at least 100, got {n_boot!r}")
    response = ResponseCriteria() if response is None else response
    if not isinstance(response, ResponseCriteria):
        raise TypeError(f"response must be a ResponseCriteria, got {type(response).__name__}")
    seed = rng if isinstance(rng, (int, np.integer)) else None
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    visits_checked = None if visits is None else _check_visits(visits)

    _require_columns(scores, ["patient_id"], "scores")
    if "study_date" not in scores.columns and "day" not in scores.columns:
        raise InvalidTableError(
            f"scores table needs 'study_date' (ISO date) or 'day' (days since baseline); it has {list(scores.columns)}"
        )
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if m in scores.columns]
        if not metrics:
            raise InvalidTableError(
                f"scores table has none of the default metrics {list(DEFAULT_METRICS)}; pass metrics=[...] "
                f"naming numeric columns of {list(scores.columns)}"
            )
    else:
        if isinstance(metrics, str):
            metrics = [metrics]
        metrics = [str(m) for m in metrics]
        if not metrics:
            raise ValueError("metrics must name at least one column")
        _require_columns(scores, metrics, "scores", "Pass metrics=[...] naming its numeric columns.")
    for m in metrics:
        if not pd.api.types.is_numeric_dtype(scores[m]) and pd.to_numeric(scores[m], errors="coerce").notna().sum() < scores[m].notna().sum():
            raise InvalidTableError(f"scores column {m!r} is not numeric (e.g. {scores[m].dropna().iloc[0]!r})")
    if response_metric is None:
        response_metric = "percent_opacity" if "percent_opacity" in metrics else metrics[0]
    elif response_metric not in metrics:
        raise ValueError(f"response_metric {response_metric!r} must be one of the compared metrics {metrics}")

    warn: list[dict[str, Any]] = []

    # ---- scans and visits
    scans, baseline, visit_order = _prepare_scans(scores, visits_checked, baseline_visit, warn)
    arm_table, strata_cols = _prepare_arms(arms, strata)

    used = scans[scans["status"] == "used"]
    with_arm = set(arm_table.loc[arm_table["arm"].notna(), "patient_id"])
    for pid in sorted(set(used["patient_id"]) - with_arm):
        _warn(warn, "no_arm", pid, None, f"patient {pid} has {int((used['patient_id'] == pid).sum())} scan(s) but no arm in the arms table")
    scans.loc[(scans["status"] == "used") & ~scans["patient_id"].isin(with_arm), "status"] = "no_arm"
    used = scans[scans["status"] == "used"]
    for pid in sorted(with_arm - set(used["patient_id"])):
        _warn(warn, "no_scans", pid, None, f"patient {pid} is in the arms table but has no usable scan")
    arms_with_scans = set(arm_table.loc[arm_table["patient_id"].isin(set(used["patient_id"])), "arm"])
    for arm in sorted(set(arm_table["arm"].dropna()) - arms_with_scans):
        _warn(warn, "arm_without_scans", None, None, f"arm {arm!r} has no patient with usable scans")

    has_base = set(used.loc[used["visit"] == baseline, "patient_id"])
    for pid in sorted(set(used["patient_id"]) - has_base):
        _warn(warn, "missing_baseline", pid, baseline, f"patient {pid} has no scan at baseline visit {baseline!r}")
    scans.loc[(scans["status"] == "used") & ~scans["patient_id"].isin(has_base), "status"] = "missing_baseline"
    used = scans[scans["status"] == "used"].merge(arm_table, on="patient_id", how="left")

    arm_names = sorted(used["arm"].unique())
    if len(arm_names) < 2:
        raise InvalidTableError(
            f"need at least two arms with patients who have a baseline scan; found {arm_names} "
            f"(see the {len(warn)} warning(s): {sorted({w['kind'] for w in warn})})"
        )
    reference = _choose_reference(arm_names, reference_arm)
    treatments = [a for a in arm_names if a != reference]

    # ---- per patient: long table of value, baseline, change
    long = used.melt(
        id_vars=["patient_id", "arm", *strata_cols, "visit", "day"], value_vars=metrics,
        var_name="metric", value_name="value",
    )
    long["value"] = pd.to_numeric(long["value"], errors="coerce").astype(float)
    for row in long[long["value"].isna()].itertuples():
        _warn(warn, "missing_value", row.patient_id, row.visit, f"{row.metric} is missing")
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
    changes = long[["patient_id", "arm", *strata_cols, "visit", "visit_order", "day", "metric",
                    "baseline", "value", "change", "relative_change_pct"]]

    follow_visits = [v for v in visit_order[1:] if v in set(changes["visit"])]
    patients_base = used.loc[used["visit"] == baseline, ["patient_id", "arm", *strata_cols]].drop_duplicates()
    for v in follow_visits:
        seen = set(changes.loc[changes["visit"] == v, "patient_id"])
        for pid in sorted(set(patients_base["patient_id"]) - seen):
            _warn(warn, "missing_visit", pid, v, f"patient {pid} has no scan at visit {v!r}")

    # ---- responses
    responses = changes[(changes["metric"] == response_metric) & (changes["visit"] != baseline)].copy()
    responses["category"] = response.classify(responses["baseline"].to_numpy(), responses["change"].to_numpy()) \
        if len(responses) else pd.Series(dtype=object)
    responses = responses.reset_index(drop=True)

    # ---- descriptives, tests, categories
    strata_sets = _stratum_masks(patients_base, strata_cols)
    summary_rows: list[dict[str, Any]] = []
    test_rows: list[dict[str, Any]] = []
    cat_rows: list[dict[str, Any]] = []
    for stratum, members in strata_sets:
        sub = changes[changes["patient_id"].isin(members)]
        for visit in [baseline, *follow_visits]:
            for metric in metrics:
                cell = sub[(sub["visit"] == visit) & (sub["metric"] == metric)]
                for out_name in ("value", "change") if visit != baseline else ("value",):
                    for arm in arm_names:
                        vals = cell.loc[cell["arm"] == arm, out_name].to_numpy(float)
                        summary_rows.append({"stratum": stratum, "visit": visit, "metric": metric,
                                             "outcome": out_name, "arm": arm, **S.describe(vals)})
        for treatment in treatments:
            comp = f"{treatment} vs {reference}"
            for visit in follow_visits:
                for metric in metrics:
                    cell = sub[(sub["visit"] == visit) & (sub["metric"] == metric)]
                    xs, ys = cell[cell["arm"] == treatment], cell[cell["arm"] == reference]
                    xo = xs[outcome].dropna().to_numpy(float)
                    yo = ys[outcome].dropna().to_numpy(float)
                    rows = _test_rows(xo, yo, xs[["baseline", "value"]].to_numpy(float),
                                      ys[["baseline", "value"]].to_numpy(float), outcome=outcome,
                                      confidence=confidence, n_boot=int(n_boot), rng=generator)
                    for out_name, res, nx, ny in rows:
                        test_rows.append({"comparison": comp, "stratum": stratum, "visit": visit,
                                          "metric": metric, "outcome": out_name, "n_treatment": nx,
                                          "n_reference": ny, **res.as_dict()})
                cell = responses[responses["patient_id"].isin(members) & (responses["visit"] == visit)]
                table = np.array([[int(((cell["arm"] == a) & (cell["category"] == c)).sum())
                                   for c in RESPONSE_CATEGORIES] for a in (treatment, reference)])
                for res in (S.chi2_test(table), S.fisher_test(table)):
                    test_rows.append({"comparison": comp, "stratum": stratum, "visit": visit,
                                      "metric": response_metric, "outcome": "response",
                                      "n_treatment": int(table[0].sum()), "n_reference": int(table[1].sum()),
                                      **res.as_dict()})
            if mixed:
                for metric in metrics:
                    cell = sub[(sub["metric"] == metric) & sub["arm"].isin([treatment, reference])]
                    data = pd.DataFrame({"patient_id": cell["patient_id"], "value": cell["value"],
                                         "day": cell["day"], "treated": (cell["arm"] == treatment).astype(int)})
                    res, _n_pat, _n_obs = S.mixed_model(data, confidence=confidence)
                    test_rows.append({"comparison": comp, "stratum": stratum, "visit": "all visits",
                                      "metric": metric, "outcome": "value",
                                      "n_treatment": int(cell.loc[cell["arm"] == treatment, "patient_id"].nunique()),
                                      "n_reference": int(cell.loc[cell["arm"] == reference, "patient_id"].nunique()),
                                      **res.as_dict()})
        for visit in follow_visits:
            cell = responses[responses["patient_id"].isin(members) & (responses["visit"] == visit)]
            for arm in arm_names:
                in_arm = cell[cell["arm"] == arm]
                for cat in RESPONSE_CATEGORIES:
                    count = int((in_arm["category"] == cat).sum())
                    cat_rows.append({"stratum": stratum, "visit": visit, "arm": arm, "category": cat,
                                     "count": count,
                                     "percent": 100.0 * count / len(in_arm) if len(in_arm) else float("nan")})

    tests = pd.DataFrame(test_rows, columns=[
        "comparison", "stratum", "visit", "metric", "outcome", "test", "n_treatment", "n_reference",
        "statistic", "estimate", "ci_low", "ci_high", "p_value", "method", "note"])
    tests.insert(tests.columns.get_loc("p_value"), "confidence", confidence)
    tests = tests.rename(columns={"p_value": "p_unadjusted"})
    summary = pd.DataFrame(summary_rows, columns=["stratum", "visit", "metric", "outcome", "arm", "n", "median",
                                                  "q1", "q3", "mean", "sd", "min", "max"])
    categories = pd.DataFrame(cat_rows, columns=["stratum", "visit", "arm", "category", "count", "percent"])
    warnings_table = pd.DataFrame(warn, columns=["kind", "patient_id", "visit", "detail"])
    scan_cols = [c for c in ("patient_id", "study_date", "series_uid", "day", "visit", "status") if c in scans.columns]
    scans_out = scans[scan_cols].reset_index(drop=True)

    counts = warnings_table["kind"].value_counts().to_dict()
    notes = [
        MULTIPLICITY_NOTE,
        f"Estimates are {', '.join(treatments)} minus {reference} (reference arm).",
        response.describe(response_metric),
        f"Per-visit tests compare the {outcome.replace('_', ' ')} from baseline visit {baseline!r}."
        if outcome != "value" else "Per-visit tests compare the follow-up value.",
    ]
    if counts:
        notes.append("Warnings: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
                     + " (see the warnings table).")
    settings = {
        "metrics": list(metrics),
        "response_metric": response_metric,
        "response_criteria": asdict(response),
        "visits": visits_checked,
        "visit_order": visit_order,
        "baseline_visit": baseline,
        "reference_arm": reference,
        "treatment_arms": treatments,
        "strata": strata_cols,
        "outcome": outcome,
        "confidence": confidence,
        "n_boot": int(n_boot),
        "seed": None if seed is None else int(seed),
        "mixed_model": bool(mixed),
        "exact_hodges_lehmann_max_n": S.EXACT_HL_MAX_N,
        "n_scans_in": int(len(scores)),
        "n_scans_used": int((scans["status"] == "used").sum()),
        "n_patients": {a: int(patients_base.loc[patients_base["arm"] == a, "patient_id"].nunique()) for a in arm_names},
        "p_values_adjusted_for_multiplicity": False,
        "software": _software_versions(),
    }
    log.info("compared %s vs %s over %d visits, %d metrics", treatments, reference, len(follow_visits), len(metrics))
    return Comparison(
        scans=scans_out, changes=changes, responses=responses, summary=summary, tests=tests,
        categories=categories, warnings=warnings_table, settings=settings, notes=tuple(notes),
    )
