"""Lung segmentation (right / left) and lung zones, in the input volume's geometry.

Methods (``segment_lungs(method=...)``):

``"classical"`` (what ``method="auto"`` runs, :data:`AUTO_METHOD`)
    A threshold-and-shape pipeline computed at about 2 mm spacing
    (:data:`imaging.scoring.constants.LUNG_WORKING_SPACING_MM`) and upsampled to the input grid:

    1. air-like voxels (< ``HU_LUNG_THRESHOLD``) that do not touch the in-plane image
       border on their axial slice (removes outside air, the field-of-view circle, the
       air under the table) and that the patient encloses on that slice (the patient:
       the largest 3-D component of the tissue thicker than ``PATIENT_SHELL_MAX_MM``,
       grown back over its thin parts; removes the air inside a hollow table's shell);
    2. 3-D components of at least ``LUNG_MIN_COMPONENT_ML``; gas-only components below
       the lungs (bowel gas) are dropped, and on a longer scan (whole-body, PET/CT)
       those wholly below or above the largest component and, when air reaches more than
       ``HEAD_AIR_ABOVE_APEX_MM`` above the lung apices (the first slice above the
       lungs whose only air is one trachea-sized component, ``TRACHEA_AREA_MM2``),
       the air higher than ``AIRWAY_KEPT_ABOVE_APEX_MM`` above them (larynx, pharynx,
       nasal cavity, sinuses);
    3. the trachea is found on the upper slices (a small round air component near the
       midline) and the airway is grown from it with explosion control
       (``HU_AIRWAY_START`` lowered towards ``HU_AIRWAY_MIN`` until it stays under
       ``AIRWAY_MAX_ML``), dilated by one voxel and removed: trachea and main bronchi
       are not lung;
    4. the lungs are separated where they touch (erosion until two components appear,
       then a distance-ordered flood back into the mask); right = smaller patient x;
       when both parts lie on one side of the body's midline they are one lung
       (pneumonectomy, collapse) and are labelled whole by that side;
    5. dense disease is put back: on each axial slice and for each lung, holes are
       filled (vessels, nodules, central consolidation) and concavities of the outline
       (convex hull minus lung, bone excluded) are filled when they lie laterally, or
       dorsally (``LUNG_REPAIR_DORSAL_MEDIAL_FRACTION``), and the hull chord closing
       them lies on their outer side (consolidation against the costal pleura,
       dependent collapse); the filled parts then grow up to ``LUNG_REPAIR_GROW_MM``
       through consolidation-like voxels (``HU_REPAIR_GROW_BAND``) to reach the chest
       wall.  Medial / ventral bays (heart, hilum, spine, mediastinum) are never filled,
       nor a hole or bay under the lung's air whose median is organ-dense
       (``HU_ABDOMINAL_ORGAN_MIN``: the diaphragm dome seen through an axial slice) or
       that is airless with a share of fat (``DOME_AIRLESS_FRACTION``,
       ``DOME_FAT_FRACTION``, ``HU_FAT_BAND``: spleen or liver with the fat round it);
    6. envelope repair: disease lying between the aerated lung and the rib cage (a
       crescent against a convex chest wall is no concavity of the outline, and the
       consolidated costophrenic recess has no air at all) is grown into in 3-D, at
       most ``LUNG_ENVELOPE_GROW_MM``, through dense ground-glass
       (``HU_ENVELOPE_GGO_BAND``) and consolidation-like (``HU_REPAIR_GROW_BAND``)
       voxels, crossing at most ``LUNG_ENVELOPE_BRIDGE_MM`` of the partial-volume layer
       between them (and through the partial-volume layer between a lesion's
       ground-glass halo and its consolidated core, ``LUNG_ENVELOPE_PV_LAYER_MM``),
       staying ``LUNG_ENVELOPE_CAGE_MARGIN_MM`` inside the per-slice convex hull of
       the lung and the bone near it (``LUNG_ENVELOPE_RIB_DISTANCE_MM``: ribs, spine,
       sternum; not the shoulder girdle), never above the lung apex, and out of the
       image rows' stretch between the two lungs (mediastinum, heart); slivers thinner than
       ``2 * LUNG_ENVELOPE_MIN_THICKNESS_MM`` (intercostal partial volume) and
       components under ``LUNG_ENVELOPE_MIN_ML`` are dropped.  Fat-range voxels
       (-150..-60 HU) are never crossed far: that is what keeps the heart, the
       mediastinal fat and the chest wall out.

    Known limits (README ``scoring``): consolidation against the heart or mediastinum
    (between the lungs), disease reaching more than 25 mm from aerated lung, and the
    fat-range partial-volume rim of lesions are still missed; percent opacity is
    underestimated on severe phantoms (README table).

``"classical_basic"``
    Steps 1-5 only (the classical method before the envelope repair; kept for
    comparison).

``"hybrid"``
    Steps 1-6, where step 6 may also enter the stretch between the lungs (heart,
    mediastinum) wherever the learned lung mask of
    :func:`models.inference.predict_lungs_and_opacity` says lung; HU bands, rib cage,
    distance and size rules unchanged, the classical boundary kept everywhere else (the
    learned mask alone leaks into the body on real scans; letting it also admit
    fat-range HU raised lidc_idri_0001 to PO 5 %).  Needs torch and the weights.

``"model"``
    The lung mask of :func:`models.inference.predict_lungs_and_opacity` (a 2-D U-Net,
    see the model card), split into right / left by step 4 above.  Imported lazily.

Zones (:func:`imaging.scoring.lung_zones.lung_zones`): for each lung, upper / middle /
lower thirds of its cranio-caudal extent (slice index in canonical orientation), and
ventral / dorsal halves of its antero-posterior extent on each slice.

Code: this module checks the arguments, dispatches the methods and runs the learned
model's route; the classical pipeline and steps 2-3 are in
:mod:`imaging.scoring.lungs_classical`, the ~2 mm working grid and step 1 in
:mod:`imaging.scoring.lung_grid`, the patient and the chest part of a longer scan
(steps 1 and 2) in :mod:`imaging.scoring.lung_chest`, step 4 in
:mod:`imaging.scoring.lung_sides`, steps 5-6 in :mod:`imaging.scoring.lung_repair`,
the zones in :mod:`imaging.scoring.lung_zones`.

Evaluation: README section ``scoring`` and ``scripts/validate.py lungs``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from imaging.scoring import constants as C
from imaging.common.volume import CTVolume, canonical_axes, from_canonical, to_canonical
from imaging.scoring.lung_grid import block_mean, upsample_labels, working_factors
from imaging.scoring.lung_sides import LEFT, RIGHT, body_midline_x, split_lungs
from imaging.scoring.lungs_classical import classical_lungs_canonical

__all__ = [
    "segment_lungs",
    "union_with_learned",
    "check_finite_hu",
    "model_available",
    "LUNG_METHODS",
    "AUTO_METHOD",
    "AUTO_LEARNED",
    "auto_lung_method",
]

#: Accepted values of ``segment_lungs(method=...)``.
LUNG_METHODS: tuple[str, ...] = ("auto", "classical", "classical_basic", "model", "hybrid", "union", "learned")
_METHODS = LUNG_METHODS
#: What ``method="auto"`` runs (measured best, README section ``scoring``).
AUTO_METHOD: str = "classical"
#: Whether ``"auto"`` runs the 2.5-D network (``"learned"``) on scans in its domain
#: (:func:`auto_lung_method`); the choice and its numbers are in ``docs/decisions.md``.
AUTO_LEARNED: bool = True
#: Largest in-plane pixel (mm) of a scan ``"auto"`` gives the 2.5-D network: it was trained
#: on 0.68-0.70 mm pixels and validated on 0.70-0.82 mm (``docs/model.md``).
LEARNED_MAX_PIXEL_MM: float = 1.0
#: Thickest slice spacing (mm) ``"auto"`` gives the 2.5-D network (trained on 1.25 and 2.5 mm).
LEARNED_MAX_SLICE_MM: float = 3.0


def auto_lung_method(volume: CTVolume) -> str:
    """What ``method="auto"`` runs on this volume.

    ``"learned"`` (the 2.5-D network) when :data:`AUTO_LEARNED` is on, its weights are
    installed and the scan is like those it was trained and validated on (pixels of at most
    :data:`LEARNED_MAX_PIXEL_MM`, slices of at most :data:`LEARNED_MAX_SLICE_MM`);
    otherwise :data:`AUTO_METHOD` (``"classical"``).
    """
    from imaging.scoring.lungs_learned import learned_available

    sz, sy, sx = (float(s) for s in volume.spacing_mm)
    in_domain = max(sy, sx) <= LEARNED_MAX_PIXEL_MM and sz <= LEARNED_MAX_SLICE_MM
    return "learned" if AUTO_LEARNED and in_domain and learned_available() else AUTO_METHOD


def _model_canonical(hu: np.ndarray, spacing: Sequence[float], *, working_spacing_mm: float) -> np.ndarray:
    """Right and left lungs of a canonical volume by the learned model (method ``"model"``):
    its lung mask split by :func:`split_lungs` on the working grid, voxels whose block
    fell outside put on the side of the midline between the lungs."""
    from models.inference import predict_lungs_and_opacity  # lazy: torch

    mask, _ = predict_lungs_and_opacity(hu, spacing_mm=tuple(spacing))
    mask = np.asarray(mask, dtype=bool)
    factors = working_factors(spacing, working_spacing_mm)
    low = block_mean(mask.astype(np.float32), factors) >= 0.5
    ls = tuple(s * f for s, f in zip(spacing, factors))
    midline = body_midline_x(hu, mask, spacing_mm=spacing) if low.any() else None
    lab = upsample_labels(split_lungs(low, spacing_mm=ls, midline_x=None if midline is None
                                      else (midline + 0.5) / factors[2] - 0.5), factors, hu.shape)
    out = np.where(mask, lab, 0).astype(np.uint8)
    # model voxels whose low-res block fell outside: side of the sagittal midline
    orphan = mask & (out == 0)
    if orphan.any():
        xs = np.arange(hu.shape[2])
        r, l = out == RIGHT, out == LEFT
        xr = (r.sum(axis=(0, 1)) * xs).sum() / max(r.sum(), 1)
        xl = (l.sum(axis=(0, 1)) * xs).sum() / max(l.sum(), 1)
        if r.any() and l.any():
            mid = 0.5 * (xr + xl)
        else:  # one lung: the body's midline when known
            mid = hu.shape[2] / 2 if midline is None else midline
        side = np.where(xs < mid, RIGHT, LEFT).astype(np.uint8)
        out[orphan] = np.broadcast_to(side, hu.shape)[orphan]
    return out


def check_finite_hu(volume: CTVolume) -> None:
    """Raise :class:`~imaging.common.errors.NotCTVolumeError` when ``volume.hu`` holds NaN or
    infinite voxels (a reader or resampler fault): they would silently drop out of the
    lung mask and the percents instead of being scored.

    Parameters
    ----------
    volume : CTVolume
        Integer volumes pass without a look; float ones are checked voxel by voxel.

    Raises
    ------
    NotCTVolumeError
        With the count of non-finite voxels and the (z, y, x) index of the first.

    Examples
    --------
    >>> hu = np.zeros((2, 3, 3), np.float32); hu[1, 2, 0] = np.nan
    >>> check_finite_hu(CTVolume(hu, (1.0, 1.0, 1.0)))
    Traceback (most recent call last):
    ...
    imaging.common.errors.NotCTVolumeError: volume.hu holds 1 NaN / infinite voxel(s) (first at z, y, x = 1, 2, 0): fill them (e.g. with -1024 HU, air) before scoring
    """
    hu = volume.hu
    if not np.issubdtype(hu.dtype, np.floating) or np.isfinite(hu).all():
        return
    from imaging.common.errors import NotCTVolumeError

    bad = ~np.isfinite(hu)
    first = ", ".join(str(int(i)) for i in np.unravel_index(int(np.argmax(bad)), hu.shape))
    raise NotCTVolumeError(
        f"volume.hu holds {int(np.count_nonzero(bad))} NaN / infinite voxel(s) (first at z, y, x = {first}): "
        "fill them (e.g. with -1024 HU, air) before scoring")


def model_available() -> bool:
    """True when the learned lung/opacity model and its weights can be used."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("models")
    if spec is None or spec.origin is None or importlib.util.find_spec("models.inference") is None:
        return False
    weights = Path(spec.origin).resolve().parent / "weights" / "opacity_unet.pt"
    return weights.is_file()


