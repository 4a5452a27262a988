"""Truth labels of the phantom on the full matrix.

The labels are thresholds of the lung and disease fields upsampled the same way as the HU
(:func:`imaging.phantom.grid.upsample`), so that labels and HU share their boundaries:
``lungs`` is 1 (right lung, ``u < 0``: low ``x`` index) or 2 (left) where the lung field
is positive; ``lesions`` is 1 (ground-glass) or 2 (consolidation) inside the lungs where
the disease propensity reaches the lesion's thresholds (:mod:`imaging.phantom.lesions`).
"""

from __future__ import annotations

import numpy as np

from imaging.phantom.anatomy import Pose
from imaging.phantom.grid import WorkGrid, upsample
from imaging.phantom.lesions import Lesions
from imaging.phantom.lungs import LungBox

__all__ = ["truth_labels"]


def _side(g: WorkGrid, x: np.ndarray, pose: Pose) -> np.ndarray:
    """(1, 1, len(x)) uint8: 1 right lung, 2 left lung, by the sign of the patient's ``u``."""
    X = g.full_shape[2]
    u_full = ((x - (X - 1) / 2) * g.full_spacing_mm[2] / g.scale_mm - pose.du).astype(np.float32)
    return np.where(u_full < 0, 1, 2).astype(np.uint8)[None, None, :]


def truth_labels(g: WorkGrid, lb: LungBox, lesions: Lesions, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """Lung and lesion labels of the full matrix.

    Parameters
    ----------
    g : WorkGrid
    lb : LungBox
        The lung field on the work grid.
    lesions : Lesions
        The disease field and its thresholds.
    pose : Pose
        This visit's shift (tells the right lung from the left).

    Returns
    -------
    lungs : uint8 ndarray of ``g.full_shape``
        0 background, 1 right lung, 2 left lung.
    lesions : uint8 ndarray of ``g.full_shape``
        0 none, 1 ground-glass, 2 consolidation.
    """
    fbox = g.full_box(lb.box)
    lf_full = upsample(lb.field, g.shape, lb.box, g.full_shape, fbox) if g.shape != g.full_shape else lb.field
    lungs = np.zeros(g.full_shape, dtype=np.uint8)
    out = np.zeros(g.full_shape, dtype=np.uint8)
    inside = lf_full > 0
    lungs[fbox] = np.where(inside, _side(g, np.arange(fbox[2].start, fbox[2].stop), pose), 0)
    if lesions.drawn:
        df = lesions.field
        df_full = upsample(df, g.shape, lb.box, g.full_shape, fbox) if g.shape != g.full_shape else df
        les = inside & (df_full >= lesions.ggo_threshold)
        out[fbox] = np.where(les & (df_full >= lesions.consolidation_threshold), 2, np.where(les, 1, 0)).astype(np.uint8)
    return lungs, out
