"""The work grid on which the phantom is painted, and its way back to the full matrix.

The anatomy is evaluated on a *work grid* no finer than the work spacing (default
:data:`imaging.phantom.constants.DEFAULT_WORK_SPACING_MM`) laid over the requested matrix
with its end points aligned; :func:`upsample` interpolates work-grid values (HU, lung and
disease fields) linearly back onto the full matrix.  The grid carries the normalised
coordinates ``u``, ``v``, ``t`` of :mod:`imaging.phantom.anatomy` and the scan mm of its
voxel centres.  :func:`smooth_noise` draws the smooth random fields (texture, disease
pattern) painted on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["WorkGrid", "work_grid", "full_positions", "upsample", "bbox", "smooth_noise"]

Box = tuple[slice, ...]


@dataclass(frozen=True)
class WorkGrid:
    """Normalised coordinates of a (possibly coarser) grid laid over the full matrix.

    Attributes
    ----------
    u, v, t : (X,), (Y,), (Z,) float32 ndarrays
        Normalised coordinates of the work-grid voxel centres (scanner frame, no pose).
    mm : tuple of three 1-D ndarrays
        Scan mm of the voxel centres along z, y and x (origin-free: x, y from the matrix
        centre, z from the bottom of the first slice).
    shape : (Z, Y, X) tuple of int
        Work-grid shape.
    full_shape : (Z, Y, X) tuple of int
        The requested matrix.
    full_spacing_mm : (z, y, x) tuple of float
        The requested voxel spacing, mm.
    spacing_mm : (z, y, x) tuple of float
        Actual work-grid spacing, mm (end points aligned with the full matrix).
    scale_mm : float
        mm per normalised ``u``/``v`` unit: half the smaller in-plane field of view.
    """

    u: np.ndarray
    v: np.ndarray
    t: np.ndarray
    mm: tuple[np.ndarray, np.ndarray, np.ndarray]
    shape: tuple[int, int, int]
    full_shape: tuple[int, int, int]
    full_spacing_mm: tuple[float, float, float]
    spacing_mm: tuple[float, float, float]
    scale_mm: float

    def full_box(self, box: Box) -> Box:
        """The full-matrix crop covering the work-grid crop ``box`` (end points included)."""
        if self.shape == self.full_shape:
            return box
        return tuple(
            slice(int(np.floor(full_positions(n, w)[b.start])), int(np.ceil(full_positions(n, w)[b.stop - 1])) + 1)
            for n, w, b in zip(self.full_shape, self.shape, box)
        )


def _work_shape(shape: tuple[int, int, int], spacing: tuple[float, float, float],
                work_spacing: tuple[float, float, float]) -> tuple[int, int, int]:
    out = []
    for n, s, w in zip(shape, spacing, work_spacing):
        out.append(n if s >= w else max(min(n, int(np.ceil((n - 1) * s / w)) + 1), 2))
    return tuple(out)  # type: ignore[return-value]


def full_positions(n_full: int, n_work: int) -> np.ndarray:
    """Full-matrix index of each work-grid index (end points aligned)."""
    if n_work == 1:
        return np.zeros(1)
    return np.arange(n_work) * ((n_full - 1) / (n_work - 1))


def work_grid(shape: tuple[int, int, int], spacing: tuple[float, float, float],
              work_spacing_mm: tuple[float, float, float]) -> WorkGrid:
    """The work grid of a matrix.

    Parameters
    ----------
    shape : (Z, Y, X) tuple of int
        The requested matrix.
    spacing : (z, y, x) tuple of float
        Its voxel spacing, mm.
    work_spacing_mm : (z, y, x) tuple of float
        Finest spacing to paint at, mm; axes already coarser keep the matrix's own.

    Returns
    -------
    WorkGrid
    """
    Z, Y, X = shape
    sz, sy, sx = spacing
    s_mm = 0.5 * min(X * sx, Y * sy)
    work_shape = _work_shape(shape, spacing, work_spacing_mm)
    zi, yi, xi = (full_positions(n, w) for n, w in zip(shape, work_shape))
    x_mm = (xi - (X - 1) / 2) * sx
    y_mm = (yi - (Y - 1) / 2) * sy
    z_mm = (zi + 0.5) * sz
    return WorkGrid(
        u=(x_mm / s_mm).astype(np.float32),
        v=(y_mm / s_mm).astype(np.float32),
        t=(z_mm / (Z * sz)).astype(np.float32),
        mm=(z_mm, y_mm, x_mm),
        shape=work_shape,
        full_shape=shape,
        full_spacing_mm=spacing,
        spacing_mm=tuple(  # type: ignore[arg-type]
            (n_full - 1) * sp / (n_work - 1) if n_work > 1 else sp for n_full, n_work, sp in zip(shape, work_shape, spacing)
        ),
        scale_mm=s_mm,
    )


def upsample(arr: np.ndarray, work_shape: tuple[int, int, int], crop_work: Box,
             full_shape: tuple[int, int, int], crop_full: Box) -> np.ndarray:
    """Linear interpolation of a work-grid crop onto a full-grid crop (end points aligned).

    Parameters
    ----------
    arr : (z, y, x) ndarray
        Values on the work-grid crop ``crop_work``.
    work_shape, full_shape : (Z, Y, X) tuples of int
        The whole work grid and the whole full matrix.
    crop_work, crop_full : tuples of three slices
        Where ``arr`` lies on the work grid, and the full-matrix crop wanted.

    Returns
    -------
    ndarray
        Values on ``crop_full`` (float32 for float32 input).
    """
    out = arr
    for axis in range(3):
        n_full, n_work = full_shape[axis], work_shape[axis]
        fs, ws = crop_full[axis], crop_work[axis]
        if n_full == n_work:
            out = np.take(out, np.arange(fs.start, fs.stop) - ws.start, axis=axis)
            continue
        c = np.arange(fs.start, fs.stop) * ((n_work - 1) / (n_full - 1)) - ws.start
        n = out.shape[axis]
        i0 = np.clip(np.floor(c).astype(np.intp), 0, max(n - 2, 0))
        w = np.clip(c - i0, 0.0, 1.0).astype(np.float32)
        shape_w = [1, 1, 1]
        shape_w[axis] = -1
        w = w.reshape(shape_w)
        lo = np.take(out, i0, axis=axis)
        hi = np.take(out, np.minimum(i0 + 1, n - 1), axis=axis)
        hi -= lo
        hi *= w
        lo += hi
        out = lo
    return out


def bbox(mask: np.ndarray, margin: int) -> Box:
    """Bounding box of a 3-D mask grown by ``margin`` voxels (clipped); the first voxel when empty."""
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != k))) for k in range(3)]
    if any(len(i) == 0 for i in idx):
        return tuple(slice(0, 1) for _ in range(3))
    return tuple(slice(max(int(i[0]) - margin, 0), min(int(i[-1]) + margin + 1, n)) for i, n in zip(idx, mask.shape))


def smooth_noise(shape: tuple[int, ...], sigma: float | tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise normalised to unit standard deviation (float32).

    Parameters
    ----------
    shape : tuple of int
    sigma : float or tuple of float
        Gaussian standard deviation, voxels (wrap-around edges).
    rng : numpy.random.Generator

    Returns
    -------
    float32 ndarray of ``shape``
    """
    n = rng.standard_normal(shape, dtype=np.float32)
    ndi.gaussian_filter(n, sigma, output=n, mode="wrap")
    sd = float(n.std())
    return n / sd if sd > 0 else n
