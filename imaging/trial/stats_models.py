"""Regression models of the arm effect: ANCOVA per visit, a linear mixed model over visits.

:func:`ancova` models the follow-up value on arm adjusted for the baseline value
(ordinary least squares); :func:`mixed_model` fits ``value ~ arm * day`` with a random
intercept per patient over all visits.  Both are fitted by statsmodels (imported when
first used, as it is slow to import).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from imaging.trial.stats_result import TestResult, _check_confidence, _sample

__all__ = ["ancova", "mixed_model"]


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
