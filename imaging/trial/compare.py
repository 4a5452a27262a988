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

Table checks, visit assignment and the join live in :mod:`imaging.trial.tables`, the
statistics in :mod:`imaging.trial.stats`, plots and the HTML report in :mod:`imaging.trial.report`.
The approach follows the published MSC trials: change in
lesion percentage as a median difference with 95 % CI (Shi et al., Signal Transduct
Target Ther 2021), CT scores by Mann-Whitney (Shu et al., Stem Cell Res Ther 2020),
categorical response per visit by χ² (Zhu et al., Cell Research 2021).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from imaging.trial import constants as C
from imaging.trial import stats as S
from imaging.common.checks import is_real_number
from imaging.common.errors import InvalidTableError
from imaging.trial.tables import (
    WARNING_KINDS,
    _table_label,
    _warn,
    assign_visits,
    change_table,
    check_scores,
    check_strata_values,
    check_visits,
    choose_reference,
    describe_columns,
    join_arms,
    prepare_arms,
    prepare_scans,
    read_table,
    reference_rule,
    rename_clashing_strata,
    report_missing_visits,
)

_EPS = 1e-9  # tolerance on thresholds, in metric units (float noise in differences)

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
#: Metric whose change defines the response categories unless the caller names another.
DEFAULT_RESPONSE_METRIC = "percent_opacity"

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
    Defaults are :data:`imaging.trial.constants.RESPONSE_ABSOLUTE_CHANGE` (5),
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
            if not (is_real_number(value) and math.isfinite(value) and value > 0):
                raise ValueError(f"ResponseCriteria.{name} must be a positive number, got {value!r}")
        if not (is_real_number(self.min_absolute) and math.isfinite(self.min_absolute)
                and 0 <= self.min_absolute <= self.absolute):
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
        Descriptives per stratum × visit × metric × outcome (``value``, ``change``,
        ``relative_change_pct``; baseline: ``value`` only) × arm:
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
            clean = table.replace([np.inf, -np.inf], np.nan)
            records = json.loads(clean.to_json(orient="records", double_precision=15))
            # to_json keeps 15 decimal places, not digits (p = 1.234567e-14 -> 1.2e-14):
            # float columns are put back exactly (json writes Python floats round-trip)
            for col in clean.columns[[pd.api.types.is_float_dtype(t) for t in clean.dtypes]]:
                for rec, v in zip(records, clean[col].to_numpy(float)):
                    rec[col] = None if math.isnan(v) else float(v)
            out[name] = records
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
            from imaging.common.files import atomic_write_text

            atomic_write_text(path, text)
        return text


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


def _summary_rows(changes: pd.DataFrame, visits: list[str], metrics: Sequence[str],
                  arm_names: list[str]) -> list[dict[str, Any]]:
    """Descriptives per visit × metric × outcome × arm (baseline: value only)."""
    rows = []
    for i, visit in enumerate(visits):
        for metric in metrics:
            cell = changes[(changes["visit"] == visit) & (changes["metric"] == metric)]
            for out_name in ("value", "change", "relative_change_pct") if i else ("value",):
                for arm in arm_names:
                    # relative change is NaN where the baseline is 0 (a zero_baseline warning)
                    vals = cell.loc[cell["arm"] == arm, out_name].dropna().to_numpy(float)
                    rows.append({"visit": visit, "metric": metric, "outcome": out_name, "arm": arm,
                                 **S.describe(vals)})
    return rows


def _category_rows(responses: pd.DataFrame, visits: list[str], arm_names: list[str]) -> list[dict[str, Any]]:
    """Response counts and percents per visit × arm × category."""
    rows = []
    for visit in visits:
        cell = responses[responses["visit"] == visit]
        for arm in arm_names:
            in_arm = cell[cell["arm"] == arm]
            for cat in RESPONSE_CATEGORIES:
                count = int((in_arm["category"] == cat).sum())
                rows.append({"visit": visit, "arm": arm, "category": cat, "count": count,
                             "percent": 100.0 * count / len(in_arm) if len(in_arm) else float("nan")})
    return rows


