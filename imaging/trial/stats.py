"""Two-sample statistics used to compare trial arms: pure functions on 1-D arrays.

This module is the one place to import them from (``from imaging.trial import stats as
S``); each family lives in its own module:

* :mod:`imaging.trial.stats_result`: :class:`TestResult`, the shared input checks,
  :func:`describe`;
* :mod:`imaging.trial.stats_rank`: :func:`mann_whitney`, :func:`hodges_lehmann`;
* :mod:`imaging.trial.stats_difference`: :func:`bootstrap_median_difference`, :func:`welch_t`;
* :mod:`imaging.trial.stats_categorical`: :func:`chi2_test`, :func:`fisher_test`;
* :mod:`imaging.trial.stats_models`: :func:`ancova`, :func:`mixed_model`.

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

from imaging.trial.stats_categorical import chi2_test, fisher_test
from imaging.trial.stats_difference import bootstrap_median_difference, welch_t
from imaging.trial.stats_models import ancova, mixed_model
# _mwu_null_cdf (the exact null distribution of U) is imported for the tests that check it
from imaging.trial.stats_rank import EXACT_HL_MAX_N, _mwu_null_cdf, hodges_lehmann, mann_whitney
from imaging.trial.stats_result import TestResult, describe

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
