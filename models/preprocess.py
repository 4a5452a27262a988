"""Map CT slices (HU or 8-bit display images) into the opacity network's input space.

The network was trained on the COVID-19 CT slices of Ma et al. (Med Phys 2021), which
were prepared (``../shared/data/README.md``) by: per-slice min-max normalisation to
[0, 1], scaling to uint8, OpenCV CLAHE (clip limit 7.0, 8 x 8 tiles) and a cubic resize
to 256 x 256. Half of the source volumes were already stored as 8-bit images of the
[-1250, 250] HU window, so :func:`hu_to_display` first windows HU to
:data:`imaging.scoring.constants.DISPLAY_WINDOW_HU` and then repeats exactly those steps.
:func:`display_to_input` uses 8-bit display images as they are (only resized), or, with
``equalise=True`` for plain-window exports without equalisation, repeats the min-max and
the CLAHE first (its notes give the measurements).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from imaging.scoring.constants import DISPLAY_WINDOW_HU

__all__ = [
    "NET_SIZE",
    "CLAHE_CLIP_LIMIT",
    "CLAHE_TILES",
    "hu_to_display",
    "display_to_input",
    "KINDS",
    "check_kind",
    "display_to_hu_approx",
    "square_geometry",
]

#: Side of the square slice the network sees, pixels (the training slices' size).
NET_SIZE: int = 256
#: OpenCV CLAHE clip limit used by the training data preparation.
CLAHE_CLIP_LIMIT: float = 7.0
#: OpenCV CLAHE tile grid used by the training data preparation (OpenCV default).
CLAHE_TILES: tuple[int, int] = (8, 8)


#: The kinds of network input: HU; 8-bit display images used as they are (already
#: CLAHE-equalised, as the public COVID-19 slice sets ship them); 8-bit images of a plain
#: window without equalisation (as most viewers and PACS exports save them), equalised
#: first (:func:`display_to_input`).
KINDS: tuple[str, str, str] = ("hu", "display", "window")


def check_kind(kind: str) -> None:
    """ValueError unless ``kind`` is one of :data:`KINDS`."""
    if kind not in KINDS:
        raise ValueError(f"kind must be 'hu', 'display' or 'window', got {kind!r}")


def _check_slices(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise ValueError(f"{name} must be 2D (Y, X) or 3D (Z, Y, X), got shape {array.shape}")
    if min(array.shape[-2:]) < 2:
        raise ValueError(f"{name} slices must be at least 2 x 2 pixels, got shape {array.shape}")
    return array


def square_geometry(
    shape_yx: Sequence[int], spacing_yx_mm: Sequence[float] | None = None, *, size: int = NET_SIZE
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Resized size and offset that fit a slice into a ``size`` x ``size`` square.

    The slice's physical aspect ratio is kept (pixels spacing ``spacing_yx_mm``, square
    pixels when None); the longer physical side fills ``size`` and the other is centred.

    Parameters
    ----------
    shape_yx : (2,) ints
        Slice shape, pixels.
    spacing_yx_mm : (2,) floats or None
        Row and column spacing, mm.
    size : int
        Side of the square, pixels.

    Returns
    -------
    (height, width), (top, left) : tuple of int pairs
        Size of the resized slice and its offset inside the square.

    Examples
    --------
    >>> square_geometry((512, 512))
    ((256, 256), (0, 0))
    >>> square_geometry((100, 200), (1.0, 1.0))
    ((128, 256), (64, 0))
    """
    ny, nx = int(shape_yx[0]), int(shape_yx[1])
    sy, sx = (1.0, 1.0) if spacing_yx_mm is None else (float(spacing_yx_mm[0]), float(spacing_yx_mm[1]))
    if sy <= 0 or sx <= 0:
        raise ValueError(f"spacing_yx_mm must be positive, got {spacing_yx_mm!r}")
    ey, ex = ny * sy, nx * sx
    e = max(ey, ex)
    h = max(1, min(size, round(size * ey / e)))
    w = max(1, min(size, round(size * ex / e)))
    return (h, w), ((size - h) // 2, (size - w) // 2)


def _to_display_slice(
    scaled01: np.ndarray, geometry: tuple[tuple[int, int], tuple[int, int]], clahe: cv2.CLAHE | None
) -> np.ndarray:
    (h, w), (top, left) = geometry
    u8 = np.round(scaled01 * 255.0).astype(np.uint8)
    if clahe is not None:
        u8 = clahe.apply(u8)
    out = np.zeros((NET_SIZE, NET_SIZE), dtype=np.uint8)
    resized = cv2.resize(u8, (w, h), interpolation=cv2.INTER_CUBIC)
    out[top:top + h, left:left + w] = resized
    if (h, w) != (NET_SIZE, NET_SIZE):  # fill the padding with the slice's darkest value
        fill = resized.min()
        mask = np.ones_like(out, dtype=bool)
        mask[top:top + h, left:left + w] = False
        out[mask] = fill
    return out


def hu_to_display(
    hu: np.ndarray,
    *,
    window_hu: tuple[float, float] = DISPLAY_WINDOW_HU,
    spacing_yx_mm: Sequence[float] | None = None,
) -> np.ndarray:
    """Convert HU slices to the 8-bit, CLAHE-equalised 256 x 256 training appearance.

    Parameters
    ----------
    hu : (Y, X) or (Z, Y, X) ndarray, HU
        Axial slices, rows anterior to posterior, columns patient right to left
        (radiological display, as :meth:`imaging.common.volume.CTVolume.canonical` gives).
    window_hu : (low, high), HU
        Window clipped before the per-slice min-max normalisation.
    spacing_yx_mm : (2,) floats or None
        In-plane spacing; with non-square pixels or matrices the slice is fitted into the
        square keeping its physical aspect (see :func:`square_geometry`).

    Returns
    -------
    (256, 256) or (Z, 256, 256) uint8 ndarray
        Display images as in ``covid19_ct_slices/ct``.

    Notes
    -----
    Steps per slice: clip to ``window_hu``; min-max to [0, 1] (a constant slice maps to
    0); round to uint8; CLAHE (clip 7.0, 8 x 8 tiles); cubic resize to 256 x 256.

    Examples
    --------
    >>> hu = np.tile(np.linspace(-1000.0, 400.0, 64), (64, 1))
    >>> img = hu_to_display(hu)
    >>> img.shape, img.dtype, bool(img[:, 0].mean() < img[:, -1].mean())
    ((256, 256), dtype('uint8'), True)
    """
    hu = _check_slices(hu, "hu")
    lo, hi = float(window_hu[0]), float(window_hu[1])
    if not hi > lo:
        raise ValueError(f"window_hu must be (low, high) with high > low, got {window_hu!r}")
    slices = hu[None] if hu.ndim == 2 else hu
    geometry = square_geometry(slices.shape[-2:], spacing_yx_mm)
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES)
    out = np.empty((len(slices), NET_SIZE, NET_SIZE), dtype=np.uint8)
    for i, s in enumerate(slices):
        c = np.clip(s.astype(np.float32), lo, hi)
        cmin, cmax = float(c.min()), float(c.max())
        scaled = (c - cmin) / (cmax - cmin) if cmax > cmin else np.zeros_like(c)
        out[i] = _to_display_slice(scaled, geometry, clahe)
    return out[0] if hu.ndim == 2 else out


