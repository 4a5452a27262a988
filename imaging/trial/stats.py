"""Two-sample statistics used to compare trial arms: pure functions on 1-D arrays.

Every function takes the *treatment* sample ``x`` and the *reference* (control) sample
``y`` and reports differences as ``x - y``.  Each returns a :class:`TestResult`.
Samples too small for a statistic give a result whose numbers are NaN and whose
``note`` says why: results are never NaN without a reason.  Malformed input (not 1-D,
NaN or infinite values) raises ``ValueError`` naming the argument.

Nothing here adjusts p-values for multiplicity.

Sources: Hodges & Lehmann, Ann Math Stat 1963; Hollander, Wolfe & Chicken,
*Nonparametric Statistical Methods*, 3rd ed. 2014, §4.3 (the shift estimate and its
confidence interval from the Mann-Whitney null distribution); Efron & Tibshirani,
*An Introduction to the Bootstrap*, 1993 (percentile interval).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

__all__ = [
    "TestResult",
    "describe",
    "mann_whitney",
    "hodges_lehmann",
    "bootstrap_median_difference",
    "welch_t",
    "ancova",
    "chi2_test",
    "fisher_test",
    "mixed_model",
    "EXACT_HL_MAX_N",
]

#: Exact Hodges-Lehmann intervals are used when both arms have fewer patients than this
#: and the pooled sample has no ties (the rule of R's ``wilcox.test``).
EXACT_HL_MAX_N: int = 50

_NAN = float("nan")


@dataclass(frozen=True)
class TestResult:
    """One statistical test or estimate.

    Attributes
    ----------
    test : str
        Short name, e.g. ``"mann_whitney"``.
    statistic : float
        The test statistic (U, t, χ², ...); NaN when the test has none or could not run.
    estimate : float
        The effect estimate, treatment minus reference where it is a difference.
    ci_low, ci_high : float
        Confidence interval of ``estimate`` (NaN when none).
    p_value : float
        Two-sided, not adjusted for multiplicity.
    method : str
        How it was computed (exact / normal approximation / software call).
    note : str
        Empty, or why numbers are missing or need care.
    """

    __test__ = False  # not a pytest test class

    test: str
    statistic: float = _NAN
    estimate: float = _NAN
    ci_low: float = _NAN
    ci_high: float = _NAN
    p_value: float = _NAN
    method: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (floats as Python floats)."""
        out = asdict(self)
        for key in ("statistic", "estimate", "ci_low", "ci_high", "p_value"):
            out[key] = float(out[key])
        return out


