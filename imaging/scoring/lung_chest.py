"""The chest part of a longer scan: air inside the patient, lungs only in the chest.

A whole-body or PET/CT attenuation CT holds more air "inside the body" than the lungs:
the air inside a hollow carbon-fibre table (a closed shell under the patient on every
slice), the head's sinuses, nasal cavity and pharynx above the lungs, and bowel gas
below them.  Two steps of the classical lung mask (:mod:`imaging.scoring.lungs`) keep
them out; on a chest CT both leave the mask as it was.

* Step 1b, :func:`patient_interior`: the patient is the largest 3-D component of the
  tissue left when everything thinner than ``PATIENT_SHELL_MAX_MM`` is taken away (a
  table's or a cushion's shell; the chest wall is thicker), grown back over its own thin
  parts; air counts as inside the body only where the patient encloses it on its slice.
* Step 2b, :func:`chest_part`: the lung candidates lose what lies outside the chest.
  Above the lungs, the apices end below the first slice whose only air is one
  trachea-sized component (``TRACHEA_AREA_MM2``: the neck); when air reaches more than
  ``HEAD_AIR_ABOVE_APEX_MM`` above the apices (larynx, pharynx, head), everything higher
  than ``AIRWAY_KEPT_ABOVE_APEX_MM`` above them is cut off, the stub left for the
  airway search (step 3).  Components lying wholly under the largest one's lowest
  slice (the lungs' bases) are bowel gas, those wholly over its highest head air.

A score read on the chest part of a long scan is flagged ``lungs_in_part_of_volume``
(:mod:`imaging.scoring.quality_flags`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from imaging.scoring import constants as C
from imaging.scoring.lung_grid import INPLANE

__all__ = ["patient_interior", "chest_part"]


def patient_interior(low: np.ndarray, threshold_hu: float, spacing: Sequence[float]) -> np.ndarray:
    """The patient with what it encloses, slice by slice (step 1b).

    Parameters
    ----------
    low : (Z, Y, X) ndarray
        HU on the working grid, canonical orientation.
    threshold_hu : float
        Air-like below this, HU (``HU_LUNG_THRESHOLD``).
    spacing : (3,) float
        Working-grid spacing (z, y, x), mm.

    Returns
    -------
    (Z, Y, X) bool ndarray
        Per axial slice, the patient's tissue with its holes filled: the lungs and the
        air of the airway and bowel are inside it, the air inside a table's shell or
        under a cushion is not.  All True when no tissue is thicker than
        ``PATIENT_SHELL_MAX_MM`` (nothing to tell the patient by).
    """
    tissue = low >= threshold_hu
    syx = float(min(spacing[1], spacing[2]))
    core = _thick_tissue(tissue, 0.5 * C.PATIENT_SHELL_MAX_MM, syx)
    patient = _largest_component(core)
    if patient is None:
        return np.ones(low.shape, dtype=bool)
    # grown back over the thin parts next to it (a thin stretch of chest wall), within tissue
    steps = int(np.ceil(0.5 * C.PATIENT_SHELL_MAX_MM / syx)) + 1
    patient = ndi.binary_dilation(patient, structure=INPLANE, iterations=steps, mask=tissue) | patient
    return _filled_inplane(patient)


def _filled_inplane(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its holes filled on each axial slice: everything but the parts of
    its complement connected in-plane to the image border."""
    lab, n = ndi.label(~mask, structure=INPLANE)
    border = np.zeros(n + 1, dtype=bool)
    border[np.unique(lab[:, [0, -1], :])] = True
    border[np.unique(lab[:, :, [0, -1]])] = True
    border[0] = False
    return ~border[lab]


def _thick_tissue(tissue: np.ndarray, radius_mm: float, spacing_yx: float) -> np.ndarray:
    """Tissue voxels lying more than ``radius_mm`` in-plane from any non-tissue voxel."""
    import cv2

    out = np.zeros(tissue.shape, dtype=bool)
    for z in np.flatnonzero(tissue.any(axis=(1, 2))):
        # pixels; a slice without background gives FLT_MAX: compared, never scaled
        dist = cv2.distanceTransform(tissue[z].astype(np.uint8), cv2.DIST_L2, 5)
        out[z] = dist > radius_mm / spacing_yx
    return out


def _largest_component(mask: np.ndarray) -> np.ndarray | None:
    """The largest 3-D component of ``mask`` (None when empty)."""
    lab, n = ndi.label(mask)
    if n == 0:
        return None
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def chest_part(cand: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """The lung candidates without the neck and head air and the bowel gas below (step 2b).

    Parameters
    ----------
    cand : (Z, Y, X) bool ndarray
        Lung candidates (the large air components inside the patient), working grid,
        canonical orientation (slice 0 inferior).
    spacing : (3,) float
        Working-grid spacing (z, y, x), mm.

    Returns
    -------
    (Z, Y, X) bool ndarray
        ``cand`` without the air more than ``AIRWAY_KEPT_ABOVE_APEX_MM`` above the lung
        apices (only when air reaches more than ``HEAD_AIR_ABOVE_APEX_MM`` above them)
        and without the components lying wholly below or wholly above the largest one.
    """
    lab, n = ndi.label(cand)
    if n == 0:
        return cand
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    largest = lab == int(np.argmax(sizes))
    out = cand.copy()
    apex = _apex_top(cand, largest, spacing)
    top = int(np.flatnonzero(cand.any(axis=(1, 2)))[-1])
    if apex is not None and (top - apex) * spacing[0] > C.HEAD_AIR_ABOVE_APEX_MM:
        out[apex + int(round(C.AIRWAY_KEPT_ABOVE_APEX_MM / spacing[0])) + 1:] = False
    # bowel gas below the lungs, head air above them: components lying wholly below the
    # largest one's lowest slice or wholly above its highest
    zs = np.flatnonzero(largest.any(axis=(1, 2)))
    outside = [i for i, sl in enumerate(ndi.find_objects(lab), start=1)
               if sl is not None and (sl[0].stop <= zs[0] or sl[0].start > zs[-1])]
    if outside:
        out &= ~np.isin(lab, outside)
    return out


def _apex_top(cand: np.ndarray, largest: np.ndarray, spacing: Sequence[float]) -> int | None:
    """Highest slice of the lungs: going up from the largest component's widest slice,
    the slice below the first one whose air is nothing or one trachea-sized component
    (``TRACHEA_AREA_MM2``); None when the air never narrows to that (a chest CT cut at
    its top, or no neck found)."""
    import cv2

    areas = largest.sum(axis=(1, 2))
    px_mm2 = spacing[1] * spacing[2]
    for z in range(int(np.argmax(areas)), cand.shape[0]):
        n, _, stats, _ = cv2.connectedComponentsWithStats(cand[z].astype(np.uint8), connectivity=8)
        if n == 1 or (n == 2 and stats[1, cv2.CC_STAT_AREA] * px_mm2 <= C.TRACHEA_AREA_MM2[1]):
            return z - 1
    return None
