"""Right and left lungs: splitting one lung mask into the two, and the body's midline.

:func:`split_lungs` labels a canonical lung mask right (:data:`RIGHT`) and left
(:data:`LEFT`): the two largest components when both are substantial, else the parts
an erosion leaves (step 4 of the classical mask, :mod:`imaging.scoring.lungs`), else a
cut at the mask's centre; when both parts lie on one side of the body's sagittal
midline (:func:`body_midline_x`) they are one lung (pneumonectomy, collapse) and are
labelled whole by that side.  Used by every lung method and for boolean
``lung_labels`` given to :func:`imaging.scoring.scores.score_scan`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from imaging.scoring import constants as C
from imaging.scoring.lung_grid import block_mean, inside_air, working_factors

__all__ = ["split_lungs", "body_midline_x", "midline_from_body", "RIGHT", "LEFT"]

#: Label values of :func:`imaging.scoring.lungs.segment_lungs` and :func:`split_lungs`.
RIGHT: int = 1
LEFT: int = 2


def split_lungs(mask: np.ndarray, *, spacing_mm: Sequence[float], midline_x: float | None = None) -> np.ndarray:
    """Split a (canonical) lung mask into right (1) and left (2) lungs.

    Parameters
    ----------
    mask : (Z, Y, X) bool ndarray
        Both lungs, canonical orientation (column index increases towards the patient's
        left).
    spacing_mm : (3,) float
        Voxel spacing (z, y, x), mm.
    midline_x : float, optional
        Column (canonical x index) of the body's sagittal midline.  When given and the
        two parts found both have their centre on the same side of it, the mask is one
        lung (pneumonectomy, a collapsed or unseen lung: its parts are lobes or halves,
        not right and left) and is labelled whole as the lung of that side.

    Returns
    -------
    (Z, Y, X) uint8 ndarray
        0 background, 1 right lung, 2 left lung.  Components smaller than
        ``LUNG_MIN_COMPONENT_ML / 10`` are dropped.

    Notes
    -----
    When the two largest components are both substantial they are the lungs.  Otherwise
    the mask is eroded (up to 8 times) until it falls into two substantial parts, which
    are then flooded back into the mask in order of distance.  If that fails (a single
    lung, or lungs fused over a long stretch) the mask is cut at the sagittal plane
    through its centre of mass, unless ``midline_x`` shows it to be one lung.

    Examples
    --------
    >>> m = np.zeros((4, 10, 20), bool); m[:, 2:8, 2:9] = True; m[:, 2:8, 11:18] = True
    >>> lab = split_lungs(m, spacing_mm=(5.0, 10.0, 10.0))
    >>> int(lab[0, 4, 3]), int(lab[0, 4, 15])
    (1, 2)
    >>> one = np.zeros((4, 10, 20), bool); one[:, 2:8, 11:18] = True   # a left lung alone
    >>> np.unique(split_lungs(one, spacing_mm=(5.0, 10.0, 10.0), midline_x=9.5)).tolist()
    [0, 2]
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise ValueError(f"mask must be a 3-D (z, y, x) array, got shape {mask.shape}")
    if midline_x is not None and not np.isfinite(midline_x):
        raise ValueError(f"midline_x must be a finite column index or None, got {midline_x!r}")
    voxel_ml = float(np.prod(spacing_mm)) / 1000.0
    out = np.zeros(mask.shape, dtype=np.uint8)
    if not mask.any():
        return out
    lab, n = ndi.label(mask)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    order = np.argsort(sizes)[::-1]
    min_vox = max(1, int(C.LUNG_MIN_COMPONENT_ML / 10.0 / voxel_ml))
    keep = [i for i in order if sizes[i] >= min_vox]
    if not keep:
        return out
    xs = np.arange(mask.shape[2])

    def x_centre(m: np.ndarray) -> float:
        return float((m.sum(axis=(0, 1)) * xs).sum() / max(m.sum(), 1))

    big = sizes[keep[0]]
    if len(keep) >= 2 and sizes[keep[1]] >= 0.15 * big:
        a, b = lab == keep[0], lab == keep[1]
        xa, xb = x_centre(a), x_centre(b)
        right, left = (a, b) if xa < xb else (b, a)
        rest = keep[2:]
    else:
        main = lab == keep[0]
        parts = _erosion_split(main, big)
        if parts is None:
            xc = x_centre(main)
            right = main & (xs[None, None, :] < xc)
            left = main & ~right
        else:
            right, left = parts
        rest = keep[1:]
    if midline_x is not None and right.any() and left.any():
        xr, xl = x_centre(right), x_centre(left)
        if (xr < midline_x) == (xl < midline_x):  # both parts on one side: one lung
            one, none = right | left, np.zeros_like(right)
            right, left = (one, none) if xr < midline_x else (none, one)
    out[right] = RIGHT
    out[left] = LEFT
    if rest:
        xr, xl = x_centre(out == RIGHT), x_centre(out == LEFT)
        if (out == LEFT).any() and (out == RIGHT).any():
            mid = 0.5 * (xr + xl)
        else:
            mid = mask.shape[2] / 2 if midline_x is None else midline_x
        for i in rest:
            comp = lab == i
            out[comp] = RIGHT if x_centre(comp) < mid else LEFT
    return out


