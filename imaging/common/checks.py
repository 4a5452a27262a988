"""Small argument checks shared by the public functions (numpy only)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["is_real_number", "finite_number"]


def is_real_number(value: object) -> bool:
    """True for a real number (Python or NumPy int/float), False for bools and anything else.

    >>> [is_real_number(v) for v in (1, 2.5, np.float32(3), True, np.bool_(False), "4", None)]
    [True, True, True, False, False, False, False]
    """
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def finite_number(value: Any) -> float | None:
    """A table cell as a finite float, else ``None`` (text, NaN, infinity, missing).

    >>> [finite_number(v) for v in ("2.5", 3, float("nan"), None, "x")]
    [2.5, 3.0, None, None, None]
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
