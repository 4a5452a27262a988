"""Quality flags of a scored scan, and the message of a scan with no chest to score.

A score is only as good as the scan: :func:`acquisition_flags` flags thick slices and
coarse pixels (``thick_slices``, ``coarse_pixels``); :func:`lung_flags` flags what the
lungs found show about the scan (``implausible_lung_volume``, ``lungs_cut_off_by_fov``,
``blank_slices``, ``gas_like_lungs``, ``one_lung_missing``, ``contrast_suspected`` from
the mediastinum's median HU, :func:`mediastinum_median_hu`, ``lungs_in_part_of_volume``:
a whole-body or PET/CT scan scored on its chest part).  :func:`not_a_chest_message`
explains a scan whose lungs total under ``NOT_A_CHEST_MAX_LUNG_ML``.  Every limit is in
:mod:`imaging.scoring.constants`; the flags end up in
:attr:`imaging.scoring.scan_score.ScanScore.quality_flags`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from imaging.common.volume import CTVolume, canonical_axes, to_canonical
from imaging.scoring import constants as C
from imaging.scoring.lung_grid import block_mean, working_factors
from imaging.scoring.lung_sides import LEFT, RIGHT

__all__ = ["acquisition_flags", "lung_flags", "mediastinum_median_hu", "not_a_chest_message"]


def acquisition_flags(volume: CTVolume) -> list[str]:
    """``thick_slices`` (slice spacing or thickness over ``THICK_SLICE_MM``) and
    ``coarse_pixels`` (in-plane spacing over ``COARSE_PIXEL_MM``), in that order.

    Parameters
    ----------
    volume : CTVolume
        Spacing read on the canonical axes (z first), thickness from ``volume.info``.

    Returns
    -------
    list of str
    """
    flags: list[str] = []
    perm, _ = canonical_axes(volume.direction)
    canonical_spacing = tuple(volume.spacing_mm[p] for p in perm)
    z_spacing = canonical_spacing[0]
    thickness = volume.info.slice_thickness_mm
    if z_spacing > C.THICK_SLICE_MM or (thickness is not None and thickness > C.THICK_SLICE_MM):
        flags.append("thick_slices")
    if max(canonical_spacing[1:]) > C.COARSE_PIXEL_MM:
        flags.append("coarse_pixels")
    return flags


def lung_flags(volume: CTVolume, labels: np.ndarray, *, lung_ml: float, right_ml: float,
               lung_hu_p50: float, mediastinum_hu: float) -> list[str]:
    """Flags of the lungs found, in this order: ``implausible_lung_volume`` (outside
    ``LUNG_VOLUME_PLAUSIBLE_ML``), ``lungs_cut_off_by_fov``, ``blank_slices``,
    ``gas_like_lungs`` (median under ``HU_GAS_MAX``), ``one_lung_missing`` (one lung
    under 10 % of the total), ``contrast_suspected`` (mediastinum median over
    ``HU_CONTRAST_SUSPECTED``) and ``lungs_in_part_of_volume`` (the lungs span under
    ``LUNGS_PART_OF_VOLUME_MAX_FRACTION`` of the slices: a whole-body, PET/CT or
    chest-abdomen-pelvis scan, scored on its chest part,
    :mod:`imaging.scoring.lung_chest`).

    Parameters
    ----------
    volume : CTVolume
        The scan.
    labels : (Z, Y, X) uint8 ndarray
        Lungs (0 / 1 right / 2 left) in the volume's geometry.
    lung_ml, right_ml : float
        Volume of both lungs and of the right lung, mL.
    lung_hu_p50 : float
        Median HU of the lungs (NaN: not flagged).
    mediastinum_hu : float
        :func:`mediastinum_median_hu` (NaN: not flagged).

    Returns
    -------
    list of str
    """
    flags: list[str] = []
    lo, hi = C.LUNG_VOLUME_PLAUSIBLE_ML
    if not lo <= lung_ml <= hi:
        flags.append("implausible_lung_volume")
    perm, flips = canonical_axes(volume.direction)
    canonical_spacing = tuple(volume.spacing_mm[p] for p in perm)
    labels_c, hu_c = to_canonical(labels, perm, flips), to_canonical(volume.hu, perm, flips)
    if _fov_cut(labels_c, hu_c, canonical_spacing):
        flags.append("lungs_cut_off_by_fov")
    if _blank_slices(labels_c, hu_c):
        flags.append("blank_slices")
    if math.isfinite(lung_hu_p50) and lung_hu_p50 < C.HU_GAS_MAX:
        flags.append("gas_like_lungs")
    left_ml = lung_ml - right_ml
    if min(right_ml, left_ml) < 0.1 * lung_ml:
        flags.append("one_lung_missing")
    if math.isfinite(mediastinum_hu) and mediastinum_hu > C.HU_CONTRAST_SUSPECTED:
        flags.append("contrast_suspected")
    if _lung_span_fraction(labels_c) < C.LUNGS_PART_OF_VOLUME_MAX_FRACTION:
        flags.append("lungs_in_part_of_volume")
    return flags


def _lung_span_fraction(labels: np.ndarray) -> float:
    """Fraction of the axial slices (canonical array) from the lungs' first to their last
    slice; 1.0 when there is no lung (nothing to tell)."""
    zs = np.flatnonzero(labels.any(axis=(1, 2)))
    if zs.size == 0:
        return 1.0
    return float(zs[-1] - zs[0] + 1) / labels.shape[0]


def not_a_chest_message(volume: CTVolume, lung_ml: float) -> str:
    """Why a scan whose lungs total ``lung_ml`` < ``NOT_A_CHEST_MAX_LUNG_ML`` has no chest
    to score: the slices and coverage seen, and, when no voxel (the field-of-view padding
    aside) is air-like, the HU span (stored values without RescaleSlope/Intercept)."""
    perm, _ = canonical_axes(volume.direction)
    n_slices = volume.shape[perm[0]]
    z_spacing = volume.spacing_mm[perm[0]]
    message = (f"{volume.info.source or 'scan'}: no chest to score: lungs found total "
               f"{lung_ml:.0f} mL (< {C.NOT_A_CHEST_MAX_LUNG_ML:.0f} mL) in {n_slices} slice(s) "
               f"covering {n_slices * z_spacing:g} mm; check that the series is a chest CT "
               "covering the lungs")
    lowest, highest = float(np.min(volume.hu)), float(np.max(volume.hu))
    lowest_not_padding = lowest
    if lowest <= -1024:  # the field-of-view padding (one value, e.g. stored -1024 or -2000) aside
        above = [float(sl[sl > lowest].min()) for sl in volume.hu if (sl > lowest).any()]
        lowest_not_padding = min(above, default=lowest)
    if lowest_not_padding > -500:  # no air anywhere: e.g. stored pixel values without RescaleSlope/Intercept
        padding = f" besides {lowest:g} (padding)" if lowest_not_padding != lowest else ""
        message += (f" and that its voxels are in HU (they span {lowest_not_padding:g} to {highest:g}"
                    f"{padding}; air is about -1000 HU)")
    return message


def mediastinum_median_hu(volume: CTVolume, labels: np.ndarray) -> float:
    """Median HU of mediastinal soft tissue (between the lungs, HU_MEDIASTINUM_WINDOW) over the
    middle third of the lungs' height, canonical axial slices; NaN when not measurable.

    Parameters
    ----------
    volume : CTVolume
        The scan.
    labels : (Z, Y, X) uint8 ndarray
        Lungs (0 / 1 right / 2 left) in the volume's geometry.

    Returns
    -------
    float
        HU; NaN when both lungs share fewer than 3 slices or at most 100 voxels qualify.
    """
    import cv2

    hu = volume.hu
    perm, flips = canonical_axes(volume.direction)
    h = np.ascontiguousarray(to_canonical(hu, perm, flips))
    lab = np.ascontiguousarray(to_canonical(labels, perm, flips))
    zs = np.flatnonzero((lab == RIGHT).any(axis=(1, 2)) & (lab == LEFT).any(axis=(1, 2)))
    if zs.size < 3:
        return float("nan")
    mid = zs[len(zs) // 3: 2 * len(zs) // 3 + 1]
    values = []
    for z in mid[:: max(1, len(mid) // 8)]:
        lungs = (lab[z] > 0).astype(np.uint8)
        pts = cv2.findNonZero(lungs)
        hull = np.zeros_like(lungs)
        cv2.fillConvexPoly(hull, cv2.convexHull(pts), 1)
        region = hull.astype(bool) & ~lungs.astype(bool)
        v = h[z][region]
        lo, hi = C.HU_MEDIASTINUM_WINDOW
        values.append(v[(v > lo) & (v < hi)])
    allv = np.concatenate(values) if values else np.array([])
    return float(np.median(allv)) if allv.size > 100 else float("nan")


def _blank_slices(labels: np.ndarray, hu: np.ndarray) -> int:
    """Axial slices between the lungs' first and last slice (canonical arrays) holding one
    value throughout: pixel data the export lost and filled, which splits the lungs and
    biases every score."""
    zs = np.flatnonzero(labels.any(axis=(1, 2)))
    if zs.size == 0:
        return 0
    flat = hu[zs[0]:zs[-1] + 1].reshape(zs[-1] + 1 - zs[0], -1)
    return int(np.count_nonzero(flat.min(axis=1) == flat.max(axis=1)))


def _fov_cut(labels: np.ndarray, hu: np.ndarray, spacing_mm: Sequence[float]) -> bool:
    """Lungs cut by the field of view (labels, HU and spacing in canonical order).

    Lungs touch the first / last slice or the in-plane border, or lung air was cut off
    in-plane: air connected to the image's edge (or to the padding outside the
    reconstruction circle) on its slice, lying directly above or below lung.  The lung
    mask leaves out air touching the edge (outside air), so a lung running out of the
    image on some slices is simply missing there; an intact chest has body between
    outside air and every lung voxel.  The in-plane test runs on the lung mask's own
    working grid (:mod:`imaging.scoring.lung_grid`: ``LUNG_WORKING_SPACING_MM``,
    air < ``HU_LUNG_THRESHOLD``), where a lung grazing the edge is connected to it.
    Each measure is compared with ``FOV_CUTOFF_FRACTION`` of the largest lung slice area.
    """
    import cv2

    lung = labels > 0
    areas = lung.sum(axis=(1, 2))
    biggest = areas.max() if areas.size else 0
    if biggest == 0:
        return False
    limit = C.FOV_CUTOFF_FRACTION * biggest
    ends = max(areas[0], areas[-1]) > limit
    ring = int(lung[:, [0, -1], :].sum() + lung[:, :, [0, -1]].sum())
    if ends or ring > limit:
        return True
    factors = working_factors(spacing_mm, C.LUNG_WORKING_SPACING_MM)
    air = block_mean(hu, factors) < C.HU_LUNG_THRESHOLD
    lung = block_mean(lung, factors) >= 0.5
    limit = C.FOV_CUTOFF_FRACTION * lung.sum(axis=(1, 2)).max()
    next_to_lung = np.zeros_like(lung)
    next_to_lung[1:] |= lung[:-1]
    next_to_lung[:-1] |= lung[1:]
    candidates = air & next_to_lung & ~lung
    cut = 0
    for z in np.flatnonzero(candidates.any(axis=(1, 2))):
        _, comp = cv2.connectedComponents(air[z].astype(np.uint8), connectivity=4)
        edge = np.union1d(np.unique(comp[[0, -1], :]), np.unique(comp[:, [0, -1]]))
        cut += int(np.count_nonzero(np.isin(comp[candidates[z]], edge[edge > 0])))
        if cut > limit:
            return True
    return False
