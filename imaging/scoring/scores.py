"""Per-scan opacity scores: :func:`score_scan` -> :class:`ScanScore` (one table row).

Scores (each cited where its bands live, :mod:`imaging.scoring.constants`):

* volumes in mL: lungs (right / left), ground-glass, consolidation, opacity (their sum);
* percent of opacity ``PO = 100 * opacity / lung`` and of high opacity
  ``PHO = 100 * (opacity voxels >= HU_HIGH_OPACITY_MIN) / lung`` (Chaganti et al.,
  Radiology: AI 2020, PMC7392373); percent ground-glass and consolidation;
* six zones (right / left x upper / middle / lower thirds, :func:`imaging.scoring.lungs.lung_zones`):
  ``percent_opacity_<zone>``, Chaganti severity 0-4 per zone and its total 0-24, the
  visual CT score 0-5 per zone and its total 0-30 (Shu et al. 2020 use 5 lobes x 0-5;
  zones stand in for lobes); ventral / dorsal halves of each lung;
* lung HU mean / SD / 10th, 50th, 90th percentiles; aeration-band and Lung CT Analyzer
  band percents;
* the density-band results (``density_*``) always, beside the model's when the model
  made the primary ones (``opacity_method``);
* ``settings`` (every threshold used), ``software_version`` and ``quality_flags``.

Not a chest
-----------
When the lungs found total less than ``NOT_A_CHEST_MAX_LUNG_ML`` the scan shows no chest
to score.  By default :func:`score_scan` raises :class:`~imaging.common.errors.NotAChestError`
(the batch runner records it as that scan's error row).  With ``on_not_chest="flag"`` it
returns a score whose percents and zone scores are NaN / None and whose
``quality_flags`` contain ``"not_a_chest"``: never a silent 0 %.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from imaging.scoring import constants as C
from imaging.common.checks import is_real_number
from imaging.common.environment import software_version
from imaging.common.errors import NotAChestError
from imaging.scoring.lungs import (
    AUTO_METHOD,
    LEFT,
    LUNG_METHODS,
    RIGHT,
    ZONE_NAMES,
    check_finite_hu,
    lung_zones,
    model_available,
    segment_lungs,
)
from imaging.scoring.opacity import CONSOLIDATION, GGO, density_bands
from imaging.common.volume import CTVolume, ScanInfo, canonical_axes, from_canonical, to_canonical

__all__ = ["ScanScore", "score_scan", "save_masks", "mask_stem", "ZONES", "HALVES", "severity_score", "visual_score", "AUTO_OPACITY_METHOD"]

#: The six scoring zones, in table order.
ZONES: tuple[str, ...] = tuple(f"{lung}_{third}" for lung in ("right", "left")
                               for third in ("upper", "middle", "lower"))
#: Ventral / dorsal halves of each lung.
HALVES: tuple[str, ...] = tuple(f"{lung}_{half}" for lung in ("right", "left")
                                for half in ("ventral", "dorsal"))

_OPACITY_METHODS = ("auto", "model", "density")
_ON_NOT_CHEST = ("raise", "flag")


def _band_score(percent: float, bounds: Sequence[float]) -> int | None:
    if percent is None or not math.isfinite(percent):
        return None
    if percent < 0 or percent > 100 + 1e-9:
        raise ValueError(f"percent must be within 0-100, got {percent}")
    return int(np.searchsorted(np.asarray(bounds, dtype=float), percent, side="left"))


def severity_score(percent: float) -> int | None:
    """Chaganti et al. zone severity 0-4 from the percent of the zone affected.

    0: below 1 % (:data:`imaging.scoring.constants.CHAGANTI_MIN_AFFECTED_PCT`; the scale's
    lowest affected band is 1-25 %); 1: up to 25 %; 2: up to 50 %; 3: up to 75 %;
    4: above 75 % (upper bounds inclusive,
    :data:`imaging.scoring.constants.CHAGANTI_SEVERITY_BOUNDS_PCT`).  NaN gives None.

    Examples
    --------
    >>> [severity_score(p) for p in (0, 0.1, 1, 25, 25.1, 80, 100)]
    [0, 0, 1, 1, 2, 4, 4]
    """
    score = _band_score(percent, C.CHAGANTI_SEVERITY_BOUNDS_PCT)
    return 0 if score is not None and percent < C.CHAGANTI_MIN_AFFECTED_PCT else score


def visual_score(percent: float) -> int | None:
    """Visual CT severity score 0-5 from the percent of the zone affected.

    0: 0 %; 1: < 5 %; 2: 5-25 %; 3: 25-50 %; 4: 50-75 %; 5: > 75 % (upper bounds
    inclusive, :data:`imaging.scoring.constants.VISUAL_SCORE_BOUNDS_PCT`).  NaN gives None.

    Examples
    --------
    >>> [visual_score(p) for p in (0, 3, 10, 40, 60, 90)]
    [0, 1, 2, 3, 4, 5]
    """
    return _band_score(percent, C.VISUAL_SCORE_BOUNDS_PCT)


@dataclass(frozen=True, eq=False)
class ScanScore:
    """Opacity scores of one CT scan.  ``as_dict()`` gives one flat table row.

    Volumes are in mL, percents are percent of the total lung volume (zone percents:
    of that zone's volume).  Zone values are also attributes:
    ``percent_opacity_<zone>``, ``severity_score_<zone>``, ``visual_score_<zone>`` for
    each zone of :data:`ZONES`, and ``percent_opacity_<half>`` for :data:`HALVES`.
    """

    info: ScanInfo
    lung_volume_ml: float
    right_lung_volume_ml: float
    left_lung_volume_ml: float
    ggo_volume_ml: float
    consolidation_volume_ml: float
    opacity_volume_ml: float
    percent_opacity: float
    percent_high_opacity: float
    percent_ggo: float
    percent_consolidation: float
    zone_percent_opacity: dict[str, float]
    half_percent_opacity: dict[str, float]
    severity_score_total: int | None
    visual_score_total: int | None
    lung_hu_mean: float
    lung_hu_sd: float
    lung_hu_p10: float
    lung_hu_p50: float
    lung_hu_p90: float
    aeration_percent: dict[str, float]
    band_percent: dict[str, float]
    density_percent_opacity: float
    density_percent_high_opacity: float
    density_percent_ggo: float
    density_percent_consolidation: float
    opacity_method: str
    lung_method: str
    settings: dict[str, Any]
    software_version: str
    quality_flags: tuple[str, ...] = ()
    masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __getattr__(self, name: str) -> Any:
        # zone accessors: percent_opacity_<zone|half>, severity_score_<zone>, visual_score_<zone>
        if name.startswith("percent_opacity_"):
            key = name[len("percent_opacity_"):]
            if key in ZONES:
                return self.zone_percent_opacity.get(key, float("nan"))
            if key in HALVES:
                return self.half_percent_opacity.get(key, float("nan"))
        if name.startswith("severity_score_") and name[len("severity_score_"):] in ZONES:
            return severity_score(self.zone_percent_opacity.get(name[len("severity_score_"):], float("nan")))
        if name.startswith("visual_score_") and name[len("visual_score_"):] in ZONES:
            return visual_score(self.zone_percent_opacity.get(name[len("visual_score_"):], float("nan")))
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def as_dict(self) -> dict[str, Any]:
        """One flat row: ScanInfo fields, scalars, zones, bands; ``settings`` as JSON,
        ``quality_flags`` joined with ``;``; masks are not included."""
        row: dict[str, Any] = dict(self.info.as_dict())
        skip = {"info", "zone_percent_opacity", "half_percent_opacity", "aeration_percent",
                "band_percent", "settings", "quality_flags", "masks"}
        for f in fields(self):
            if f.name in skip:
                continue
            row[f.name] = getattr(self, f.name)
            if f.name == "percent_consolidation":
                for zone in ZONES:
                    row[f"percent_opacity_{zone}"] = getattr(self, f"percent_opacity_{zone}")
                for half in HALVES:
                    row[f"percent_opacity_{half}"] = getattr(self, f"percent_opacity_{half}")
                for zone in ZONES:
                    row[f"severity_score_{zone}"] = getattr(self, f"severity_score_{zone}")
                for zone in ZONES:
                    row[f"visual_score_{zone}"] = getattr(self, f"visual_score_{zone}")
        for name, value in self.aeration_percent.items():
            row[f"aeration_percent_{name}"] = value
        for name, value in self.band_percent.items():
            row[f"density_band_percent_{name}"] = value
        row["quality_flags"] = ";".join(self.quality_flags)
        row["settings"] = json.dumps(self.settings, sort_keys=True)
        return row


# ----------------------------------------------------------------------------- helpers
def _pct(num: float, den: float) -> float:
    return 100.0 * num / den if den > 0 else float("nan")


#: What ``opacity_method="auto"`` runs.  Density bands, measured better than the learned
#: model on every HU check we have (README "Scoring"; ``scripts/evaluate_sample_trial.py``:
#: sample trial mean |error| 6.6 vs 8.8 points with classical lungs; phantom ground-glass
#: volumes -38..-64 % with the model, models/weights/MODEL_CARD.md).  Switch to ``"model"``
#: once the model meets its validation targets.
AUTO_OPACITY_METHOD: str = "density"


def _resolve_opacity_method(method: str) -> str:
    if method == "auto":
        if AUTO_OPACITY_METHOD == "model" and not model_available():
            return "density"
        return AUTO_OPACITY_METHOD
    return method


def _one_model_run(needed: bool) -> contextlib.AbstractContextManager[None]:
    """:func:`models.inference.reuse_predictions` when ``needed`` (imports torch lazily)."""
    if not needed:
        return contextlib.nullcontext()
    from models.inference import reuse_predictions

    return reuse_predictions()


def _model_opacity(volume: CTVolume) -> np.ndarray:
    """Opacity labels (0/1/2) of the learned model, in the volume's geometry."""
    from models.inference import predict_lungs_and_opacity  # lazy: torch

    perm, flips = canonical_axes(volume.direction)
    hu = to_canonical(volume.hu, perm, flips)
    spacing = tuple(volume.spacing_mm[p] for p in perm)
    _, opacity = predict_lungs_and_opacity(np.ascontiguousarray(hu), spacing_mm=spacing)
    return from_canonical(np.asarray(opacity, dtype=np.uint8), perm, flips)


def _contrast_median_hu(hu: np.ndarray, labels: np.ndarray, volume: CTVolume) -> float:
    """Median HU of mediastinal soft tissue (between the lungs, HU_MEDIASTINUM_WINDOW) over the
    middle third of the lungs' height, canonical axial slices; NaN when not measurable."""
    import cv2

    perm, flips = canonical_axes(volume.direction)
    h = np.ascontiguousarray(to_canonical(hu, perm, flips))
    lab = np.ascontiguousarray(to_canonical(labels, perm, flips))
    zs = np.flatnonzero((lab == RIGHT).any(axis=(1, 2)) & (lab == LEFT).any(axis=(1, 2)))
    if zs.size < 3:
        return float("nan")
    mid = zs[len(zs) // 3: 2 * len(zs) // 3 + 1]
    values = []
    for z in mid[:: max(1, len(mid) // 8)]:
        lungs = (lab[z] > 0).astype(np.uint8)
        pts = cv2.findNonZero(lungs)
        hull = np.zeros_like(lungs)
        cv2.fillConvexPoly(hull, cv2.convexHull(pts), 1)
        region = hull.astype(bool) & ~lungs.astype(bool)
        v = h[z][region]
        lo, hi = C.HU_MEDIASTINUM_WINDOW
        values.append(v[(v > lo) & (v < hi)])
    allv = np.concatenate(values) if values else np.array([])
    return float(np.median(allv)) if allv.size > 100 else float("nan")


def _value_stats(values: np.ndarray) -> dict[str, float]:
    """Mean, SD and 10th / 50th / 90th percentiles (lower-nearest for integer HU, via a
    histogram: exact and ~10x faster than sorting 10^7 values)."""
    if values.size == 0:
        return {k: float("nan") for k in ("mean", "sd", "p10", "p50", "p90")}
    mean = float(values.mean(dtype=np.float64))
    sd = float(np.sqrt(max(0.0, float(np.square(values, dtype=np.float64).mean()) - mean * mean)))
    # (not for a span beyond 16-bit values: one corrupt int32 / int64 voxel would make
    # the histogram gigabytes long)
    if np.issubdtype(values.dtype, np.integer) and int(values.max()) - int(values.min()) <= 1 << 16:
        lo = int(values.min())
        cum = np.cumsum(np.bincount((values.astype(np.int64) - lo).ravel()))
        pct = {f"p{q}": float(lo + np.searchsorted(cum, q / 100.0 * values.size)) for q in (10, 50, 90)}
    else:  # integers: the same lower-nearest rank as the histogram
        method = "inverted_cdf" if np.issubdtype(values.dtype, np.integer) else "linear"
        pct = {f"p{q}": float(np.percentile(values, q, method=method)) for q in (10, 50, 90)}
    return {"mean": mean, "sd": sd, **pct}


def _blank_slices(labels: np.ndarray, hu: np.ndarray) -> int:
    """Axial slices between the lungs' first and last slice (canonical arrays) holding one
    value throughout: pixel data the export lost and filled, which splits the lungs and
    biases every score."""
    zs = np.flatnonzero(labels.any(axis=(1, 2)))
    if zs.size == 0:
        return 0
    flat = hu[zs[0]:zs[-1] + 1].reshape(zs[-1] + 1 - zs[0], -1)
    return int(np.count_nonzero(flat.min(axis=1) == flat.max(axis=1)))


def _fov_cut(labels: np.ndarray, hu: np.ndarray, spacing_mm: Sequence[float]) -> bool:
    """Lungs cut by the field of view (labels, HU and spacing in canonical order).

    Lungs touch the first / last slice or the in-plane border, or lung air was cut off
    in-plane: air connected to the image's edge (or to the padding outside the
    reconstruction circle) on its slice, lying directly above or below lung.  The lung
    mask leaves out air touching the edge (outside air), so a lung running out of the
    image on some slices is simply missing there; an intact chest has body between
    outside air and every lung voxel.  The in-plane test runs on the lung mask's own
    working grid (:func:`imaging.scoring.lungs.segment_lungs`: ``LUNG_WORKING_SPACING_MM``,
    air < ``HU_LUNG_THRESHOLD``), where a lung grazing the edge is connected to it.
    Each measure is compared with ``FOV_CUTOFF_FRACTION`` of the largest lung slice area.
    """
    import cv2

    from imaging.scoring.lungs import _block_mean, _working_factors

    lung = labels > 0
    areas = lung.sum(axis=(1, 2))
    biggest = areas.max() if areas.size else 0
    if biggest == 0:
        return False
    limit = C.FOV_CUTOFF_FRACTION * biggest
    ends = max(areas[0], areas[-1]) > limit
    ring = int(lung[:, [0, -1], :].sum() + lung[:, :, [0, -1]].sum())
    if ends or ring > limit:
        return True
    factors = _working_factors(spacing_mm, C.LUNG_WORKING_SPACING_MM)
    air = _block_mean(hu, factors) < C.HU_LUNG_THRESHOLD
    lung = _block_mean(lung, factors) >= 0.5
    limit = C.FOV_CUTOFF_FRACTION * lung.sum(axis=(1, 2)).max()
    next_to_lung = np.zeros_like(lung)
    next_to_lung[1:] |= lung[:-1]
    next_to_lung[:-1] |= lung[1:]
    candidates = air & next_to_lung & ~lung
    cut = 0
    for z in np.flatnonzero(candidates.any(axis=(1, 2))):
        _, comp = cv2.connectedComponents(air[z].astype(np.uint8), connectivity=4)
        edge = np.union1d(np.unique(comp[[0, -1], :]), np.unique(comp[:, [0, -1]]))
        cut += int(np.count_nonzero(np.isin(comp[candidates[z]], edge[edge > 0])))
        if cut > limit:
            return True
    return False


def save_masks(volume: CTVolume, masks: Mapping[str, np.ndarray], folder: str | os.PathLike[str], *,
               stem: str = "scan") -> dict[str, Path]:
    """Write masks as NIfTI (``<stem>_<name>.nii.gz``) in the volume's geometry, atomically.

    Parameters
    ----------
    volume : CTVolume
        Gives the geometry (spacing, origin, direction); masks must have its shape.
    masks : mapping name -> (Z, Y, X) integer or bool ndarray
    folder : path-like
        Created if missing.
    stem : str
        File name prefix.

    Returns
    -------
    dict name -> Path

    Examples
    --------
    >>> import tempfile
    >>> v = CTVolume(np.zeros((3, 4, 5), np.int16), (2.0, 1.0, 1.0))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     sorted(p.name for p in save_masks(v, {"lungs": np.ones((3, 4, 5), np.uint8)}, d).values())
    ['scan_lungs.nii.gz']
    """
    from imaging.io.writers import write_nifti

    if not isinstance(volume, CTVolume):
        raise TypeError(f"volume must be a CTVolume, got {type(volume).__name__}")
    if not stem or any(c in stem for c in "/\\"):
        raise ValueError(f"stem must be a plain file-name prefix, got {stem!r}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, mask in masks.items():
        arr = np.asarray(mask)
        if arr.shape != volume.shape:
            raise ValueError(f"mask {name!r} has shape {arr.shape}, volume has {volume.shape}")
        if arr.dtype != np.bool_ and arr.size and not (arr.min() >= 0 and arr.max() <= 255
                                                       and np.array_equal(arr, np.round(arr))):
            # written as uint8: other values would wrap or be truncated silently
            raise ValueError(f"mask {name!r} must hold whole numbers 0-255 (labels), got values "
                             f"{arr.min()!r} to {arr.max()!r}")
        written[name] = write_nifti(arr.astype(np.uint8), out / f"{stem}_{name}.nii.gz", reference=volume)
    return written


#: File endings stripped from a source file name to make a mask file stem.
_SOURCE_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")


def _plain(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip(".") or "scan"


def mask_stem(volume: CTVolume) -> str:
    """File-name stem for the masks of ``volume`` (``<stem>_<name>.nii.gz``).

    The SeriesInstanceUID when the volume has one (DICOM input).  Otherwise the source
    file's name without its ending (``ct.nii.gz`` -> ``ct``), or ``scan`` for a volume
    with no source, followed in both cases by 8 hex digits hashing the voxels and the
    geometry: two different volumes never share a stem (so one folder can take the
    masks of many files named alike), and the same volume always gets the same stem.

    Parameters
    ----------
    volume : CTVolume

    Returns
    -------
    str
        A plain file-name prefix (letters, digits, ``-``, ``_``, ``.``).

    Examples
    --------
    >>> v = CTVolume(np.zeros((2, 3, 4), np.int16), (1.0, 1.0, 1.0))
    >>> stem = mask_stem(v)
    >>> stem.startswith("scan_"), len(stem), stem == mask_stem(v.with_hu(v.hu + 1))
    (True, 13, False)
    """
    import hashlib

    if not isinstance(volume, CTVolume):
        raise TypeError(f"volume must be a CTVolume, got {type(volume).__name__}")
    if volume.info.series_uid:
        return _plain(str(volume.info.series_uid))
    base = "scan"
    if volume.info.source:
        name = Path(str(volume.info.source)).name
        for suffix in _SOURCE_SUFFIXES:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        base = _plain(name) if name else "scan"
    digest = hashlib.blake2b(digest_size=4)
    hu = np.ascontiguousarray(volume.hu)
    digest.update(f"{hu.dtype.str}{hu.shape}{tuple(volume.spacing_mm)}{tuple(volume.origin_mm)}".encode())
    digest.update(np.asarray(volume.direction, dtype=np.float64).tobytes())
    digest.update(hu.data)
    return f"{base}_{digest.hexdigest()}"


def _given_lung_labels(lung_labels: Any, volume: CTVolume) -> np.ndarray:
    """``lung_labels`` checked and as uint8 0 / 1 right / 2 left, in the volume's geometry.

    A boolean mask (both lungs, no sides) is split into right and left lungs by
    :func:`imaging.scoring.lungs.split_lungs` on the canonical axes.  Any other value than 0, 1
    and 2 is refused: a 0 / 255 mask or other label codes would otherwise be counted as
    "left lung" yet fall in no zone.
    """
    from imaging.scoring.lungs import body_midline_x, split_lungs

    labels = np.asarray(lung_labels)
    if labels.shape != volume.shape:
        raise ValueError(f"lung_labels shape {labels.shape} differs from volume shape {volume.shape}")
    if labels.dtype == np.bool_:
        perm, flips = canonical_axes(volume.direction)
        mask = np.ascontiguousarray(to_canonical(labels, perm, flips))
        spacing = tuple(volume.spacing_mm[p] for p in perm)
        # the body's midline tells one lung alone (pneumonectomy) from two
        midline = body_midline_x(to_canonical(volume.hu, perm, flips), mask, spacing_mm=spacing) if mask.any() else None
        split = split_lungs(mask, spacing_mm=spacing, midline_x=midline)
        rest = mask & (split == 0)  # small parts split_lungs drops: every given voxel counts
        if rest.any():
            cols = [np.nonzero(split == side)[2] for side in (RIGHT, LEFT)]
            mid = (0.5 * (cols[0].mean() + cols[1].mean()) if all(c.size for c in cols)
                   else mask.shape[2] / 2 if midline is None else midline)  # columns grow to the patient's left
            split[rest] = np.where(np.nonzero(rest)[2] < mid, RIGHT, LEFT)
        return from_canonical(split, perm, flips)
    if not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)):
        raise TypeError(f"lung_labels must be an integer or boolean array (or floats holding 0, 1, 2), "
                        f"got dtype {labels.dtype}")
    if np.issubdtype(labels.dtype, np.integer) and labels.size and 0 <= labels.min() and labels.max() <= LEFT:
        return labels.astype(np.uint8)  # the usual case: two cheap passes
    bad = (labels != 0) & (labels != RIGHT) & (labels != LEFT)
    if bad.any():
        found = np.unique(labels[bad])
        raise ValueError(
            f"lung_labels must hold 0 (background), {RIGHT} (right lung) and {LEFT} (left lung) only; "
            f"found {', '.join(f'{v:g}' for v in found[:5].tolist())}{' ...' if found.size > 5 else ''} "
            f"in {int(np.count_nonzero(bad))} voxel(s). Pass a boolean mask to have it split into right "
            "and left lungs.")
    return labels.astype(np.uint8)


# ----------------------------------------------------------------------------- scoring
def score_scan(
    volume_or_path: CTVolume | str | os.PathLike[str],
    *,
    lung_method: str = "auto",
    opacity_method: str = "auto",
    lung_labels: np.ndarray | None = None,
    ggo_min_hu: float = C.HU_GGO_MIN,
    consolidation_min_hu: float = C.HU_CONSOLIDATION_MIN,
    vessel_min_hu: float = C.HU_VESSEL_MIN,
    high_opacity_min_hu: float = C.HU_HIGH_OPACITY_MIN,
    vessel_radius_mm: float = C.VESSEL_MAX_RADIUS_MM,
    vessel_regrow_mm: float = C.VESSEL_REGROW_MM,
    zone_thirds: str = "height",
    on_not_chest: str = "raise",
    mask_dir: str | os.PathLike[str] | None = None,
    keep_masks: bool = True,
) -> ScanScore:
    """Segment the lungs and opacities of one CT scan and score them.

    Parameters
    ----------
    volume_or_path : CTVolume or path
        A volume in HU, or anything :func:`imaging.load_scan` reads (series folder,
        NIfTI / NRRD file, ...).
    lung_method : {"auto", "classical", "classical_basic", "model", "hybrid", "union"}
        Passed to :func:`imaging.scoring.lungs.segment_lungs` (``"auto"`` is recorded as the
        method it ran, :data:`imaging.scoring.lungs.AUTO_METHOD`).
    opacity_method : {"auto", "model", "density"}
        ``"auto"`` runs :data:`AUTO_OPACITY_METHOD` (density bands, measured better
        than the learned model so far); ``"model"`` uses the learned network
        (``models/weights/opacity_unet.pt``).  Density-band results are reported in the
        ``density_*`` fields in every case.
    lung_labels : (Z, Y, X) ndarray, optional
        Your own lung labels (0 / 1 right / 2 left) in the volume's geometry; skips
        segmentation.  A boolean mask of both lungs is split into right and left
        (:func:`imaging.scoring.lungs.split_lungs`); other values raise ``ValueError``.
    ggo_min_hu, consolidation_min_hu, vessel_min_hu, high_opacity_min_hu : float
        Density thresholds, HU (defaults from :mod:`imaging.scoring.constants`).
    vessel_radius_mm, vessel_regrow_mm : float
        Vessel suppression: opening disk radius and regrowth distance, mm.
    zone_thirds : {"height", "volume"}
        How lungs are cut into thirds (:func:`imaging.scoring.lungs.lung_zones`).
    on_not_chest : {"raise", "flag"}
        What to do when no lungs are found (see the module notes).
    mask_dir : path-like, optional
        Write ``lungs``, ``opacity`` and ``zones`` masks there as NIfTI (only ``lungs``
        for a scan flagged ``not_a_chest``), named
        ``<stem>_<mask>.nii.gz`` with the stem of :func:`mask_stem` (series UID, else
        source file name + content hash), so scans scored into one folder never
        overwrite each other.
    keep_masks : bool
        Keep the masks in :attr:`ScanScore.masks` (the batch runner writes them).

    Returns
    -------
    ScanScore

    Raises
    ------
    NotAChestError
        No lungs (under ``NOT_A_CHEST_MAX_LUNG_ML``) and ``on_not_chest="raise"``.
    NotCTVolumeError
        ``volume.hu`` holds NaN or infinite voxels (:func:`imaging.scoring.lungs.check_finite_hu`).
    ValueError
        An unknown method or option, a threshold or radius that is not a finite number,
        or ``lung_labels`` of another shape or with values other than 0, 1 and 2.
    TypeError
        ``volume_or_path`` neither a CTVolume nor a path; ``lung_labels`` not numeric.

    Examples
    --------
    >>> hu = np.full((12, 40, 60), 40, np.int16)
    >>> hu[:, :, :2] = hu[:, :, -2:] = -1000
    >>> hu[1:11, 6:34, 6:27] = -850; hu[1:11, 6:34, 33:54] = -850
    >>> hu[4:8, 14:24, 6:12] = -30          # consolidation against the chest wall (2.0 %)
    >>> s = score_scan(CTVolume(hu, (5.0, 5.0, 5.0)), opacity_method="density")
    >>> s.opacity_method, round(s.percent_opacity, 1), s.severity_score_right_middle
    ('density', 2.0, 1)
    >>> s.quality_flags                     # a toy: 1.5 L of lungs in 5 mm voxels
    ('thick_slices', 'coarse_pixels', 'implausible_lung_volume')
    """
    if lung_method not in LUNG_METHODS:
        raise ValueError(f"lung_method must be one of {LUNG_METHODS}, got {lung_method!r}")
    if opacity_method not in _OPACITY_METHODS:
        raise ValueError(f"opacity_method must be one of {_OPACITY_METHODS}, got {opacity_method!r}")
    if zone_thirds not in ("height", "volume"):
        raise ValueError(f"zone_thirds must be 'height' or 'volume', got {zone_thirds!r}")
    if on_not_chest not in _ON_NOT_CHEST:
        raise ValueError(f"on_not_chest must be one of {_ON_NOT_CHEST}, got {on_not_chest!r}")
    for name, value in (("ggo_min_hu", ggo_min_hu), ("consolidation_min_hu", consolidation_min_hu),
                        ("vessel_min_hu", vessel_min_hu), ("high_opacity_min_hu", high_opacity_min_hu),
                        ("vessel_radius_mm", vessel_radius_mm), ("vessel_regrow_mm", vessel_regrow_mm)):
        # NaN would silently count nothing (PHO 0 %) and write invalid JSON settings
        if not is_real_number(value) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if isinstance(volume_or_path, CTVolume):
        volume = volume_or_path
    elif isinstance(volume_or_path, (str, os.PathLike)):
        from imaging.io.load import load_scan

        volume = load_scan(volume_or_path)
    else:
        raise TypeError(f"volume_or_path must be a CTVolume or a path, got {type(volume_or_path).__name__}")
    check_finite_hu(volume)  # also with lung_labels given (no segment_lungs call)

    method = _resolve_opacity_method(opacity_method)
    resolved_lungs = AUTO_METHOD if lung_method == "auto" else lung_method
    # lungs and opacity both from the network: one network pass per scan, not two
    with _one_model_run(method == "model" and lung_labels is None and resolved_lungs in ("model", "hybrid", "union")):
        if lung_labels is None:
            labels = segment_lungs(volume, method=lung_method)
            used_lung_method = resolved_lungs
        else:
            labels = _given_lung_labels(lung_labels, volume)
            used_lung_method = "given"
        model_opacity = (_model_opacity(volume) if method == "model"
                         and np.count_nonzero(labels) * volume.voxel_volume_ml >= C.NOT_A_CHEST_MAX_LUNG_ML
                         else None)
    vox_ml = volume.voxel_volume_ml
    lung = labels > 0
    n_lung = int(np.count_nonzero(lung))
    lung_ml = n_lung * vox_ml
    flags: list[str] = []
    # slice-wise steps (vessel suppression, slice spacing, FOV ends) work on canonical axes,
    # so a permuted or flipped volume scores exactly like its canonical copy
    perm, flips = canonical_axes(volume.direction)
    canonical_spacing = tuple(volume.spacing_mm[p] for p in perm)
    z_spacing = canonical_spacing[0]
    thickness = volume.info.slice_thickness_mm
    if z_spacing > C.THICK_SLICE_MM or (thickness is not None and thickness > C.THICK_SLICE_MM):
        flags.append("thick_slices")
    if max(canonical_spacing[1:]) > C.COARSE_PIXEL_MM:
        flags.append("coarse_pixels")

    settings: dict[str, Any] = {
        "lung_method": used_lung_method,
        "lung_threshold_hu": C.HU_LUNG_THRESHOLD,
        "lung_working_spacing_mm": C.LUNG_WORKING_SPACING_MM,
        "high_opacity_min_hu": float(high_opacity_min_hu),
        "zone_thirds": zone_thirds,
        "not_a_chest_max_lung_ml": C.NOT_A_CHEST_MAX_LUNG_ML,
    }
    if lung_ml < C.NOT_A_CHEST_MAX_LUNG_ML:
        n_slices = volume.shape[perm[0]]
        message = (f"{volume.info.source or 'scan'}: no chest to score: lungs found total "
                   f"{lung_ml:.0f} mL (< {C.NOT_A_CHEST_MAX_LUNG_ML:.0f} mL) in {n_slices} slice(s) "
                   f"covering {n_slices * z_spacing:g} mm; check that the series is a chest CT "
                   "covering the lungs")
        lowest, highest = float(np.min(volume.hu)), float(np.max(volume.hu))
        lowest_not_padding = lowest
        if lowest <= -1024:  # the field-of-view padding (one value, e.g. stored -1024 or -2000) aside
            above = [float(sl[sl > lowest].min()) for sl in volume.hu if (sl > lowest).any()]
            lowest_not_padding = min(above, default=lowest)
        if lowest_not_padding > -500:  # no air anywhere: e.g. stored pixel values without RescaleSlope/Intercept
            padding = f" besides {lowest:g} (padding)" if lowest_not_padding != lowest else ""
            message += (f" and that its voxels are in HU (they span {lowest_not_padding:g} to {highest:g}"
                        f"{padding}; air is about -1000 HU)")
        if on_not_chest == "raise":
            raise NotAChestError(message)
        flags.append("not_a_chest")
        if mask_dir is not None:  # what was found, for QC of the flagged scan
            save_masks(volume, {"lungs": labels}, mask_dir, stem=mask_stem(volume))
        right_ml = int(np.count_nonzero(labels == RIGHT)) * volume.voxel_volume_ml
        return _not_a_chest_score(volume, labels if keep_masks else None, lung_ml, flags, settings,
                                  used_lung_method, right_ml)

    density = density_bands(to_canonical(volume.hu, perm, flips), to_canonical(lung, perm, flips),
                            spacing_mm=canonical_spacing, ggo_min_hu=ggo_min_hu,
                            consolidation_min_hu=consolidation_min_hu, vessel_min_hu=vessel_min_hu,
                            vessel_radius_mm=vessel_radius_mm, vessel_regrow_mm=vessel_regrow_mm)
    density_labels = from_canonical(density.labels, perm, flips)  # the input's geometry
    settings.update(density.settings)
    if model_opacity is not None:
        opacity = np.where(lung, model_opacity, 0).astype(np.uint8)
        from models.inference import DEFAULT_WEIGHTS

        settings["model_weights"] = DEFAULT_WEIGHTS.name
    else:
        opacity = density_labels
    settings["opacity_method"] = method

    # all counting inside the lungs' bounding box
    box = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in (
        np.flatnonzero(lung.any(axis=(1, 2))), np.flatnonzero(lung.any(axis=(0, 2))),
        np.flatnonzero(lung.any(axis=(0, 1)))))
    hu = volume.hu
    hu_b, lung_b, op_b, dens_b = hu[box], lung[box], opacity[box], density_labels[box]
    lung_values = hu_b[lung_b]
    high_b = hu_b >= high_opacity_min_hu
    n_high = int(np.count_nonzero((op_b > 0) & high_b))
    n_d_high = int(np.count_nonzero((dens_b > 0) & high_b))
    n_ggo = int(np.count_nonzero(op_b == GGO))
    n_con = int(np.count_nonzero(op_b == CONSOLIDATION))
    hu_stats = _value_stats(lung_values)

    zones = lung_zones(labels, volume, thirds=zone_thirds)
    zones_b = zones[box]
    zone_pct: dict[str, float] = {}
    half_pct: dict[str, float] = {}
    n_codes = max(ZONE_NAMES) + 1
    zone_total = np.bincount(zones_b[lung_b], minlength=n_codes)
    zone_op = np.bincount(zones_b[op_b > 0], minlength=n_codes)
    for zone in ZONES:
        codes = [c for c, name in ZONE_NAMES.items() if name.startswith(zone + "_")]
        zone_pct[zone] = _pct(float(zone_op[codes].sum()), float(zone_total[codes].sum()))
    for half in HALVES:
        lung_name, side = half.split("_")
        codes = [c for c, name in ZONE_NAMES.items() if name.startswith(lung_name + "_") and name.endswith(side)]
        half_pct[half] = _pct(float(zone_op[codes].sum()), float(zone_total[codes].sum()))
    sev = [severity_score(zone_pct[z]) for z in ZONES]
    vis = [visual_score(zone_pct[z]) for z in ZONES]

    lo, hi = C.LUNG_VOLUME_PLAUSIBLE_ML
    if not lo <= lung_ml <= hi:
        flags.append("implausible_lung_volume")
    labels_c, hu_c = to_canonical(labels, perm, flips), to_canonical(hu, perm, flips)
    if _fov_cut(labels_c, hu_c, canonical_spacing):
        flags.append("lungs_cut_off_by_fov")
    if _blank_slices(labels_c, hu_c):
        flags.append("blank_slices")
    if math.isfinite(hu_stats["p50"]) and hu_stats["p50"] < C.HU_GAS_MAX:
        flags.append("gas_like_lungs")
    right_ml = int(np.count_nonzero(labels[box] == RIGHT)) * vox_ml
    left_ml = lung_ml - right_ml
    if min(right_ml, left_ml) < 0.1 * lung_ml:
        flags.append("one_lung_missing")
    contrast = _contrast_median_hu(hu, labels, volume)
    if math.isfinite(contrast) and contrast > C.HU_CONTRAST_SUSPECTED:
        flags.append("contrast_suspected")
    settings["mediastinum_median_hu"] = None if not math.isfinite(contrast) else round(contrast, 1)

    masks = {"lungs": labels, "opacity": opacity, "zones": zones} if keep_masks or mask_dir else {}
    if mask_dir is not None:
        save_masks(volume, masks, mask_dir, stem=mask_stem(volume))
    n_op = n_ggo + n_con
    return ScanScore(
        info=volume.info,
        lung_volume_ml=lung_ml,
        right_lung_volume_ml=right_ml,
        left_lung_volume_ml=left_ml,
        ggo_volume_ml=n_ggo * vox_ml,
        consolidation_volume_ml=n_con * vox_ml,
        opacity_volume_ml=n_op * vox_ml,
        percent_opacity=_pct(n_op, n_lung),
        percent_high_opacity=_pct(n_high, n_lung),
        percent_ggo=_pct(n_ggo, n_lung),
        percent_consolidation=_pct(n_con, n_lung),
        zone_percent_opacity=zone_pct,
        half_percent_opacity=half_pct,
        severity_score_total=None if None in sev else int(sum(sev)),  # a zone without lung
        visual_score_total=None if None in vis else int(sum(vis)),
        lung_hu_mean=hu_stats["mean"],
        lung_hu_sd=hu_stats["sd"],
        lung_hu_p10=hu_stats["p10"],
        lung_hu_p50=hu_stats["p50"],
        lung_hu_p90=hu_stats["p90"],
        aeration_percent=density.aeration_percent,
        band_percent=density.band_percent,
        density_percent_opacity=_pct(density.ggo_voxels + density.consolidation_voxels, n_lung),
        density_percent_high_opacity=_pct(n_d_high, n_lung),
        density_percent_ggo=_pct(density.ggo_voxels, n_lung),
        density_percent_consolidation=_pct(density.consolidation_voxels, n_lung),
        opacity_method=method,
        lung_method=used_lung_method,
        settings=settings,
        software_version=software_version(),
        quality_flags=tuple(flags),
        masks=masks if keep_masks else {},
    )


def _not_a_chest_score(volume: CTVolume, labels: np.ndarray | None, lung_ml: float, flags: list[str],
                       settings: dict[str, Any], lung_method: str, right_ml: float) -> ScanScore:
    """The flagged score of a scan without lungs; ``labels`` None: keep no masks."""
    nan = float("nan")
    return ScanScore(
        info=volume.info,
        lung_volume_ml=lung_ml,
        right_lung_volume_ml=right_ml,
        left_lung_volume_ml=lung_ml - right_ml,
        ggo_volume_ml=nan, consolidation_volume_ml=nan, opacity_volume_ml=nan,
        percent_opacity=nan, percent_high_opacity=nan, percent_ggo=nan, percent_consolidation=nan,
        zone_percent_opacity={z: nan for z in ZONES}, half_percent_opacity={h: nan for h in HALVES},
        severity_score_total=None, visual_score_total=None,
        lung_hu_mean=nan, lung_hu_sd=nan, lung_hu_p10=nan, lung_hu_p50=nan, lung_hu_p90=nan,
        aeration_percent={k: nan for k in C.AERATION_BANDS_HU},
        band_percent={k: nan for k in C.LCTA_BANDS_HU},
        density_percent_opacity=nan, density_percent_high_opacity=nan,
        density_percent_ggo=nan, density_percent_consolidation=nan,
        opacity_method="none", lung_method=lung_method, settings=settings,
        software_version=software_version(), quality_flags=tuple(flags),
        masks={} if labels is None else {"lungs": labels},
    )
