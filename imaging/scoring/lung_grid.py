"""The working grid of the classical lung mask, and the body and the air inside it.

The classical lung mask (:mod:`imaging.scoring.lungs_classical`) is computed at about
2 mm spacing (:data:`imaging.scoring.constants.LUNG_WORKING_SPACING_MM`): this module
holds the whole-voxel factors down to that grid (:func:`working_factors`), the block
means that take a volume down (:func:`block_mean`), the label upsampling that takes the
result back to the input grid (:func:`upsample_labels`), the in-plane structuring
element (:data:`INPLANE`) and step 1 of the mask, the air inside the body
(:func:`inside_air`), which the body midline (:mod:`imaging.scoring.lung_sides`) and
the field-of-view flag (:mod:`imaging.scoring.quality_flags`) also use.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

__all__ = ["block_mean", "upsample_labels", "working_factors", "inside_air", "INPLANE"]


#: 3-D structuring element joining the 4 in-plane neighbours only (slice by slice).
INPLANE = np.zeros((3, 3, 3), dtype=bool)
INPLANE[1] = ndi.generate_binary_structure(2, 1)


def working_factors(spacing_mm: Sequence[float], target_mm: float) -> tuple[int, int, int]:
    """Whole-voxel block factors (z, y, x) that bring ``spacing_mm`` nearest to ``target_mm``.

    Parameters
    ----------
    spacing_mm : (3,) float
        Voxel spacing (z, y, x), mm.
    target_mm : float
        Wanted working spacing, mm.

    Returns
    -------
    (3,) int
        At least 1 on every axis.
    """
    return tuple(max(1, int(np.floor(target_mm / s + 0.5))) for s in spacing_mm)  # type: ignore[return-value]


def block_mean(a: np.ndarray, factors: Sequence[int]) -> np.ndarray:
    """Mean over non-overlapping blocks (edge-replicated to whole blocks), float32.

    In-plane by OpenCV area interpolation slice by slice (exact block means for whole
    factors, ~5x faster than a NumPy reshape-mean), then along z.

    Parameters
    ----------
    a : (Z, Y, X) ndarray
        HU or a mask (bool / 0-1).
    factors : (3,) int
        Block size (z, y, x), voxels (:func:`working_factors`).

    Returns
    -------
    (ceil(Z / fz), ceil(Y / fy), ceil(X / fx)) float32 ndarray
    """
    import cv2

    fz, fy, fx = factors
    if fz == fy == fx == 1:
        return a.astype(np.float32, copy=False)
    z, y, x = a.shape
    ny, nx = -(-y // fy), -(-x // fx)
    out = np.empty((z, ny, nx), dtype=np.float32)
    for k in range(z):
        sl = a[k].astype(np.float32)
        if ny * fy != y or nx * fx != x:
            sl = cv2.copyMakeBorder(sl, 0, ny * fy - y, 0, nx * fx - x, cv2.BORDER_REPLICATE)
        out[k] = cv2.resize(sl, (nx, ny), interpolation=cv2.INTER_AREA) if (fy, fx) != (1, 1) else sl
    if fz > 1:
        nz = -(-z // fz)
        if nz * fz != z:
            out = np.concatenate([out, np.repeat(out[-1:], nz * fz - z, axis=0)])
        out = out.reshape(nz, fz, ny, nx).mean(axis=1)
    return out


def upsample_labels(lab: np.ndarray, factors: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """Labels of the working grid repeated back to the input grid of ``shape``.

    Parameters
    ----------
    lab : (z, y, x) ndarray
        Labels on the working grid.
    factors : (3,) int
        The block factors that made the grid (:func:`working_factors`).
    shape : (3,) int
        Input grid shape (Z, Y, X); the repeated edge blocks are cut to it.

    Returns
    -------
    (Z, Y, X) ndarray, C-contiguous, of ``lab``'s dtype
    """
    out = lab
    for axis, f in enumerate(factors):
        if f > 1:
            out = np.repeat(out, f, axis=axis)
    return np.ascontiguousarray(out[: shape[0], : shape[1], : shape[2]])


def inside_air(low: np.ndarray, threshold_hu: float) -> tuple[np.ndarray, np.ndarray]:
    """Air inside the body (per-slice components not touching the in-plane border) and body.

    Step 1 of the classical lung mask: removes outside air, the field-of-view circle and
    the air under the table.

    Parameters
    ----------
    low : (Z, Y, X) ndarray
        HU (on the working grid).
    threshold_hu : float
        Air-like below this, HU (``HU_LUNG_THRESHOLD``).

    Returns
    -------
    inside, body : (Z, Y, X) bool ndarray
        Air not connected in-plane to the image border; everything but that outside air.
    """
    air = low < threshold_hu
    lab, n = ndi.label(air, structure=INPLANE)
    border = np.zeros(n + 1, dtype=bool)
    border[np.unique(lab[:, [0, -1], :])] = True
    border[np.unique(lab[:, :, [0, -1]])] = True
    border[0] = False
    outside = border[lab]
    return air & ~outside, ~outside

