"""imaging.trial.stats against independent references: brute-force test inversion for the
Hodges-Lehmann interval with ties, agreement of that interval with the Mann-Whitney
p-value, and ANCOVA on data without residual variation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from imaging.trial import stats as S


def _p_normal_cc(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided Mann-Whitney p, normal approximation with tie and continuity correction."""
    return float(sps.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic").pvalue)


def _inverted_interval(x: np.ndarray, y: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """Closure of the shifts d (between distinct differences) whose test of x - d vs y is not rejected."""
    d = np.unique((x[:, None] - y[None, :]).ravel())
    grid = np.r_[d[0] - 1.0, (d[:-1] + d[1:]) / 2, d[-1] + 1.0]
    kept = np.nonzero([_p_normal_cc(x - g, y) > alpha for g in grid])[0]
    lo = d[kept[0] - 1] if kept[0] > 0 else -np.inf
    hi = d[kept[-1]] if kept[-1] < d.size else np.inf
    return float(lo), float(hi)


TIED = [
    ([2.0, -2.0, 0.0, -6.0, -4.0, -6.0, -1.0], [4.0, 4.0, 1.0]),
    ([-5.0, -3.0, -1.0, -4.0], [-2.0, 4.0, 2.0, 2.0, -2.0, -2.0, 4.0]),
    ([-4.0, -3.0, -1.0, -6.0, -4.0, -3.0], [-2.0, -2.0, 0.0, 4.0]),
    ([-6, -4, -4, -3, -2, -2, -1, 0], [-2, -1, 0, 0, 1, 1, 2, 3, 3]),
    ([-4.0, -5.0, 0.0, 0.0, -6.0, -5.0], [0.0, 0.0, 4.0, 1.0, 0.0]),  # ties across arms: -8 to 0, not -7 to 0
]


@pytest.mark.parametrize("x,y", TIED)
def test_hodges_lehmann_normal_interval_is_the_inverted_mann_whitney_test(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    r = S.hodges_lehmann(x, y)
    assert r.method == "normal approximation"
    assert (r.ci_low, r.ci_high) == _inverted_interval(x, y)


@pytest.mark.parametrize("x,y", TIED[:3])
def test_hodges_lehmann_interval_agrees_with_mann_whitney_p(x, y):
    # p < 0.05, so the 95 % interval must exclude 0 (it used to be -10 to 1 for the first)
    p = S.mann_whitney(x, y).p_value
    r = S.hodges_lehmann(x, y)
    assert p < 0.05
    assert r.ci_high < 0 or r.ci_low > 0, (p, r.ci_low, r.ci_high)


def test_hodges_lehmann_normal_interval_matches_mann_whitney_on_random_tied_data():
    rng = np.random.default_rng(0)
    for _ in range(1500):
        m, n = rng.integers(3, 9, 2)
        x, y = rng.integers(-6, 3, m).astype(float), rng.integers(-3, 5, n).astype(float)
        r, p = S.hodges_lehmann(x, y), S.mann_whitney(x, y).p_value
        if not math.isfinite(r.ci_low):
            continue
        # an end exactly at 0 is the boundary of both rules; otherwise they must agree
        assert not (p < 0.05 and r.ci_low < 0 < r.ci_high), (x, y, p, r)
        assert not (p > 0.05 and (r.ci_low > 0 or r.ci_high < 0)), (x, y, p, r)


def test_hodges_lehmann_tied_three_per_arm_gives_no_95_interval():
    # No Mann-Whitney test of 3 vs 3 patients can reject at 5 % (the smallest exact
    # p is 0.1); ties across arms once shrank Var U and gave the interval -1 to 1.
    x, y = np.array([2.0, 2.0, 3.0]), np.array([2.0, 3.0, 3.0])
    r = S.hodges_lehmann(x, y)
    assert r.estimate == 0.0
    assert math.isnan(r.ci_low) and math.isnan(r.ci_high) and "too few" in r.note
    assert _inverted_interval(x, y) == (-np.inf, np.inf)


@pytest.mark.parametrize("followup,baseline", [
    ([1.0] * 6, [1.0] * 6),                          # a metric equal in every scan
    ([1.0] * 6, [3.0, 4.0, 5.0, 3.0, 4.0, 6.0]),     # follow-up constant, baseline varies
    ([0.2, 0.3, 0.4, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.1, 0.2, 0.3]),  # an exact fit
])
def test_ancova_with_no_residual_variation_gives_a_note_not_a_p_value(followup, baseline):
    # Rounding noise once gave p = 0.23 (constant outcome) or t = -1.8e15, p = 4e-46.
    r = S.ancova(followup, baseline, [1, 1, 1, 0, 0, 0])
    assert math.isnan(r.p_value) and math.isnan(r.ci_low) and math.isnan(r.statistic)
    assert "residual variance is zero" in r.note
