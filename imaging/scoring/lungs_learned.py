"""Lungs and opacity by the 2.5-D network trained on real anatomy (:mod:`models.lung25d`).

``segment_lungs(method="learned")`` and ``score_scan(lung_method="learned",
opacity_method="learned")`` run it; the weights are ``models/weights/lung25d.pt`` (model
card ``models/weights/MODEL_CARD_lung25d.md``).  One network pass per scan gives both:

The network labels every voxel as background, lung, ground-glass or consolidation from
fixed HU windows of the slice and its neighbours; its lungs are the three non-background
classes, so consolidated lung against the heart and the diaphragm is lung.  The mask is
cleaned by five rules and split into right and left:

1. only voxels inside the patient count (:func:`imaging.scoring.lung_chest.patient_interior`
   at about 1.5 mm: not the air of the table, not outside the body); the network runs only
   over the patient's in-plane extent;
2. components smaller than :data:`MIN_COMPONENT_FRACTION` of the largest are dropped;
3. components lying wholly below the middle of the largest one's height are dropped
   (stomach and bowel gas under the diaphragm: the lungs' bases belong to components
   that reach far higher);
4. holes enclosed by lung in a slice are filled (vessels, bronchi, nodules), except the
   top of an abdominal organ's dome seen through the lung's base (the classical mask's
   rule, :func:`imaging.scoring.lung_repair.fill_holes_except_domes`);
5. right / left by :func:`imaging.scoring.lung_sides.split_lungs`.

Its opacity (:func:`opacity_from_classes`) is what the network calls lesion (either lesion
class) inside those lungs and at least -700 HU (``HU_GGO_MIN``: aerated lung the network
blurred into a lesion's edge stays out), optionally less thin strands along vessels and bronchi
(an opening of :data:`LESION_OPENING_MM`, applied to the network's lesion only; none by
default: the second weights leave few strands, and an opening took real opacity away);
ground-glass and consolidation are then told apart by HU at -300 (``HU_CONSOLIDATION_MIN``),
as the density bands do.  There is no upper limit: a dense region the network calls lesion
counts whatever its HU (contrast-enhanced consolidation above +50 HU included), while
vessels, which it was trained to call lung, stay out.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from imaging.common.volume import CTVolume, canonical_axes, from_canonical, to_canonical
from imaging.scoring import constants as C
from imaging.scoring.lung_chest import patient_interior
from imaging.scoring.lung_repair import fill_holes_except_domes
from imaging.scoring.lung_sides import split_lungs
from imaging.scoring.opacity import CONSOLIDATION, GGO, suppress_vessels

__all__ = [
    "LearnedSegmentation",
    "learned_segmentation",
    "learned_lungs_canonical",
    "learned_classes",
    "lungs_from_classes",
    "opacity_from_classes",
    "patient_interior_fast",
    "learned_weights",
    "learned_available",
    "MIN_COMPONENT_FRACTION",
    "LESION_OPENING_MM",
    "WEIGHTS_NAME",
]

#: Components of the network's lungs smaller than this fraction of the largest are dropped.
MIN_COMPONENT_FRACTION: float = 0.01
#: File name of the shipped weights, in ``models/weights/``.
WEIGHTS_NAME: str = "lung25d.pt"
#: Radius (mm) of an in-plane opening that takes thin strands along vessels and bronchi
#: out of the network's lesion (:func:`opacity_from_classes`, step 2; 0: none).  0 as
#: chosen by the rule fixed beforehand (``docs/decisions.md``) among 0, 1.5, 2, 2.5 and
#: 3 mm on the training scans: mean |PO error| 0.28 points with none, 0.30-0.69 with one.
LESION_OPENING_MM: float = 0.0
#: Network classes (:data:`models.slices25d.CLASS_NAMES`) of ground-glass and consolidation.
_GGO_CLASS, _CONSOLIDATION_CLASS = 2, 3


def learned_weights() -> Path | None:
    """Path of the shipped 2.5-D weights, or ``None`` when the ``models`` package or the file is missing."""
    import importlib.util

    spec = importlib.util.find_spec("models")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).resolve().parent / "weights" / WEIGHTS_NAME
    return path if path.is_file() else None


def learned_available() -> bool:
    """True when the 2.5-D network's weights are shipped and torch can be imported."""
    import importlib.util

    return learned_weights() is not None and importlib.util.find_spec("torch") is not None


