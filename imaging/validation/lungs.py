"""Lung masks against a reference: Dice, volumes, lung-third agreement, real-scan scores.

The general functions take a volume and its reference (:func:`lung_mask_agreement`,
:func:`zone_agreement`, :func:`score_with_methods`); the ``*_cip_ct64``, ``*_dicom_series``
and :func:`check_not_a_chest` helpers apply them to the layout of the shared data folder
(``../shared/data``, see its README): ``cip_ct64`` (a real chest with a whole-lung mask and
Chest Imaging Platform lung thirds), ``lidc_idri_0001`` (a real chest without pneumonia)
and ``dicom_variants/jpeg2000_abdomen`` (not a chest).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imaging.common.volume import CTVolume
from imaging.io.load import load_scan
from imaging.scoring.lung_zones import ZONE_NAMES, lung_zones
from imaging.scoring.lungs import segment_lungs
from imaging.scoring.scores import score_scan
from imaging.validation.metrics import dice

__all__ = [
    "CIP_LUNG_THIRDS",
    "lung_mask_agreement",
    "zone_agreement",
    "evaluate_cip_ct64",
    "first_dicom_series",
    "score_with_methods",
    "check_not_a_chest",
]

#: Chest Imaging Platform label-map regions (``lm-64.nrrd`` value % 256) -> our lung third.
CIP_LUNG_THIRDS: dict[int, str] = {9: "left_upper", 10: "left_middle", 11: "left_lower",
                                   12: "right_upper", 13: "right_middle", 14: "right_lower"}


def lung_mask_agreement(volume: CTVolume, reference: np.ndarray, method: str) -> tuple[dict[str, Any], np.ndarray]:
    """Segment the lungs with one method and compare the mask with a reference mask.

    Parameters
    ----------
    volume : CTVolume
        The scan, in HU.
    reference : (Z, Y, X) bool ndarray
        The reference lung mask on the volume's grid.
    method : str
        ``lung_method`` of :func:`imaging.scoring.lungs.segment_lungs`.

    Returns
    -------
    row : dict
        ``method``, ``dice``, ``volume_ml`` and ``ref_volume_ml`` (mL), ``seconds`` (of the
        segmentation).
    labels : (Z, Y, X) ndarray
        The lung labels (0 outside, 1 right, 2 left).
    """
    start = time.perf_counter()
    labels = segment_lungs(volume, method=method)
    seconds = time.perf_counter() - start
    row = {"method": method, "dice": dice(labels > 0, reference),
           "volume_ml": np.count_nonzero(labels) * volume.voxel_volume_ml,
           "ref_volume_ml": np.count_nonzero(reference) * volume.voxel_volume_ml,
           "seconds": seconds}
    return row, labels


def zone_agreement(labels: np.ndarray, volume: CTVolume, regions: np.ndarray,
                   region_thirds: Mapping[int, str], *, thirds: str) -> float:
    """Fraction of lung voxels whose lung third (e.g. ``"left_upper"``) matches the reference's.

    Parameters
    ----------
    labels : (Z, Y, X) ndarray
        Our lung labels (:func:`imaging.scoring.lungs.segment_lungs`).
    volume : CTVolume
        The scan (its geometry places the thirds).
    regions : (Z, Y, X) int ndarray
        The reference region codes.
    region_thirds : mapping int -> str
        Reference code -> third name (``<lung>_<third>``), e.g. :data:`CIP_LUNG_THIRDS`.
    thirds : {"height", "volume"}
        How :func:`imaging.scoring.lungs.lung_zones` cuts each lung into thirds.

    Returns
    -------
    float
        In 0..1, over the voxels inside both our lungs and a reference third.
    """
    zones = lung_zones(labels, volume, thirds=thirds)
    both = np.isin(regions, list(region_thirds)) & (zones > 0)
    ours = np.array([ZONE_NAMES[int(c)].rsplit("_", 1)[0] for c in zones[both]])
    theirs = np.array([region_thirds[int(r)] for r in regions[both]])
    return float((ours == theirs).mean())


def evaluate_cip_ct64(folder: str | Path, methods: Sequence[str]) -> list[dict[str, Any]]:
    """Each lung method on ``cip_ct64``: Dice against ``wholeLung-64``, thirds against ``lm-64``.

    Returns one row per method: ``method``, ``dice``, ``volume_ml``, ``ref_volume_ml``,
    ``thirds_agree_height``, ``thirds_agree_volume`` (fractions of voxels, see
    :func:`zone_agreement`) and ``seconds``.
    """
    folder = Path(folder)
    volume = load_scan(folder / "ct-64.nrrd")
    reference = load_scan(folder / "wholeLung-64.nrrd").hu > 0
    regions = load_scan(folder / "lm-64.nrrd").hu.astype(np.int64) % 256
    rows = []
    for method in methods:
        row, labels = lung_mask_agreement(volume, reference, method)
        seconds = row.pop("seconds")
        for thirds in ("height", "volume"):
            row[f"thirds_agree_{thirds}"] = zone_agreement(labels, volume, regions, CIP_LUNG_THIRDS,
                                                           thirds=thirds)
        row["seconds"] = seconds
        rows.append(row)
    return rows


def first_dicom_series(folder: str | Path) -> Path:
    """The first folder (sorted) under ``folder`` that holds ``*.dcm`` files.

    Raises
    ------
    FileNotFoundError
        When there is none.
    """
    folder = Path(folder)
    series = sorted(p for p in folder.rglob("*") if p.is_dir() and any(p.glob("*.dcm")))
    if not series:
        raise FileNotFoundError(f"no DICOM series under {folder}")
    return series[0]


def score_with_methods(volume: CTVolume, methods: Sequence[str]) -> list[dict[str, Any]]:
    """Density-band scores of one scan with each lung method (no truth: volumes, PO, flags).

    Returns one row per method: ``method``, ``lung_volume_ml``, ``right_ml``, ``left_ml``
    (mL), ``percent_opacity``, ``percent_high_opacity`` (%), ``flags`` (``;``-joined) and
    ``seconds`` (segmentation and scoring).
    """
    rows = []
    for method in methods:
        start = time.perf_counter()
        s = score_scan(volume, lung_method=method, opacity_method="density")
        rows.append({"method": method, "lung_volume_ml": s.lung_volume_ml,
                     "right_ml": s.right_lung_volume_ml, "left_ml": s.left_lung_volume_ml,
                     "percent_opacity": s.percent_opacity, "percent_high_opacity": s.percent_high_opacity,
                     "flags": ";".join(s.quality_flags), "seconds": time.perf_counter() - start})
    return rows


def check_not_a_chest(path: str | Path) -> list[dict[str, Any]]:
    """Score a scan that is not a chest with ``on_not_chest="flag"``: its lung volume and flags.

    The expected outcome is the ``not_a_chest`` flag and a NaN percent opacity, never 0 %.
    """
    s = score_scan(path, on_not_chest="flag")
    return [{"lung_volume_ml": s.lung_volume_ml, "flags": ";".join(s.quality_flags),
             "percent_opacity": s.percent_opacity}]