def _cell_rng(seed: int, *cell: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and the cell's names (stable across runs and platforms)."""
    import hashlib

    digest = hashlib.sha256("\x1f".join(str(c) for c in cell).encode("utf-8")).digest()
    return np.random.default_rng([int(seed), *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])


def _visit_test_rows(
    changes: pd.DataFrame, responses: pd.DataFrame, pair: tuple[str, str], visits: list[str],
    metrics: Sequence[str], response_metric: str, *, outcome: str, confidence: float, n_boot: int,
    rng: np.random.Generator, seed: int | None = None, stratum: str = "all",
) -> list[dict[str, Any]]:
    """Per-visit two-sample tests of every metric and the response-category tests.

    With an integer ``seed`` each cell's bootstrap draws from its own generator, seeded by
    the seed and the cell (arms, stratum, visit, metric, outcome): a cell's interval does not
    change when other metrics, visits or strata are added to the analysis.  Without one the
    cells draw in turn from ``rng``."""
    treatment, reference = pair
    rows = []
    for visit in visits:
        for metric in metrics:
            cell = changes[(changes["visit"] == visit) & (changes["metric"] == metric)]
            xs, ys = cell[cell["arm"] == treatment], cell[cell["arm"] == reference]
            cell_rng = rng if seed is None else _cell_rng(seed, treatment, reference, stratum, visit, metric, outcome)
            results = _test_rows(
                xs[outcome].dropna().to_numpy(float), ys[outcome].dropna().to_numpy(float),
                xs[["baseline", "value"]].to_numpy(float), ys[["baseline", "value"]].to_numpy(float),
                outcome=outcome, confidence=confidence, n_boot=n_boot, rng=cell_rng,
            )
            rows += [{"visit": visit, "metric": metric, "outcome": out_name, "n_treatment": nx,
                      "n_reference": ny, **res.as_dict()} for out_name, res, nx, ny in results]
        cell = responses[responses["visit"] == visit]
        table = np.array([[int(((cell["arm"] == a) & (cell["category"] == c)).sum()) for c in RESPONSE_CATEGORIES]
                          for a in pair])
        rows += [{"visit": visit, "metric": response_metric, "outcome": "response",
                  "n_treatment": int(table[0].sum()), "n_reference": int(table[1].sum()), **res.as_dict()}
                 for res in (S.chi2_test(table), S.fisher_test(table))]
    return rows


def _mixed_rows(changes: pd.DataFrame, pair: tuple[str, str], metrics: Sequence[str], *,
                confidence: float) -> list[dict[str, Any]]:
    """The linear mixed model over all visits, one row per metric."""
    treatment, reference = pair
    rows = []
    for metric in metrics:
        cell = changes[(changes["metric"] == metric) & changes["arm"].isin(pair)]
        data = pd.DataFrame({"patient_id": cell["patient_id"], "value": cell["value"], "day": cell["day"],
                             "treated": (cell["arm"] == treatment).astype(int)})
        res, _n_pat, _n_obs = S.mixed_model(data, confidence=confidence)
        rows.append({"visit": "all visits", "metric": metric, "outcome": "value",
                     "n_treatment": int(cell.loc[cell["arm"] == treatment, "patient_id"].nunique()),
                     "n_reference": int(cell.loc[cell["arm"] == reference, "patient_id"].nunique()),
                     **res.as_dict()})
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
    scores: pd.DataFrame | str | os.PathLike[str],
    arms: pd.DataFrame | str | os.PathLike[str],
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
    date_format: str | None = None,
) -> Comparison:
    """Compare the change in CT scores between treatment arms.

    Parameters
    ----------
    scores : DataFrame or path-like
        A table or its file (CSV, TSV or Parquet, read by
        :func:`imaging.trial.tables.read_table`).  One row per scan: ``patient_id``,
        ``study_date`` (``YYYY-MM-DD`` or DICOM ``YYYYMMDD``, text or integer; other
        layouts need ``date_format``) or ``day`` (days since baseline), the metric
        columns, optionally ``visit``, ``series_uid``, ``error``.
        With ``study_date``, day 0 is each patient's earliest study date, failed scans
        included (a failed baseline is reported as a missing baseline), and days are
        whole calendar days (a time of day is ignored); ``day`` wins when both are present.
    arms : DataFrame or path-like
        A table or its file: ``patient_id``, ``arm`` and optional strata columns.  Arm
        labels that differ only in case or whitespace are refused.  A stratum named like
        a metric or a scores/result column is renamed ``<name>_arms`` (an
        ``arms_column_renamed`` warning); other same-named scores columns are not used.
    metrics : str or sequence of str, optional
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
        compared with it; estimates are treatment minus reference.  The arm and the rule
        that chose it are in ``settings`` (``reference_arm``, ``reference_rule``) and
        the notes.
    strata : str or sequence of str, optional
        Arms-table columns to repeat the analysis within; default all columns besides
        ``patient_id`` and ``arm``; ``[]`` for none.
    response_metric : str, optional
        Metric for response categories; default ``percent_opacity`` when compared,
        else the first metric (recorded as a ``response_metric_substituted`` warning).
        A metric asked for that the table lacks raises :class:`InvalidTableError`.
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
        Bootstrap randomness.  An int is a seed: each cell (arms, stratum, visit, metric)
        then gets its own generator seeded by it and the cell, so a cell's interval does not
        change when metrics, visits or strata are added.  A Generator is drawn from by the
        cells in turn.  None draws fresh entropy: results then differ run to run in the
        bootstrap CI only.
    date_format : str, optional
        :meth:`datetime.strptime` format of ``study_date`` text in another layout, e.g.
        ``"%d/%m/%Y"``.  Without it a ``DD/MM/YYYY``-like date raises
        :class:`InvalidTableError` (day-first and month-first are never guessed); dates
        in no accepted format are ``bad_date`` warnings.

    Returns
    -------
    Comparison

    Raises
    ------
    InvalidTableError
        A required column is missing, a metric is not numeric, a patient has two arms,
        arm labels differ only in case/whitespace, a study date is day/month ambiguous,
        or fewer than two arms have patients with a baseline.
    ValueError, TypeError
        An option is invalid.

    Notes
    -----
    Per visit and metric the tests are Mann-Whitney U, Hodges-Lehmann shift with its
    exact or normal-approximation CI, percentile bootstrap CI of the median difference,
    Welch's t, and ANCOVA; response categories by Pearson χ² and Fisher's exact test;
    over all visits a mixed model ``value ~ arm * day + (1 | patient)``.  See
    :mod:`imaging.trial.stats`.  P-values are not adjusted for multiplicity.

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
    if isinstance(scores, (str, os.PathLike)):
        scores = read_table(scores, name="scores")
    if isinstance(arms, (str, os.PathLike)):
        arms = read_table(arms, name="arms")
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(f"scores must be a pandas DataFrame or a table path, got {type(scores).__name__}")
    if not isinstance(arms, pd.DataFrame):
        raise TypeError(f"arms must be a pandas DataFrame or a table path, got {type(arms).__name__}")
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
    visits_checked = None if visits is None else check_visits(visits)

    metrics = check_scores(scores, metrics, DEFAULT_METRICS)
    warn: list[dict[str, Any]] = []
    if response_metric is None:
        response_metric = DEFAULT_RESPONSE_METRIC if DEFAULT_RESPONSE_METRIC in metrics else metrics[0]
        if response_metric != DEFAULT_RESPONSE_METRIC:
            why = "absent" if DEFAULT_RESPONSE_METRIC not in scores.columns else "not among the compared metrics"
            _warn(warn, "response_metric_substituted", None, None,
                  f"response metric {DEFAULT_RESPONSE_METRIC} {why}; using {response_metric}")
    elif response_metric not in scores.columns:
        raise InvalidTableError(
            f"{_table_label(scores, 'scores')} has no column {response_metric!r} asked for as response_metric; "
            f"it has {describe_columns(scores.columns)}"
        )
    elif response_metric not in metrics:
        raise ValueError(f"response_metric {response_metric!r} must be one of the compared metrics {metrics}")

    # ---- scans and visits
    scans, baseline, visit_order = prepare_scans(scores, visits_checked, baseline_visit, warn,
                                                 date_format=date_format)
    arm_table, strata_cols = prepare_arms(arms, strata)
    arm_table, strata_cols = rename_clashing_strata(arm_table, strata_cols, metrics, warn)
    strata_cols = check_strata_values(arm_table, strata_cols, warn)

    used = join_arms(scans, arm_table, baseline, warn)

    arm_names = sorted(used["arm"].unique())
    if len(arm_names) < 2:
        # the warnings table is never returned here: show the first few problems in the message
        shown = "; ".join(w["detail"] for w in warn[:3]) + (f"; ... and {len(warn) - 3} more" if len(warn) > 3 else "")
        raise InvalidTableError(
            f"need at least two arms with patients who have a baseline scan; found {arm_names}"
            + (f" ({len(warn)} warning(s) of kinds {sorted({w['kind'] for w in warn})}: {shown})" if warn else "")
        )
    reference = choose_reference(arm_names, reference_arm)
    rule = reference_rule(arm_names, reference_arm)
    treatments = [a for a in arm_names if a != reference]

    # ---- per patient: long table of value, baseline, change
    changes = change_table(used, metrics, strata_cols, baseline, visit_order, warn)
    follow_visits = [v for v in visit_order[1:] if v in set(changes["visit"])]
    patients_base = used.loc[used["visit"] == baseline, ["patient_id", "arm", *strata_cols]].drop_duplicates()
    report_missing_visits(changes, patients_base, follow_visits, warn)

    # ---- responses
    responses = changes[(changes["metric"] == response_metric) & (changes["visit"] != baseline)].copy()
    responses["category"] = response.classify(responses["baseline"].to_numpy(), responses["change"].to_numpy()) \
        if len(responses) else pd.Series(dtype=object)
    responses = responses.reset_index(drop=True)

    # ---- descriptives, tests, categories: all patients, then within each stratum
    summary_rows: list[dict[str, Any]] = []
    test_rows: list[dict[str, Any]] = []
    cat_rows: list[dict[str, Any]] = []
    options = {"outcome": outcome, "confidence": confidence, "n_boot": int(n_boot), "rng": generator}
    for stratum, members in _stratum_masks(patients_base, strata_cols):
        sub = changes[changes["patient_id"].isin(members)]
        sub_resp = responses[responses["patient_id"].isin(members)]
        label = {"stratum": stratum}
        summary_rows += [{**label, **r} for r in _summary_rows(sub, [baseline, *follow_visits], metrics, arm_names)]
        cat_rows += [{**label, **r} for r in _category_rows(sub_resp, follow_visits, arm_names)]
        for treatment in treatments:
            pair = (treatment, reference)
            rows = _visit_test_rows(sub, sub_resp, pair, follow_visits, metrics, response_metric, **options,
                                    seed=seed, stratum=stratum)
            if mixed:
                rows += _mixed_rows(sub, pair, metrics, confidence=confidence)
            test_rows += [{"comparison": f"{treatment} vs {reference}", **label, **r} for r in rows]

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
        f"Estimates are {', '.join(treatments)} minus {reference} (reference arm: {rule}).",
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
        "day_source": ("the scores table's day column" if "day" in scores.columns
                       else "study_date, day 0 being each patient's earliest scan (failed scans included)"),
        "baseline_visit": baseline,
        "reference_arm": reference,
        "reference_rule": rule,
        "date_format": date_format,
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