@functools.lru_cache(maxsize=2)
def _network(path: str) -> object:
    from models.lung25d import load_lung25d  # lazy: torch

    return load_lung25d(path)


def _default_network() -> object:
    path = learned_weights()
    if path is None:
        raise FileNotFoundError(f"the 2.5-D network's weights models/weights/{WEIGHTS_NAME} are not installed")
    return _network(str(path))


#: In-plane spacing (mm) at which the patient's interior is found (rule 1).
INTERIOR_SPACING_MM: float = 1.5
#: Margin (mm) around the patient's interior inside which the network runs.
BOX_MARGIN_MM: float = 8.0


def patient_interior_fast(hu: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """:func:`imaging.scoring.lung_chest.patient_interior` found at about
    :data:`INTERIOR_SPACING_MM` in-plane and taken back to the scan's pixels."""
    f = max(1, int(round(INTERIOR_SPACING_MM / float(min(spacing[1], spacing[2])))))
    low = patient_interior(hu[:, ::f, ::f], C.HU_LUNG_THRESHOLD, (spacing[0], spacing[1] * f, spacing[2] * f))
    if f == 1:
        return low
    return np.repeat(np.repeat(low, f, axis=1), f, axis=2)[:, : hu.shape[1], : hu.shape[2]]


def _box(interior: np.ndarray, spacing: Sequence[float]) -> tuple[int, int, int, int] | None:
    """In-plane extent (row start, stop, column start, stop) of the patient, with a margin."""
    rows, cols = np.flatnonzero(interior.any(axis=(0, 2))), np.flatnonzero(interior.any(axis=(0, 1)))
    if not rows.size:
        return None
    my, mx = (int(np.ceil(BOX_MARGIN_MM / float(s))) for s in spacing[1:])
    Y, X = interior.shape[1:]
    return max(0, rows[0] - my), min(Y, rows[-1] + 1 + my), max(0, cols[0] - mx), min(X, cols[-1] + 1 + mx)


def learned_classes(hu: np.ndarray, spacing: Sequence[float], *, network: object | None = None,
                    interior: np.ndarray | None = None) -> np.ndarray:
    """The network's classes (0 background, 1 lung, 2 ground-glass, 3 consolidation) of a
    canonical volume, run only over the patient's extent."""
    from models.lung25d import predict_classes25d  # lazy: torch

    spacing = tuple(float(s) for s in spacing)
    interior = patient_interior_fast(hu, spacing) if interior is None else interior
    net = network if network is not None else _default_network()
    return predict_classes25d(net, hu, spacing, box=_box(interior, spacing))


def _main_components(lungs: np.ndarray) -> np.ndarray:
    """Rules 2 and 3: components of at least :data:`MIN_COMPONENT_FRACTION` of the largest,
    not wholly below the middle of the largest one's height."""
    labels, n = ndi.label(lungs)
    if not n:
        return lungs
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    boxes = ndi.find_objects(labels)
    largest = boxes[int(np.argmax(sizes)) - 1][0]
    middle = 0.5 * (largest.start + largest.stop - 1)
    keep = np.zeros(n + 1, bool)  # a look-up table: np.isin would sort the whole volume
    keep[1:] = [box is not None and sizes[i + 1] >= MIN_COMPONENT_FRACTION * sizes.max() and box[0].stop - 1 >= middle
                for i, box in enumerate(boxes)]
    return keep[labels]


def lungs_from_classes(classes: np.ndarray, hu: np.ndarray, spacing: Sequence[float], *,
                       interior: np.ndarray | None = None) -> np.ndarray:
    """Right (1) and left (2) lungs from the network's classes of a canonical volume (rules 1-5)."""
    spacing = tuple(float(s) for s in spacing)
    lungs = classes > 0
    lungs &= patient_interior_fast(hu, spacing) if interior is None else interior  # not the table, outside air
    out = np.zeros(classes.shape, np.uint8)
    zs, ys = np.flatnonzero(lungs.any(axis=(1, 2))), np.flatnonzero(lungs.any(axis=(0, 2)))
    if not zs.size:
        return out
    # the rules run on the slices and rows that hold lung (memory: labels are 4 bytes a
    # voxel); every column is kept, so that sides are judged on the scan's own x axis
    box = (slice(zs[0], zs[-1] + 1), slice(ys[0], ys[-1] + 1))
    lungs = fill_holes_except_domes(_main_components(lungs[box]), hu[box], spacing)
    out[box] = split_lungs(lungs, spacing_mm=spacing)
    return out


def learned_lungs_canonical(hu: np.ndarray, spacing: Sequence[float], *, network: object | None = None) -> np.ndarray:
    """Right (1) and left (2) lungs of a canonical volume by the 2.5-D network.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        Canonical volume in HU.
    spacing : (3,) float
        Voxel spacing (z, y, x), mm.
    network : torch.nn.Module, optional
        The network of a checkpoint (:func:`models.lung25d.load_lung25d`); default the shipped weights.

    Returns
    -------
    (Z, Y, X) uint8 ndarray
    """
    interior = patient_interior_fast(hu, spacing)
    classes = learned_classes(hu, spacing, network=network, interior=interior)
    return lungs_from_classes(classes, hu, spacing, interior=interior)


def opacity_from_classes(classes: np.ndarray, hu: np.ndarray, lungs: np.ndarray,
                         spacing: Sequence[float]) -> np.ndarray:
    """Opacity labels from the network's classes (see the module notes).

    1. the network's lesion (ground-glass or consolidation class) inside ``lungs`` and at
       least :data:`imaging.scoring.constants.HU_GGO_MIN`;
    2. thin strands of it along vessels and bronchi taken away: an in-plane opening with a
       disk of :data:`LESION_OPENING_MM`, regrown by twice that inside step 1's lesion
       (:func:`imaging.scoring.opacity.suppress_vessels`);
    3. ground-glass below :data:`imaging.scoring.constants.HU_CONSOLIDATION_MIN`,
       consolidation from there up, without an upper limit (contrast-enhanced
       consolidation counts).

    Returns
    -------
    (Z, Y, X) uint8 ndarray
        0, :data:`imaging.scoring.opacity.GGO` or :data:`imaging.scoring.opacity.CONSOLIDATION`.
    """
    lesion = lungs & ((classes == _GGO_CLASS) | (classes == _CONSOLIDATION_CLASS)) & (hu >= C.HU_GGO_MIN)
    if LESION_OPENING_MM > 0 and lesion.any():
        lesion &= suppress_vessels(lesion, spacing_mm=spacing, radius_mm=LESION_OPENING_MM,
                                   regrow_mm=2 * LESION_OPENING_MM)
    opacity = np.zeros(classes.shape, np.uint8)
    opacity[lesion] = GGO
    opacity[lesion & (hu >= C.HU_CONSOLIDATION_MIN)] = CONSOLIDATION
    return opacity


@dataclass(frozen=True)
class LearnedSegmentation:
    """The 2.5-D network's result in a volume's geometry.

    Attributes
    ----------
    lungs : (Z, Y, X) uint8 ndarray
        0 background, 1 right lung, 2 left lung.
    opacity : (Z, Y, X) uint8 ndarray
        0 none, :data:`imaging.scoring.opacity.GGO`, :data:`imaging.scoring.opacity.CONSOLIDATION`;
        only inside ``lungs``.
    weights : str
        File name of the weights used.
    """

    lungs: np.ndarray
    opacity: np.ndarray
    weights: str


def learned_segmentation(volume: CTVolume, *, network: object | None = None) -> LearnedSegmentation:
    """Lungs and opacity of a CT volume by one pass of the 2.5-D network.

    Parameters
    ----------
    volume : CTVolume
        CT in HU, any orientation.
    network : torch.nn.Module, optional
        Default: the shipped weights (:func:`learned_weights`).
    """
    perm, flips = canonical_axes(volume.direction)
    hu = np.ascontiguousarray(to_canonical(volume.hu, perm, flips))
    spacing = tuple(float(volume.spacing_mm[p]) for p in perm)
    interior = patient_interior_fast(hu, spacing)
    classes = learned_classes(hu, spacing, network=network, interior=interior)
    lungs = lungs_from_classes(classes, hu, spacing, interior=interior)
    opacity = opacity_from_classes(classes, hu, lungs > 0, spacing)
    name = WEIGHTS_NAME if network is None else "given network"
    return LearnedSegmentation(from_canonical(lungs, perm, flips), from_canonical(opacity, perm, flips), name)
