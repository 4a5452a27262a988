"""Network classes per voxel: the U-Net run slice by slice on HU or display input.

Each axial slice is turned into the network's 256 x 256 display input
(:func:`models.preprocess.hu_to_display` for HU, :func:`models.preprocess.display_to_input`
for 8-bit display slices, with the training min-max and CLAHE first for plain-window
exports, ``kind="window"``; non-square pixels are resampled to a square aspect), the logits
are cropped to the slice's place in the square and resized bilinearly back to the slice
size, and the softmax gives ``p(lung) = p1 + p2`` and ``p(lesion | lung) = p2 / (p1 + p2)``
(:func:`iter_probabilities`).  :func:`predict_classes` thresholds them: lung where
``p(lung) >= 0.5``, lesion where also ``p(lesion | lung)`` reaches the threshold recorded
with the weights (:func:`models.checkpoint.lesion_threshold`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from models.checkpoint import lesion_threshold, load_model
from models.preprocess import KINDS, check_kind, display_to_input, hu_to_display, square_geometry

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["KINDS", "predict_classes", "iter_probabilities"]


def _check_input(array: Any, kind: str, spacing_mm: Sequence[float] | None) -> tuple[np.ndarray, tuple[float, float] | None]:
    """``array`` as an ndarray and its in-plane spacing (mm, or None); ValueError naming the bad argument."""
    check_kind(kind)
    arr = np.asarray(array)
    if arr.ndim not in (2, 3):
        raise ValueError(f"array must be a 2D slice (Y, X) or a 3D volume (Z, Y, X), got shape {arr.shape}")
    if arr.size == 0 or min(arr.shape[-2:]) < 2:
        raise ValueError(f"array slices must be at least 2 x 2, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"array must be real numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError("array contains NaN or infinite values")
    if kind in ("display", "window"):
        _check_display_levels(arr)
    spacing_yx = None
    if spacing_mm is not None:
        try:
            sp = tuple(float(s) for s in spacing_mm)
        except (TypeError, ValueError):
            raise ValueError(f"spacing_mm must be {arr.ndim} positive values (mm) for a "
                             f"{arr.ndim}D array, got {spacing_mm!r}") from None
        if len(sp) != arr.ndim or not all(math.isfinite(s) and s > 0 for s in sp):
            raise ValueError(f"spacing_mm must be {arr.ndim} positive values (mm) for a "
                             f"{arr.ndim}D array, got {spacing_mm!r}")
        spacing_yx = (sp[-2], sp[-1])
    return arr, spacing_yx


def _check_display_levels(arr: np.ndarray) -> None:
    """Refuse display input that is not grey levels 0-255 of axial slices (a colour image
    read as a volume, 0-1 floats, 16-bit or HU values), which would otherwise give silent
    nonsense."""
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and arr.shape[-2] > 4:
        raise ValueError(f"display input of shape {arr.shape} looks like an RGB(A) image, not slices "
                         "(Z, Y, X): convert it to grey levels first, e.g. PIL Image.convert('L')")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 255:
        raise ValueError(f"display input must be grey levels 0-255, got values {lo:g}..{hi:g} "
                         "(HU input: kind='hu'; 16-bit images: rescale to 8 bits first)")
    if np.issubdtype(arr.dtype, np.floating) and hi <= 1.0 and hi > 0:
        raise ValueError(f"display input must be grey levels 0-255, got floats in {lo:g}..{hi:g} "
                         "(images scaled to 0-1: multiply by 255 first)")


def predict_classes(
    array: np.ndarray,
    *,
    kind: str = "hu",
    spacing_mm: Sequence[float] | None = None,
    model: "torch.nn.Module | None" = None,
    batch_size: int = 16,
    lesion_min_prob: float | None = None,
) -> np.ndarray:
    """Per-voxel network classes: 0 background, 1 lung without lesion, 2 lesion.

    Parameters
    ----------
    array : (Y, X) or (Z, Y, X) ndarray
        HU (``kind="hu"``) or 8-bit grey levels (``kind="display"`` or ``"window"``),
        axial slices in radiological display orientation (rows anterior to posterior).
    kind : {"hu", "display", "window"}
        ``"display"``: 8-bit images used as they are (already CLAHE-equalised, as the
        public COVID-19 slice sets ship them); ``"window"``: 8-bit images of a plain
        window without equalisation (as most viewers and PACS exports save them):
        min-max and the training CLAHE are applied first, then as display
        (:func:`models.preprocess.display_to_input`).
    spacing_mm : (Y, X) or (Z, Y, X) floats, mm, or None
        Used for the in-plane aspect ratio (non-square pixels); None: square pixels.
    model : torch.nn.Module or None
        None: :func:`load_model` ().
    batch_size : int
        Slices per forward pass.
    lesion_min_prob : float in (0, 1) or None
        Lesion threshold on the conditional probability ``p(lesion | lung)``; None: the
        value recorded with the weights for this ``kind`` (:func:`lesion_threshold`).

    Returns
    -------
    uint8 ndarray, same shape as ``array``

    Notes
    -----
    The logits are cropped to the slice's place in the 256 x 256 square, resized
    bilinearly to the slice size and turned into probabilities ``p0, p1, p2``. Lung:
    ``p1 + p2 >= 0.5``; lesion: lung and ``p2 / (p1 + p2) >= lesion_min_prob``.
    """
    arr, spacing_yx = _check_input(array, kind, spacing_mm)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    net = load_model() if model is None else model
    t_les = lesion_threshold(net, kind) if lesion_min_prob is None else float(lesion_min_prob)
    if not 0.0 < t_les < 1.0:
        if lesion_min_prob is None:
            raise ValueError(f"the lesion threshold recorded with the weights for kind={kind!r} is {t_les!r}, "
                             "outside (0, 1): recalibrate them (scripts/train_opacity.py --calibrate-only) "
                             "or pass lesion_min_prob")
        raise ValueError(f"lesion_min_prob must be in (0, 1), got {lesion_min_prob!r}")
    slices = arr[None] if arr.ndim == 2 else arr
    out = np.empty(slices.shape, dtype=np.uint8)
    for s, p_lung, q_lesion in iter_probabilities(slices, kind=kind, spacing_yx_mm=spacing_yx,
                                                  model=net, batch_size=batch_size):
        lung = p_lung >= 0.5
        out[s:s + len(p_lung)] = lung.astype(np.uint8) + (lung & (q_lesion >= t_les))
    return out[0] if arr.ndim == 2 else out


def iter_probabilities(
    slices: np.ndarray,
    *,
    kind: str,
    spacing_yx_mm: tuple[float, float] | None,
    model: "torch.nn.Module",
    batch_size: int = 16,
):
    """Yield ``(start, p_lung, q_lesion)`` per batch of slices (checked input).

    ``p_lung = p1 + p2`` and ``q_lesion = p2 / (p1 + p2)`` are (B, Y, X) float32 arrays in
    the slices' own size: logits are cropped to the slice's place in the 256 x 256
    square and resized bilinearly before the softmax.  ``kind`` is one of :data:`KINDS`
    (as for :func:`predict_classes`).
    """
    check_kind(kind)
    import torch
    from torch.nn import functional as F

    dev = next(model.parameters()).device
    ny, nx = slices.shape[-2:]
    (h, w), (top, left) = square_geometry((ny, nx), spacing_yx_mm)
    with torch.inference_mode():
        for s in range(0, len(slices), batch_size):
            chunk = slices[s:s + batch_size]
            if kind == "hu":
                disp = hu_to_display(chunk, spacing_yx_mm=spacing_yx_mm)
            else:
                disp = display_to_input(chunk, spacing_yx_mm=spacing_yx_mm, equalise=(kind == "window"))
            x = torch.from_numpy(disp.astype(np.float32) / 255.0)[:, None].to(dev)
            logits = model(x)[:, :, top:top + h, left:left + w]
            if (h, w) != (ny, nx):
                logits = F.interpolate(logits, size=(ny, nx), mode="bilinear", align_corners=False)
            prob = logits.softmax(1)
            p_lung = prob[:, 1] + prob[:, 2]
            q = prob[:, 2] / p_lung.clamp_min(1e-6)
            yield s, p_lung.cpu().numpy(), q.cpu().numpy()
