"""HU slices for the 2.5-D lung and lesion network: fixed windows, a common pixel size, labels.

The network sees one axial slice with its neighbours about :data:`NEIGHBOUR_MM` above and
below (2.5-D), in HU through fixed, documented windows (no per-slice normalisation, no
CLAHE), resampled in-plane to :data:`PIXEL_MM` so that every scanner's matrix looks alike:

* channels 0-2: the slice below, the slice, the slice above in the wide window
  :data:`WIDE_WINDOW_HU` (air to bone: lungs, airways, fat, soft tissue);
* channel 3: the slice in the soft-tissue window :data:`SOFT_WINDOW_HU` (consolidation
  against heart, liver and spleen).

Labels (:data:`CLASS_NAMES`): 0 background, 1 lung without lesion, 2 ground-glass,
3 consolidation; lungs are classes 1-3.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "WIDE_WINDOW_HU",
    "SOFT_WINDOW_HU",
    "NEIGHBOUR_MM",
    "PIXEL_MM",
    "IN_CHANNELS",
    "CLASS_NAMES",
    "neighbour_offset",
    "window",
    "volume_channels",
    "labels_of",
    "to_grid",
]

#: Wide window (HU) mapped to 0..1: air to cortical bone.
WIDE_WINDOW_HU: tuple[float, float] = (-1024.0, 400.0)
#: Soft-tissue window (HU) mapped to 0..1 (W 400, L 0).
SOFT_WINDOW_HU: tuple[float, float] = (-200.0, 200.0)
#: Distance (mm) of the neighbouring slices given as context.
NEIGHBOUR_MM: float = 2.5
#: In-plane pixel size (mm) of the network's grid.
PIXEL_MM: float = 0.8
#: Input channels (three wide-window slices and one soft-tissue slice).
IN_CHANNELS: int = 4
#: Output classes.
CLASS_NAMES: tuple[str, ...] = ("background", "lung", "ground_glass", "consolidation")


def window(hu: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    """HU mapped to 0..1 over ``bounds`` (low, high), clipped; float32."""
    lo, hi = bounds
    return np.clip((hu.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)


def neighbour_offset(slice_mm: float) -> int:
    """Slices between a slice and its context neighbours (at least 1)."""
    return max(1, int(round(NEIGHBOUR_MM / float(slice_mm))))


def to_grid(image: np.ndarray, pixel_mm: tuple[float, float], *, order: int = 1) -> np.ndarray:
    """Resample the last two axes from ``pixel_mm`` (row, column) to :data:`PIXEL_MM`."""
    factors = [1.0] * (image.ndim - 2) + [pixel_mm[0] / PIXEL_MM, pixel_mm[1] / PIXEL_MM]
    if np.allclose(factors, 1.0):
        return image
    return ndi.zoom(image, factors, order=order, mode="nearest", grid_mode=True)


def volume_channels(hu: np.ndarray, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Network input for every slice of a canonical volume, on the network's grid.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        Canonical volume in HU.
    spacing_mm : (3,) float
        Voxel spacing (z, y, x), mm.

    Returns
    -------
    (Z, IN_CHANNELS, Y', X') float16 ndarray
        In-plane size ``Y' = round(Y * y_mm / PIXEL_MM)`` (likewise ``X'``).
    """
    k = neighbour_offset(spacing_mm[0])
    wide = to_grid(window(hu, WIDE_WINDOW_HU), spacing_mm[1:])
    soft = to_grid(window(hu, SOFT_WINDOW_HU), spacing_mm[1:])
    z = np.arange(hu.shape[0])
    below, above = np.clip(z - k, 0, z[-1]), np.clip(z + k, 0, z[-1])
    return np.stack([wide[below], wide, wide[above], soft], axis=1).astype(np.float16)


def labels_of(lungs: np.ndarray, ggo: np.ndarray, consolidation: np.ndarray,
              spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Class labels (:data:`CLASS_NAMES`) on the network's grid, ``(Z, Y', X')`` uint8."""
    labels = np.zeros(lungs.shape, np.uint8)
    labels[lungs] = 1
    labels[ggo] = 2
    labels[consolidation] = 3
    return to_grid(labels, spacing_mm[1:], order=0)
