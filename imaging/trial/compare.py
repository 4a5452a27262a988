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

Each step lives in its own module: reading and checking the tables in
:mod:`imaging.trial.tables`, days and visits in :mod:`imaging.trial.visits`, the arms
and their join in :mod:`imaging.trial.arms`, change from baseline in
:mod:`imaging.trial.change`, response categories in :mod:`imaging.trial.response`, the
tests in :mod:`imaging.trial.arm_tests` (statistics in :mod:`imaging.trial.stats`), the
result type in :mod:`imaging.trial.comparison`; plots and the HTML report in
:mod:`imaging.trial.report`.
The approach follows the published MSC trials: change in
lesion percentage as a median difference with 95 % CI (Shi et al., Signal Transduct
Target Ther 2021), CT scores by Mann-Whitney (Shu et al., Stem Cell Res Ther 2020),
categorical response per visit by χ² (Zhu et al., Cell Research 2021).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from imaging.common.errors import InvalidTableError
from imaging.trial import stats as S
from imaging.trial.arm_tests import compare_strata
from imaging.trial.arms import (
    check_strata_values,
    choose_reference,
    join_arms,
    prepare_arms,
    reference_rule,
    rename_clashing_strata,
)
from imaging.trial.change import change_table, report_missing_visits
from imaging.trial.comparison import Comparison
from imaging.trial.response import (
    RESPONSE_CATEGORIES,
    ResponseCriteria,
    choose_response_metric,
    classify_responses,
)
from imaging.trial.tables import WARNING_KINDS, check_scores, read_table
from imaging.trial.visits import assign_visits, check_visits, prepare_scans

# RESPONSE_CATEGORIES, ResponseCriteria, Comparison, WARNING_KINDS and assign_visits are
# defined in the step modules imported above; they stay importable from here too.
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

#: Written into every output (JSON, HTML, notes).
MULTIPLICITY_NOTE: str = (
    "P-values are not adjusted for multiplicity: many visits, metrics, tests and strata "
    "are compared, so some small p-values are expected by chance; read them as descriptive."
)


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
    scores, arms = _read_tables(scores, arms)
    options = _check_options(outcome=outcome, confidence=confidence, n_boot=n_boot, response=response,
                             rng=rng, mixed=mixed, visits=visits, date_format=date_format)
    metrics = check_scores(scores, metrics, DEFAULT_METRICS)
    warn: list[dict[str, Any]] = []
    response_metric = choose_response_metric(scores, metrics, response_metric, warn)

    # scans and visits, arms and strata, joined
    scans, baseline, visit_order = prepare_scans(scores, options.visits, baseline_visit, warn,
                                                 date_format=date_format)
    arm_table, strata_cols = _arms_and_strata(arms, strata, metrics, warn)
    used = join_arms(scans, arm_table, baseline, warn)
    arm_names = _arms_with_baseline(used, warn)
    reference = choose_reference(arm_names, reference_arm)

    # per patient: change from baseline, then the response category per follow-up visit
    changes = change_table(used, metrics, strata_cols, baseline, visit_order, warn)
    follow_visits = [v for v in visit_order[1:] if v in set(changes["visit"])]
    patients = used.loc[used["visit"] == baseline, ["patient_id", "arm", *strata_cols]].drop_duplicates()
    report_missing_visits(changes, patients, follow_visits, warn)
    responses = classify_responses(changes, response_metric, baseline, options.response)

    design = _Design(
        metrics=list(metrics), response_metric=response_metric, baseline=baseline, visit_order=visit_order,
        follow_visits=follow_visits, strata=strata_cols, arm_names=arm_names, reference=reference,
        reference_rule=reference_rule(arm_names, reference_arm),
    )
    # descriptives, tests per visit and the trajectory model: all patients, then per stratum
    summary, tests, categories = compare_strata(
        changes, responses, patients, strata=strata_cols, baseline=baseline, follow_visits=follow_visits,
        metrics=metrics, response_metric=response_metric, arm_names=arm_names, reference=reference,
        outcome=options.outcome, confidence=options.confidence, n_boot=options.n_boot, rng=options.rng,
        seed=options.seed, mixed=options.mixed,
    )
    warnings_table = pd.DataFrame(warn, columns=["kind", "patient_id", "visit", "detail"])
    log.info("compared %s vs %s over %d visits, %d metrics", design.treatments, reference, len(follow_visits),
             len(metrics))
    return Comparison(
        scans=_scans_table(scans), changes=changes, responses=responses, summary=summary, tests=tests,
        categories=categories, warnings=warnings_table,
        settings=_settings(options, design, scores, scans, patients), notes=_notes(options, design, warnings_table),
    )


@dataclass(frozen=True)
class _Options:
    """The checked options of :func:`compare_arms`."""

    outcome: str
    confidence: float
    n_boot: int
    response: ResponseCriteria
    seed: int | None  # an int rng: each cell's bootstrap is seeded by it and the cell
    rng: np.random.Generator
    mixed: bool
    visits: dict[str, tuple[float, float]] | None
    date_format: str | None


@dataclass(frozen=True)
class _Design:
    """What :func:`compare_arms` found to compare: metrics, visits, strata and arms."""

    metrics: list[str]
    response_metric: str
    baseline: str
    visit_order: list[str]
    follow_visits: list[str]
    strata: list[str]
    arm_names: list[str]
    reference: str
    reference_rule: str

    @property
    def treatments(self) -> list[str]:
        """Every arm besides the reference, by name."""
        return [a for a in self.arm_names if a != self.reference]


