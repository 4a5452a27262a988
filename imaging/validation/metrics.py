"""Agreement measures shared by the validations: Dice overlap, percents, errors against truth.

Every function takes plain arrays or numbers, so a researcher can measure their own masks
and scores the same way :mod:`imaging.validation` measures ours.

Examples
--------
>>> import numpy as np
>>> a = np.zeros((4, 4), bool); a[:2] = True
>>> b = np.zeros((4, 4), bool); b[1:3] = True
>>> round(dice(a, b), 3)
0.5
>>> value_range([0.5, 0.25])
'0.250..0.500'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["dice", "percent", "value_range", "PooledDice", "errors_against_truth"]

#: A measured percent within this many points of the truth counts as agreeing (percentage points).
AGREEMENT_POINTS = 2.0

#: Truth percent opacity that splits the agreement count into mild and severe scans (%).
SEVERE_TRUTH_PERCENT = 30.0


def dice(a: Any, b: Any) -> float:
    """Dice overlap ``2 |A ∩ B| / (|A| + |B|)`` of two masks (nonzero = inside).

    Parameters
    ----------
    a, b : array_like, same shape
        Masks; any nonzero value counts as inside.

    Returns
    -------
    float
        In 0..1; 1.0 when both masks are empty.
    """
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return float(2.0 * np.count_nonzero(a & b) / total) if total else 1.0


def percent(part: int | float, whole: int | float) -> float:
    """``100 * part / whole`` (%), with a whole under 1 counted as 1 (no division by zero)."""
    return 100.0 * float(part) / max(float(whole), 1.0)


def value_range(values: Sequence[float], digits: int = 3) -> str:
    """``"min..max"`` of the values, or the single value when they are all equal."""
    lo, hi = min(values), max(values)
    return f"{lo:.{digits}f}..{hi:.{digits}f}" if lo != hi else f"{values[0]:.{digits}f}"


@dataclass
class PooledDice:
    """Dice over many masks pooled (sums of overlaps and sizes), e.g. all slices of a scan set.

    Examples
    --------
    >>> tally = PooledDice()
    >>> tally.add([1, 1, 0], [1, 0, 0]); tally.add([0, 1], [0, 1])
    >>> round(tally.value, 3)
    0.8
    """

    overlap: int = 0
    total: int = 0

    def add(self, predicted: Any, reference: Any) -> None:
        """Add one pair of masks (same shape; nonzero = inside)."""
        p, r = np.asarray(predicted, bool), np.asarray(reference, bool)
        self.overlap += int(np.count_nonzero(p & r))
        self.total += int(np.count_nonzero(p) + np.count_nonzero(r))

    @property
    def value(self) -> float:
        """The pooled Dice (0 when nothing was added)."""
        return 2.0 * self.overlap / max(self.total, 1)


def errors_against_truth(truth: Sequence[float], measured: Sequence[float]) -> dict[str, Any]:
    """How far measured percents (e.g. percent opacity) are from the truth, in points.

    Parameters
    ----------
    truth, measured : sequences of float, same length, %
        One value per scan.

    Returns
    -------
    dict
        ``scans``, ``mean_error`` (measured − truth), ``mean_abs_error``, ``max_abs_error``
        (percentage points); ``within_2`` ("k/n" scans within ±:data:`AGREEMENT_POINTS`),
        the same split at a truth of :data:`SEVERE_TRUTH_PERCENT` (``within_2_truth_le_30``,
        ``within_2_truth_gt_30``), and ``pearson_r`` of measured against truth.

    Examples
    --------
    >>> row = errors_against_truth([10.0, 40.0], [9.0, 35.0])
    >>> row["mean_error"], row["within_2"], row["within_2_truth_gt_30"]
    (-3.0, '1/2', '0/1')
    """
    t, m = np.asarray(truth, float), np.asarray(measured, float)
    err = m - t
    near = np.abs(err) <= AGREEMENT_POINTS
    mild = t <= SEVERE_TRUTH_PERCENT
    return {
        "scans": int(err.size),
        "mean_error": float(err.mean()),
        "mean_abs_error": float(np.abs(err).mean()),
        "max_abs_error": float(np.abs(err).max()),
        "within_2": f"{int(near.sum())}/{err.size}",
        "within_2_truth_le_30": f"{int(near[mild].sum())}/{int(mild.sum())}",
        "within_2_truth_gt_30": f"{int(near[~mild].sum())}/{int((~mild).sum())}",
        "pearson_r": float(np.corrcoef(t, m)[0, 1]) if err.size > 1 else float("nan"),
    }
