"""Density-band quantification of lung opacity, with vessel suppression.

Pure array functions: HU in, masks and percents out.  Thresholds come from
:mod:`imaging.scoring.constants` (each cited there), can be overridden per call, and are given
back in :attr:`DensityBands.settings` so that every result records what produced it.

Opacity (ground-glass + consolidation) is counted among lung voxels with
``HU_GGO_MIN <= HU <= HU_VESSEL_MIN``; before counting, structures thinner than
``2 * vessel_radius_mm`` in the axial plane are removed by a morphological opening with a
disk (a shape rule): vessels, bronchial walls, fissures and the partial-volume rim at
the lung edge are thin, pneumonia patches are not.  What survives regrows by
``vessel_regrow_mm`` into the candidates (opening by partial reconstruction), so lesion
edges come back and vessels touching a lesion add at most a short stub.  Voxels above ``HU_VESSEL_MIN`` are
vessels, calcification or bone and never count as opacity.  The raw (unsuppressed)
band percents are reported as well.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imaging.scoring import constants as C

__all__ = ["DensityBands", "density_bands", "suppress_vessels", "disk_kernel", "GGO", "CONSOLIDATION"]

#: Opacity label values (same coding as the model's ``opacity_labels``).
GGO: int = 1
CONSOLIDATION: int = 2


@dataclass(frozen=True, eq=False)
class DensityBands:
    """Result of :func:`density_bands`.

    Attributes
    ----------
    labels : (Z, Y, X) uint8 ndarray
        0 none, 1 ground-glass, 2 consolidation (vessel-suppressed, inside the lung).
    lung_voxels : int
        Number of lung voxels the percents refer to.
    band_percent : dict of str to float
        Percent of lung voxels in each Lung CT Analyzer band (raw HU, no suppression).
    aeration_percent : dict of str to float
        Percent of lung voxels in each aeration band (raw HU).
    settings : dict of str to float
        Every threshold used (HU and mm), flat, for the result table.
    """

    labels: np.ndarray
    lung_voxels: int
    band_percent: dict[str, float] = field(default_factory=dict)
    aeration_percent: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ggo_voxels(self) -> int:
        """Ground-glass voxels after vessel suppression."""
        return int(np.count_nonzero(self.labels == GGO))

    @property
    def consolidation_voxels(self) -> int:
        """Consolidation voxels after vessel suppression."""
        return int(np.count_nonzero(self.labels == CONSOLIDATION))


def disk_kernel(radius_mm: float, spacing_yx_mm: Sequence[float]) -> np.ndarray:
    """An in-plane elliptical disk of ``radius_mm`` for OpenCV morphology (uint8).

    Parameters
    ----------
    radius_mm : float
        Disk radius, mm.
    spacing_yx_mm : (2,) float
        Pixel spacing (y, x), mm; the radius in pixels is at least 1 on each axis.

    Examples
    --------
    >>> disk_kernel(2.0, (1.0, 2.0)).shape
    (5, 3)
    """
    import cv2

    ry = max(1, int(round(radius_mm / spacing_yx_mm[0])))
    rx = max(1, int(round(radius_mm / spacing_yx_mm[1])))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rx + 1, 2 * ry + 1))


def suppress_vessels(candidates: np.ndarray, *, spacing_mm: Sequence[float],
                     radius_mm: float = C.VESSEL_MAX_RADIUS_MM,
                     regrow_mm: float = 0.0) -> np.ndarray:
    """Remove structures thinner than ``2 * radius_mm`` in the axial plane.

    Parameters
    ----------
    candidates : (Z, Y, X) bool ndarray
        Opacity candidates (dense voxels in the lung).
    spacing_mm : (3,) float
        Voxel spacing (z, y, x), mm.
    radius_mm : float
        Disk radius of the opening, mm; 0 disables suppression.
    regrow_mm : float
        After the opening, grow what survived back into ``candidates`` by up to this
        distance, mm (in-plane, geodesic): restores trimmed lesion edges.

    Returns
    -------
    (Z, Y, X) bool ndarray
        ``candidates`` opened slice by slice with an elliptical disk of the given radius
        (in pixels per axis, at least 1), then regrown; always a subset of
        ``candidates``.

    Examples
    --------
    >>> m = np.zeros((1, 40, 40), bool); m[0, 5:25, 5:25] = True; m[0, 30, :] = True
    >>> out = suppress_vessels(m, spacing_mm=(1, 1, 1), radius_mm=2)
    >>> bool(out[0, 15, 15]), bool(out[0, 30, 20])
    (True, False)
    """
    import cv2

    m = np.asarray(candidates, dtype=bool)
    if m.ndim != 3:
        raise ValueError(f"candidates must be 3-D (z, y, x), got shape {m.shape}")
    if radius_mm < 0 or not np.isfinite(radius_mm):
        raise ValueError(f"radius_mm must be >= 0, got {radius_mm}")
    if regrow_mm < 0 or not np.isfinite(regrow_mm):
        raise ValueError(f"regrow_mm must be >= 0, got {regrow_mm}")
    if radius_mm == 0 or not m.any():
        return m.copy()
    kernel = disk_kernel(radius_mm, (spacing_mm[1], spacing_mm[2]))
    u8 = m.view(np.uint8)
    out = np.zeros_like(u8)
    cross = np.ones((3, 3), np.uint8)
    cross[0, 0] = cross[0, 2] = cross[2, 0] = cross[2, 2] = 0
    steps = int(round(regrow_mm / min(spacing_mm[1], spacing_mm[2])))
    for z in np.flatnonzero(m.any(axis=(1, 2))):
        sl = cv2.morphologyEx(u8[z], cv2.MORPH_OPEN, kernel)
        for _ in range(steps):  # geodesic regrowth inside the candidates
            grown = cv2.dilate(sl, cross) & u8[z]
            if np.array_equal(grown, sl):
                break
            sl = grown
        out[z] = sl
    return out.astype(bool)


def _percent(count: int, total: int) -> float:
    return 100.0 * count / total if total else float("nan")


def density_bands(
    hu: np.ndarray,
    lung_mask: np.ndarray,
    *,
    spacing_mm: Sequence[float] = (1.0, 1.0, 1.0),
    ggo_min_hu: float = C.HU_GGO_MIN,
    consolidation_min_hu: float = C.HU_CONSOLIDATION_MIN,
    vessel_min_hu: float = C.HU_VESSEL_MIN,
    vessel_radius_mm: float = C.VESSEL_MAX_RADIUS_MM,
    vessel_regrow_mm: float = C.VESSEL_REGROW_MM,
    bands: Mapping[str, tuple[float, float]] | None = None,
    aeration_bands: Mapping[str, tuple[float, float]] | None = None,
) -> DensityBands:
    """Ground-glass and consolidation inside the lung by HU bands, vessels suppressed.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        CT in HU.
    lung_mask : (Z, Y, X) bool or integer ndarray
        Lung voxels (nonzero), same shape as ``hu``.
    spacing_mm : (3,) float
        Voxel spacing (z, y, x) in mm (for the vessel-suppression disk).
    ggo_min_hu, consolidation_min_hu, vessel_min_hu : float
        Ground-glass is ``[ggo_min_hu, consolidation_min_hu)``, consolidation
        ``[consolidation_min_hu, vessel_min_hu]``; denser voxels are vessels / bone.
    vessel_radius_mm : float
        Disk radius of the vessel-suppressing opening, mm (0: none).
    vessel_regrow_mm : float
        Regrowth of the opened cores into the candidates, mm (:func:`suppress_vessels`).
    bands : mapping name -> (low, high) HU, optional
        Bands reported as raw percents (default :data:`imaging.scoring.constants.LCTA_BANDS_HU`).
    aeration_bands : mapping name -> (low, high) HU, optional
        Default :data:`imaging.scoring.constants.AERATION_BANDS_HU`.

    Returns
    -------
    DensityBands

    Notes
    -----
    Band percents use half-open intervals ``[low, high)`` over lung voxels.  With an
    empty lung mask every percent is NaN (never 0 %).

    Examples
    --------
    >>> hu = np.full((3, 30, 30), -850.0)
    >>> hu[:, 5:20, 5:20] = -500            # a 15 x 15 GGO patch
    >>> hu[:, 25, :] = -100                 # a 1-voxel "vessel": suppressed
    >>> r = density_bands(hu, np.ones(hu.shape, bool), spacing_mm=(1, 1, 1))
    >>> r.ggo_voxels, r.consolidation_voxels   # opened, then regrown: corners restored
    (675, 0)
    >>> round(r.aeration_percent["well_aerated"], 1)
    71.7
    """
    hu = np.asarray(hu)
    lung = np.asarray(lung_mask).astype(bool, copy=False)
    if hu.ndim != 3:
        raise ValueError(f"hu must be 3-D (z, y, x), got shape {hu.shape}")
    if lung.shape != hu.shape:
        raise ValueError(f"lung_mask shape {lung.shape} differs from hu shape {hu.shape}")
    if len(spacing_mm) != 3 or min(spacing_mm) <= 0:
        raise ValueError(f"spacing_mm must be 3 positive numbers (z, y, x), got {spacing_mm}")
    if np.issubdtype(hu.dtype, np.floating) and not np.isfinite(hu[lung]).all():
        # NaN fails every band test: it would count as lung yet in no band
        raise ValueError(f"hu holds {int(np.count_nonzero(~np.isfinite(hu[lung])))} NaN / infinite "
                         "voxel(s) inside lung_mask")
    if not ggo_min_hu < consolidation_min_hu <= vessel_min_hu:
        raise ValueError(
            "need ggo_min_hu < consolidation_min_hu <= vessel_min_hu, got "
            f"{ggo_min_hu}, {consolidation_min_hu}, {vessel_min_hu}")
    bands = dict(C.LCTA_BANDS_HU if bands is None else bands)
    aeration_bands = dict(C.AERATION_BANDS_HU if aeration_bands is None else aeration_bands)
    for name, (lo, hi) in {**bands, **aeration_bands}.items():
        if not lo < hi:
            raise ValueError(f"band {name!r} must have low < high, got ({lo}, {hi})")

    n_lung = int(np.count_nonzero(lung))
    labels = np.zeros(hu.shape, dtype=np.uint8)
    band_percent: dict[str, float] = {}
    aeration_percent: dict[str, float] = {}
    if n_lung:
        # bounding box of the lung: all work below happens inside it
        idx = np.nonzero(lung.any(axis=(1, 2)))[0], np.nonzero(lung.any(axis=(0, 2)))[0], np.nonzero(lung.any(axis=(0, 1)))[0]
        box = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in idx)
        h = hu[box]
        m = lung[box]
        cand = m & (h >= ggo_min_hu) & (h <= vessel_min_hu)
        kept = suppress_vessels(cand, spacing_mm=spacing_mm, radius_mm=vessel_radius_mm,
                                regrow_mm=vessel_regrow_mm) & cand
        sub = np.zeros(h.shape, dtype=np.uint8)
        sub[kept & (h < consolidation_min_hu)] = GGO
        sub[kept & (h >= consolidation_min_hu)] = CONSOLIDATION
        labels[box] = sub
        values = h[m]
        for name, (lo, hi) in bands.items():
            band_percent[name] = _percent(int(np.count_nonzero((values >= lo) & (values < hi))), n_lung)
        for name, (lo, hi) in aeration_bands.items():
            aeration_percent[name] = _percent(int(np.count_nonzero((values >= lo) & (values < hi))), n_lung)
    else:
        band_percent = {name: float("nan") for name in bands}
        aeration_percent = {name: float("nan") for name in aeration_bands}
    settings: dict[str, Any] = {
        "ggo_min_hu": float(ggo_min_hu),
        "consolidation_min_hu": float(consolidation_min_hu),
        "vessel_min_hu": float(vessel_min_hu),
        "vessel_radius_mm": float(vessel_radius_mm),
        "vessel_regrow_mm": float(vessel_regrow_mm),
        **{f"band_{k}_hu": [float(v[0]), float(v[1])] for k, v in bands.items()},
        **{f"aeration_{k}_hu": [float(v[0]), float(v[1])] for k, v in aeration_bands.items()},
    }
    return DensityBands(labels=labels, lung_voxels=n_lung, band_percent=band_percent,
                        aeration_percent=aeration_percent, settings=settings)
