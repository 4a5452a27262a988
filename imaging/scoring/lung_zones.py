"""Lung zones: upper / middle / lower thirds and ventral / dorsal halves of each lung.

:func:`lung_zones` labels every lung voxel of :func:`imaging.scoring.lungs.segment_lungs`
with one of twelve zones (:data:`ZONE_NAMES`): for each lung, upper / middle / lower
thirds of its cranio-caudal extent (slice index in canonical orientation; or two cut
planes shared by both lungs that split the lung volume in three), and ventral / dorsal
halves of its antero-posterior extent on each slice.  The per-zone scores of
:func:`imaging.scoring.scores.score_scan` are counted in these zones.
"""

from __future__ import annotations

import numpy as np

from imaging.common.volume import CTVolume, canonical_axes, from_canonical, to_canonical
from imaging.scoring.lung_sides import LEFT, RIGHT

__all__ = ["lung_zones", "ZONE_CODES", "ZONE_NAMES"]

_LUNGS = ("right", "left")
_THIRDS = ("upper", "middle", "lower")
_HALVES = ("ventral", "dorsal")

#: Zone label value -> name, e.g. ``1 -> "right_upper_ventral"``.  Value =
#: ``1 + 6 * (lung - 1) + 2 * third + half`` with third 0/1/2 = upper/middle/lower and
#: half 0/1 = ventral/dorsal.
ZONE_NAMES: dict[int, str] = {
    1 + 6 * li + 2 * ti + hi: f"{lung}_{third}_{half}"
    for li, lung in enumerate(_LUNGS)
    for ti, third in enumerate(_THIRDS)
    for hi, half in enumerate(_HALVES)
}
#: Zone name -> label value (inverse of :data:`ZONE_NAMES`).
ZONE_CODES: dict[str, int] = {name: code for code, name in ZONE_NAMES.items()}


def lung_zones(labels: np.ndarray, volume: CTVolume, *, thirds: str = "height") -> np.ndarray:
    """Zone labels: upper / middle / lower thirds and ventral / dorsal halves of each lung.

    Parameters
    ----------
    labels : (Z, Y, X) uint8 ndarray
        Output of :func:`imaging.scoring.lungs.segment_lungs` (0 / 1 right / 2 left) in
        ``volume``'s geometry.
    volume : CTVolume
        The volume (for its orientation and shape).
    thirds : {"height", "volume"}
        ``"height"`` (default): each lung's own cranio-caudal extent in three equal
        heights.  ``"volume"``: two axial cut planes shared by both lungs that split the
        total lung volume in three equal parts (the Chest Imaging Platform convention of
        ``lm-64.nrrd`` regions 9-14).

    Returns
    -------
    (Z, Y, X) uint8 ndarray
        0 outside the lungs, else a code of :data:`ZONE_NAMES`
        (``1 + 6*(lung-1) + 2*third + half``; third 0 upper, 1 middle, 2 lower; half 0
        ventral, 1 dorsal).

    Notes
    -----
    Thirds split each lung's cranio-caudal extent (first to last slice containing it, in
    canonical orientation) into three equal heights; ventral / dorsal split each slice of
    each lung at the middle of its antero-posterior extent on that slice.  Use
    ``zones // 2`` style groupings via :data:`ZONE_NAMES` for 6-zone scores.

    Examples
    --------
    >>> lab = np.zeros((6, 4, 4), np.uint8); lab[:, :, :2] = 1; lab[:, :, 2:] = 2
    >>> z = lung_zones(lab, CTVolume(np.zeros((6, 4, 4), np.int16), (1, 1, 1)))
    >>> ZONE_NAMES[int(z[5, 0, 0])], ZONE_NAMES[int(z[0, 3, 3])]
    ('right_upper_ventral', 'left_lower_dorsal')
    """
    labels = np.asarray(labels)
    if not isinstance(volume, CTVolume):
        raise TypeError(f"volume must be a CTVolume, got {type(volume).__name__}")
    if thirds not in ("height", "volume"):
        raise ValueError(f"thirds must be 'height' or 'volume', got {thirds!r}")
    if labels.shape != volume.shape:
        raise ValueError(f"labels shape {labels.shape} differs from volume shape {volume.shape}")
    perm, flips = canonical_axes(volume.direction)
    lab = to_canonical(labels, perm, flips)
    out = np.zeros(lab.shape, dtype=np.uint8)
    per_slice = (lab > 0).sum(axis=(1, 2)).astype(np.float64)
    total = per_slice.sum()
    # volume fraction below each slice's centre (0 at the base, 1 at the apex)
    vol_frac = (np.cumsum(per_slice) - 0.5 * per_slice) / total if total else per_slice
    for li, lung in enumerate((RIGHT, LEFT)):
        m = lab == lung
        zs = np.flatnonzero(m.any(axis=(1, 2)))
        if zs.size == 0:
            continue
        z0, z1 = zs[0], zs[-1] + 1
        height = z1 - z0
        for z in zs:
            frac = (z - z0 + 0.5) / height if thirds == "height" else vol_frac[z]
            third = 0 if frac >= 2 / 3 else (1 if frac >= 1 / 3 else 2)
            rows = np.flatnonzero(m[z].any(axis=1))
            y_mid = 0.5 * (rows[0] + rows[-1] + 1)
            half = (np.arange(lab.shape[1]) >= y_mid).astype(np.uint8)[:, None]
            code = (1 + 6 * li + 2 * third + half).astype(np.uint8)
            out[z][m[z]] = np.broadcast_to(code, m[z].shape)[m[z]]
    return from_canonical(out, perm, flips)
