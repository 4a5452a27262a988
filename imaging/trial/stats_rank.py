"""Rank tests: Mann-Whitney U and the Hodges-Lehmann shift with its confidence interval.

Both use the exact null distribution of U when both arms have fewer than
:data:`EXACT_HL_MAX_N` patients and there are no ties, the normal approximation (tie
and continuity corrected) otherwise, so that the Hodges-Lehmann interval excludes 0
exactly when the Mann-Whitney p-value is below 1 - confidence.

Sources: Mann & Whitney, Ann Math Stat 1947 (the exact null distribution); Hodges &
Lehmann, Ann Math Stat 1963; Hollander, Wolfe & Chicken, *Nonparametric Statistical
Methods*, 3rd ed. 2014, §4.3 (the shift estimate and its confidence interval from the
Mann-Whitney null distribution).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import stats as sps

from imaging.trial.stats_result import _NAN, TestResult, _check_confidence, _sample, _too_small

__all__ = ["EXACT_HL_MAX_N", "mann_whitney", "hodges_lehmann"]


#: Exact Hodges-Lehmann intervals are used when both arms have fewer patients than this
#: and the pooled sample has no ties (the rule of R's ``wilcox.test``).
EXACT_HL_MAX_N: int = 50


def mann_whitney(x: Any, y: Any) -> TestResult:
    """Mann-Whitney U test (Wilcoxon rank-sum), two-sided.

    Parameters
    ----------
    x, y : (m,) and (n,) array_like of float
        Treatment and reference samples.

    Returns
    -------
    TestResult
        ``statistic`` is U of ``x``; ``estimate`` is U / (m n), the probability that a
        treatment value exceeds a reference value (ties count one half).

    Notes
    -----
    Computed by ``scipy.stats.mannwhitneyu``: exact null distribution when both arms
    have fewer than :data:`EXACT_HL_MAX_N` patients and there are no ties (the same rule
    as :func:`hodges_lehmann`, so the exact interval excludes 0 exactly when the exact
    p-value is below 1 - confidence); normal approximation with tie and continuity
    correction otherwise.

    Examples
    --------
    >>> r = mann_whitney([5.0, 6.0, 7.0], [1.0, 2.0, 3.0])
    >>> r.statistic, r.estimate, round(r.p_value, 3)
    (9.0, 1.0, 0.1)
    """
    x, y = _sample(x, "x"), _sample(y, "y")
    small = _too_small("mann_whitney", x, y, 1)
    if small:
        return small
    pooled = np.concatenate([x, y])
    if np.all(pooled == pooled[0]):
        return TestResult(
            "mann_whitney", statistic=x.size * y.size / 2, estimate=0.5, p_value=1.0,
            method="all values equal", note="every value is the same in both arms",
        )
    exact = _use_exact(x, y)
    res = sps.mannwhitneyu(x, y, alternative="two-sided", method="exact" if exact else "asymptotic")
    return TestResult(
        "mann_whitney",
        statistic=float(res.statistic),
        estimate=float(res.statistic) / (x.size * y.size),
        p_value=float(res.pvalue),
        method="scipy.stats.mannwhitneyu, " + ("exact" if exact else "normal approximation with tie and continuity correction"),
    )


def _use_exact(x: np.ndarray, y: np.ndarray) -> bool:
    """Exact Mann-Whitney distribution: both arms below EXACT_HL_MAX_N and no ties."""
    pooled = np.concatenate([x, y])
    return x.size < EXACT_HL_MAX_N and y.size < EXACT_HL_MAX_N and np.unique(pooled).size == pooled.size


@lru_cache(maxsize=256)
def _mwu_null_cdf(m: int, n: int) -> np.ndarray:
    """P(U <= u) for u = 0..m*n under H0, no ties (recursion of Mann & Whitney 1947)."""
    # p[a][b] holds the pmf of U for sample sizes (a, b); built by increasing a + b.
    # f(a, b, u) = a/(a+b) f(a-1, b, u-b) + b/(a+b) f(a, b-1, u)
    prev_row = [np.ones(1) for _ in range(n + 1)]  # a = 0: U = 0 with probability 1
    for a in range(1, m + 1):
        row = [np.ones(1)]  # b = 0
        for b in range(1, n + 1):
            pmf = np.zeros(a * b + 1)
            left = prev_row[b]  # (a-1, b), support 0..(a-1)b, shifted by b
            pmf[b : b + left.size] += a / (a + b) * left
            down = row[b - 1]  # (a, b-1), support 0..a(b-1)
            pmf[: down.size] += b / (a + b) * down
            row.append(pmf)
        prev_row = row
    return np.cumsum(prev_row[n])


def hodges_lehmann(x: Any, y: Any, *, confidence: float = 0.95) -> TestResult:
    """Hodges-Lehmann shift estimate (treatment minus reference) with its confidence interval.

    Parameters
    ----------
    x, y : (m,) and (n,) array_like of float
        Treatment and reference samples.
    confidence : float, optional
        Nominal confidence level of the interval.

    Returns
    -------
    TestResult
        ``estimate`` is the median of the m n differences ``x_i - y_j``; ``statistic`` is
        the confidence level actually achieved (discrete for the exact interval).

    Notes
    -----
    The interval inverts the two-sided Mann-Whitney test (Hollander, Wolfe & Chicken
    2014, §4.3): with ``D_(1) <= ... <= D_(mn)`` the sorted differences it is
    ``[D_(c+1), D_(mn-c)]`` where ``c`` is the largest integer with
    ``P(U <= c) <= (1 - confidence) / 2``.

    * **Exact** (``P`` from the exact null distribution of U) when both arms have fewer
      than :data:`EXACT_HL_MAX_N` patients and the pooled values have no ties;
      the achieved level is then at least ``confidence``.
    * **Normal approximation** otherwise: ``c = floor(mn/2 - 1/2 - z sqrt(Var U))``, the
      largest ``c`` with ``Phi((c + 1/2 - mn/2) / sqrt(Var U)) <= (1 - confidence) / 2``:
      the continuity-corrected, tie-corrected test of :func:`mann_whitney` applied to
      ``x - d`` and ``y``.  ``Var U`` is tie-corrected for the ties *within* each arm,
      the only ties of ``x - d`` and ``y`` for any ``d`` between two differences; the
      interval is thus exactly the set of shifts that test does not reject.

    When even the widest interval ``[D_(1), D_(mn)]`` does not reach the level (e.g. one
    patient per arm) the bounds are NaN and ``note`` says so.

    Examples
    --------
    >>> r = hodges_lehmann([3.1, 4.2, 5.3, 6.4, 7.5], [0.1, 1.2, 2.3, 3.4, 4.5])
    >>> round(r.estimate, 2), round(r.ci_low, 2), round(r.ci_high, 2), r.method
    (3.0, -0.3, 6.3, 'exact')
    """
    _check_confidence(confidence)
    x, y = _sample(x, "x"), _sample(y, "y")
    small = _too_small("hodges_lehmann", x, y, 1)
    if small:
        return small
    m, n = x.size, y.size
    diffs = np.sort((x[:, None] - y[None, :]).ravel())
    estimate = float(np.median(diffs))
    alpha = 1.0 - confidence
    constant = bool(np.ptp(np.concatenate([x, y])) == 0)  # every value the same: no interval
    if _use_exact(x, y):
        method = "exact"
        cdf = _mwu_null_cdf(m, n)
        below = np.nonzero(cdf <= alpha / 2 + 1e-12)[0]
        c = int(below[-1]) if below.size else -1
        achieved = 1.0 - 2.0 * float(cdf[c]) if c >= 0 else _NAN
    else:
        method = "normal approximation"
        # ties of the shifted data x - d vs y for d between the differences: those within
        # each arm only (ties across arms exist only at d = some x_i - y_j)
        counts = np.concatenate([np.unique(v, return_counts=True)[1] for v in (x, y)])
        big_n = m + n
        var_u = m * n / 12.0 * ((big_n + 1) - np.sum(counts**3 - counts) / (big_n * (big_n - 1)))
        z = sps.norm.ppf(1 - alpha / 2)
        # largest c with P(U <= c) <= alpha/2 under the continuity-corrected normal law,
        # Phi((c + 1/2 - mn/2) / sd) <= alpha/2: the same test as mann_whitney's p-value
        c = int(math.floor(m * n / 2 - z * math.sqrt(var_u) - 0.5)) if var_u > 0 and not constant else -1
        achieved = confidence if c >= 0 else _NAN
    if c < 0:
        why = ("every value is the same in both arms: no interval by rank inversion"
               if constant else f"too few patients for a {confidence:.0%} interval (m={m}, n={n})")
        return TestResult("hodges_lehmann", estimate=estimate, method=method, note=why)
    return TestResult(
        "hodges_lehmann",
        statistic=achieved,
        estimate=estimate,
        ci_low=float(diffs[c]),
        ci_high=float(diffs[m * n - c - 1]),
        method=method,
    )