def display_to_input(
    display: np.ndarray, *, spacing_yx_mm: Sequence[float] | None = None, equalise: bool = False
) -> np.ndarray:
    """Bring 8-bit display images to the network's 256 x 256 uint8 input.

    ``equalise=False`` (``kind="display"``): the images are used as they are, only the
    size is adapted as in :func:`hu_to_display` -- for slices that already have the
    training appearance (CLAHE-equalised, as the public COVID-19 slice sets ship them, or
    :func:`hu_to_display` renders).  ``equalise=True`` (``kind="window"``): 8-bit images of
    a plain window without equalisation (as most viewers and PACS exports save them) first
    get the last steps of :func:`hu_to_display`: per-slice min-max to the full 0-255 range
    and OpenCV CLAHE (clip limit :data:`CLAHE_CLIP_LIMIT`, :data:`CLAHE_TILES` tiles) in the
    image's own grid, then the same resize.  A constant slice has nothing to equalise and
    is only resized.

    Parameters
    ----------
    display : (Y, X) or (Z, Y, X) ndarray, grey levels 0-255
    spacing_yx_mm : (2,) floats or None
    equalise : bool
        Apply the per-slice min-max and the training CLAHE before the resize.

    Returns
    -------
    (256, 256) or (Z, 256, 256) uint8 ndarray

    Notes
    -----
    The network only ever saw CLAHE-equalised slices and barely reads plain-window
    renders; but a second CLAHE on slices that are equalised already is not safe, and no
    simple histogram statistic told the two apart (entropy of the body's grey levels:
    training slices >= 6.66 bits, plain renders <= 6.68 bits), so the caller says which it
    has.  Measured (v1 weights, display lesion threshold 0.75, 1 CPU thread):

    * plain lung-window renders (level -600, width 1500 HU) of ``lidc_idri_0003`` with
      inserted lesions, cropped to the body and rotated 90 degrees
      (:mod:`imaging.validation.display_input`, every 4th lung slice, 29 slices), infection
      Dice at 15 / 30 / 45 % involvement: 0.055 / 0.096 / 0.155 used as they are, 0.317 /
      0.439 / 0.463 with ``equalise=True``, against 0.515 / 0.614 / 0.663 on the same
      slices' HU (``kind="hu"``). Most of the remaining gap is the 90 degree rotation (the
      training augmentation rotates by +-12 degrees only): without it, 0.407 / - / 0.626
      at 15 / 45 %;
    * the held-out COVID-19 scans (already CLAHE-equalised, 384 slices): a second CLAHE
      raised the pooled infection Dice from 0.663 to 0.721 (per scan 0.783 / 0.745 / 0.390
      / 0.546 to 0.814 / 0.743 / 0.587 / 0.623), lung Dice 0.9633 to 0.9607;
    * but on phantoms rendered with :func:`hu_to_display` (already equalised) a second
      CLAHE gave 41 % opacity on a healthy phantom (0.61 % without) and lung Dice 0.67
      (0.978 without) -- which is why it is not the default for ``kind="display"``.

    Examples
    --------
    >>> plain = np.tile(np.repeat(np.arange(60, 124, 2, dtype=np.uint8), 8), (256, 1))
    >>> bool(np.array_equal(display_to_input(plain), plain))  # already 256 x 256: as it is
    True
    >>> out = display_to_input(plain, equalise=True)
    >>> out.shape, int(plain.max()) - int(plain.min()), int(out.max()) - int(out.min()) > 200
    ((256, 256), 62, True)
    """
    display = _check_slices(display, "display")
    if display.dtype != np.uint8:
        display = np.clip(np.round(display.astype(np.float32)), 0, 255).astype(np.uint8)
    slices = display[None] if display.ndim == 2 else display
    out = np.empty((len(slices), NET_SIZE, NET_SIZE), dtype=np.uint8)
    if equalise:
        geometry = square_geometry(slices.shape[-2:], spacing_yx_mm)
        clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP_LIMIT, tileGridSize=CLAHE_TILES)
        for i, s in enumerate(slices):
            lo, hi = int(s.min()), int(s.max())
            if hi > lo:
                out[i] = _to_display_slice((s.astype(np.float32) - lo) / float(hi - lo), geometry, clahe)
            else:  # nothing to equalise: only the size is adapted
                out[i] = _to_display_slice(s.astype(np.float32) / 255.0, geometry, None)
        return out[0] if display.ndim == 2 else out
    (h, w), (top, left) = square_geometry(slices.shape[-2:], spacing_yx_mm)
    for i, s in enumerate(slices):
        if s.shape == (NET_SIZE, NET_SIZE):
            out[i] = s
            continue
        r = cv2.resize(s, (w, h), interpolation=cv2.INTER_CUBIC)
        out[i] = r.min()
        out[i, top:top + h, left:left + w] = r
    return out[0] if display.ndim == 2 else out


def display_to_hu_approx(
    display: np.ndarray, *, window_hu: tuple[float, float] = DISPLAY_WINDOW_HU
) -> np.ndarray:
    """Approximate HU of display grey levels: the linear inverse of the display window.

    ``hu = low + display / 255 * (high - low)``. This ignores the per-slice min-max and
    the CLAHE equalisation, so it is only a rough density estimate, used to split a
    predicted lesion into ground-glass and consolidation when no HU are available.  It
    assumes the images are a render of ``window_hu`` (by default the training data's
    [-1250, 250] HU window): for a plain-window export (``kind="window"``, no
    equalisation) it is close when the export used that window and shifted or stretched
    when it used another (a lung window of level -600, width 1500 HU, i.e. -1350..150 HU,
    reads 100 HU too dense).

    Parameters
    ----------
    display : ndarray, grey levels 0-255
    window_hu : (low, high), HU

    Returns
    -------
    float32 ndarray, HU, same shape

    Examples
    --------
    >>> display_to_hu_approx(np.array([0, 255])).tolist()
    [-1250.0, 250.0]
    """
    lo, hi = float(window_hu[0]), float(window_hu[1])
    return (lo + np.asarray(display, dtype=np.float32) / 255.0 * (hi - lo)).astype(np.float32)
