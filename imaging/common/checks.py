"""Small argument checks shared by the public functions (numpy only)."""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["is_real_number"]


def is_real_number(value: object) -> bool:
    """True for a real number (Python or NumPy int/float), False for bools and anything else.

    >>> [is_real_number(v) for v in (1, 2.5, np.float32(3), True, np.bool_(False), "4", None)]
    [True, True, True, False, False, False, False]
    """
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
