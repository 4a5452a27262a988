"""Inference with the shipped opacity U-Net: lungs and opacity labels for HU or display input.

Input kinds (``kind``): ``"hu"``; ``"display"``, 8-bit images used as they are (already
CLAHE-equalised, as the public COVID-19 slice sets ship them); ``"window"``, 8-bit images of
a plain window without equalisation (as most viewers and PACS exports save them), which get
the training min-max and CLAHE first (:func:`models.preprocess.display_to_input`) and are
otherwise treated as display input below.

The method, one module per step:

1. the network (:class:`models.network.UNet2D`, loaded by :mod:`models.checkpoint`) labels
   each axial slice as background, lung without lesion, or lesion
   (:func:`models.prediction.predict_classes`); masks come back in the input's own
   geometry (the logits are resized bilinearly from the network's 256 x 256 to the slice
   size before the decision);
2. for HU input the classes are checked against the densities
   (:func:`models.postprocess.refine_with_hu`: airless "lung" regions, the dense rim
   next to the chest wall and lesion voxels outside the opacity density range are
   dropped); display and window input is not refined, its densities are too approximate;
3. lungs are the union of the two lung classes; the lesion is split into ground-glass and
   consolidation by density (:func:`models.postprocess.split_lesion_by_density`, at
   :data:`imaging.scoring.constants.HU_CONSOLIDATION_MIN` = -300 HU).  For 8-bit input
   (both kinds) the HU are estimated from the grey levels as given, with the linear
   inverse of the training data's [-1250, 250] HU display window
   (:func:`models.preprocess.display_to_hu_approx`), which ignores the per-slice CLAHE
   equalisation of display images: the split is then approximate.  For plain-window
   exports it assumes that window too: close for an export of [-1250, 250] HU, off by the
   difference for another window (a lung window of level -600, width 1500 HU reads 100 HU
   too dense, so lesion between -400 and -300 HU counts as consolidation).

This module holds the entry points (:func:`segment_opacity`,
:func:`predict_lungs_and_opacity`, :func:`reuse_predictions`) and re-exports the names of
the step modules that callers import from here.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.checkpoint import CHECKPOINT_FORMAT, DEFAULT_WEIGHTS, lesion_threshold, load_model
from models.postprocess import (
    drop_airless_lung_regions,
    refine_with_hu,
    rim_trim_steps,
    split_lesion_by_density,
    trim_extrapulmonary_rim,
)
from models.prediction import iter_probabilities, predict_classes
from models.preprocess import display_to_hu_approx

__all__ = [
    "DEFAULT_WEIGHTS",
    "CHECKPOINT_FORMAT",
    "load_model",
    "predict_classes",
    "lesion_threshold",
    "iter_probabilities",
    "segment_opacity",
    "predict_lungs_and_opacity",
    "reuse_predictions",
    "split_lesion_by_density",
    "trim_extrapulmonary_rim",
    "rim_trim_steps",
    "drop_airless_lung_regions",
    "refine_with_hu",
]


def segment_opacity(
    array: np.ndarray, *, kind: str = "hu", spacing_mm: Sequence[float] | None = None
) -> np.ndarray:
    """Opacity labels of a CT slice or volume: 0 none, 1 ground-glass, 2 consolidation.

    Parameters
    ----------
    array : (Y, X) or (Z, Y, X) ndarray
        HU (``kind="hu"``) or 8-bit grey levels (PNG/JPEG slices, not HU): as public
        datasets ship them, already CLAHE-equalised (``kind="display"``), or a plain
        window without equalisation as most viewers and PACS exports save them
        (``kind="window"``); axial, radiological orientation.
    kind : {"hu", "display", "window"}
    spacing_mm : (Y, X) or (Z, Y, X) floats, mm, or None

    Returns
    -------
    uint8 ndarray, same shape as ``array``

    Notes
    -----
    The network finds the lesion (ground-glass and consolidation together); the split
    uses the density, in HU for HU input and the approximate linear inverse of the
    display window for display and window input (see the module docstring).
    """
    _, opacity = _lungs_and_opacity(array, kind=kind, spacing_mm=spacing_mm)
    return opacity


def predict_lungs_and_opacity(
    hu: np.ndarray, *, spacing_mm: Sequence[float] | None = None, kind: str = "hu"
) -> tuple[np.ndarray, np.ndarray]:
    """Lung mask and opacity labels from one network pass.

    Parameters
    ----------
    hu : (Y, X) or (Z, Y, X) ndarray, HU (or 8-bit grey levels with ``kind="display"``
        or ``kind="window"``, see :func:`segment_opacity`)
    spacing_mm : (Y, X) or (Z, Y, X) floats, mm, or None
    kind : {"hu", "display", "window"}

    Returns
    -------
    lungs : bool ndarray, same shape (both lungs, lesions included)
    opacity : uint8 ndarray, same shape: 0 none, 1 ground-glass, 2 consolidation
    """
    memo = _REUSE.get()
    arr = np.ascontiguousarray(hu)
    try:
        spacing_key = None if spacing_mm is None else tuple(float(s) for s in spacing_mm)
    except (TypeError, ValueError):
        spacing_key = "unusable"  # predict_classes raises the error that names the argument
    if memo is None or arr.dtype.kind not in "biuf" or spacing_key == "unusable":
        return _lungs_and_opacity(hu, kind=kind, spacing_mm=spacing_mm)
    key = (kind, arr.shape, arr.dtype.str, spacing_key,
           hashlib.blake2b(memoryview(arr).cast("B")).hexdigest())
    if key not in memo:
        memo[key] = _lungs_and_opacity(arr, kind=kind, spacing_mm=spacing_mm)
    lungs, opacity = memo[key]
    return lungs.copy(), opacity.copy()


_REUSE: contextvars.ContextVar[dict[Any, tuple[np.ndarray, np.ndarray]] | None] = contextvars.ContextVar(
    "chestct_reuse_predictions", default=None)


@contextlib.contextmanager
def reuse_predictions():
    """Within the block, :func:`predict_lungs_and_opacity` runs the network once per input.

    Calls with the same array content, shape, dtype, spacing and kind get copies of the
    first result (e.g. the lungs and the opacity of one scan, both from the model).  The
    memo is dropped when the block ends.

    Examples
    --------
    >>> with reuse_predictions():
    ...     pass
    """
    token = _REUSE.set({})
    try:
        yield
    finally:
        _REUSE.reset(token)


def _lungs_and_opacity(array: Any, *, kind: str, spacing_mm: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
    """One network pass, refined with the HU (HU input) and split by density (see the module notes)."""
    classes = predict_classes(array, kind=kind, spacing_mm=spacing_mm)
    arr = np.asarray(array)  # checked by predict_classes
    spacing_yx = None if spacing_mm is None else (float(spacing_mm[-2]), float(spacing_mm[-1]))
    density = arr if kind == "hu" else display_to_hu_approx(arr)  # "display" and "window"
    if kind == "hu":  # display / window densities are too approximate for these checks
        lungs, lesion = refine_with_hu(classes, density, spacing_yx_mm=spacing_yx)
    else:
        lungs, lesion = classes > 0, classes == 2
    return lungs, split_lesion_by_density(lesion, density)
