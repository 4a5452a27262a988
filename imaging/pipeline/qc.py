"""Quality-control pictures: lungs and opacity drawn over representative slices.

One PNG per scan, for a person to glance at: three axial slices (the slice with the most
opacity, and slices at 30 % and 70 % of the lungs' height) and one coronal slice through
the lungs' centre, in the lung window, with the lung outlines (right lung cyan, left lung
green) and opacity filled (label 1 yellow, label 2 red, other labels magenta);
:func:`write_thumbnail` shrinks it for the gallery (``OUT/qc/thumbs``).

Orientation: the volume is expected in the toolkit's canonical orientation (see
:mod:`imaging.common.volume`), so axial slices are shown as radiologists read them (patient's
right on the image's left, anterior at the top) and the coronal slice with the head at
the top.  Pixels are drawn at their true aspect ratio from ``spacing_mm``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imaging.scoring.constants import DISPLAY_WINDOW_HU
from imaging.common.volume import index_to_lps

__all__ = ["representative_slices", "render_qc", "write_thumbnail", "THUMBNAIL_WIDTH_PX"]

#: Fraction of the lungs' height (from the most inferior lung slice) of the two fixed axial slices.
QC_AXIAL_FRACTIONS: tuple[float, float] = (0.3, 0.7)

#: Width of the thumbnails of the QC pictures (``OUT/qc/thumbs``), pixels.
THUMBNAIL_WIDTH_PX = 200

_OPACITY_COLOURS = {1: (1.0, 0.85, 0.0), 2: (1.0, 0.1, 0.1)}
_OTHER_COLOUR = (1.0, 0.0, 1.0)
_LUNG_COLOURS = {1: "cyan", 2: "lime"}


def representative_slices(lungs: np.ndarray, opacity: np.ndarray | None = None) -> list[int]:
    """Axial slice indices worth showing: most opacity, then 30 % and 70 % of lung height.

    Parameters
    ----------
    lungs : (Z, Y, X) integer or bool ndarray
        Lung labels (0 background).
    opacity : (Z, Y, X) ndarray, optional
        Opacity labels (0 none).

    Returns
    -------
    list of int
        Up to three distinct slice indices, ascending.  With no lung at all, the slices
        at 30 %, 50 % and 70 % of the volume.

    Examples
    --------
    >>> lungs = np.zeros((10, 4, 4), np.uint8); lungs[2:8, 1:3, 1:3] = 1
    >>> opacity = np.zeros_like(lungs); opacity[3, 1, 1] = 1
    >>> representative_slices(lungs, opacity)
    [3, 4, 6]
    """
    lungs = np.asarray(lungs)
    if lungs.ndim != 3:
        raise ValueError(f"lungs must be a (Z, Y, X) array, got shape {lungs.shape}")
    n = lungs.shape[0]
    per_slice = np.count_nonzero(lungs.reshape(n, -1), axis=1)
    present = np.flatnonzero(per_slice)
    if present.size == 0:
        return sorted({int(round(f * (n - 1))) for f in (0.3, 0.5, 0.7)})
    lo, hi = int(present[0]), int(present[-1])
    chosen = {int(round(lo + f * (hi - lo))) for f in QC_AXIAL_FRACTIONS}
    if opacity is not None:
        opacity = np.asarray(opacity)
        if opacity.shape != lungs.shape:
            raise ValueError(f"opacity shape {opacity.shape} differs from lungs shape {lungs.shape}")
        per_slice_op = np.count_nonzero(opacity.reshape(n, -1), axis=1)
        if per_slice_op.max() > 0:
            chosen.add(int(np.argmax(per_slice_op)))
    return sorted(chosen)


def _overlay(ax, image: np.ndarray, lungs: np.ndarray | None, opacity: np.ndarray | None,
             aspect: float, origin: str) -> None:
    lo, hi = DISPLAY_WINDOW_HU
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, aspect=aspect, origin=origin, interpolation="nearest")
    if opacity is not None and np.any(opacity):
        rgba = np.zeros(opacity.shape + (4,), np.float32)
        for value in np.unique(opacity[opacity > 0]):
            rgba[opacity == value, :3] = _OPACITY_COLOURS.get(int(value), _OTHER_COLOUR)
            rgba[opacity == value, 3] = 0.45
        ax.imshow(rgba, aspect=aspect, origin=origin, interpolation="nearest")
    if lungs is not None and np.any(lungs):
        # pixel-centre coordinates, as imshow uses for either origin (contour's own `origin`
        # would flip the outline vertically for "upper" and shift it by half a pixel)
        rows, cols = np.arange(lungs.shape[0]), np.arange(lungs.shape[1])
        for value in np.unique(lungs[lungs > 0]):
            ax.contour(cols, rows, (lungs == value).astype(np.float32), levels=[0.5],
                       colors=_LUNG_COLOURS.get(int(value), "white"), linewidths=0.8)
    ax.set_axis_off()


def checked_picture_inputs(hu: np.ndarray, lungs: np.ndarray | None, opacity: np.ndarray | None) -> np.ndarray:
    """``hu`` as an array, after checking it is 3-D and the masks have its shape."""
    hu = np.asarray(hu)
    if hu.ndim != 3:
        raise ValueError(f"hu must be a (Z, Y, X) array, got shape {hu.shape}")
    for name, arr in (("lungs", lungs), ("opacity", opacity)):
        if arr is not None and np.shape(arr) != hu.shape:
            raise ValueError(f"{name} shape {np.shape(arr)} differs from hu shape {hu.shape}")
    return hu

def render_qc(path: str | os.PathLike[str], hu: np.ndarray, *, spacing_mm: Sequence[float],
              lungs: np.ndarray | None = None, opacity: np.ndarray | None = None,
              title: str = "", dpi: int = 80, origin_mm: Sequence[float] | None = None,
              direction: np.ndarray | None = None) -> Path:
    """Draw the QC picture of one scan and write it as PNG (directly to ``path``).

    Parameters
    ----------
    path : path-like
        PNG file to write (callers wanting atomicity pass a temporary path, see
        :func:`imaging.common.files.atomic_write`).
    hu : (Z, Y, X) ndarray
        Voxels in HU, canonical orientation.
    spacing_mm : (3,) sequence of float
        Voxel spacing (z, y, x), mm.
    lungs, opacity : (Z, Y, X) ndarray, optional
        Label volumes in the same geometry (0 = background).
    title : str
        Shown above the panels; put no patient names here.
    dpi : int
        Resolution of the PNG.
    origin_mm : (3,) sequence of float, optional
        LPS position (x, y, z), mm, of voxel ``[0, 0, 0]`` (:attr:`CTVolume.origin_mm`).  When
        given, each panel title also gives the patient position of its slice centre (axial:
        ``z``, coronal: ``y``, mm), which is what viewers show (SliceLocation), so the slice
        can be found in the original series whatever its stored order; the index alone
        counts from the most inferior slice.
    direction : (3, 3) ndarray, optional
        ITK direction matrix (:attr:`CTVolume.direction`); identity when omitted.

    Returns
    -------
    pathlib.Path
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    hu = checked_picture_inputs(hu, lungs, opacity)
    sz, sy, sx = (float(s) for s in spacing_mm)
    if min(sz, sy, sx) <= 0:
        raise ValueError(f"spacing_mm must be positive, got {tuple(spacing_mm)}")
    if origin_mm is not None and np.shape(origin_mm) != (3,):
        raise ValueError(f"origin_mm must be 3 numbers (x, y, z), got {origin_mm!r}")
    if direction is not None and np.size(direction) != 9:
        raise ValueError(f"direction must be a 3x3 matrix, got shape {np.shape(direction)}")
    lung_ref = lungs if lungs is not None else np.zeros(hu.shape, np.uint8)
    slices = representative_slices(lung_ref, opacity)
    if lungs is not None and np.any(lungs):
        y_centre = int(round(np.mean(np.nonzero(lungs)[1])))
    else:
        y_centre = hu.shape[1] // 2

    def position(z: float, y: float, x: float, axis: int) -> str:
        if origin_mm is None:
            return ""
        lps = index_to_lps((z, y, x), (sz, sy, sx), origin_mm, direction)
        return f"  ({'xyz'[axis]} {lps[axis]:.1f} mm)"

    Z, Y, X = hu.shape
    fig = Figure(figsize=(3.2 * (len(slices) + 1), 3.6), dpi=dpi)
    axes = fig.subplots(1, len(slices) + 1)
    for ax, z in zip(axes, slices):
        _overlay(ax, hu[z], None if lungs is None else lungs[z], None if opacity is None else opacity[z],
                 aspect=sy / sx, origin="upper")
        ax.set_title(f"axial {z}" + position(z, (Y - 1) / 2, (X - 1) / 2, 2), fontsize=8)
    _overlay(axes[-1], hu[:, y_centre, :], None if lungs is None else lungs[:, y_centre, :],
             None if opacity is None else opacity[:, y_centre, :], aspect=sz / sx, origin="lower")
    axes[-1].set_title(f"coronal {y_centre}" + position((Z - 1) / 2, y_centre, (X - 1) / 2, 1), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png")
    return out


def write_thumbnail(source: str | os.PathLike[str], path: str | os.PathLike[str],
                    width: int = THUMBNAIL_WIDTH_PX) -> Path:
    """Write a PNG of ``width`` pixels, its height at the aspect of ``source`` (a picture).

    Parameters
    ----------
    source : path-like
        The picture to shrink (e.g. a QC picture from :func:`render_qc`).
    path : path-like
        PNG file to write (callers wanting atomicity pass a temporary path).
    width : int
        Width of the thumbnail, pixels.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from PIL import Image

    with Image.open(source) as image:
        picture = image.convert("RGB")
    height = max(1, round(picture.height * width / picture.width))
    out = Path(path)
    picture.resize((width, height), Image.Resampling.LANCZOS).save(out, format="PNG")
    return out
