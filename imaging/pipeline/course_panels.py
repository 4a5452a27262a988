"""The small pictures of one scan that its patient's course is assembled from.

While a scan is scored, :func:`course_panels` cuts four views of it at the same anatomical
levels in every visit: axial slices at the upper, middle and lower third of *that scan's*
lungs (at 5/6, 1/2 and 1/6 of the lungs' z extent, slice 0 being the most inferior) and a
coronal slice through the lungs' centre.  Each view is shown in the lung window
(:data:`COURSE_WINDOW_HU`), shrunk to about :data:`PANEL_PX` pixels, and drawn over with
the lung outlines (right cyan, left green) and the opacity outlines (ground-glass yellow,
consolidation red, other labels magenta) as RGB ``uint8`` arrays, pixels kept at their
own size in mm (not square in general).  :func:`write_course_panels` stores them in
``OUT/scans/<uid>/course_panels.npz``, so that the course of a patient
(:mod:`imaging.pipeline.course_pictures`) never reads a volume again.

Orientation (canonical arrays, :mod:`imaging.common.volume`): axial panels have the
patient's right on the image's left and anterior at the top; the coronal panel has the
patient's right on the image's left and the head at the top.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from imaging.pipeline.qc import checked_picture_inputs
from imaging.scoring.opacity import CONSOLIDATION, GGO

__all__ = ["COURSE_WINDOW_HU", "COURSE_LEVELS", "PANEL_NAMES", "PANEL_PX", "CoursePanels", "course_panels",
           "course_levels", "write_course_panels", "read_course_panels"]

#: Lung window of the course pictures (W 1500, L -600), HU.
COURSE_WINDOW_HU: tuple[float, float] = (-1350.0, 150.0)

#: Axial levels: name -> fraction of the lungs' z extent above their most inferior slice.
COURSE_LEVELS: tuple[tuple[str, float], ...] = (("upper", 5 / 6), ("middle", 1 / 2), ("lower", 1 / 6))

#: The panels, top to bottom in a course picture.
PANEL_NAMES: tuple[str, ...] = ("upper", "middle", "lower", "coronal")

#: Longest side of a panel, pixels (a panel is shrunk by a whole factor to at most this).
PANEL_PX = 256

_LUNG_RGB = {1: (0, 230, 255), 2: (60, 230, 60)}
_OPACITY_RGB = {GGO: (255, 215, 0), CONSOLIDATION: (255, 30, 30)}
_OTHER_RGB = (255, 0, 255)


@dataclass(frozen=True)
class CoursePanels:
    """The course panels of one scan.

    Attributes
    ----------
    images : dict of str -> (H, W, 3) uint8 ndarray
        One RGB picture per name of :data:`PANEL_NAMES`.
    pixel_mm : dict of str -> (2,) float ndarray
        Height and width of one pixel of each picture, mm.
    levels : dict of str -> int
        The slice each picture shows: axial ``z`` index (upper, middle, lower) or coronal
        ``y`` index (coronal), in the canonical volume.
    """

    images: dict[str, np.ndarray]
    pixel_mm: dict[str, np.ndarray]
    levels: dict[str, int]


def course_levels(shape: Sequence[int], lungs: np.ndarray | None) -> dict[str, int]:
    """The slices shown: axial ``z`` of each :data:`COURSE_LEVELS` and the coronal ``y``.

    Parameters
    ----------
    shape : (3,) sequence of int
        The volume's (Z, Y, X) shape.
    lungs : (Z, Y, X) ndarray, optional
        Lung labels (0 background).  Without a lung voxel the levels are taken over the
        whole volume and the coronal slice through its middle.

    Returns
    -------
    dict of str -> int

    Examples
    --------
    >>> lungs = np.zeros((13, 4, 4), np.uint8); lungs[1:13, 1, 1:3] = 1
    >>> course_levels(lungs.shape, lungs)
    {'upper': 10, 'middle': 6, 'lower': 3, 'coronal': 1}
    """
    n_z, n_y = int(shape[0]), int(shape[1])
    if lungs is not None and np.any(lungs):
        zs, ys = np.nonzero(np.asarray(lungs))[:2]
        lo, hi, y_centre = int(zs.min()), int(zs.max()), int(round(float(ys.mean())))
    else:
        lo, hi, y_centre = 0, n_z - 1, n_y // 2
    levels = {name: int(round(lo + fraction * (hi - lo))) for name, fraction in COURSE_LEVELS}
    levels["coronal"] = y_centre
    return levels


def course_panels(hu: np.ndarray, spacing_mm: Sequence[float], lungs: np.ndarray | None = None,
                  opacity: np.ndarray | None = None) -> CoursePanels:
    """Cut, window, shrink and outline the four course panels of one scan.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        Voxels in HU, canonical orientation.
    spacing_mm : (3,) sequence of float
        Voxel spacing (z, y, x), mm.
    lungs : (Z, Y, X) ndarray, optional
        Lung labels (1 right, 2 left); outlined, and they fix the levels.
    opacity : (Z, Y, X) ndarray, optional
        Opacity labels (1 ground-glass, 2 consolidation); outlined.

    Returns
    -------
    CoursePanels
    """
    hu = checked_picture_inputs(hu, lungs, opacity)
    sz, sy, sx = (float(s) for s in spacing_mm)
    levels = course_levels(hu.shape, lungs)
    images: dict[str, np.ndarray] = {}
    pixel_mm: dict[str, np.ndarray] = {}
    for name in PANEL_NAMES:
        if name == "coronal":  # rows z, flipped so that the head is at the top
            cut = (slice(None, None, -1), levels[name], slice(None))
            spacing = (sz, sx)
        else:
            cut = (levels[name], slice(None), slice(None))
            spacing = (sy, sx)
        images[name], pixel_mm[name] = _panel(hu[cut], None if lungs is None else np.asarray(lungs)[cut],
                                              None if opacity is None else np.asarray(opacity)[cut], spacing)
    return CoursePanels(images=images, pixel_mm=pixel_mm, levels=levels)


def _panel(image: np.ndarray, lungs: np.ndarray | None, opacity: np.ndarray | None,
           spacing: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """One 2-D cut windowed, shrunk by a whole factor per axis, with the outlines drawn.

    The outlines are found at full resolution and shrunk with the picture (a shrunk pixel
    is coloured when any pixel it covers lies on an outline), so a thin outline survives.
    """
    steps = tuple(max(1, math.ceil(n / PANEL_PX)) for n in image.shape)
    lo, hi = COURSE_WINDOW_HU
    grey = np.clip((_shrink_mean(image.astype(np.float32), steps) - lo) / (hi - lo), 0.0, 1.0)
    rgb = np.repeat(np.round(grey * 255).astype(np.uint8)[..., None], 3, axis=2)
    for labels, colours in ((lungs, _LUNG_RGB), (opacity, _OPACITY_RGB)):
        if labels is None:
            continue
        for value in (int(v) for v in np.unique(labels) if v):
            edge = _shrink_any(_outline(labels == value), steps)
            rgb[edge] = colours.get(value, _OTHER_RGB)
    return rgb, np.array([spacing[0] * steps[0], spacing[1] * steps[1]], np.float64)


def _outline(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` with a 4-neighbour outside it (the image border counts as outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _blocks(image: np.ndarray, steps: tuple[int, int]) -> np.ndarray:
    """``image`` edge-padded to whole blocks and viewed as (rows, step, cols, step)."""
    (r, c), (sr, sc) = image.shape, steps
    padded = np.pad(image, ((0, -r % sr), (0, -c % sc)), mode="edge")
    return padded.reshape(padded.shape[0] // sr, sr, padded.shape[1] // sc, sc)


def _shrink_mean(image: np.ndarray, steps: tuple[int, int]) -> np.ndarray:
    return _blocks(image, steps).mean(axis=(1, 3)) if steps != (1, 1) else image


def _shrink_any(mask: np.ndarray, steps: tuple[int, int]) -> np.ndarray:
    return _blocks(mask, steps).any(axis=(1, 3)) if steps != (1, 1) else mask


# --------------------------------------------------------------------------- the panels' file

def write_course_panels(path: str | os.PathLike[str], panels: CoursePanels) -> None:
    """Write the panels to ``path`` (a compressed ``.npz``; callers wanting atomicity pass a
    temporary path, see :func:`imaging.common.files.atomic_write`).

    Keys: ``<name>`` (the RGB picture), ``<name>_pixel_mm`` and ``<name>_level`` per name of
    :data:`PANEL_NAMES`.
    """
    arrays: dict[str, np.ndarray] = {}
    for name in PANEL_NAMES:
        arrays[name] = panels.images[name]
        arrays[f"{name}_pixel_mm"] = panels.pixel_mm[name]
        arrays[f"{name}_level"] = np.array(panels.levels[name], np.int64)
    with open(path, "wb") as fh:  # a file object: numpy adds no ".npz" to the temporary name
        np.savez_compressed(fh, **arrays)


def read_course_panels(path: str | os.PathLike[str]) -> CoursePanels:
    """The panels written by :func:`write_course_panels`.

    Raises
    ------
    OSError, ValueError, KeyError
        The file is missing, unreadable or lacks a panel.
    """
    with np.load(path, allow_pickle=False) as data:
        content: Mapping[str, np.ndarray] = {k: data[k] for k in data.files}
    return CoursePanels(images={n: content[n] for n in PANEL_NAMES},
                        pixel_mm={n: content[f"{n}_pixel_mm"] for n in PANEL_NAMES},
                        levels={n: int(content[f"{n}_level"]) for n in PANEL_NAMES})