def _sample(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must hold finite numbers only; drop missing values first (got {arr!r})")
    return arr


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def describe(values: Any) -> dict[str, float]:
    """n, median, quartiles, mean, SD, min and max of one sample.

    Parameters
    ----------
    values : (n,) array_like of float
        Finite values.

    Returns
    -------
    dict
        ``n`` (int) and floats ``median, q1, q3, mean, sd, min, max``.  ``sd`` (ddof=1) is
        NaN for n < 2 and every statistic is NaN for n = 0.

    Examples
    --------
    >>> d = describe([1.0, 2.0, 3.0, 4.0])
    >>> d["n"], d["median"], d["q1"], d["q3"], round(d["sd"], 3)
    (4, 2.5, 1.75, 3.25, 1.291)
    """
    x = _sample(values, "values")
    n = int(x.size)
    if n == 0:
        return {"n": 0, **{k: _NAN for k in ("median", "q1", "q3", "mean", "sd", "min", "max")}}
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return {
        "n": n,
        "median": float(med),
        "q1": float(q1),
        "q3": float(q3),
        "mean": float(x.mean()),
        "sd": float(x.std(ddof=1)) if n > 1 else _NAN,
        "min": float(x.min()),
        "max": float(x.max()),
    }


def _too_small(test: str, x: np.ndarray, y: np.ndarray, minimum: int) -> TestResult | None:
    if x.size < minimum or y.size < minimum:
        return TestResult(
            test,
            note=f"needs at least {minimum} patient(s) per arm; got {x.size} (treatment) and {y.size} (reference)",
        )
    return None


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


def bootstrap_median_difference(
    x: Any, y: Any, *, rng: np.random.Generator, n_boot: int = 2000, confidence: float = 0.95
) -> TestResult:
    """Difference of medians (treatment minus reference) with a percentile bootstrap CI.

    Parameters
    ----------
    x, y : (m,) and (n,) array_like of float
        Treatment and reference samples.
    rng : numpy.random.Generator
        Source of the resampling; the same generator state gives the same interval.
    n_boot : int, optional
        Number of bootstrap resamples.
    confidence : float, optional
        Confidence level.

    Returns
    -------
    TestResult
        ``estimate`` is ``median(x) - median(y)``; ``statistic`` is the bootstrap SD.

    Notes
    -----
    Each arm is resampled with replacement separately (stratified bootstrap); the
    interval is the (α/2, 1-α/2) percentiles of the resampled differences.  Needs at
    least 2 patients per arm.

    Examples
    --------
    >>> r = bootstrap_median_difference([5., 6., 7., 8.], [1., 2., 3., 4.], rng=np.random.default_rng(0))
    >>> r.estimate, r.ci_low > 0
    (4.0, True)
    """
    _check_confidence(confidence)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if int(n_boot) < 100:
        raise ValueError(f"n_boot must be at least 100, got {n_boot!r}")
    x, y = _sample(x, "x"), _sample(y, "y")
    small = _too_small("bootstrap_median_difference", x, y, 2)
    if small:
        return small
    bx = np.median(x[rng.integers(0, x.size, size=(int(n_boot), x.size))], axis=1)
    by = np.median(y[rng.integers(0, y.size, size=(int(n_boot), y.size))], axis=1)
    d = bx - by
    alpha = 1.0 - confidence
    lo, hi = np.percentile(d, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return TestResult(
        "bootstrap_median_difference",
        statistic=float(d.std(ddof=1)),
        estimate=float(np.median(x) - np.median(y)),
        ci_low=float(lo),
        ci_high=float(hi),
        method=f"percentile bootstrap, {int(n_boot)} resamples within each arm",
    )


def welch_t(x: Any, y: Any, *, confidence: float = 0.95) -> TestResult:
    """Welch's unequal-variance t test of the mean difference (treatment minus reference).

    Parameters
    ----------
    x, y : (m,) and (n,) array_like of float
    confidence : float, optional

    Returns
    -------
    TestResult
        ``statistic`` t, ``estimate`` mean(x) - mean(y) with its Welch CI.

    Notes
    -----
    ``scipy.stats.ttest_ind(x, y, equal_var=False)``.  Needs 2 patients per arm and some
    variation in at least one arm.

    Examples
    --------
    >>> r = welch_t([1.0, 2.0, 3.0], [2.0, 3.0, 5.0])
    >>> round(r.statistic, 4), round(r.p_value, 4)
    (-1.2649, 0.2846)
    """
    _check_confidence(confidence)
    x, y = _sample(x, "x"), _sample(y, "y")
    small = _too_small("welch_t", x, y, 2)
    if small:
        return small
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        return TestResult("welch_t", estimate=float(x.mean() - y.mean()),
                          note="no variation within either arm: t is undefined")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sps.ttest_ind(x, y, equal_var=False)
        ci = res.confidence_interval(confidence)
    # SciPy warns of "catastrophic cancellation" when one arm is exactly constant, which
    # is harmless here (its variance is exactly 0); other warnings are kept in the note.
    constant = np.ptp(x) == 0 or np.ptp(y) == 0
    note = "; ".join(sorted({
        str(w.message).splitlines()[0] for w in caught
        if not (constant and "catastrophic cancellation" in str(w.message))
    }))
    return TestResult(
        "welch_t",
        statistic=float(res.statistic),
        estimate=float(x.mean() - y.mean()),
        ci_low=float(ci.low),
        ci_high=float(ci.high),
        p_value=float(res.pvalue),
        method=f"scipy.stats.ttest_ind(equal_var=False), df={float(res.df):.2f}",
        note=note,
    )


def ancova(
    followup: Any, baseline: Any, treated: Any, *, confidence: float = 0.95
) -> TestResult:
    """ANCOVA: follow-up value on arm, adjusted for the baseline value (ordinary least squares).

    Parameters
    ----------
    followup, baseline : (N,) array_like of float
        Each patient's follow-up and baseline value.
    treated : (N,) array_like of bool
        True for the treatment arm, False for the reference arm.
    confidence : float, optional

    Returns
    -------
    TestResult
        ``estimate`` is the adjusted arm difference (treatment minus reference), with its
        CI, t ``statistic`` and p-value.

    Notes
    -----
    Model ``followup = b0 + b1 treated + b2 baseline + e`` fitted by
    ``statsmodels.api.OLS``.  Needs at least 4 patients, both arms, and a residual
    degree of freedom; a baseline without variation is dropped from the model (then
    the estimate is the plain mean difference) and ``note`` says so.  Residuals at
    rounding level (root residual sum of squares <= 1e-10 of the root sum of squared
    follow-up values, e.g. a follow-up value equal in every patient) count as an exact
    fit: no CI or p-value, with a note.

    Examples
    --------
    >>> r = ancova([2., 3., 4., 8., 9., 10.], [1., 2., 3., 1., 2., 3.], [0, 0, 0, 1, 1, 1])
    >>> round(r.estimate, 6)
    6.0
    """
    import statsmodels.api as sm

    _check_confidence(confidence)
    f = _sample(followup, "followup")
    b = _sample(baseline, "baseline")
    t = np.asarray(treated, dtype=bool)
    if not (f.shape == b.shape == t.shape):
        raise ValueError(
            f"followup, baseline and treated must have the same length, got {f.shape}, {b.shape}, {t.shape}"
        )
    n1, n0 = int(t.sum()), int((~t).sum())
    if n1 < 1 or n0 < 1 or f.size < 4:
        return TestResult("ancova", note=f"needs both arms and at least 4 patients; got {n1} treatment, {n0} reference")
    note = ""
    columns = [np.ones_like(f), t.astype(float)]
    if np.ptp(b) > 0:
        columns.append(b)
    else:
        note = "baseline has no variation; fitted without the baseline term"
    design = np.column_stack(columns)
    if np.linalg.matrix_rank(design) < design.shape[1] or f.size <= design.shape[1]:
        return TestResult("ancova", note="design is singular or has no residual degree of freedom")
    fit = sm.OLS(f, design).fit()
    # residuals at rounding level (a constant follow-up, an exact fit) are zero: their
    # "standard error" is noise and once gave p = 0.23 for a metric equal in every scan
    exact_fit = math.sqrt(fit.ssr) <= 1e-10 * math.sqrt(float(np.sum(f**2)))
    if not np.isfinite(fit.bse[1]) or fit.df_resid < 1 or fit.scale <= 0 or exact_fit:
        return TestResult("ancova", estimate=float(fit.params[1]),
                          note="residual variance is zero (the model fits every patient exactly): no standard error")
    lo, hi = fit.conf_int(alpha=1 - confidence)[1]
    return TestResult(
        "ancova",
        statistic=float(fit.tvalues[1]),
        estimate=float(fit.params[1]),
        ci_low=float(lo),
        ci_high=float(hi),
        p_value=float(fit.pvalues[1]),
        method="statsmodels OLS: followup ~ arm + baseline",
        note=note,
    )


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


def mixed_model(
    data: pd.DataFrame, *, confidence: float = 0.95
) -> tuple[TestResult, int, int]:
    """Linear mixed model ``value ~ treated * day`` with a random intercept per patient.

    Parameters
    ----------
    data : pandas.DataFrame
        Long table with columns ``patient_id``, ``value`` (float), ``day`` (float, days
        since baseline) and ``treated`` (0/1), one row per patient and visit.
    confidence : float, optional

    Returns
    -------
    result : TestResult
        The ``treated:day`` interaction: the difference between arms in the slope of the
        metric, in metric units per day (treatment minus reference), its Wald CI and
        z ``statistic``.
    n_patients, n_obs : int

    Notes
    -----
    ``statsmodels.formula.api.mixedlm("value ~ treated * day", groups=patient_id)``,
    REML.  Convergence warnings from statsmodels are recorded in ``note``.  Needs both
    arms, at least 2 visits and more observations than patients.
    """
    import statsmodels.formula.api as smf

    _check_confidence(confidence)
    missing = {"patient_id", "value", "day", "treated"} - set(data.columns)
    if missing:
        raise ValueError(f"data lacks column(s) {sorted(missing)}")
    df = data[["patient_id", "value", "day", "treated"]].dropna()
    n_pat, n_obs = int(df["patient_id"].nunique()), len(df)
    arms = df.groupby("treated")["patient_id"].nunique()
    if len(arms) < 2 or df["day"].nunique() < 2 or n_obs <= n_pat + 4:
        return (
            TestResult("mixed_model", note=f"too little data: {n_pat} patients, {n_obs} observations, "
                       f"{df['day'].nunique()} distinct days, arms present: {len(arms)}"),
            n_pat, n_obs,
        )
    df = df.assign(treated=df["treated"].astype(float), day=df["day"].astype(float))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = smf.mixedlm("value ~ treated * day", df, groups=df["patient_id"]).fit(reml=True)
        except (np.linalg.LinAlgError, ValueError) as exc:
            return TestResult("mixed_model", note=f"model could not be fitted: {exc}"), n_pat, n_obs
    term = "treated:day"
    messages = sorted({str(w.message).splitlines()[0] for w in caught})
    note = "; ".join(messages)
    est, se = float(fit.params[term]), float(fit.bse[term])
    if not (np.isfinite(est) and np.isfinite(se)):
        return TestResult("mixed_model", note=("no finite estimate; " + note).strip("; ")), n_pat, n_obs
    lo, hi = fit.conf_int(alpha=1 - confidence).loc[term]
    return (
        TestResult(
            "mixed_model",
            statistic=float(fit.tvalues[term]),
            estimate=est,
            ci_low=float(lo),
            ci_high=float(hi),
            p_value=float(fit.pvalues[term]),
            method="statsmodels MixedLM (REML): value ~ arm * day + (1 | patient); estimate is arm x day, units per day",
            note=note,
        ),
        n_pat,
        n_obs,
    )
