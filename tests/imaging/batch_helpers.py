"""Helpers for the batch-runner tests: tiny DICOM trees and scorers that can be injected.

The scorers are top-level functions so that worker processes (spawn) and Dask workers
can import them by name (``--scorer tests.imaging.batch_helpers:toy_scorer``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imaging.common.errors import NotAChestError

#: Identifying values written into the synthetic headers; tests check they never reach OUT.
PATIENT_NAME = "Doe^Janet"
BIRTH_DATE = "19450317"


def _uid(*parts: object) -> str:
    digest = int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:24], 16)
    return f"2.25.{digest}"


def write_series(folder: Path, *, patient_id: str, study_key: str, series_key: str, study_date: str,
                 hu: np.ndarray, spacing_mm: tuple[float, float, float] = (3.0, 2.0, 2.0),
                 series_number: int = 1, description: str = "CHEST AXIAL", image_type: str = "ORIGINAL\\PRIMARY\\AXIAL",
                 modality: str = "CT") -> list[Path]:
    """Write ``hu`` (Z, Y, X; slice 0 most inferior) as a CT series of single-frame files.

    Built on :func:`tests.imaging.dicom_synth.make_dataset`, with deterministic UIDs and
    identifying header values (:data:`PATIENT_NAME`, :data:`BIRTH_DATE`, a referring
    physician) that the tests check never reach the outputs.
    """
    from tests.imaging.dicom_synth import make_dataset

    folder.mkdir(parents=True, exist_ok=True)
    study_uid = _uid(patient_id, study_key)
    series_uid = _uid(patient_id, study_key, series_key)
    sz, sy, sx = spacing_mm
    paths = []
    stored = (np.asarray(hu, np.int32) + 1024).astype(np.int16)
    for k in range(hu.shape[0]):
        ds = make_dataset(
            stored[k], position=(-sx * hu.shape[2] / 2, -sy * hu.shape[1] / 2, k * sz),
            pixel_spacing=(sy, sx), study_uid=study_uid, series_uid=series_uid, modality=modality,
            image_type=image_type.split("\\"), intercept=-1024.0, series_number=series_number,
            thickness=sz, instance=k + 1, patient_id=patient_id, study_date=study_date,
            description=description,
        )
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid(series_uid, k)
        ds.FrameOfReferenceUID = _uid(series_uid, "for")
        ds.PatientName = PATIENT_NAME
        ds.PatientBirthDate = BIRTH_DATE
        ds.PatientSex = "F"
        ds.ReferringPhysicianName = "Smith^Referrer"
        ds.StudyTime = "101500"
        ds.Manufacturer = "chestct-tests"
        path = folder / f"{k + 1:06d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def chest_hu(shape: tuple[int, int, int] = (8, 24, 24), *, opacity_fraction: float = 0.0) -> np.ndarray:
    """A toy chest: body at 40 HU, two boxes of lung at -850 HU, a fraction of lung at -100 HU."""
    z, y, x = shape
    hu = np.full(shape, -1000, np.int16)
    hu[:, 2:y - 2, 2:x - 2] = 40
    hu[1:z - 1, 5:y - 5, 4:x // 2 - 1] = -850
    hu[1:z - 1, 5:y - 5, x // 2 + 1:x - 4] = -850
    if opacity_fraction > 0:
        n_rows = max(1, int(round(opacity_fraction * (y - 10))))
        hu[1:z - 1, y - 5 - n_rows:y - 5, 4:x // 2 - 1] = -100
    return hu


@dataclass
class ToyScore:
    """What :func:`toy_scorer` returns: a row and masks, like :class:`imaging.ScanScore`."""

    row: dict[str, Any]
    masks: dict[str, np.ndarray] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.row)


def toy_scorer(volume: Any, *, threshold_hu: float = -500.0, delay_s: float = 0.0) -> ToyScore:
    """Score by threshold: lungs = HU < -500 inside the body, opacity = lung-box voxels above.

    Raises NotAChestError when there is no air-like voxel inside the body (so a 'not a chest'
    series is easy to make), and ValueError for a volume whose description says 'BUG'.
    """
    if delay_s:
        time.sleep(delay_s)
    hu = np.asarray(volume.hu)
    body = hu > -900
    inner = np.zeros_like(body)
    inner[:, 4:-4, 3:-3] = True
    lungs = ((hu < threshold_hu) & inner).astype(np.uint8)
    half = hu.shape[2] // 2
    lungs[:, :, half:] *= 2
    opacity = ((hu >= threshold_hu) & (hu < 0) & inner).astype(np.uint8)
    if not np.any(lungs):
        raise NotAChestError(f"no lung-like voxels in series {volume.info.series_uid}")
    lung_total = int(np.count_nonzero(lungs) + np.count_nonzero(opacity))
    pct = 100.0 * np.count_nonzero(opacity) / lung_total
    row = {
        "patient_id": volume.info.patient_id,
        "study_date": volume.info.study_date,
        "series_uid": volume.info.series_uid,
        "lung_volume_ml": lung_total * volume.voxel_volume_ml,
        "percent_opacity": float(pct),
        "quality_flags": ("thick_slices",) if volume.spacing_mm[0] > 2.5 else (),
        "settings": {"threshold_hu": threshold_hu},
        "software_version": "toy-1",
        "scored_at": _dt.date(2024, 1, 1).isoformat(),
    }
    return ToyScore(row, {"lungs": lungs, "opacity": opacity})


def slow_toy_scorer(volume: Any, **options: Any) -> ToyScore:
    """:func:`toy_scorer` taking ~0.4 s per scan (for kill-and-rerun tests)."""
    return toy_scorer(volume, delay_s=float(os.environ.get("CHESTCT_TEST_DELAY_S", "0.4")), **options)


def interrupting_scorer(volume: Any, **options: Any) -> ToyScore:
    """:func:`toy_scorer` that acts like Ctrl-C on patient ``PID-001`` once.

    The interrupt happens while the file named by ``$CHESTCT_TEST_INTERRUPT`` exists; the
    file is removed, so a rerun goes through.
    """
    marker = os.environ.get("CHESTCT_TEST_INTERRUPT")
    if marker and volume.info.patient_id == "PID-001" and os.path.exists(marker):
        os.remove(marker)
        raise KeyboardInterrupt
    return toy_scorer(volume, **options)


def worker_killing_scorer(volume: Any, **options: Any) -> ToyScore:
    """:func:`toy_scorer` whose process is killed (as by the out-of-memory killer) on ``PID-001``."""
    if volume.info.patient_id == "PID-001":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    return toy_scorer(volume, **options)
