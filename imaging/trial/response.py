"""Response categories: a change from baseline read as improved, stable or progressed.

:class:`ResponseCriteria` holds the thresholds (defaults and their sources in
:mod:`imaging.trial.constants`) and classifies; :func:`choose_response_metric` picks the
metric whose change defines the response, and :func:`classify_responses` gives each
patient's category at each follow-up visit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from imaging.common.checks import is_real_number
from imaging.common.errors import InvalidTableError
from imaging.trial import constants as C
from imaging.trial.tables import _table_label, _warn, describe_columns

__all__ = [
    "DEFAULT_RESPONSE_METRIC",
    "RESPONSE_CATEGORIES",
    "ResponseCriteria",
    "choose_response_metric",
    "classify_responses",
]

_EPS = 1e-9  # tolerance on thresholds, in metric units (float noise in differences)

#: Metric whose change defines the response categories unless the caller names another.
DEFAULT_RESPONSE_METRIC = "percent_opacity"

#: Response categories, in display order.
RESPONSE_CATEGORIES: tuple[str, ...] = ("improved", "stable", "progressed")


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


def choose_response_metric(scores: pd.DataFrame, metrics: Sequence[str], response_metric: str | None,
                           warn: list[dict[str, Any]]) -> str:
    """The metric whose change defines the response categories.

    Parameters
    ----------
    scores : DataFrame
        The scores table.
    metrics : sequence of str
        The compared metrics (:func:`imaging.trial.tables.check_scores`).
    response_metric : str or None
        The metric asked for; None for :data:`DEFAULT_RESPONSE_METRIC` when it is
        compared, else the first metric (a ``response_metric_substituted`` warning).
    warn : list of dict
        Warning rows, appended to.

    Raises
    ------
    InvalidTableError
        The scores table lacks the metric asked for.
    ValueError
        The metric asked for is not among the compared metrics.
    """
    if response_metric is None:
        chosen = DEFAULT_RESPONSE_METRIC if DEFAULT_RESPONSE_METRIC in metrics else metrics[0]
        if chosen != DEFAULT_RESPONSE_METRIC:
            why = "absent" if DEFAULT_RESPONSE_METRIC not in scores.columns else "not among the compared metrics"
            _warn(warn, "response_metric_substituted", None, None,
                  f"response metric {DEFAULT_RESPONSE_METRIC} {why}; using {chosen}")
        return chosen
    if response_metric not in scores.columns:
        raise InvalidTableError(
            f"{_table_label(scores, 'scores')} has no column {response_metric!r} asked for as response_metric; "
            f"it has {describe_columns(scores.columns)}"
        )
    if response_metric not in metrics:
        raise ValueError(f"response_metric {response_metric!r} must be one of the compared metrics {metrics}")
    return response_metric


def classify_responses(changes: pd.DataFrame, metric: str, baseline: str,
                       criteria: ResponseCriteria) -> pd.DataFrame:
    """The response category of each patient at each follow-up visit.

    Parameters
    ----------
    changes : DataFrame
        From :func:`imaging.trial.change.change_table`.
    metric : str
        The response metric.
    baseline : str
        The baseline visit label (its rows are left out).
    criteria : ResponseCriteria

    Returns
    -------
    DataFrame
        The ``changes`` rows of ``metric`` at follow-up visits, plus ``category``.
    """
    responses = changes[(changes["metric"] == metric) & (changes["visit"] != baseline)].copy()
    responses["category"] = criteria.classify(responses["baseline"].to_numpy(), responses["change"].to_numpy()) \
        if len(responses) else pd.Series(dtype=object)
    return responses.reset_index(drop=True)
