"""The result every statistic returns, the input checks they share, and descriptives.

Every function of :mod:`imaging.trial.stats` takes the *treatment* sample ``x`` and the
*reference* (control) sample ``y``, checks them with :func:`_sample` (1-D, finite:
anything else raises ``ValueError`` naming the argument) and returns a
:class:`TestResult`.  Samples too small for a statistic give a result whose numbers
are NaN and whose ``note`` says why (:func:`_too_small`): results are never NaN
without a reason.  :func:`describe` gives the descriptives of one sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["TestResult", "describe"]


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


def _too_small(test: str, x: np.ndarray, y: np.ndarray, minimum: int) -> TestResult | None:
    if x.size < minimum or y.size < minimum:
        return TestResult(
            test,
            note=f"needs at least {minimum} patient(s) per arm; got {x.size} (treatment) and {y.size} (reference)",
        )
    return None


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