def _erosion_split(main: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(right, left) parts of one component ``main``: eroded (up to 8 times) until two
    substantial cores appear, which are flooded back into it; None when it never splits."""
    st = ndi.generate_binary_structure(3, 1)
    box = ndi.find_objects(main.astype(np.uint8))[0]
    sub = main[box]
    eroded = sub
    for it in range(1, 9):
        eroded = ndi.binary_erosion(eroded, structure=st)
        lab, n = ndi.label(eroded)
        if n < 2:
            if n == 0:
                return None
            continue
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        a_id, b_id = np.argsort(sizes)[::-1][:2]
        if sizes[b_id] < 0.15 * sizes[a_id]:
            continue
        # flood the two cores back into the mask, one voxel layer at a time
        marks = np.zeros(sub.shape, dtype=np.uint8)
        marks[lab == a_id] = 1
        marks[lab == b_id] = 2
        for _ in range(it + 2):
            free = sub & (marks == 0)
            if not free.any():
                break
            grow_a = ndi.binary_dilation(marks == 1, structure=st) & free
            grow_b = ndi.binary_dilation(marks == 2, structure=st) & free & ~grow_a
            marks[grow_a] = 1
            marks[grow_b] = 2
        xs = np.arange(sub.shape[2])
        a = marks == 1
        b = marks == 2
        xa = (a.sum(axis=(0, 1)) * xs).sum() / max(a.sum(), 1)
        xb = (b.sum(axis=(0, 1)) * xs).sum() / max(b.sum(), 1)
        left_over = sub & (marks == 0)  # small bits cut off by erosion: nearer side
        if left_over.any():
            side_a = np.broadcast_to(np.abs(xs - xa) <= np.abs(xs - xb), sub.shape)
            a = a | (left_over & side_a)
            b = b | (left_over & ~side_a)
        full_a = np.zeros(main.shape, dtype=bool)
        full_b = np.zeros(main.shape, dtype=bool)
        full_a[box] = a
        full_b[box] = b
        return (full_a, full_b) if xa < xb else (full_b, full_a)
    return None


def midline_from_body(body: np.ndarray, lungs: np.ndarray) -> float | None:
    """Column of the body's sagittal midline: the median, over the slices holding lung,
    of the centre of the body's extent on the image rows that hold lung (the table below
    left out); slices where that extent touches the image's side edges are skipped (body
    cut by the field of view).  None when no slice qualifies.

    Parameters
    ----------
    body, lungs : (Z, Y, X) bool ndarray
        The body (:func:`imaging.scoring.lung_grid.inside_air`) and the lung voxels, on
        one grid, canonical orientation.

    Returns
    -------
    float or None
        Column index on that grid.
    """
    centres = []
    for z in np.flatnonzero(lungs.any(axis=(1, 2))):
        rows = lungs[z].any(axis=1)
        cols = np.flatnonzero(body[z][rows].any(axis=0))
        if cols.size and cols[0] > 0 and cols[-1] < body.shape[2] - 1:
            centres.append(0.5 * (cols[0] + cols[-1]))
    return float(np.median(centres)) if centres else None


def body_midline_x(hu: np.ndarray, lungs: np.ndarray, *, spacing_mm: Sequence[float]) -> float | None:
    """Column of the body's sagittal midline in a canonical volume (for :func:`split_lungs`).

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        CT in HU, canonical orientation.
    lungs : (Z, Y, X) bool ndarray
        Lung voxels (both lungs, any labels > 0).
    spacing_mm : (3,) float
        Voxel spacing (z, y, x), mm.

    Returns
    -------
    float or None
        Column index, found as in the classical lung mask (body = all but the air
        touching the image edge, at ``LUNG_WORKING_SPACING_MM``); None when the body is
        cut by the image's side edges on every lung slice.

    Examples
    --------
    >>> hu = np.full((4, 20, 40), -1000, np.int16); hu[:, 2:18, 5:31] = 40
    >>> body_midline_x(hu, hu > 0, spacing_mm=(1.0, 1.0, 1.0))
    17.5
    """
    factors = working_factors(spacing_mm, C.LUNG_WORKING_SPACING_MM)
    low = block_mean(hu, factors)
    _, body = inside_air(low, C.HU_LUNG_THRESHOLD)
    mid = midline_from_body(body, block_mean(np.asarray(lungs, dtype=bool), factors) >= 0.5)
    return None if mid is None else (mid + 0.5) * factors[2] - 0.5