def segment_lungs(
    volume: CTVolume,
    *,
    method: str = "auto",
    threshold_hu: float = C.HU_LUNG_THRESHOLD,
    working_spacing_mm: float = C.LUNG_WORKING_SPACING_MM,
) -> np.ndarray:
    """Right and left lungs of a CT volume, in the volume's own geometry.

    Parameters
    ----------
    volume : CTVolume
        Chest CT in HU, any orientation (handled internally in canonical LPS order).
    method : {"auto", "classical", "classical_basic", "model", "hybrid", "union", "learned"}
        ``"learned"`` is the 2.5-D network trained on real anatomy
        (:mod:`imaging.scoring.lungs_learned`, weights ``models/weights/lung25d.pt``).
        ``"union"`` is the classical mask plus the learned lung voxels connected to it
        (:func:`union_with_learned`).  ``"auto"`` runs ``"learned"`` on scans like its training
        data and :data:`AUTO_METHOD` (``"classical"``) on the others (:func:`auto_lung_method`;
        ``docs/decisions.md``); ``"classical_basic"`` is
        the classical pipeline without the envelope repair (step 6).  ``"model"`` and
        ``"hybrid"`` need the ``models`` weights and torch (see the module notes).
    threshold_hu : float
        Air-like threshold for the initial mask, HU (``HU_LUNG_THRESHOLD``).
    working_spacing_mm : float
        Approximate spacing at which the classical mask is computed, mm.

    Returns
    -------
    (Z, Y, X) uint8 ndarray
        Same shape as ``volume.hu``: 0 background, 1 right lung, 2 left lung.  All zero
        when no lung is found (the caller decides whether that is an error; see
        :func:`imaging.scoring.scores.score_scan`).

    Examples
    --------
    >>> hu = np.full((12, 40, 60), 40, np.int16)          # soft-tissue body
    >>> hu[:, :, :2] = hu[:, :, -2:] = -1000               # outside air
    >>> hu[2:10, 8:32, 8:26] = -850; hu[2:10, 8:32, 34:52] = -850
    >>> lab = segment_lungs(CTVolume(hu, (5.0, 5.0, 5.0)))
    >>> int(lab[5, 20, 15]), int(lab[5, 20, 45]), int(lab[0, 0, 0])
    (1, 2, 0)
    """
    if not isinstance(volume, CTVolume):
        raise TypeError(f"volume must be a CTVolume, got {type(volume).__name__}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if not np.isfinite(threshold_hu):
        raise ValueError(f"threshold_hu must be finite, got {threshold_hu}")
    if not working_spacing_mm > 0:
        raise ValueError(f"working_spacing_mm must be > 0, got {working_spacing_mm}")
    check_finite_hu(volume)
    perm, flips = canonical_axes(volume.direction)
    hu = np.ascontiguousarray(to_canonical(volume.hu, perm, flips))
    spacing = tuple(volume.spacing_mm[p] for p in perm)
    if method == "auto":
        method = auto_lung_method(volume)
    if method == "model":
        lab = _model_canonical(hu, spacing, working_spacing_mm=working_spacing_mm)
    elif method == "learned":
        from imaging.scoring.lungs_learned import learned_lungs_canonical

        lab = learned_lungs_canonical(hu, spacing)
    elif method == "hybrid":
        from models.inference import predict_lungs_and_opacity  # lazy: torch

        learned, _ = predict_lungs_and_opacity(hu, spacing_mm=tuple(spacing))
        lab = classical_lungs_canonical(hu, spacing, threshold_hu=threshold_hu,
                                        working_spacing_mm=working_spacing_mm,
                                        learned=np.asarray(learned, dtype=bool))
    else:
        lab = classical_lungs_canonical(hu, spacing, threshold_hu=threshold_hu,
                                        working_spacing_mm=working_spacing_mm,
                                        envelope=method in ("classical", "union"))
        if method == "union":
            lab = union_with_learned(lab, _model_canonical(hu, spacing, working_spacing_mm=working_spacing_mm))
    return from_canonical(lab, perm, flips)


def union_with_learned(classical: np.ndarray, learned: np.ndarray) -> np.ndarray:
    """The classical lung labels plus the learned lung voxels connected to them.

    Parameters
    ----------
    classical, learned : (Z, Y, X) uint8 ndarray
        Lung labels (0 / 1 right / 2 left) of the classical and the learned method.

    Returns
    -------
    (Z, Y, X) uint8 ndarray
        ``classical`` where it is lung; elsewhere the learned label of every 3-D
        connected component of the learned mask that touches the classical lungs.
        Learned components detached from the classical lungs (bowel gas, neck: the
        network's known false positives) are dropped.

    Examples
    --------
    >>> c = np.zeros((1, 1, 8), np.uint8); c[0, 0, 1:3] = 1
    >>> m = np.zeros_like(c); m[0, 0, 2:5] = 1; m[0, 0, 7] = 2
    >>> union_with_learned(c, m)[0, 0].tolist()
    [0, 1, 1, 1, 1, 0, 0, 0]
    """
    if classical.shape != learned.shape:
        raise ValueError(f"classical {classical.shape} and learned {learned.shape} shapes differ")
    components, _ = ndi.label(learned > 0)
    touching = np.unique(components[(classical > 0) & (components > 0)])
    extra = np.isin(components, touching[touching > 0]) & (classical == 0)
    out = classical.copy()
    out[extra] = learned[extra]
    return out
