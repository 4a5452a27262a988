"""Tests of response categories between arms: Pearson's χ² and Fisher's exact test.

Both take an arms × categories table of counts (empty rows and columns are dropped
first, by :func:`_clean_table`); a table with fewer than two arms or two categories gives
a result without numbers and a ``note`` saying why.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as sps

from imaging.trial.stats_result import _NAN, TestResult

__all__ = ["chi2_test", "fisher_test"]


def _clean_table(table: Any, test: str) -> tuple[np.ndarray | None, TestResult | None]:
    tab = np.asarray(table)
    if tab.ndim != 2:
        raise ValueError(f"table must be 2-D (arms x categories), got shape {tab.shape}")
    if np.any(tab < 0) or not np.all(np.equal(np.mod(tab, 1), 0)):
        raise ValueError(f"table must hold non-negative integer counts, got {tab.tolist()}")
    tab = tab.astype(np.int64)
    tab = tab[tab.sum(axis=1) > 0][:, tab.sum(axis=0) > 0]
    if tab.shape[0] < 2:
        return None, TestResult(test, note="fewer than two arms with responses")
    if tab.shape[1] < 2:
        return None, TestResult(test, note="all responses fall in one category: arms cannot differ, no test")
    return tab, None


def chi2_test(table: Any) -> TestResult:
    """Pearson χ² test of independence on an arms × categories count table.

    Parameters
    ----------
    table : (r, k) array_like of int
        Counts; rows are arms, columns response categories.  Empty rows and columns are
        dropped first.

    Returns
    -------
    TestResult
        ``statistic`` χ², ``estimate`` Cramér's V, p-value; ``method`` gives the degrees
        of freedom.

    Notes
    -----
    ``scipy.stats.chi2_contingency(table, correction=False)``: Pearson's statistic
    without Yates' correction, as in Zhu et al. (Cell Research 2021).  With small
    counts the χ² approximation is poor (``note`` warns when an expected count is
    below 5); read Fisher's exact test alongside.

    Examples
    --------
    Agresti (*An Introduction to Categorical Data Analysis*, 2nd ed., Table 2.5):

    >>> r = chi2_test([[762, 327, 468], [484, 239, 477]])
    >>> round(r.statistic, 2)
    30.07
    """
    tab, early = _clean_table(table, "chi2")
    if early:
        return early
    res = sps.chi2_contingency(tab, correction=False)
    n = tab.sum()
    v = math.sqrt(res.statistic / (n * (min(tab.shape) - 1)))
    note = "expected count below 5 in some cell: prefer Fisher's exact test" if np.min(res.expected_freq) < 5 else ""
    return TestResult(
        "chi2",
        statistic=float(res.statistic),
        estimate=v,
        p_value=float(res.pvalue),
        method=f"Pearson chi-squared, no continuity correction, dof={int(res.dof)}; estimate is Cramer's V",
        note=note,
    )


def fisher_test(table: Any) -> TestResult:
    """Fisher's exact test on a 2 × k table (Freeman-Halton extension for k > 2).

    Parameters
    ----------
    table : (2, k) array_like of int
        Counts; rows are the two arms, columns the categories.  Empty columns are
        dropped first.

    Returns
    -------
    TestResult
        Two-sided exact p-value; ``statistic`` is the probability of the observed table
        given its margins; for a 2 × 2 table ``estimate`` is the sample odds ratio.

    Notes
    -----
    Every table with the observed margins is enumerated; its probability under
    independence is the multivariate hypergeometric
    ``prod_j C(c_j, a_j) / C(N, r_1)`` (``a`` the first row, ``c`` the column totals, ``r_1``
    the first-row total).  The p-value sums the probabilities of tables no more likely
    than the observed one (relative tolerance 1e-7), as ``scipy.stats.fisher_exact``
    does for 2 × 2.  (SciPy's r × c test is a Monte Carlo estimate, so it is not used.)

    Examples
    --------
    >>> round(fisher_test([[6, 2], [1, 4]]).p_value, 5)
    0.10256
    """
    from scipy.special import gammaln

    tab, early = _clean_table(table, "fisher_exact")
    if early:
        return early
    if tab.shape[0] != 2:
        raise ValueError(f"table must have two rows (two arms) for the exact test, got shape {tab.shape}")
    cols = tab.sum(axis=0)
    r1, total = int(tab[0].sum()), int(tab.sum())

    def log_comb(n: np.ndarray, k: np.ndarray) -> np.ndarray:
        return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)

    # all first rows a with 0 <= a_j <= c_j and sum r1
    grids = np.meshgrid(*[np.arange(c + 1) for c in cols[:-1]], indexing="ij")
    first = np.stack([g.ravel() for g in grids], axis=1) if grids else np.zeros((1, 0), int)
    last = r1 - first.sum(axis=1)
    ok = (last >= 0) & (last <= cols[-1])
    rows = np.column_stack([first[ok], last[ok]])
    log_p = log_comb(cols[None, :], rows).sum(axis=1) - log_comb(np.array(total), np.array(r1))
    log_obs = float(log_comb(cols, tab[0]).sum() - log_comb(np.array(total), np.array(r1)))
    p_value = float(min(1.0, np.exp(log_p[log_p <= log_obs + 1e-7]).sum()))
    is_2x2 = tab.shape == (2, 2)
    odds = _NAN
    if is_2x2:
        a, b, c, d = tab.ravel()
        odds = float(a * d / (b * c)) if b * c > 0 else _NAN
    return TestResult(
        "fisher_exact",
        statistic=math.exp(log_obs),
        estimate=odds,
        p_value=p_value,
        method=f"exact enumeration of {rows.shape[0]} tables with the observed margins, 2x{tab.shape[1]}"
        + ("; estimate is the sample odds ratio" if is_2x2 else ""),
        note="odds ratio infinite or undefined (a zero cell); the p-value stands" if is_2x2 and not np.isfinite(odds) else "",
    )
