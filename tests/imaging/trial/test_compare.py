"""imaging.trial.stats and imaging.trial.compare: every statistic against SciPy / statsmodels computed
directly, textbook values, a null simulation, and the edge cases of real trial tables."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from imaging.trial import stats as S
from imaging.trial.compare import (
    MULTIPLICITY_NOTE,
    RESPONSE_CATEGORIES,
    ResponseCriteria,
    assign_visits,
    compare_arms,
)
from imaging.common.errors import ChestCTError, InvalidTableError

VISITS = {"day 7": (7, 2), "day 21": (21, 3)}


def make_trial(rng, *, n_per_arm=6, effect=0.0, arms=("MSC", "placebo"), days=(0, 7, 21), noise=3.0,
               jitter=True, start="2020-02-01"):
    """Scores (one row per scan, study_date) and arms tables of a small synthetic trial.

    The first arm's percent opacity falls by an extra ``effect`` percentage points by the
    last visit (linear in time); everything else is the same in every arm.
    """
    rows, arm_rows = [], []
    k = 0
    for arm_i, arm in enumerate(arms):
        for _ in range(n_per_arm):
            pid = f"P{k:03d}"
            k += 1
            arm_rows.append({"patient_id": pid, "arm": arm, "severity": "severe" if k % 2 else "moderate"})
            base = rng.uniform(10, 40)
            t0 = pd.Timestamp(start) + pd.Timedelta(days=int(rng.integers(0, 30)))
            for d in days:
                dd = d + (int(rng.integers(-1, 2)) if (jitter and d) else 0)
                extra = effect * d / max(days) if arm_i == 0 else 0.0
                po = max(0.0, base - 0.3 * d + extra + rng.normal(0, noise))
                rows.append({
                    "patient_id": pid, "study_date": (t0 + pd.Timedelta(days=dd)).date().isoformat(),
                    "series_uid": f"1.2.{k}.{d}", "percent_opacity": po, "percent_high_opacity": 0.4 * po,
                    "percent_consolidation": 0.2 * po, "severity_score_total": float(min(24, round(po / 4))),
                    "lung_volume_ml": rng.normal(4000, 300), "error": "",
                })
    return pd.DataFrame(rows), pd.DataFrame(arm_rows)


def _no_silent_nan(tests: pd.DataFrame) -> None:
    """Every missing number in the tests table comes with a note."""
    needs_p = ~tests["test"].isin(["hodges_lehmann", "bootstrap_median_difference"])
    needs_ci = tests["test"].isin(["hodges_lehmann", "bootstrap_median_difference", "welch_t", "ancova", "mixed_model"])
    silent = (needs_p & tests["p_unadjusted"].isna()) | (needs_ci & tests["ci_low"].isna())
    silent &= tests["note"].fillna("") == ""
    assert not silent.any(), tests[silent].to_string()


# ----------------------------------------------------------------- stats vs SciPy/statsmodels


@pytest.fixture
def xy():
    rng = np.random.default_rng(42)
    return rng.normal(-5, 3, 7), rng.normal(0, 4, 9)


def test_describe_matches_numpy(xy):
    x, _ = xy
    d = S.describe(x)
    assert d["n"] == 7
    assert d["median"] == pytest.approx(np.median(x))
    assert d["q1"] == pytest.approx(np.percentile(x, 25)) and d["q3"] == pytest.approx(np.percentile(x, 75))
    assert d["sd"] == pytest.approx(np.std(x, ddof=1)) and d["mean"] == pytest.approx(np.mean(x))
    assert math.isnan(S.describe([3.0])["sd"]) and S.describe([])["n"] == 0


def test_mann_whitney_matches_scipy(xy):
    x, y = xy
    r = S.mann_whitney(x, y)
    ref = sps.mannwhitneyu(x, y, alternative="two-sided", method="exact")
    assert r.statistic == pytest.approx(ref.statistic) and r.p_value == pytest.approx(ref.pvalue)
    assert r.estimate == pytest.approx(ref.statistic / (x.size * y.size))
    assert r.method.endswith("exact")
    xt, yt = np.round(x), np.round(y)  # ties: normal approximation with tie correction
    rt = S.mann_whitney(xt, yt)
    assert "normal" in rt.method
    assert rt.p_value == pytest.approx(sps.mannwhitneyu(xt, yt, method="asymptotic").pvalue)


def test_welch_matches_scipy(xy):
    x, y = xy
    r = S.welch_t(x, y)
    ref = sps.ttest_ind(x, y, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert (r.statistic, r.p_value) == pytest.approx((ref.statistic, ref.pvalue))
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high))
    assert r.estimate == pytest.approx(x.mean() - y.mean())


def test_mwu_null_distribution_matches_enumeration():
    for m, n in [(1, 1), (2, 3), (4, 4), (5, 3), (3, 6)]:
        counts = np.zeros(m * n + 1)
        pooled = np.arange(m + n)
        for comb in itertools.combinations(pooled, m):
            xs = np.array(comb)
            ys = np.setdiff1d(pooled, xs)
            counts[(xs[:, None] > ys[None, :]).sum()] += 1
        np.testing.assert_allclose(S._mwu_null_cdf(m, n), np.cumsum(counts) / counts.sum(), atol=1e-12)


@pytest.mark.parametrize("m,n,seed", [(5, 5, 0), (6, 4, 1), (7, 9, 2), (3, 12, 3)])
def test_hodges_lehmann_exact_ci_inverts_scipy_exact_test(m, n, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(2, 2, m), rng.normal(0, 2, n)
    r = S.hodges_lehmann(x, y, confidence=0.95)
    diffs = np.sort((x[:, None] - y[None, :]).ravel())
    assert r.method == "exact"
    assert r.estimate == pytest.approx(np.median(diffs))
    assert r.ci_low <= r.estimate <= r.ci_high and r.statistic >= 0.95
    eps = 1e-7

    def p(d):
        return sps.mannwhitneyu(x - d, y, alternative="two-sided", method="exact").pvalue

    # shifts just inside the interval are not rejected, just outside are
    assert p(r.ci_low + eps) > 0.05 and p(r.ci_high - eps) > 0.05
    assert p(r.ci_low - eps) <= 0.05 and p(r.ci_high + eps) <= 0.05


def test_hodges_lehmann_normal_approximation_with_ties():
    x = np.array([-6, -4, -4, -3, -2, -2, -1, 0], float)
    y = np.array([-2, -1, 0, 0, 1, 1, 2, 3, 3], float)
    r = S.hodges_lehmann(x, y)
    assert r.method == "normal approximation"
    m, n = x.size, y.size
    # ties within each arm (the ties of x - d and y between the differences)
    t = np.r_[np.unique(x, return_counts=True)[1], np.unique(y, return_counts=True)[1]]
    big = m + n
    var = m * n / 12 * ((big + 1) - (t**3 - t).sum() / (big * (big - 1)))
    # 1-based order statistic; continuity-corrected like the Mann-Whitney p-value
    k = math.floor(m * n / 2 - 0.5 - sps.norm.ppf(0.975) * math.sqrt(var)) + 1
    d = np.sort((x[:, None] - y[None, :]).ravel())
    assert (r.ci_low, r.ci_high) == (d[k - 1], d[m * n - k])
    assert r.estimate == np.median(d)


def test_hodges_lehmann_exact_and_normal_agree_for_larger_samples():
    rng = np.random.default_rng(5)
    x, y = rng.normal(1, 1, 40), rng.normal(0, 1, 45)
    exact = S.hodges_lehmann(x, y)
    assert exact.method == "exact"
    d = np.sort((x[:, None] - y[None, :]).ravel())
    # the exact lower bound is an order statistic within one step of the normal rule
    k = math.floor(40 * 45 / 2 - sps.norm.ppf(0.975) * math.sqrt(40 * 45 * 86 / 12))
    assert abs(int(np.searchsorted(d, exact.ci_low)) + 1 - k) <= 1
    big = S.hodges_lehmann(rng.normal(1, 1, 60), rng.normal(0, 1, 60))
    assert big.method == "normal approximation" and big.ci_low < big.estimate < big.ci_high


def test_hodges_lehmann_too_small_says_so():
    r = S.hodges_lehmann([1.0], [2.0])
    assert r.estimate == -1.0 and math.isnan(r.ci_low) and "too few" in r.note


def test_hodges_lehmann_all_values_equal_says_so_not_too_few():
    # e.g. a zone score unchanged in every patient: 6 + 6 patients are plenty for a 95 % interval
    r = S.hodges_lehmann([0.0] * 6, [0.0] * 6)
    assert r.estimate == 0.0 and math.isnan(r.ci_low)
    assert "every value is the same" in r.note and "too few" not in r.note


def test_bootstrap_is_seeded_and_close_to_scipy(xy):
    x, y = xy
    a = S.bootstrap_median_difference(x, y, rng=np.random.default_rng(1), n_boot=4000)
    b = S.bootstrap_median_difference(x, y, rng=np.random.default_rng(1), n_boot=4000)
    c = S.bootstrap_median_difference(x, y, rng=np.random.default_rng(2), n_boot=4000)
    assert a == b and (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.estimate == pytest.approx(np.median(x) - np.median(y))
    ref = sps.bootstrap((x, y), lambda u, v, axis=-1: np.median(u, axis=axis) - np.median(v, axis=axis),
                        method="percentile", n_resamples=4000, rng=np.random.default_rng(3), vectorized=True)
    spread = y.std()
    assert a.ci_low == pytest.approx(ref.confidence_interval.low, abs=0.25 * spread)
    assert a.ci_high == pytest.approx(ref.confidence_interval.high, abs=0.25 * spread)
    with pytest.raises(TypeError, match="rng"):
        S.bootstrap_median_difference(x, y, rng=1)  # type: ignore[arg-type]


def test_ancova_matches_statsmodels_formula():
    rng = np.random.default_rng(7)
    base = rng.uniform(10, 40, 14)
    treated = np.r_[np.ones(7, bool), np.zeros(7, bool)]
    follow = 0.8 * base - 4 * treated + rng.normal(0, 2, 14)
    r = S.ancova(follow, base, treated)
    df = pd.DataFrame({"f": follow, "b": base, "arm": np.where(treated, "MSC", "placebo")})
    fit = smf.ols("f ~ C(arm, Treatment('placebo')) + b", df).fit()
    term = "C(arm, Treatment('placebo'))[T.MSC]"
    assert r.estimate == pytest.approx(fit.params[term])
    assert r.p_value == pytest.approx(fit.pvalues[term])
    assert (r.ci_low, r.ci_high) == pytest.approx(tuple(fit.conf_int().loc[term]))


def test_chi2_textbook_and_by_hand():
    # Agresti, An Introduction to Categorical Data Analysis (2nd ed.), Table 2.5: X^2 = 30.07, df 2
    r = S.chi2_test([[762, 327, 468], [484, 239, 477]])
    assert r.statistic == pytest.approx(30.07, abs=0.005)
    assert "dof=2" in r.method
    tab = np.array([[10, 20, 30], [20, 20, 10]], float)
    expected = tab.sum(1, keepdims=True) * tab.sum(0, keepdims=True) / tab.sum()
    x2 = ((tab - expected) ** 2 / expected).sum()
    r = S.chi2_test(tab)
    assert r.statistic == pytest.approx(x2) and r.p_value == pytest.approx(sps.chi2.sf(x2, 2))
    assert r.estimate == pytest.approx(math.sqrt(x2 / tab.sum()))  # Cramér's V, min dim 2


def test_fisher_matches_scipy():
    rng = np.random.default_rng(0)
    for _ in range(50):  # 2x2: identical to SciPy's exact test
        tab = rng.integers(1, 8, (2, 2))
        assert S.fisher_test(tab).p_value == pytest.approx(sps.fisher_exact(tab).pvalue, rel=1e-9)
    # 2x3: brute-force enumeration of every table with the same margins
    tab = np.array([[3, 2, 1], [0, 2, 5]])
    cols, r1 = tab.sum(0), tab[0].sum()

    def prob(a):
        return np.prod([math.comb(int(c), int(k)) for c, k in zip(cols, a)]) / math.comb(int(cols.sum()), int(r1))

    p_obs = prob(tab[0])
    tables = [a for a in itertools.product(*(range(c + 1) for c in cols)) if sum(a) == r1]
    p_hand = sum(prob(a) for a in tables if prob(a) <= p_obs * (1 + 1e-7))
    r = S.fisher_test(tab)
    assert r.p_value == pytest.approx(p_hand) and r.statistic == pytest.approx(p_obs)
    # and SciPy's Monte Carlo estimate of the same test agrees within its error
    mc = sps.fisher_exact(tab, method=sps.MonteCarloMethod(n_resamples=20000, rng=np.random.default_rng(1)))
    assert r.p_value == pytest.approx(mc.pvalue, abs=0.01)
    r = S.fisher_test([[6, 2], [1, 4]])
    assert r.p_value == pytest.approx(0.10256410256) and r.estimate == pytest.approx(12.0)
    # empty category columns are dropped: same as the 2x2
    assert S.fisher_test([[6, 0, 2], [1, 0, 4]]).p_value == pytest.approx(r.p_value)


def test_tables_with_one_category_or_arm_give_notes():
    r = S.chi2_test([[5, 0, 0], [3, 0, 0]])
    assert math.isnan(r.p_value) and "one category" in r.note
    assert "one category" in S.fisher_test([[0, 4, 0], [0, 3, 0]]).note
    assert "two arms" in S.chi2_test([[2, 3, 1], [0, 0, 0]]).note
    with pytest.raises(ValueError, match="non-negative integer"):
        S.chi2_test([[1.5, 2], [3, 4]])


def test_mixed_model_matches_statsmodels():
    rng = np.random.default_rng(11)
    rows = []
    for i in range(16):
        treated = int(i < 8)
        u = rng.normal(0, 3)
        for day in (0, 7, 21):
            rows.append({"patient_id": f"p{i}", "day": day, "treated": treated,
                         "value": 30 + u - 0.2 * day - 0.3 * day * treated + rng.normal(0, 1.5)})
    df = pd.DataFrame(rows)
    r, n_pat, n_obs = S.mixed_model(df)
    fit = smf.mixedlm("value ~ treated * day", df.astype({"treated": float, "day": float}),
                      groups=df["patient_id"]).fit(reml=True)
    assert (n_pat, n_obs) == (16, 48)
    assert r.estimate == pytest.approx(fit.params["treated:day"])
    assert r.p_value == pytest.approx(fit.pvalues["treated:day"])
    assert r.ci_low < -0.3 < r.ci_high or r.ci_high < 0
    tiny, _, _ = S.mixed_model(df[df["patient_id"].isin(["p0", "p9"])])
    assert math.isnan(tiny.estimate) and "too little data" in tiny.note


def test_stats_reject_bad_input():
    with pytest.raises(ValueError, match="finite"):
        S.mann_whitney([1.0, np.nan], [2.0])
    with pytest.raises(ValueError, match="1-D"):
        S.welch_t([[1.0, 2.0]], [2.0, 3.0])
    with pytest.raises(ValueError, match="confidence"):
        S.hodges_lehmann([1.0], [2.0], confidence=95)


# ----------------------------------------------------------------- simulation


def test_null_simulation_rejects_at_nominal_rate():
    """No effect: Mann-Whitney rejects ~5 % of 400 trials; HL intervals cover 0 ~95 %."""
    rejections, covered, trials = 0, 0, 400
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        x, y = rng.normal(0, 1, 8), rng.normal(0, 1, 8)
        rejections += S.mann_whitney(x, y).p_value < 0.05
        hl = S.hodges_lehmann(x, y)
        covered += hl.ci_low <= 0 <= hl.ci_high
    # Binomial(400, 0.05): mean 20, sd 4.4; exact MW at 8+8 is slightly conservative (size 0.050)
    assert 6 <= rejections <= 34, rejections
    assert covered / trials >= 0.92, covered


def test_pipeline_null_and_large_effect():
    null_p = []
    for seed in range(20):
        scores, arms = make_trial(np.random.default_rng(seed), n_per_arm=6, effect=0.0)
        res = compare_arms(scores, arms, metrics=["percent_opacity"], visits=VISITS, strata=[], n_boot=200,
                           mixed=False, rng=seed)
        t = res.tests
        null_p.append(t.query("test == 'mann_whitney' and visit == 'day 21'")["p_unadjusted"].iloc[0])
    assert sum(p < 0.05 for p in null_p) <= 4  # Binomial(20, 0.05): P(X >= 5) < 0.003
    scores, arms = make_trial(np.random.default_rng(99), n_per_arm=8, effect=-15.0)
    res = compare_arms(scores, arms, visits=VISITS, rng=0)
    row = res.tests.query("stratum == 'all' and visit == 'day 21' and metric == 'percent_opacity'").set_index("test")
    assert row.loc["mann_whitney", "p_unadjusted"] < 0.01
    assert row.loc["hodges_lehmann", "ci_high"] < 0 and row.loc["hodges_lehmann", "estimate"] < -8
    assert row.loc["bootstrap_median_difference", "ci_high"] < 0
    assert row.loc["ancova", "p_unadjusted"] < 0.01
    mixed = res.tests.query("stratum == 'all' and test == 'mixed_model' and metric == 'percent_opacity'")
    assert mixed["ci_high"].iloc[0] < 0 and mixed["p_unadjusted"].iloc[0] < 0.01
    _no_silent_nan(res.tests)


# ----------------------------------------------------------------- pipeline


def test_changes_and_tests_match_direct_computation():
    scores, arms = make_trial(np.random.default_rng(3), n_per_arm=7, effect=-6)
    res = compare_arms(scores, arms, visits=VISITS, rng=np.random.default_rng(0))
    ch = res.changes.query("metric == 'percent_opacity'")
    # change by hand: follow-up minus the patient's first scan
    s = scores.assign(date=pd.to_datetime(scores["study_date"])).sort_values(["patient_id", "date"])
    first = s.groupby("patient_id")["percent_opacity"].transform("first")
    s = s.assign(change=s["percent_opacity"] - first, day=(s["date"] - s.groupby("patient_id")["date"].transform("min")).dt.days)
    merged = ch.merge(s[["patient_id", "day", "change"]], on=["patient_id", "day"], suffixes=("", "_hand"))
    assert len(merged) == len(ch) == 42
    np.testing.assert_allclose(merged["change"], merged["change_hand"])
    d21 = ch[ch["visit"] == "day 21"]
    x = d21.loc[d21["arm"] == "MSC", "change"].to_numpy()
    y = d21.loc[d21["arm"] == "placebo", "change"].to_numpy()
    t = res.tests.query("stratum == 'all' and visit == 'day 21' and metric == 'percent_opacity'").set_index("test")
    assert t.loc["mann_whitney", "p_unadjusted"] == pytest.approx(sps.mannwhitneyu(x, y).pvalue)
    assert t.loc["welch_t", "p_unadjusted"] == pytest.approx(sps.ttest_ind(x, y, equal_var=False).pvalue)
    assert t.loc["hodges_lehmann", "estimate"] == pytest.approx(np.median(np.subtract.outer(x, y)))
    summ = res.summary.query("stratum == 'all' and visit == 'day 21' and metric == 'percent_opacity' "
                             "and outcome == 'change' and arm == 'MSC'")
    assert summ["median"].iloc[0] == pytest.approx(np.median(x)) and summ["n"].iloc[0] == 7
    # response table equals the criteria applied by hand, and the categories table counts it
    r = res.responses[res.responses["visit"] == "day 21"]
    hand = ResponseCriteria().classify(r["baseline"].to_numpy(), r["change"].to_numpy())
    assert (r["category"].to_numpy() == hand).all()
    cats = res.categories.query("stratum == 'all' and visit == 'day 21'")
    assert cats["count"].sum() == 14
    table = pd.crosstab(r["arm"], r["category"]).reindex(index=["MSC", "placebo"], columns=list(RESPONSE_CATEGORIES), fill_value=0)
    nonempty = table.loc[:, table.sum() > 0].to_numpy()
    assert nonempty.shape[1] >= 2, table  # this trial has at least two categories at day 21
    ref = sps.chi2_contingency(nonempty, correction=False)
    assert t.loc["chi2", "statistic"] == pytest.approx(ref.statistic)
    assert t.loc["chi2", "p_unadjusted"] == pytest.approx(ref.pvalue)
    assert t.loc["fisher_exact", "p_unadjusted"] == pytest.approx(S.fisher_test(nonempty).p_value)
    assert {"all", "severity=moderate", "severity=severe"} <= set(res.tests["stratum"])
    _no_silent_nan(res.tests)


def test_response_thresholds_at_boundaries():
    crit = ResponseCriteria(absolute=5, improved_relative_pct=30, progressed_relative_pct=20, min_absolute=1)
    base = np.array([20.3, 20.0, 10.0, 2.0, 0.0, 0.0, 10.0, 3.0])
    change = np.array([-5.0, -4.9, -3.0, -0.9, 4.0, 5.0, 2.0, 0.8])
    assert crit.classify(base, change).tolist() == [
        "improved",  # exactly 5 points (float noise tolerated)
        "stable",  # 4.9 points, 24.5 %
        "improved",  # 30 % relative, 3 points
        "stable",  # 45 % relative but below the 1-point floor
        "stable",  # baseline 0: relative undefined, absolute 4 < 5
        "progressed",  # baseline 0, +5 points
        "progressed",  # +20 % and 2 points
        "stable",  # +27 % but 0.8 points
    ]
    with pytest.raises(ValueError, match="absolute"):
        ResponseCriteria(absolute=0)
    with pytest.raises(ValueError, match="min_absolute"):
        ResponseCriteria(min_absolute=10)
    # NumPy scalars (thresholds computed with NumPy) were refused; text gave a bare TypeError
    assert ResponseCriteria(absolute=np.float32(5), min_absolute=np.int64(1)) == ResponseCriteria()
    for bad in ({"min_absolute": "1"}, {"absolute": True}, {"improved_relative_pct": np.nan}):
        with pytest.raises(ValueError, match=f"ResponseCriteria.{next(iter(bad))} must be"):
            ResponseCriteria(**bad)


def test_assign_visits_windows_and_nearest():
    labels, targets = assign_visits([0, 5, 9, 10, 14, 18], {"baseline": (0, 0), "a": (7, 3), "b": (12, 2)})
    assert labels.tolist() == ["baseline", "a", "a", "b", "b", None]
    assert np.isnan(targets[-1]) and targets[2] == 7
    with pytest.raises(ValueError, match="visits"):
        compare_arms(*make_trial(np.random.default_rng(0)), visits={"x": (7,)})


def _tiny(rows, arms):
    return (pd.DataFrame(rows, columns=["patient_id", "day", "percent_opacity"]),
            pd.DataFrame(arms, columns=["patient_id", "arm"]))


def test_join_problems_are_reported():
    scores, arms = make_trial(np.random.default_rng(1), n_per_arm=5)
    # rows 3k, 3k+1, 3k+2 are patient k at days 0, 7, 21
    scores.loc[5, "error"] = "NotAChestError: abdomen"  # P001's day-21 scan failed
    scores.loc[6, "error"] = "PixelDecodeError: truncated"  # P002's baseline failed
    extra = scores.iloc[[4]].assign(series_uid="dup")  # a second P001 scan at day 7
    late = scores.iloc[[2]].assign(study_date=(pd.Timestamp(scores.iloc[0]["study_date"]) + pd.Timedelta(days=60)).date().isoformat(),
                                   series_uid="late")  # P000 at day 60: outside every window
    orphan = scores.iloc[0:3].assign(patient_id="X999")  # no arm
    scores = pd.concat([scores, extra, late, orphan], ignore_index=True)
    arms = pd.concat([arms, pd.DataFrame([{"patient_id": "P777", "arm": "MSC", "severity": "severe"},
                                          {"patient_id": "P778", "arm": "other", "severity": "severe"}])])
    res = compare_arms(scores, arms, visits=VISITS, rng=0, mixed=False)
    w = res.warnings
    kinds = w["kind"].value_counts().to_dict()
    assert kinds["failed_scan"] == 2 and any("failed_scan x2" in n for n in res.notes)
    dup = w.query("kind == 'duplicate_in_window'")
    assert dup["patient_id"].tolist() == ["P001"] and "dropped series_uid=dup" in dup["detail"].iloc[0]
    assert w.query("kind == 'outside_window'")["patient_id"].tolist() == ["P000"]
    assert w.query("kind == 'no_arm'")["patient_id"].tolist() == ["X999"]
    assert set(w.query("kind == 'no_scans'")["patient_id"]) == {"P777", "P778"}
    assert "'other'" in w.query("kind == 'arm_without_scans'")["detail"].iloc[0]
    assert w.query("kind == 'missing_baseline'")["patient_id"].tolist() == ["P002"]
    assert w.query("kind == 'missing_visit'")[["patient_id", "visit"]].values.tolist() == [["P001", "day 21"]]
    status = res.scans["status"].value_counts().to_dict()
    assert status == {"used": 30 - 2 - 2, "failed_scan": 2, "missing_baseline": 2, "no_arm": 3,
                      "duplicate_in_window": 1, "outside_window": 1}
    assert "P002" not in set(res.changes["patient_id"])


def test_missing_baseline_with_visit_labels():
    scores = pd.DataFrame({
        "patient_id": ["a", "a", "b", "b", "c", "d", "d", "e", "e"],
        "visit": ["V0", "V1", "V0", "V1", "V1", "V0", "V1", "V0", "V1"],
        "day": [0, 7, 0, 8, 7, 0, 7, 0, 6],
        "percent_opacity": [20, 15, 25, 14, 30, 22, 23, 18, 19],
    })
    arms = pd.DataFrame({"patient_id": list("abcde"), "arm": ["T", "T", "T", "placebo", "placebo"]})
    res = compare_arms(scores, arms, rng=0, mixed=False)
    assert res.settings["baseline_visit"] == "V0" and res.settings["reference_arm"] == "placebo"
    assert res.warnings.query("kind == 'missing_baseline'")["patient_id"].tolist() == ["c"]
    assert set(res.changes["patient_id"]) == {"a", "b", "d", "e"}
    with pytest.raises(ValueError, match="baseline_visit"):
        compare_arms(scores, arms, baseline_visit="V9")


def test_arm_with_one_patient_gives_notes_not_crashes():
    scores, arms = _tiny(
        [("a", 0, 20), ("a", 7, 10), ("b", 0, 30), ("b", 7, 25), ("c", 0, 25), ("c", 7, 26)],
        [("a", "MSC"), ("b", "placebo"), ("c", "placebo")],
    )
    res = compare_arms(scores, arms, rng=0)
    t = res.tests.set_index("test")
    assert t.loc["mann_whitney", "n_treatment"] == 1 and np.isfinite(t.loc["mann_whitney", "p_unadjusted"])
    assert "at least 2" in t.loc["welch_t", "note"] and "at least 2" in t.loc["bootstrap_median_difference", "note"]
    assert "too few" in t.loc["hodges_lehmann", "note"]
    assert t.loc["hodges_lehmann", "estimate"] == pytest.approx(-10 - np.median([-5, 1]))
    assert "at least 4" in t.loc["ancova", "note"]
    assert t.loc["mixed_model", "note"] != ""
    _no_silent_nan(res.tests)


def test_all_responses_in_one_category():
    scores, arms = _tiny(
        [(p, d, v) for p, base in zip("abcd", (20, 25, 30, 22)) for d, v in ((0, base), (7, base + 0.1))],
        [("a", "MSC"), ("b", "MSC"), ("c", "placebo"), ("d", "placebo")],
    )
    res = compare_arms(scores, arms, rng=0, mixed=False)
    assert set(res.responses["category"]) == {"stable"}
    chi = res.tests.query("test in ['chi2', 'fisher_exact']")
    assert chi["p_unadjusted"].isna().all() and chi["note"].str.contains("one category").all()
    _no_silent_nan(res.tests)


def test_missing_metric_value_and_zero_baseline():
    scores, arms = _tiny(
        [("a", 0, 0.0), ("a", 7, 3.0), ("b", 0, 10), ("b", 7, None), ("c", 0, 12), ("c", 7, 8), ("d", 0, 9), ("d", 7, 9)],
        [("a", "MSC"), ("b", "MSC"), ("c", "placebo"), ("d", "placebo")],
    )
    res = compare_arms(scores, arms, rng=0, mixed=False)
    kinds = set(res.warnings["kind"])
    assert {"missing_value", "zero_baseline", "missing_visit"} <= kinds
    a7 = res.changes.query("patient_id == 'a' and visit == 'day 7'").iloc[0]
    assert a7["change"] == 3.0 and np.isnan(a7["relative_change_pct"])


def test_ids_are_joined_as_text_and_three_arms():
    scores, arms = make_trial(np.random.default_rng(2), n_per_arm=4, arms=("low", "high", "control"))
    scores["patient_id"] = scores["patient_id"].str[1:].astype(int)  # 0, 1, ... as integers
    arms["patient_id"] = arms["patient_id"].str[1:].astype(int).astype(str)
    res = compare_arms(scores, arms, visits=VISITS, strata=[], rng=0, mixed=False)
    assert res.settings["reference_arm"] == "control"
    assert set(res.tests["comparison"]) == {"high vs control", "low vs control"}
    assert res.warnings.query("kind == 'no_arm'").empty


def test_days_from_study_dates_and_default_visits():
    scores, arms = make_trial(np.random.default_rng(4), n_per_arm=3, jitter=False)
    res = compare_arms(scores, arms, rng=0, mixed=False, strata=[])
    assert res.settings["visit_order"] == ["day 0", "day 7", "day 21"]
    assert sorted(res.changes["day"].unique()) == [0, 7, 21]


def test_bad_tables_raise_typed_errors():
    scores, arms = make_trial(np.random.default_rng(0), n_per_arm=3)
    with pytest.raises(InvalidTableError, match="arm"):
        compare_arms(scores, arms.drop(columns="arm"))
    with pytest.raises(InvalidTableError, match="study_date"):
        compare_arms(scores.drop(columns="study_date"), arms)
    with pytest.raises(InvalidTableError, match="two arms"):
        compare_arms(scores, pd.concat([arms, arms.iloc[[0]].assign(arm="placebo" if arms.iloc[0]["arm"] != "placebo" else "MSC")]))
    with pytest.raises(InvalidTableError, match="two arms with patients"):
        compare_arms(scores, arms.assign(arm="MSC"))
    with pytest.raises(InvalidTableError, match="not numeric"):
        compare_arms(scores.assign(percent_opacity="high"), arms)
    with pytest.raises(InvalidTableError, match="default metrics"):
        compare_arms(scores[["patient_id", "study_date"]], arms)
    with pytest.raises(ChestCTError):
        compare_arms(scores, arms, metrics=["nope"])
    with pytest.raises(ValueError, match="outcome"):
        compare_arms(scores, arms, outcome="delta")
    with pytest.raises(ValueError, match="reference_arm"):
        compare_arms(scores, arms, reference_arm="nobody")
    with pytest.raises(ValueError, match="response_metric"):
        compare_arms(scores, arms, metrics=["percent_opacity"], response_metric="percent_ggo")
    with pytest.raises(TypeError, match="scores"):
        compare_arms(scores.to_dict(), arms)


def test_json_export_is_strict_and_states_multiplicity(tmp_path):
    scores, arms = _tiny(
        [("a", 0, 20), ("a", 7, 10), ("b", 0, 30), ("b", 7, 25), ("c", 0, 25), ("c", 7, 26)],
        [("a", "MSC"), ("b", "placebo"), ("c", "placebo")],
    )
    res = compare_arms(scores, arms, rng=0, outcome="relative_change_pct")
    text = res.to_json(tmp_path / "c.json")
    doc = json.loads(text)
    assert "NaN" not in text and doc["notes"][0] == MULTIPLICITY_NOTE
    assert doc["settings"]["p_values_adjusted_for_multiplicity"] is False
    assert {"tests", "changes", "warnings", "summary", "categories", "responses", "scans"} <= set(doc)
    assert json.loads((tmp_path / "c.json").read_text()) == doc
    assert list(tmp_path.iterdir()) == [tmp_path / "c.json"]  # no temporary file left


def test_json_numbers_are_the_table_numbers_to_the_last_digit():
    # pandas' to_json(double_precision=15) keeps 15 *decimal places*: a p-value of
    # 1.234567e-14 became 1.2e-14 in comparison.json while tests.csv kept every digit.
    scores, arms = _tiny(
        [("a", 0, 20), ("a", 7, 10), ("b", 0, 30), ("b", 7, 25), ("c", 0, 25), ("c", 7, 26), ("d", 0, 21), ("d", 7, 9)],
        [("a", "MSC"), ("b", "placebo"), ("c", "placebo"), ("d", "MSC")],
    )
    res = compare_arms(scores, arms, rng=0, mixed=False)
    res.tests.loc[0, "p_unadjusted"] = 1.234567e-14
    res.tests.loc[1, "estimate"] = 3.14159265358979e-6
    doc = json.loads(res.to_json())
    for name, table in res.tables.items():
        for col in table.columns[[pd.api.types.is_float_dtype(t) for t in table.dtypes]]:
            got = np.array([np.nan if r[col] is None else r[col] for r in doc[name]], float)
            np.testing.assert_array_equal(got, table[col].to_numpy(float), err_msg=f"{name}.{col}")


def test_bootstrap_reproducible_through_rng_argument():
    scores, arms = make_trial(np.random.default_rng(8), n_per_arm=5, effect=-5)
    for rng in (lambda: 5, lambda: np.random.default_rng(5)):  # a seed, or a seeded generator
        a = compare_arms(scores, arms, visits=VISITS, rng=rng(), mixed=False, strata=[])
        b = compare_arms(scores, arms, visits=VISITS, rng=rng(), mixed=False, strata=[])
        pd.testing.assert_frame_equal(a.tests, b.tests)


def test_bad_dates_and_missing_ids_are_warned():
    scores, arms = make_trial(np.random.default_rng(6), n_per_arm=3, jitter=False)
    scores.loc[1, "study_date"] = "not a date"  # P000's day-7 scan
    scores.loc[4, "patient_id"] = None  # P001's day-7 scan
    res = compare_arms(scores, arms, rng=0, mixed=False, strata=[])
    w = res.warnings
    assert w.query("kind == 'bad_date'")["detail"].str.contains("not a date").all()
    assert len(w.query("kind == 'missing_patient_id'")) == 1
    assert set(w.query("kind == 'missing_visit'")["patient_id"]) == {"P000", "P001"}
    assert res.scans["status"].value_counts()["used"] == 16


def test_compare_arms_reads_table_paths_csv_tsv_parquet(tmp_path):
    scores, arms = make_trial(np.random.default_rng(0), n_per_arm=3)
    scores.to_parquet(tmp_path / "scores.parquet")
    arms.to_csv(tmp_path / "arms.csv", index=False)
    arms.to_csv(tmp_path / "arms.tsv", index=False, sep="\t")
    expected = compare_arms(scores, arms, rng=0, mixed=False, n_boot=200).tests
    for arms_path in ("arms.csv", "arms.tsv"):
        got = compare_arms(str(tmp_path / "scores.parquet"), tmp_path / arms_path, rng=0, mixed=False, n_boot=200)
        pd.testing.assert_frame_equal(got.tests, expected)


def test_missing_column_error_names_the_file_and_few_columns(tmp_path):
    scores, arms = make_trial(np.random.default_rng(0), n_per_arm=3)
    wide = scores.drop(columns="patient_id").assign(**{f"extra_{i}": 1.0 for i in range(60)})
    path = tmp_path / "scores.csv"
    wide.to_csv(path, index=False)
    with pytest.raises(InvalidTableError) as err:
        compare_arms(path, arms)
    message = str(err.value)
    assert repr(str(path)) in message and "'patient_id'" in message
    assert f"... and {len(wide.columns) - 10} more" in message and "extra_59" not in message


def test_absent_default_response_metric_is_a_warning_row_and_absent_asked_metric_an_error(tmp_path, capsys):
    from imaging.cli.main import main

    scores, arms = make_trial(np.random.default_rng(0), n_per_arm=3)
    no_default = scores.drop(columns="percent_opacity")
    res = compare_arms(no_default, arms, rng=0, mixed=False, n_boot=200)
    row = res.warnings.query("kind == 'response_metric_substituted'")
    assert row["detail"].tolist() == ["response metric percent_opacity absent; using percent_high_opacity"]
    with pytest.raises(InvalidTableError, match="'percent_opacity'"):
        compare_arms(no_default, arms, response_metric="percent_opacity")

    no_default.to_csv(tmp_path / "scores.csv", index=False)
    arms.to_csv(tmp_path / "arms.csv", index=False)
    assert main(["compare", str(tmp_path / "scores.csv"), str(tmp_path / "arms.csv"), "-o", str(tmp_path / "rep"),
                 "--n-boot", "200", "--no-mixed"]) == 0
    assert "response metric percent_opacity absent; using percent_high_opacity" in capsys.readouterr().err


def test_a_cells_bootstrap_interval_does_not_depend_on_the_other_metrics_compared():
    """One generator shared in turn by every cell made a cell's CI change when a metric was
    added (a sensitivity analysis moved the primary analysis' interval)."""
    scores, arms = make_trial(np.random.default_rng(3), n_per_arm=6, effect=-10)

    def boot(metrics):
        res = compare_arms(scores, arms, metrics=metrics, visits=VISITS, rng=7, n_boot=300, mixed=False)
        t = res.tests
        return t[(t["test"] == "bootstrap_median_difference") & (t["metric"] == "percent_opacity")
                 & (t["stratum"] == "all")][["visit", "ci_low", "ci_high"]].reset_index(drop=True)

    alone = boot(["percent_opacity"])
    pd.testing.assert_frame_equal(alone, boot(["severity_score_total", "percent_opacity"]))
    assert len(alone) == 2 and alone[["ci_low", "ci_high"]].notna().all().all()
