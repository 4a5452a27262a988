"""Network classes checked against the densities: lungs, lesion, ground-glass / consolidation.

For HU input the network output is checked against the densities
(:func:`refine_with_hu`; display input is not refined, its densities are too approximate):

1. regions (per slice) that the network calls lung but that are almost airless are
   dropped (:func:`drop_airless_lung_regions`: liver, spleen, kidneys, bowel, neck);
2. dense lesion voxels on the outer rim of the prediction (within
   :data:`imaging.scoring.constants.OPACITY_RIM_TRIM_NET_PX` network pixels of the predicted
   background) are dropped (:func:`trim_extrapulmonary_rim`): at the network's resolution
   the lesion boundary runs into the pleural and chest-wall fat (about -100 HU);
3. lesion voxels outside the opacity density range (below ``HU_OPACITY_MIN`` = -700 HU:
   aerated lung; above ``HU_VESSEL_MIN`` = +50 HU: vessels, bone) are not opacity.

The lesion is then split by density (:func:`split_lesion_by_density`): a lesion voxel at
least :data:`imaging.scoring.constants.HU_CONSOLIDATION_MIN` (-300 HU) is consolidation,
else ground-glass (Chaganti et al., Radiology: AI 2020, PMC7392373: ground-glass
-700..-300 HU, consolidation above).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imaging.scoring.constants import (
    HU_CONSOLIDATION_MIN,
    HU_LUNG_THRESHOLD,
    HU_OPACITY_MIN,
    HU_VESSEL_MIN,
    LUNG_COMPONENT_MIN_AERATED_FRACTION,
    OPACITY_RIM_TRIM_NET_PX,
)
from models.preprocess import square_geometry

__all__ = [
    "split_lesion_by_density",
    "trim_extrapulmonary_rim",
    "rim_trim_steps",
    "drop_airless_lung_regions",
    "refine_with_hu",
]


def split_lesion_by_density(
    lesion: np.ndarray, hu: np.ndarray, *, consolidation_min_hu: float = HU_CONSOLIDATION_MIN
) -> np.ndarray:
    """Opacity labels from a lesion mask and densities: 1 ground-glass, 2 consolidation.

    Parameters
    ----------
    lesion : bool ndarray
    hu : ndarray, HU, same shape
    consolidation_min_hu : float
        Lesion voxels at or above this are consolidation (default
        :data:`imaging.scoring.constants.HU_CONSOLIDATION_MIN`).

    Returns
    -------
    uint8 ndarray, same shape: 0 none, 1 ground-glass, 2 consolidation

    Examples
    --------
    >>> split_lesion_by_density(np.array([0, 1, 1], bool), np.array([0., -600., -100.])).tolist()
    [0, 1, 2]
    """
    lesion = np.asarray(lesion, dtype=bool)
    hu = np.asarray(hu)
    if lesion.shape != hu.shape:
        raise ValueError(f"lesion and hu shapes differ: {lesion.shape} vs {hu.shape}")
    out = lesion.astype(np.uint8)
    out[lesion & (hu >= consolidation_min_hu)] = 2
    return out


def trim_extrapulmonary_rim(
    classes: np.ndarray, density: np.ndarray, *, steps: int,
    dense_min_hu: float = HU_CONSOLIDATION_MIN,
) -> np.ndarray:
    """Lesion mask without the dense rim that touches the predicted background.

    Dense lesion voxels (``density >= dense_min_hu``) connected in-plane to the
    background class (0) through at most ``steps`` dense lesion voxels (4-connected,
    slice by slice) are removed; aerated lesion voxels (ground-glass density) and dense
    lesion cores deeper inside are kept.

    Parameters
    ----------
    classes : (Y, X) or (Z, Y, X) uint8 ndarray
        Network classes (0 background, 1 lung, 2 lesion), :func:`models.prediction.predict_classes`.
    density : ndarray, HU, same shape
    steps : int
        Rim width, pixels (>= 0; 0 keeps the whole lesion).
    dense_min_hu : float
        Density from which a lesion voxel can be extrapulmonary soft tissue / fat.

    Returns
    -------
    bool ndarray, same shape: the trimmed lesion (a subset of ``classes == 2``)

    Examples
    --------
    >>> c = np.array([[0, 2, 2, 2, 2, 1]], np.uint8)
    >>> hu = np.array([[0., -100, -50, -600, -40, -850]])
    >>> trim_extrapulmonary_rim(c, hu, steps=1).astype(int).tolist()
    [[0, 0, 1, 1, 1, 0]]
    """
    import cv2

    classes, density = _matching_2d_or_3d(classes, density, "density")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    c3 = classes[None] if classes.ndim == 2 else classes
    d3 = density[None] if density.ndim == 2 else density
    lesion = c3 == 2
    out = lesion.copy()
    if steps == 0:
        return out[0] if classes.ndim == 2 else out
    dense = lesion & (d3 >= dense_min_hu)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    for z in np.flatnonzero(dense.any(axis=(1, 2))):
        reached = (c3[z] == 0).astype(np.uint8)
        left = dense[z].astype(np.uint8)
        removed = np.zeros_like(left)
        for _ in range(int(steps)):
            grow = cv2.dilate(reached, cross) & left
            if not grow.any():
                break
            removed |= grow
            reached |= grow
            left &= 1 - grow
        out[z] &= ~removed.astype(bool)
    return out[0] if classes.ndim == 2 else out


def rim_trim_steps(shape_yx: tuple[int, int], spacing_yx: tuple[float, float] | None) -> int:
    """:data:`OPACITY_RIM_TRIM_NET_PX` network pixels in the slice's own pixels.

    Parameters
    ----------
    shape_yx : (2,) ints, slice shape
    spacing_yx : (2,) floats, mm, or None (square pixels)

    Examples
    --------
    >>> rim_trim_steps((512, 512), (0.7, 0.7)), rim_trim_steps((256, 256), None)
    (4, 2)
    """
    (h, w), _ = square_geometry(shape_yx, spacing_yx)
    scale = max(shape_yx[0] / h, shape_yx[1] / w)
    return int(round(OPACITY_RIM_TRIM_NET_PX * scale))


def drop_airless_lung_regions(
    classes: np.ndarray, hu: np.ndarray, *,
    min_aerated_fraction: float = LUNG_COMPONENT_MIN_AERATED_FRACTION,
    aerated_max_hu: float = HU_LUNG_THRESHOLD,
) -> np.ndarray:
    """Network classes with almost airless "lung" regions set to background.

    Each 8-connected region of ``classes > 0`` in each axial slice is kept only when at
    least ``min_aerated_fraction`` of its pixels are below ``aerated_max_hu``.

    Parameters
    ----------
    classes : (Y, X) or (Z, Y, X) uint8 ndarray, 0 background / 1 lung / 2 lesion
    hu : ndarray, HU, same shape
    min_aerated_fraction : float in [0, 1]
    aerated_max_hu : float

    Returns
    -------
    uint8 ndarray, same shape: ``classes`` with the dropped regions set to 0

    Examples
    --------
    >>> c = np.array([[1, 2, 0, 2, 2]], np.uint8)
    >>> drop_airless_lung_regions(c, np.array([[-850., -200, 0, 40, 30]])).tolist()
    [[1, 2, 0, 0, 0]]
    """
    import cv2

    classes, hu = _matching_2d_or_3d(classes, hu, "hu")
    if not 0.0 <= min_aerated_fraction <= 1.0:
        raise ValueError(f"min_aerated_fraction must be in [0, 1], got {min_aerated_fraction!r}")
    c3 = classes[None] if classes.ndim == 2 else classes
    h3 = hu[None] if hu.ndim == 2 else hu
    out = c3.astype(np.uint8, copy=True)
    for z in np.flatnonzero(c3.any(axis=(1, 2))):
        n, lab = cv2.connectedComponents((c3[z] > 0).astype(np.uint8), connectivity=8)
        flat = lab.ravel()
        size = np.bincount(flat, minlength=n)
        aerated = np.bincount(flat[(h3[z] < aerated_max_hu).ravel()], minlength=n)
        keep = aerated >= min_aerated_fraction * size
        keep[0] = False
        out[z][~keep[lab]] = 0
    return out[0] if classes.ndim == 2 else out


def refine_with_hu(
    classes: np.ndarray, hu: np.ndarray, *, spacing_yx_mm: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lungs and lesion from network classes, checked against the HU (see module notes).

    Parameters
    ----------
    classes : (Y, X) or (Z, Y, X) uint8 ndarray, :func:`models.prediction.predict_classes` output
    hu : ndarray, HU, same shape
    spacing_yx_mm : (2,) floats, mm, or None (square pixels): in-plane spacing, for the
        rim width (:func:`rim_trim_steps`)

    Returns
    -------
    lungs : bool ndarray, same shape
    lesion : bool ndarray, same shape (inside ``lungs``)

    Examples
    --------
    >>> c = np.array([[0, 2, 2, 1, 1, 0, 2]], np.uint8)
    >>> lungs, lesion = refine_with_hu(c, np.array([[0., -500, -750, -850, -850, 0, 30]]))
    >>> lungs.astype(int).tolist(), lesion.astype(int).tolist()
    ([[0, 1, 1, 1, 1, 0, 0]], [[0, 1, 0, 0, 0, 0, 0]])
    """
    hu = np.asarray(hu)
    kept = drop_airless_lung_regions(classes, hu)
    lesion = trim_extrapulmonary_rim(kept, hu, steps=rim_trim_steps(kept.shape[-2:], spacing_yx_mm))
    lesion &= (hu >= HU_OPACITY_MIN) & (hu <= HU_VESSEL_MIN)
    return kept > 0, lesion


def _matching_2d_or_3d(classes: Any, other: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` and ``other`` as arrays, checked to be 2-D or 3-D and of one shape."""
    classes, other = np.asarray(classes), np.asarray(other)
    if classes.shape != other.shape:
        raise ValueError(f"classes and {name} shapes differ: {classes.shape} vs {other.shape}")
    if classes.ndim not in (2, 3):
        raise ValueError(f"classes must be 2-D or 3-D, got shape {classes.shape}")
    return classes, other
