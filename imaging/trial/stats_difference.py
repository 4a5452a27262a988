"""Differences of medians and of means between two arms, with confidence intervals.

:func:`bootstrap_median_difference` gives the difference of medians with a percentile
bootstrap interval (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993);
:func:`welch_t` the difference of means with Welch's unequal-variance t test.  Both
report treatment minus reference.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats as sps

from imaging.trial.stats_result import TestResult, _check_confidence, _sample, _too_small

__all__ = ["bootstrap_median_difference", "welch_t"]


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
