"""Inference with the shipped opacity U-Net: lungs and opacity labels for HU or display input.

The network (:class:`models.network.UNet2D`) labels each axial slice as background,
lung without lesion, or lesion. Lungs are the union of the two lung classes. The lesion
is split into ground-glass and consolidation by density: a lesion voxel whose HU is at
least :data:`imaging.scoring.constants.HU_CONSOLIDATION_MIN` (-300 HU) is consolidation, else
ground-glass (Chaganti et al., Radiology: AI 2020, PMC7392373: ground-glass -700..-300 HU,
consolidation above). For 8-bit display input the HU are estimated with the linear
inverse of the display window (:func:`models.preprocess.display_to_hu_approx`), which
ignores the per-slice CLAHE equalisation: the split is then approximate.

For HU input the network output is checked against the densities before the split
(:func:`refine_with_hu`; display input is not refined, its densities are too approximate):

1. regions (per slice) that the network calls lung but that are almost airless are
   dropped (:func:`drop_airless_lung_regions`: liver, spleen, kidneys, bowel, neck);
2. dense lesion voxels on the outer rim of the prediction (within
   :data:`imaging.scoring.constants.OPACITY_RIM_TRIM_NET_PX` network pixels of the predicted
   background) are dropped (:func:`trim_extrapulmonary_rim`): at the network's resolution
   the lesion boundary runs into the pleural and chest-wall fat (about -100 HU);
3. lesion voxels outside the opacity density range (below ``HU_OPACITY_MIN`` = -700 HU:
   aerated lung; above ``HU_VESSEL_MIN`` = +50 HU: vessels, bone) are not opacity.

Masks are returned in the input's own geometry: the logits are resized bilinearly from
the network's 256 x 256 back to the slice size before the arg-max.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import math
import pickle
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imaging.scoring.constants import (
    HU_CONSOLIDATION_MIN,
    HU_LUNG_THRESHOLD,
    HU_OPACITY_MIN,
    HU_VESSEL_MIN,
    LUNG_COMPONENT_MIN_AERATED_FRACTION,
    OPACITY_RIM_TRIM_NET_PX,
)
from models.preprocess import (
    display_to_hu_approx,
    display_to_input,
    hu_to_display,
    square_geometry,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "DEFAULT_WEIGHTS",
    "load_model",
    "predict_classes",
    "lesion_threshold",
    "iter_probabilities",
    "segment_opacity",
    "predict_lungs_and_opacity",
    "reuse_predictions",
    "split_lesion_by_density",
    "trim_extrapulmonary_rim",
    "rim_trim_steps",
    "drop_airless_lung_regions",
    "refine_with_hu",
]

#: The shipped weights.
DEFAULT_WEIGHTS: Path = Path(__file__).resolve().parent / "weights" / "opacity_unet.pt"
#: Checkpoint format written by :mod:`models.train`.
CHECKPOINT_FORMAT: str = "chestct-opacity-unet/1"

_CACHE: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def _device(device: Any) -> "torch.device":
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r} ({exc})") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here (torch "
                         f"{torch.__version__}); use device='cpu' or None")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    return dev


def load_model(path: str | Path | None = None, *, device: "str | torch.device | None" = None) -> "torch.nn.Module":
    """Load the opacity network (cached per path and device), in eval mode.

    Parameters
    ----------
    path : path or None
        Checkpoint written by ``scripts/train_opacity.py``; None: the shipped
        ``models/weights/opacity_unet.pt``.
    device : str, torch.device or None
        torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``); None: CUDA when available,
        else CPU.  An unknown device, or CUDA where there is none, is a ValueError.

    Returns
    -------
    torch.nn.Module
        :class:`models.network.UNet2D` with attribute ``checkpoint_info`` (the
        checkpoint's metadata without the weights).

    Raises
    ------
    FileNotFoundError
        When the checkpoint does not exist.
    ValueError
        When the path is a folder, the file is not a readable opacity-network checkpoint
        (truncated, another format, weights not matching their recorded configuration,
        not 1 input channel and 3 classes), or ``device`` is unknown or unavailable.
    """
    import torch

    from models.network import UNet2D

    p = Path(DEFAULT_WEIGHTS if path is None else path).resolve()
    dev = _device(device)
    key = (str(p), str(dev))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        if p.is_dir():
            raise ValueError(f"opacity weights {str(p)!r} is a folder; give the checkpoint file "
                             "(e.g. models/weights/opacity_unet.pt)")
        if not p.is_file():
            raise FileNotFoundError(f"opacity weights {str(p)!r} not found: train them with "
                                    "`python scripts/train_opacity.py`")
        try:
            ckpt = torch.load(p, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, KeyError, ValueError, pickle.UnpicklingError, OSError) as exc:
            if isinstance(exc, (PermissionError, FileNotFoundError)):
                raise
            raise ValueError(f"{str(p)!r} cannot be read as a {CHECKPOINT_FORMAT} checkpoint (truncated or "
                             f"another kind of file?): {type(exc).__name__}: {exc}") from exc
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{str(p)!r} is not a {CHECKPOINT_FORMAT} checkpoint")
        try:
            cfg = ckpt["config"]
            net = UNet2D(base=int(cfg["base"]), levels=int(cfg["levels"]),
                         in_channels=int(cfg["in_channels"]), n_classes=int(cfg["n_classes"]))
            net.load_state_dict(ckpt["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{str(p)!r}: its weights do not match its recorded network config "
                             f"{ckpt.get('config')!r}: {type(exc).__name__}: {str(exc)[:300]}") from exc
        if (net.config["in_channels"], net.config["n_classes"]) != (1, 3):
            raise ValueError(f"{str(p)!r} is a network with {net.config['in_channels']} input channel(s) and "
                             f"{net.config['n_classes']} classes; the opacity model needs 1 and 3 "
                             "(background, lung, lesion)")
        net.eval().to(dev)
        net.checkpoint_info = {k: v for k, v in ckpt.items() if k != "state_dict"}
        _CACHE[key] = net
        return net


def _check_input(array: Any, kind: str, spacing_mm: Sequence[float] | None) -> tuple[np.ndarray, tuple[float, float] | None]:
    if kind not in ("hu", "display"):
        raise ValueError(f"kind must be 'hu' or 'display', got {kind!r}")
    arr = np.asarray(array)
    if arr.ndim not in (2, 3):
        raise ValueError(f"array must be a 2D slice (Y, X) or a 3D volume (Z, Y, X), got shape {arr.shape}")
    if arr.size == 0 or min(arr.shape[-2:]) < 2:
        raise ValueError(f"array slices must be at least 2 x 2, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"array must be real numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError("array contains NaN or infinite values")
    if kind == "display":
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


def lesion_threshold(model: "torch.nn.Module", kind: str = "hu") -> float:
    """The lesion decision threshold recorded with the weights for this kind of input.

    A lung pixel is lesion when ``p(lesion) / (p(lung) + p(lesion))`` reaches it.

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`load_model`.
    kind : {"hu", "display"}
        HU input uses ``lesion_threshold`` (calibrated with a healthy-phantom limit);
        display input ``display_lesion_threshold`` when the weights record one, else
        the same value (:func:`models.train.calibrate_lesion_threshold`).  0.5 when
        nothing is recorded.
    """
    if kind not in ("hu", "display"):
        raise ValueError(f"kind must be 'hu' or 'display', got {kind!r}")
    inference = (getattr(model, "checkpoint_info", {}) or {}).get("inference", {})
    t = float(inference.get("lesion_threshold", 0.5))
    return float(inference.get("display_lesion_threshold", t)) if kind == "display" else t


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
        HU (``kind="hu"``) or 8-bit display grey levels (``kind="display"``), axial
        slices in radiological display orientation (rows anterior to posterior).
    kind : {"hu", "display"}
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
    square and resized bilinearly before the softmax.
    """
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
                disp = display_to_input(chunk, spacing_yx_mm=spacing_yx_mm)
            x = torch.from_numpy(disp.astype(np.float32) / 255.0)[:, None].to(dev)
            logits = model(x)[:, :, top:top + h, left:left + w]
            if (h, w) != (ny, nx):
                logits = F.interpolate(logits, size=(ny, nx), mode="bilinear", align_corners=False)
            prob = logits.softmax(1)
            p_lung = prob[:, 1] + prob[:, 2]
            q = prob[:, 2] / p_lung.clamp_min(1e-6)
            yield s, p_lung.cpu().numpy(), q.cpu().numpy()


def split_lesion_by_density(
    lesion: np.ndarray, hu: np.ndarray, *, consolidation_min_hu: float = HU_CONSOLIDATION_MIN
) -> np.ndarray:
    """Opacity labels from a lesion mask and densities: 1 ground-glass, 2 consolidation.

    Parameters
    ----------
    lesion : bool ndarray
    hu : ndarray, HU, same shape
    consolidation_min_hu : float
        Lesion voxels at or above this are consolidation (default
        :data:`imaging.scoring.constants.HU_CONSOLIDATION_MIN`).

    Returns
    -------
    uint8 ndarray, same shape: 0 none, 1 ground-glass, 2 consolidation

    Examples
    --------
    >>> split_lesion_by_density(np.array([0, 1, 1], bool), np.array([0., -600., -100.])).tolist()
    [0, 1, 2]
    """
    lesion = np.asarray(lesion, dtype=bool)
    hu = np.asarray(hu)
    if lesion.shape != hu.shape:
        raise ValueError(f"lesion and hu shapes differ: {lesion.shape} vs {hu.shape}")
    out = lesion.astype(np.uint8)
    out[lesion & (hu >= consolidation_min_hu)] = 2
    return out


def trim_extrapulmonary_rim(
    classes: np.ndarray, density: np.ndarray, *, steps: int,
    dense_min_hu: float = HU_CONSOLIDATION_MIN,
) -> np.ndarray:
    """Lesion mask without the dense rim that touches the predicted background.

    Dense lesion voxels (``density >= dense_min_hu``) connected in-plane to the
    background class (0) through at most ``steps`` dense lesion voxels (4-connected,
    slice by slice) are removed; aerated lesion voxels (ground-glass density) and dense
    lesion cores deeper inside are kept.

    Parameters
    ----------
    classes : (Y, X) or (Z, Y, X) uint8 ndarray
        Network classes (0 background, 1 lung, 2 lesion), :func:`predict_classes`.
    density : ndarray, HU, same shape
    steps : int
        Rim width, pixels (>= 0; 0 keeps the whole lesion).
    dense_min_hu : float
        Density from which a lesion voxel can be extrapulmonary soft tissue / fat.

    Returns
    -------
    bool ndarray, same shape: the trimmed lesion (a subset of ``classes == 2``)

    Examples
    --------
    >>> c = np.array([[0, 2, 2, 2, 2, 1]], np.uint8)
    >>> hu = np.array([[0., -100, -50, -600, -40, -850]])
    >>> trim_extrapulmonary_rim(c, hu, steps=1).astype(int).tolist()
    [[0, 0, 1, 1, 1, 0]]
    """
    import cv2

    classes, density = _matching_2d_or_3d(classes, density, "density")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    c3 = classes[None] if classes.ndim == 2 else classes
    d3 = density[None] if density.ndim == 2 else density
    lesion = c3 == 2
    out = lesion.copy()
    if steps == 0:
        return out[0] if classes.ndim == 2 else out
    dense = lesion & (d3 >= dense_min_hu)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    for z in np.flatnonzero(dense.any(axis=(1, 2))):
        reached = (c3[z] == 0).astype(np.uint8)
        left = dense[z].astype(np.uint8)
        removed = np.zeros_like(left)
        for _ in range(int(steps)):
            grow = cv2.dilate(reached, cross) & left
            if not grow.any():
                break
            removed |= grow
            reached |= grow
            left &= 1 - grow
        out[z] &= ~removed.astype(bool)
    return out[0] if classes.ndim == 2 else out


def rim_trim_steps(shape_yx: tuple[int, int], spacing_yx: tuple[float, float] | None) -> int:
    """:data:`OPACITY_RIM_TRIM_NET_PX` network pixels in the slice's own pixels.

    Parameters
    ----------
    shape_yx : (2,) ints, slice shape
    spacing_yx : (2,) floats, mm, or None (square pixels)

    Examples
    --------
    >>> rim_trim_steps((512, 512), (0.7, 0.7)), rim_trim_steps((256, 256), None)
    (4, 2)
    """
    (h, w), _ = square_geometry(shape_yx, spacing_yx)
    scale = max(shape_yx[0] / h, shape_yx[1] / w)
    return int(round(OPACITY_RIM_TRIM_NET_PX * scale))


def drop_airless_lung_regions(
    classes: np.ndarray, hu: np.ndarray, *,
    min_aerated_fraction: float = LUNG_COMPONENT_MIN_AERATED_FRACTION,
    aerated_max_hu: float = HU_LUNG_THRESHOLD,
) -> np.ndarray:
    """Network classes with almost airless "lung" regions set to background.

    Each 8-connected region of ``classes > 0`` in each axial slice is kept only when at
    least ``min_aerated_fraction`` of its pixels are below ``aerated_max_hu``.

    Parameters
    ----------
    classes : (Y, X) or (Z, Y, X) uint8 ndarray, 0 background / 1 lung / 2 lesion
    hu : ndarray, HU, same shape
    min_aerated_fraction : float in [0, 1]
    aerated_max_hu : float

    Returns
    -------
    uint8 ndarray, same shape: ``classes`` with the dropped regions set to 0

    Examples
    --------
    >>> c = np.array([[1, 2, 0, 2, 2]], np.uint8)
    >>> drop_airless_lung_regions(c, np.array([[-850., -200, 0, 40, 30]])).tolist()
    [[1, 2, 0, 0, 0]]
    """
    import cv2

    classes, hu = _matching_2d_or_3d(classes, hu, "hu")
    if not 0.0 <= min_aerated_fraction <= 1.0:
        raise ValueError(f"min_aerated_fraction must be in [0, 1], got {min_aerated_fraction!r}")
    c3 = classes[None] if classes.ndim == 2 else classes
    h3 = hu[None] if hu.ndim == 2 else hu
    out = c3.astype(np.uint8, copy=True)
    for z in np.flatnonzero(c3.any(axis=(1, 2))):
        n, lab = cv2.connectedComponents((c3[z] > 0).astype(np.uint8), connectivity=8)
        flat = lab.ravel()
        size = np.bincount(flat, minlength=n)
        aerated = np.bincount(flat[(h3[z] < aerated_max_hu).ravel()], minlength=n)
        keep = aerated >= min_aerated_fraction * size
        keep[0] = False
        out[z][~keep[lab]] = 0
    return out[0] if classes.ndim == 2 else out


def refine_with_hu(
    classes: np.ndarray, hu: np.ndarray, *, spacing_yx_mm: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lungs and lesion from network classes, checked against the HU (see module notes).

    Parameters
    ----------
    classes : (Y, X) or (Z, Y, X) uint8 ndarray, :func:`predict_classes` output
    hu : ndarray, HU, same shape
    spacing_yx_mm : (2,) floats, mm, or None (square pixels): in-plane spacing, for the
        rim width (:func:`rim_trim_steps`)

    Returns
    -------
    lungs : bool ndarray, same shape
    lesion : bool ndarray, same shape (inside ``lungs``)

    Examples
    --------
    >>> c = np.array([[0, 2, 2, 1, 1, 0, 2]], np.uint8)
    >>> lungs, lesion = refine_with_hu(c, np.array([[0., -500, -750, -850, -850, 0, 30]]))
    >>> lungs.astype(int).tolist(), lesion.astype(int).tolist()
    ([[0, 1, 1, 1, 1, 0, 0]], [[0, 1, 0, 0, 0, 0, 0]])
    """
    hu = np.asarray(hu)
    kept = drop_airless_lung_regions(classes, hu)
    lesion = trim_extrapulmonary_rim(kept, hu, steps=rim_trim_steps(kept.shape[-2:], spacing_yx_mm))
    lesion &= (hu >= HU_OPACITY_MIN) & (hu <= HU_VESSEL_MIN)
    return kept > 0, lesion


def segment_opacity(
    array: np.ndarray, *, kind: str = "hu", spacing_mm: Sequence[float] | None = None
) -> np.ndarray:
    """Opacity labels of a CT slice or volume: 0 none, 1 ground-glass, 2 consolidation.

    Parameters
    ----------
    array : (Y, X) or (Z, Y, X) ndarray
        HU (``kind="hu"``) or 8-bit display grey levels as public datasets ship them
        (``kind="display"``: PNG/JPEG slices, not HU), axial, radiological orientation.
    kind : {"hu", "display"}
    spacing_mm : (Y, X) or (Z, Y, X) floats, mm, or None

    Returns
    -------
    uint8 ndarray, same shape as ``array``

    Notes
    -----
    The network finds the lesion (ground-glass and consolidation together); the split
    uses the density, in HU for HU input and the approximate linear inverse of the
    display window for display input (see the module docstring).
    """
    _, opacity = _lungs_and_opacity(array, kind=kind, spacing_mm=spacing_mm)
    return opacity


def predict_lungs_and_opacity(
    hu: np.ndarray, *, spacing_mm: Sequence[float] | None = None, kind: str = "hu"
) -> tuple[np.ndarray, np.ndarray]:
    """Lung mask and opacity labels from one network pass.

    Parameters
    ----------
    hu : (Y, X) or (Z, Y, X) ndarray, HU (or display grey levels with ``kind="display"``)
    spacing_mm : (Y, X) or (Z, Y, X) floats, mm, or None
    kind : {"hu", "display"}

    Returns
    -------
    lungs : bool ndarray, same shape (both lungs, lesions included)
    opacity : uint8 ndarray, same shape: 0 none, 1 ground-glass, 2 consolidation
    """
    memo = _REUSE.get()
    arr = np.ascontiguousarray(hu)
    try:
        spacing_key = None if spacing_mm is None else tuple(float(s) for s in spacing_mm)
    except (TypeError, ValueError):
        spacing_key = "unusable"  # _check_input raises the error that names the argument
    if memo is None or arr.dtype.kind not in "biuf" or spacing_key == "unusable":
        return _lungs_and_opacity(hu, kind=kind, spacing_mm=spacing_mm)
    key = (kind, arr.shape, arr.dtype.str, spacing_key,
           hashlib.blake2b(memoryview(arr).cast("B")).hexdigest())
    if key not in memo:
        memo[key] = _lungs_and_opacity(arr, kind=kind, spacing_mm=spacing_mm)
    lungs, opacity = memo[key]
    return lungs.copy(), opacity.copy()


_REUSE: contextvars.ContextVar[dict[Any, tuple[np.ndarray, np.ndarray]] | None] = contextvars.ContextVar(
    "chestct_reuse_predictions", default=None)


@contextlib.contextmanager
def reuse_predictions():
    """Within the block, :func:`predict_lungs_and_opacity` runs the network once per input.

    Calls with the same array content, shape, dtype, spacing and kind get copies of the
    first result (e.g. the lungs and the opacity of one scan, both from the model).  The
    memo is dropped when the block ends.

    Examples
    --------
    >>> with reuse_predictions():
    ...     pass
    """
    token = _REUSE.set({})
    try:
        yield
    finally:
        _REUSE.reset(token)


def _lungs_and_opacity(array, *, kind, spacing_mm):
    classes = predict_classes(array, kind=kind, spacing_mm=spacing_mm)
    arr = np.asarray(array)  # checked by predict_classes
    spacing_yx = None if spacing_mm is None else (float(spacing_mm[-2]), float(spacing_mm[-1]))
    density = arr if kind == "hu" else display_to_hu_approx(arr)
    if kind == "hu":  # display densities are too approximate for these checks
        lungs, lesion = refine_with_hu(classes, density, spacing_yx_mm=spacing_yx)
    else:
        lungs, lesion = classes > 0, classes == 2
    return lungs, split_lesion_by_density(lesion, density)


def _matching_2d_or_3d(classes: Any, other: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` and ``other`` as arrays, checked to be 2-D or 3-D and of one shape."""
    classes, other = np.asarray(classes), np.asarray(other)
    if classes.shape != other.shape:
        raise ValueError(f"classes and {name} shapes differ: {classes.shape} vs {other.shape}")
    if classes.ndim not in (2, 3):
        raise ValueError(f"classes must be 2-D or 3-D, got shape {classes.shape}")
    return classes, other
