"""Checks of the lung mask on real scans that need no labels, with review pictures.

A lung mask must never hold what is plainly not lung.  On every real scan of
``../shared/data`` this module measures, with rules independent of the scoring code:

* **outside the body**: lung voxels outside the body outline
  (:func:`imaging.phantom.real_lungs.body_mask`: the largest component denser than
  -500 HU, holes filled per slice; the table, blankets and outside air are not in it);
* **gas below the diaphragm**: lung voxels in gut gas, the 3-D components of air
  (< -500 HU, inside the body, eroded by :data:`GUT_GAS_EROSION` voxels to break
  partial-volume bridges, then 6-connected) of at least :data:`GUT_GAS_MIN_ML` whose
  highest slice lies below the middle of the largest air component (lungs and airways)
  -- the stomach and the bowel, which the diaphragm keeps apart from the lungs;
* **trachea and main bronchi**: lung voxels in the airway tree grown from the trachea
  (:func:`imaging.phantom.real_lungs.reference_airways`).

Each scan also gets a review picture: the lung mask outlined in cyan, the gut gas in red,
at the bases, hila and apices and on a coronal and a sagittal slice
(:func:`imaging.validation.real_anatomy.render_truth_review`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from imaging.common.volume import CTVolume
from imaging.phantom.real_lungs import AIR_MAX_HU, body_mask, reference_airways

__all__ = ["REAL_SCANS", "GUT_GAS_MIN_ML", "gut_gas", "mask_invariants", "evaluate_real_scan",
           "real_scans_markdown"]

#: The real scans of ``../shared/data`` and the path of each one's image inside it.
REAL_SCANS: Mapping[str, str] = {
    "lidc_idri_0001": "lidc_idri_0001",
    "lidc_idri_0002": "lidc_idri_0002",
    "lidc_idri_0003": "lidc_idri_0003",
    "ricord_1a_001012": "ricord_1a_001012",
    "cip_ct64": "cip_ct64/ct-64.nrrd",
}
#: Smallest gas component (mL, eroded) counted as gut gas.
GUT_GAS_MIN_ML: float = 0.5
#: Erosions (voxels, 6-connected) that part gut gas from the lungs before labelling.
GUT_GAS_EROSION: int = 2


def gut_gas(hu: np.ndarray, body: np.ndarray, voxel_ml: float) -> np.ndarray:
    """Stomach and bowel gas of a canonical volume (slice 0 inferior), see the module notes.

    The air inside the body is eroded by :data:`GUT_GAS_EROSION` voxels first, so that a
    partial-volume bridge through a thin diaphragm does not join gut gas to the lungs;
    the gut components are then grown back as far into the air.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        Canonical volume in HU.
    body : (Z, Y, X) bool ndarray
        The body outline.
    voxel_ml : float
        Volume of one voxel, mL.
    """
    air = (hu < AIR_MAX_HU) & (hu > -1500.0) & body
    cross = ndi.generate_binary_structure(3, 1)
    core = ndi.binary_erosion(air, structure=cross, iterations=GUT_GAS_EROSION)
    labels, n = ndi.label(core)  # 6-connected
    if n == 0:
        return np.zeros(hu.shape, bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    boxes = ndi.find_objects(labels)
    largest = boxes[int(np.argmax(sizes)) - 1][0]
    middle = 0.5 * (largest.start + largest.stop - 1)
    gut = [i + 1 for i, box in enumerate(boxes)
           if box is not None and box[0].stop - 1 < middle and sizes[i + 1] * voxel_ml >= GUT_GAS_MIN_ML]
    if not gut:
        return np.zeros(hu.shape, bool)
    cube = np.ones((3, 3, 3), bool)  # grows back the corners the 6-connected erosion took
    return ndi.binary_dilation(np.isin(labels, gut), structure=cube, iterations=GUT_GAS_EROSION, mask=air)


def mask_invariants(volume: CTVolume, lungs: np.ndarray) -> dict[str, Any]:
    """The label-free checks of one lung mask (mL), and the masks they used.

    Parameters
    ----------
    volume : CTVolume
        Canonical volume.
    lungs : (Z, Y, X) ndarray
        Lung mask (nonzero: lung).

    Returns
    -------
    dict
        ``lung_ml``, ``outside_body_ml``, ``gut_gas_ml`` (gut gas found), ``gut_gas_in_lungs_ml``,
        ``airways_in_lungs_ml``; and ``_gut`` (the gut gas mask, for pictures).
    """
    lungs = np.asarray(lungs) > 0
    ml = volume.voxel_volume_ml
    body = body_mask(volume.hu)
    gut = gut_gas(volume.hu, body, ml)
    airways = ndi.binary_erosion(reference_airways(volume), structure=np.ones((1, 3, 3), bool))  # lumen
    return {
        "lung_ml": float(lungs.sum() * ml),
        "outside_body_ml": float((lungs & ~body).sum() * ml),
        "gut_gas_ml": float(gut.sum() * ml),
        "gut_gas_in_lungs_ml": float((lungs & gut).sum() * ml),
        "airways_in_lungs_ml": float((lungs & airways).sum() * ml),
        "_gut": gut,
    }


def evaluate_real_scan(path: str | Path, name: str, *, pictures: str | Path | None = None,
                       **score_options: Any) -> dict[str, Any]:
    """Score one real scan with :func:`imaging.score_scan` and check its lung mask.

    Parameters
    ----------
    path : path-like
        The scan (a DICOM folder or an image file :func:`imaging.load_scan` reads).
    name : str
        Its name in the results and the picture's file name.
    pictures : path-like, optional
        Folder for the review picture ``<name>_<lung method>.png``.
    **score_options
        ``lung_method``, ``opacity_method`` for :func:`imaging.score_scan`.

    Returns
    -------
    dict
        ``scan``, ``lung_method``, ``opacity_method``, ``po``, ``flags``, ``seconds`` (the
        score) and the :func:`mask_invariants`.
    """
    from imaging.io.load import load_scan
    from imaging.scoring.scores import score_scan

    volume = load_scan(path).canonical()
    start = time.perf_counter()
    score = score_scan(volume, on_not_chest="flag", **score_options)
    seconds = time.perf_counter() - start
    lungs = np.asarray(score.masks["lungs"]) > 0
    checks = mask_invariants(volume, lungs)
    gut = checks.pop("_gut")
    row = {"scan": name, "lung_method": score.lung_method, "opacity_method": score.opacity_method,
           "po": float(score.percent_opacity), **checks, "flags": ";".join(score.quality_flags),
           "seconds": seconds}
    if pictures is not None:
        from imaging.validation.real_anatomy import render_truth_review

        row["picture"] = str(render_truth_review(
            Path(pictures) / f"{name}_{score.lung_method}.png", volume, lungs, other=gut,
            title=f"{name}: lungs ({score.lung_method}, cyan), gut gas (red); PO {score.percent_opacity:.1f} %"))
    return row


def real_scans_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The checks as a Markdown table, one row per scan and method."""
    from imaging.validation.markdown import markdown_table

    cols = ("scan", "lung_method", "opacity_method", "lung_ml", "po", "outside_body_ml", "gut_gas_ml",
            "gut_gas_in_lungs_ml", "airways_in_lungs_ml", "seconds")
    return markdown_table([{c: r[c] for c in cols} for r in rows], digits=1)