def _read_tables(scores: Any, arms: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scores and arms tables, read from their files when given as paths."""
    if isinstance(scores, (str, os.PathLike)):
        scores = read_table(scores, name="scores")
    if isinstance(arms, (str, os.PathLike)):
        arms = read_table(arms, name="arms")
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(f"scores must be a pandas DataFrame or a table path, got {type(scores).__name__}")
    if not isinstance(arms, pd.DataFrame):
        raise TypeError(f"arms must be a pandas DataFrame or a table path, got {type(arms).__name__}")
    return scores, arms


def _check_options(
    *, outcome: str, confidence: float, n_boot: int, response: ResponseCriteria | None,
    rng: np.random.Generator | int | None, mixed: bool, visits: Mapping[str, tuple[float, float]] | None,
    date_format: str | None,
) -> _Options:
    """Check the options of :func:`compare_arms` (see there) and fill in the defaults."""
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
    return _Options(outcome=outcome, confidence=confidence, n_boot=int(n_boot), response=response, seed=seed,
                    rng=generator, mixed=mixed, visits=visits_checked, date_format=date_format)


def _arms_and_strata(arms: pd.DataFrame, strata: Sequence[str] | None, metrics: Sequence[str],
                     warn: list[dict[str, Any]]) -> tuple[pd.DataFrame, list[str]]:
    """The checked arms table and the strata columns that are used (renamed where they clash)."""
    arm_table, strata_cols = prepare_arms(arms, strata)
    arm_table, strata_cols = rename_clashing_strata(arm_table, strata_cols, metrics, warn)
    strata_cols = check_strata_values(arm_table, strata_cols, warn)
    return arm_table, strata_cols


def _arms_with_baseline(used: pd.DataFrame, warn: list[dict[str, Any]]) -> list[str]:
    """The arms of the joined scans, by name.

    Raises
    ------
    InvalidTableError
        Fewer than two arms have a patient with a baseline scan.
    """
    arm_names = sorted(used["arm"].unique())
    if len(arm_names) < 2:
        # the warnings table is never returned here: show the first few problems in the message
        shown = "; ".join(w["detail"] for w in warn[:3]) + (f"; ... and {len(warn) - 3} more" if len(warn) > 3 else "")
        raise InvalidTableError(
            f"need at least two arms with patients who have a baseline scan; found {arm_names}"
            + (f" ({len(warn)} warning(s) of kinds {sorted({w['kind'] for w in warn})}: {shown})" if warn else "")
        )
    return arm_names


def _scans_table(scans: pd.DataFrame) -> pd.DataFrame:
    """One row per input scan: its identity, day, visit and status."""
    scan_cols = [c for c in ("patient_id", "study_date", "series_uid", "day", "visit", "status") if c in scans.columns]
    return scans[scan_cols].reset_index(drop=True)


def _notes(options: _Options, design: _Design, warnings_table: pd.DataFrame) -> tuple[str, ...]:
    """Statements every reader needs: multiplicity, reference arm, response rule, outcome, warnings."""
    counts = warnings_table["kind"].value_counts().to_dict()
    notes = [
        MULTIPLICITY_NOTE,
        f"Estimates are {', '.join(design.treatments)} minus {design.reference} "
        f"(reference arm: {design.reference_rule}).",
        options.response.describe(design.response_metric),
        f"Per-visit tests compare the {options.outcome.replace('_', ' ')} from baseline visit {design.baseline!r}."
        if options.outcome != "value" else "Per-visit tests compare the follow-up value.",
    ]
    if counts:
        notes.append("Warnings: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
                     + " (see the warnings table).")
    return tuple(notes)


def _settings(options: _Options, design: _Design, scores: pd.DataFrame, scans: pd.DataFrame,
              patients: pd.DataFrame) -> dict[str, Any]:
    """Every option, the thresholds, the arms compared and the software versions."""
    return {
        "metrics": design.metrics,
        "response_metric": design.response_metric,
        "response_criteria": asdict(options.response),
        "visits": options.visits,
        "visit_order": design.visit_order,
        "day_source": ("the scores table's day column" if "day" in scores.columns
                       else "study_date, day 0 being each patient's earliest scan (failed scans included)"),
        "baseline_visit": design.baseline,
        "reference_arm": design.reference,
        "reference_rule": design.reference_rule,
        "date_format": options.date_format,
        "treatment_arms": design.treatments,
        "strata": design.strata,
        "outcome": options.outcome,
        "confidence": options.confidence,
        "n_boot": options.n_boot,
        "seed": None if options.seed is None else int(options.seed),
        "mixed_model": bool(options.mixed),
        "exact_hodges_lehmann_max_n": S.EXACT_HL_MAX_N,
        "n_scans_in": int(len(scores)),
        "n_scans_used": int((scans["status"] == "used").sum()),
        "n_patients": {a: int(patients.loc[patients["arm"] == a, "patient_id"].nunique()) for a in design.arm_names},
        "p_values_adjusted_for_multiplicity": False,
        "software": _software_versions(),
    }


def _software_versions() -> dict[str, str]:
    """Versions of chestct and of the libraries that computed the results."""
    import matplotlib
    import scipy
    import statsmodels

    from imaging import __version__

    return {"chestct": __version__, "numpy": np.__version__, "pandas": pd.__version__,
            "scipy": scipy.__version__, "statsmodels": statsmodels.__version__,
            "matplotlib": matplotlib.__version__}
