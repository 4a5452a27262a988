"""The arm tests: descriptives, per-visit tests and the mixed model, in all patients and per stratum.

:func:`compare_strata` compares each treatment arm with the reference arm, first in all
patients and then within each level of each strata column.  Per visit and metric it
gives the descriptives of each arm and the two-sample tests of :mod:`imaging.trial.stats`
(Mann-Whitney U, Hodges-Lehmann, bootstrap median difference, Welch's t, ANCOVA on
baseline) and, on the response categories, Pearson's χ² and Fisher's exact test; over
all visits, the linear mixed model of the trajectory.  **P-values are not adjusted for
multiplicity.**
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from imaging.trial import stats as S
from imaging.trial.response import RESPONSE_CATEGORIES

__all__ = ["compare_strata"]


def compare_strata(
    changes: pd.DataFrame,
    responses: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    strata: list[str],
    baseline: str,
    follow_visits: list[str],
    metrics: Sequence[str],
    response_metric: str,
    arm_names: list[str],
    reference: str,
    outcome: str,
    confidence: float,
    n_boot: int,
    rng: np.random.Generator,
    seed: int | None,
    mixed: bool,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Descriptives, tests and response counts: all patients, then within each stratum.

    Parameters
    ----------
    changes, responses : DataFrame
        From :func:`imaging.trial.change.change_table` and
        :func:`imaging.trial.response.classify_responses`.
    patients : DataFrame
        ``patient_id, arm, <strata>`` of the patients with a baseline scan.
    strata : list of str
        Strata columns of ``patients``.
    baseline : str
        Baseline visit label.
    follow_visits : list of str
        Follow-up visits, in time order.
    metrics : sequence of str
        Compared metrics.
    response_metric : str
        Metric of the response categories.
    arm_names : list of str
        Every arm (sorted); each besides ``reference`` is compared with it.
    reference : str
        The reference arm: estimates are treatment minus reference.
    outcome : {"change", "value", "relative_change_pct"}
        What the per-visit two-sample tests compare.
    confidence : float
        Level of every confidence interval.
    n_boot : int
        Bootstrap resamples.
    rng : numpy.random.Generator
        Drawn from by the cells in turn when ``seed`` is None.
    seed : int or None
        Seed of each cell's own bootstrap generator (see :func:`_visit_test_rows`).
    mixed : bool
        Fit the linear mixed model over all visits.

    Returns
    -------
    summary, tests, categories : DataFrame
        The tables of :class:`imaging.trial.comparison.Comparison` of those names.
    """
    treatments = [a for a in arm_names if a != reference]
    summary_rows: list[dict[str, Any]] = []
    test_rows: list[dict[str, Any]] = []
    cat_rows: list[dict[str, Any]] = []
    options = {"outcome": outcome, "confidence": confidence, "n_boot": int(n_boot), "rng": rng}
    for stratum, members in _stratum_masks(patients, strata):
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
    return _summary_table(summary_rows), _tests_table(test_rows, confidence), _categories_table(cat_rows)


def _summary_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The descriptives rows as a table (columns in a fixed order, even when empty)."""
    return pd.DataFrame(rows, columns=["stratum", "visit", "metric", "outcome", "arm", "n", "median",
                                       "q1", "q3", "mean", "sd", "min", "max"])


def _tests_table(rows: list[dict[str, Any]], confidence: float) -> pd.DataFrame:
    """The tests rows as a table, with the ``confidence`` column and ``p_unadjusted``."""
    tests = pd.DataFrame(rows, columns=[
        "comparison", "stratum", "visit", "metric", "outcome", "test", "n_treatment", "n_reference",
        "statistic", "estimate", "ci_low", "ci_high", "p_value", "method", "note"])
    tests.insert(tests.columns.get_loc("p_value"), "confidence", confidence)
    return tests.rename(columns={"p_value": "p_unadjusted"})


def _categories_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The response-count rows as a table (columns in a fixed order, even when empty)."""
    return pd.DataFrame(rows, columns=["stratum", "visit", "arm", "category", "count", "percent"])


def _stratum_masks(patients: pd.DataFrame, strata: list[str]) -> list[tuple[str, set[str]]]:
    """``("all", every patient)``, then ``("<column>=<level>", its patients)`` per strata level."""
    out = [("all", set(patients["patient_id"]))]
    for col in strata:
        for level in sorted(patients[col].dropna().unique(), key=str):
            out.append((f"{col}={level}", set(patients.loc[patients[col] == level, "patient_id"])))
    return out


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


def _cell_rng(seed: int, *cell: str) -> np.random.Generator:
    """A generator seeded by ``seed`` and the cell's names (stable across runs and platforms)."""
    import hashlib

    digest = hashlib.sha256("\x1f".join(str(c) for c in cell).encode("utf-8")).digest()
    return np.random.default_rng([int(seed), *np.frombuffer(digest[:16], dtype=np.uint32).tolist()])


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
