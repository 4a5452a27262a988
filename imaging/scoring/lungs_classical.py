"""The classical lung mask: threshold and shape steps on a ~2 mm working grid.

:func:`classical_lungs_canonical` runs the six steps described in
:mod:`imaging.scoring.lungs` on a canonical volume taken down to the working grid
(:mod:`imaging.scoring.lung_grid`): the air inside the body (1) that the patient
encloses (1b, :mod:`imaging.scoring.lung_chest`: not the air in the table), its large
components without bowel gas (2, :func:`_lung_components`) and only in the chest (2b:
not the neck and head above the lungs nor the bowel below them), the trachea and main
bronchi found and removed (3, :func:`_remove_airway`), the right / left split (4,
:mod:`imaging.scoring.lung_sides`), the dense-disease repairs (5 and 6,
:mod:`imaging.scoring.lung_repair`), and takes the labels back to the input grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from imaging.scoring import constants as C
from imaging.scoring.lung_chest import chest_part, patient_interior
from imaging.scoring.lung_grid import block_mean, inside_air, upsample_labels, working_factors
from imaging.scoring.lung_repair import envelope_repair, fill_holes_and_bays
from imaging.scoring.lung_sides import midline_from_body, split_lungs

__all__ = ["classical_lungs_canonical"]


def classical_lungs_canonical(hu: np.ndarray, spacing: Sequence[float], *, threshold_hu: float,
                              working_spacing_mm: float, envelope: bool = True,
                              learned: np.ndarray | None = None) -> np.ndarray:
    """Right and left lungs of a canonical volume by the classical method.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        CT in HU, canonical orientation.
    spacing : (3,) float
        Voxel spacing (z, y, x), mm.
    threshold_hu : float
        Air-like threshold of step 1, HU.
    working_spacing_mm : float
        Approximate spacing of the working grid, mm.
    envelope : bool
        Run step 6, the envelope repair (``False``: method ``"classical_basic"``).
    learned : (Z, Y, X) bool ndarray, optional
        The learned lung mask (method ``"hybrid"``): step 6 may also enter the stretch
        between the lungs where it says lung (when ``envelope``).

    Returns
    -------
    (Z, Y, X) uint8 ndarray
        0 background, 1 right lung, 2 left lung, on the input grid.
    """
    factors = working_factors(spacing, working_spacing_mm)
    low = block_mean(hu, factors)
    ls = tuple(s * f for s, f in zip(spacing, factors))
    voxel_ml = float(np.prod(ls)) / 1000.0
    inside, body = inside_air(low, threshold_hu)
    inside &= patient_interior(low, threshold_hu, ls)
    cand = _lung_components(inside, low, voxel_ml)
    if cand is None:
        return np.zeros(hu.shape, dtype=np.uint8)
    cand = chest_part(cand, ls)
    cand = _remove_airway(cand, low, body, ls, voxel_ml)
    labels = split_lungs(cand, spacing_mm=ls, midline_x=midline_from_body(body, cand))
    labels = fill_holes_and_bays(labels, low, body, ls)
    if envelope:
        within = None if learned is None else block_mean(learned.astype(np.float32), factors) >= 0.5
        labels = envelope_repair(labels, low, body, ls, within=within)
    return upsample_labels(labels, factors, hu.shape)


def _lung_components(inside: np.ndarray, low: np.ndarray, voxel_ml: float) -> np.ndarray | None:
    """Step 2: the 3-D components of the inside air of at least ``LUNG_MIN_COMPONENT_ML``,
    without bowel gas; None when there is none."""
    lab, n = ndi.label(inside)
    if n == 0:
        return None
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    min_vox = C.LUNG_MIN_COMPONENT_ML / voxel_ml
    ids = np.flatnonzero(sizes >= min_vox)
    if ids.size == 0:
        return None
    # bowel gas: a component lying wholly below the top of the largest component's lower
    # third and almost pure gas (mean < HU_GAS_MAX) is not lung
    largest = int(np.argmax(sizes))
    objs = ndi.find_objects(lab)
    zl = objs[largest - 1][0]
    z_low_third = zl.start + (zl.stop - zl.start) / 3.0
    means = ndi.mean(low, lab, ids)
    keep_ids = [int(i) for i, mu in zip(ids, means)
                if i == largest or not (objs[i - 1][0].stop <= z_low_third and mu < C.HU_GAS_MAX)]
    return np.isin(lab, keep_ids)


def _remove_airway(cand: np.ndarray, low: np.ndarray, body: np.ndarray, spacing: Sequence[float],
                   voxel_ml: float) -> np.ndarray:
    """Step 3: ``cand`` without the trachea and main bronchi (grown from the trachea and
    dilated by one voxel); unchanged when no trachea is found or the airway always leaks."""
    seed = _find_trachea(cand, body, spacing)
    if seed is not None:
        airway = _grow_airway(low, cand, seed, voxel_ml)
        if airway is not None:
            cand &= ~ndi.binary_dilation(airway, structure=ndi.generate_binary_structure(3, 1))
    return cand


def _find_trachea(inside: np.ndarray, body: np.ndarray, spacing: Sequence[float]) -> np.ndarray | None:
    """Seed voxels of the trachea: a small, roundish air component near the body midline
    on one of the upper slices (searched top-down over the upper 40 % of the air extent)."""
    zs = np.flatnonzero(inside.any(axis=(1, 2)))
    if zs.size == 0:
        return None
    px_mm2 = spacing[1] * spacing[2]
    z_top, z_bot = zs[-1], zs[0]
    z_stop = z_top - int(0.4 * (z_top - z_bot + 1))
    for z in range(z_top, max(z_stop, z_bot) - 1, -1):
        lab, n = ndi.label(inside[z])
        if n == 0:
            continue
        bx = np.flatnonzero(body[z].any(axis=0))
        if bx.size == 0:
            continue
        mid_x = 0.5 * (bx[0] + bx[-1])
        half_w = 0.5 * (bx[-1] - bx[0] + 1)
        objs = ndi.find_objects(lab)
        for i, sl in enumerate(objs, start=1):
            comp = lab[sl] == i
            area_mm2 = comp.sum() * px_mm2
            if not C.TRACHEA_AREA_MM2[0] <= area_mm2 <= C.TRACHEA_AREA_MM2[1]:  # 10-32 mm across
                continue
            h = (sl[0].stop - sl[0].start) * spacing[1]
            w = (sl[1].stop - sl[1].start) * spacing[2]
            if max(h, w) > 3.0 * min(h, w) or max(h, w) > 40.0:
                continue
            cx = 0.5 * (sl[1].start + sl[1].stop - 1)
            if abs(cx - mid_x) > 0.2 * half_w:
                continue
            seed = np.zeros_like(inside)
            seed[z][lab == i] = True
            return seed
    return None


def _grow_airway(low: np.ndarray, candidates: np.ndarray, seed: np.ndarray, voxel_ml: float) -> np.ndarray | None:
    """Airway lumen grown from ``seed`` with explosion control, or None when it always leaks."""
    t = C.HU_AIRWAY_START
    while t >= C.HU_AIRWAY_MIN:
        mask = candidates & (low < t)
        lab, _ = ndi.label(mask, structure=ndi.generate_binary_structure(3, 1))
        ids = np.unique(lab[seed & mask])
        ids = ids[ids > 0]
        if ids.size == 0:
            return None
        airway = np.isin(lab, ids)
        if airway.sum() * voxel_ml <= C.AIRWAY_MAX_ML:
            return airway
        t -= 15.0
    return None
