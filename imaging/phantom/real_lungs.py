"""Reference lungs of a near-healthy real chest CT, for lesion insertion and validation.

The known-truth data sets built on real anatomy (:mod:`imaging.phantom.hybrid`) need the
lungs of the healthy scan they start from.  This module derives them by a short chain of
rules that holds on aerated, near-healthy lungs only (it is *not* the toolkit's lung
segmentation, which must also work on diseased lungs, and it shares no code with it so
that a validation never grades a method against itself):

1. the body: the largest 3-D component above :data:`BODY_MIN_HU`, holes filled slice
   by slice (padding outside the field of view and the table stay outside);
2. air inside the body: voxels below :data:`AIR_MAX_HU`, in 3-D components of at least
   :data:`LUNG_MIN_FRACTION` of the largest one (both lungs; stomach, bowel and
   oesophageal gas are much smaller and are left out);
3. the trachea and main bronchi: grown from the trachea on the uppermost lung slices
   through voxels below a lumen threshold raised until the tree leaks into the lungs,
   and removed with a 1-voxel wall;
4. vessels and nodules enclosed by lung filled slice by slice, then a small closing.

Every rule is a plain threshold or a connected-component choice, each reviewed on QC
pictures of the three LIDC-IDRI scans in ``../shared/data`` (``docs/validation.md``).
Arrays are canonical ``(z, y, x)``: slice 0 inferior, rows anterior → posterior.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from imaging.common.volume import CTVolume

__all__ = [
    "reference_airways",
    "healthy_lungs",
    "body_mask",
    "BODY_MIN_HU",
    "AIR_MAX_HU",
    "AIRWAY_MAX_HU",
    "LUNG_MIN_FRACTION",
]

#: Soft tissue and denser: the body outline is the largest component above this (HU).
BODY_MIN_HU: float = -500.0
#: Aerated lung and gas: below this (HU); -500 HU is the usual lung/soft-tissue cut of
#: threshold lung masks (Hu, Hoffman & Reinhardt, IEEE TMI 2001, choose it adaptively
#: near -500 HU on normal lungs).
AIR_MAX_HU: float = -500.0
#: Highest lumen threshold tried for the airways (HU).  Aerated lung is about -850 HU on
#: normal scans and the lumen of the trachea about -1000 HU, but partial volume and noise
#: put the measured lumen anywhere from -1000 to -900 HU: the threshold is raised until
#: the tree leaks into the lungs (its volume jumps), see :func:`_airways`.
AIRWAY_MAX_HU: float = -800.0
#: The trachea's lumen on the uppermost lung slices is below this (HU).
TRACHEA_SEED_MAX_HU: float = -950.0
#: A component of air is a lung when at least this fraction of the largest one.
LUNG_MIN_FRACTION: float = 0.2
#: An airway grown larger than this (mL) has leaked into the lungs (the trachea and main
#: bronchi of an adult hold about 30-80 mL).
AIRWAY_MAX_ML: float = 150.0
#: Below this volume (mL) the grown tree is still the trachea's first voxels: a doubling
#: there is not a leak.
AIRWAY_MIN_ML: float = 5.0
#: First lumen threshold of the airway growth (HU), raised by :data:`AIRWAY_STEP_HU`.
AIRWAY_LUMEN_START_HU: float = -1010.0
#: Step of the lumen threshold (HU).
AIRWAY_STEP_HU: float = 10.0


def body_mask(hu: np.ndarray) -> np.ndarray:
    """The patient's body: largest component above :data:`BODY_MIN_HU`, holes filled per slice.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        Canonical volume in HU.

    Returns
    -------
    (Z, Y, X) ndarray of bool
    """
    dense = hu > BODY_MIN_HU
    dense = ndi.binary_opening(dense, structure=np.ones((1, 3, 3), bool))  # thin blankets, tubes
    labels, n = ndi.label(dense)
    if n == 0:
        return np.zeros(hu.shape, bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    body = labels == int(np.argmax(sizes))
    for z in range(body.shape[0]):
        body[z] = ndi.binary_fill_holes(body[z])
    return body


def _lung_air(hu: np.ndarray, body: np.ndarray) -> np.ndarray:
    """Air inside the body in components of at least :data:`LUNG_MIN_FRACTION` of the largest."""
    air = (hu < AIR_MAX_HU) & (hu > -1500.0) & body  # -1500: padding outside the field of view
    labels, n = ndi.label(air)
    if n == 0:
        return air
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = np.flatnonzero(sizes >= LUNG_MIN_FRACTION * sizes.max())
    return np.isin(labels, keep)


def _trachea_seed(lungs: np.ndarray, hu: np.ndarray) -> tuple[int, int, int] | None:
    """A voxel of the trachea: the airway lumen nearest the midline on the top lung slice."""
    top = np.flatnonzero(lungs.any(axis=(1, 2)))
    if top.size == 0:
        return None
    for z in top[::-1][:10]:
        lumen, n = ndi.label(lungs[z] & (hu[z] < TRACHEA_SEED_MAX_HU))
        if n == 0:
            continue
        centres = ndi.center_of_mass(lumen > 0, lumen, range(1, n + 1))
        mid = lungs.shape[2] / 2.0
        best = min(range(n), key=lambda i: abs(centres[i][1] - mid))
        ys, xs = np.nonzero(lumen == best + 1)
        lowest = int(np.argmin(hu[z, ys, xs]))
        return int(z), int(ys[lowest]), int(xs[lowest])
    return None


def _airways(lungs: np.ndarray, hu: np.ndarray, voxel_ml: float) -> np.ndarray:
    """Trachea and main bronchi, grown from the trachea with a 1-voxel wall.

    The tree is grown through lung voxels below a lumen threshold that starts at
    :data:`AIRWAY_LUMEN_START_HU` and rises by :data:`AIRWAY_STEP_HU` up to
    :data:`AIRWAY_MAX_HU`; the last tree before it leaks into the lungs (doubles in
    volume in one step, or exceeds :data:`AIRWAY_MAX_ML`) is kept.
    """
    seed = _trachea_seed(lungs, hu)
    if seed is None:
        return np.zeros(lungs.shape, bool)
    # components of lung voxels never leave the lungs' bounding box: label only inside it
    box = ndi.find_objects(lungs.astype(np.uint8))[0]
    lungs_box, hu_box = lungs[box], hu[box]
    seed = tuple(s - b.start for s, b in zip(seed, box))
    tree = np.zeros(lungs_box.shape, bool)
    for limit in np.arange(AIRWAY_LUMEN_START_HU, AIRWAY_MAX_HU + 1.0, AIRWAY_STEP_HU):
        labels, _ = ndi.label(lungs_box & (hu_box < limit))
        if not labels[seed]:
            continue
        grown = labels == labels[seed]
        leaked = tree.sum() * voxel_ml >= AIRWAY_MIN_ML and grown.sum() > 2 * tree.sum()
        if leaked or grown.sum() * voxel_ml > AIRWAY_MAX_ML:
            break
        tree = grown
    out = np.zeros(lungs.shape, bool)
    out[box] = tree
    return ndi.binary_dilation(out, structure=np.ones((1, 3, 3), bool)) if tree.any() else out


def _fill(lungs: np.ndarray) -> np.ndarray:
    """Vessels and nodules enclosed by lung, filled slice by slice, then closed in-plane."""
    out = ndi.binary_closing(lungs, structure=np.ones((1, 5, 5), bool))
    for z in range(out.shape[0]):
        out[z] = ndi.binary_fill_holes(out[z])
    return out


def reference_airways(volume: CTVolume) -> np.ndarray:
    """Trachea and main bronchi of a canonical chest CT, with a one-voxel wall (steps 1-3).

    Parameters
    ----------
    volume : CTVolume
        Canonical volume in HU.

    Returns
    -------
    (Z, Y, X) ndarray of bool
    """
    body = body_mask(volume.hu)
    return _airways(_lung_air(volume.hu, body), volume.hu, volume.voxel_volume_ml)


def healthy_lungs(volume: CTVolume) -> np.ndarray:
    """Both lungs of a near-healthy chest CT, without trachea and main bronchi.

    Parameters
    ----------
    volume : CTVolume
        Canonical volume in HU (as :func:`imaging.load_scan` returns).

    Returns
    -------
    (Z, Y, X) ndarray of bool
        The lungs, intrapulmonary vessels, bronchi and nodules included.

    Notes
    -----
    Valid on aerated lungs only: dense consolidation or effusion is left out, as with
    any threshold mask.  Review the result on QC pictures before using it as truth.
    """
    hu = volume.hu
    body = body_mask(hu)
    air = _lung_air(hu, body)
    airways = _airways(air, hu, volume.voxel_volume_ml)
    lungs = air & ~airways
    labels, n = ndi.label(lungs)
    if n:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        lungs = np.isin(labels, np.flatnonzero(sizes >= LUNG_MIN_FRACTION * sizes.max()))
    # bronchi enclosed by lung are filled back (lung masks include them, as radiologists'
    # do); the trachea and the main bronchi at the hila are not enclosed and stay out
    return _fill(lungs) & body
