"""One scan's work: the task made for each chosen series, and its run in a worker process.

A :class:`_Task` is one chosen series with everything a worker needs (picklable: it is
sent to spawned processes and Dask workers); :func:`make_tasks` makes one per study and
names its output folder and resume key.  :func:`run_task`, in the worker, reads the
series (:func:`imaging.load_scan`), scores it with the scorer named in the task, writes
the masks (NIfTI), QC picture (PNG), course panels and DICOM SEG into
``OUT/scans/<series UID>/`` and the QC picture named for people with its thumbnail into
``OUT/qc/`` (:mod:`imaging.pipeline.qc_names`), atomically, and returns the record the
parent stores in ``OUT/results``; a failure of one scan (:data:`SCAN_ERRORS`) becomes the
record's ``error`` instead of an exception.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import traceback
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imaging.common.errors import ChestCTError
from imaging.common.files import atomic_write
from imaging.pipeline.qc_names import SCANS_DIR, THUMBS_DIR, scan_label
from imaging.pipeline.settings import RunSettings, _jsonable, _resolve_scorer
from imaging.pipeline.store import result_key

__all__ = ["SCAN_ERRORS", "QC_FILES", "make_tasks", "run_task"]

#: What a failing scan may raise and still become an ``error`` row while the batch goes
#: on: the toolkit's own errors (not a CT, irregular spacing, not a chest, ...) and the
#: failures of reading, decoding and numerical work on one bad input.  Anything else
#: (KeyboardInterrupt, SystemExit, a bug in the runner itself) stops the run.
SCAN_ERRORS: tuple[type[BaseException], ...] = (
    ChestCTError, OSError, ValueError, ArithmeticError, LookupError, RuntimeError, MemoryError, TypeError,
    AttributeError, EOFError,
)

#: Row keys the scorer may return that are replaced by the catalogue's values (identity) or
#: dropped (paths); any ``patient_*`` key other than ``patient_id`` is dropped as well.
_REPLACED_KEYS = frozenset({"patient_id", "study_date", "study_uid", "series_uid", "error", "source"})

#: The files of the ``qc`` artefact, as keys of ``record["artifacts"]["qc"]`` (paths relative
#: to OUT): the QC picture in the scan's folder, the same picture named for people and its
#: thumbnail under ``OUT/qc``, and the panels its patient's course is assembled from.
QC_FILES: tuple[str, ...] = ("picture", "named_picture", "thumbnail", "course_panels")


# --------------------------------------------------------------------------- tasks (made in the parent)

@dataclass(frozen=True)
class _Task:
    """One chosen series to score (picklable; sent to worker processes)."""

    key: str
    series: Any  # imaging.io.series.SeriesInfo
    scorer: str  # module:qualname
    options: Mapping[str, Any]
    scan_dir: str | None  # absolute artefact folder; None = write nothing
    rel_dir: str | None  # the same, relative to OUT (recorded)
    artifacts: tuple[str, ...]
    seg_patient_id: str | None
    software_version: str
    settings_hash: str
    qc_label: str | None = None  # file name of its QC picture under OUT/qc (qc_names.scan_label)

    @property
    def out_dir(self) -> Path | None:
        """The run's output folder (``scan_dir`` without ``rel_dir``); ``None``: nothing written."""
        if self.scan_dir is None or self.rel_dir is None:
            return None
        return Path(self.scan_dir).parents[len(Path(self.rel_dir).parts) - 1]


def make_tasks(catalog: Any, run: RunSettings) -> list[_Task]:
    """One task per study with a chosen series, in catalogue order.

    Artefacts go to ``OUT/scans/<series UID>`` (``-<8 hex digits of the study UID>`` added
    when a broken export reuses one series UID in several studies); the resume key hashes
    the study and series UIDs, the series' files, the settings and the software version.
    """
    tasks: list[_Task] = []
    chosen_in = Counter(st.chosen.series_uid for st in catalog.studies if st.chosen is not None)
    labels = _qc_labels(catalog, run)
    for study in catalog.studies:
        if study.chosen is None:
            continue
        uid = study.chosen.series_uid
        rel = f"scans/{_safe_name(uid)}"
        if chosen_in[uid] > 1:  # the same series UID chosen in several studies: keep their outputs apart
            rel += "-" + hashlib.sha256(study.study_uid.encode()).hexdigest()[:8]
        tasks.append(_Task(
            # the study UID is part of the identity: broken exports reuse series UIDs across studies
            key=result_key(f"{study.study_uid}/{uid}/{_files_digest(study.chosen)}",
                           settings_hash=run.settings_hash, software_version=run.software_version),
            series=study.chosen,
            scorer=run.scorer, options=run.options, scan_dir=None if run.out is None else str(run.out / rel),
            rel_dir=rel, artifacts=run.artifacts if run.out is not None else (),
            seg_patient_id=run.pseudonym(study.chosen.patient_id) if run.pseudonyms else None,
            software_version=run.software_version, settings_hash=run.settings_hash,
            qc_label=labels[study.study_uid]))
    return tasks


def _qc_labels(catalog: Any, run: RunSettings) -> dict[str, str]:
    """Study UID -> the file name of its chosen series' QC picture (:func:`scan_label`, with the
    patient ID as the outputs write it); ``-<8 hex digits of the study UID>`` is added when
    two studies would share one name (one patient, date and series number)."""
    labels = {st.study_uid: scan_label(run.pseudonym(st.chosen.patient_id or None), st.chosen.study_date,
                                       st.chosen.series_number, st.chosen.series_uid)
              for st in catalog.studies if st.chosen is not None}
    shared = Counter(labels.values())
    return {uid: label + ("-" + hashlib.sha256(uid.encode()).hexdigest()[:8] if shared[label] > 1 else "")
            for uid, label in labels.items()}


def _files_digest(series: Any) -> str:
    """16 hex digits naming the series' files by name and size: part of the resume key, so a
    series scored while its export was still being copied (or mended later) is scored
    again once its files change, instead of keeping the stale result."""
    entries = []
    for path in series.files:
        try:
            size = os.stat(path).st_size
        except OSError:
            size = -1  # vanished since the scan: the task itself reports it
        entries.append(f"{Path(path).name}\t{size}")
    return hashlib.sha256("\n".join(sorted(entries)).encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- in the worker

def _flat(value: Any) -> Any:
    """A JSON- and Parquet-friendly scalar for one table cell.

    Numbers, text, booleans and None stay; mappings become sorted JSON; sequences are
    joined with ``;``; anything else becomes its text.

    >>> _flat(np.float32(0.5)), _flat(("thick_slices", "contrast")), _flat({"b": 1, "a": (1, 2)})
    (0.5, 'thick_slices;contrast', '{"a": [1, 2], "b": 1}')
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return json.dumps({str(k): _jsonable(v) for k, v in value.items()}, sort_keys=True)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (set, frozenset)):
        value = sorted(value, key=str)
    if isinstance(value, (list, tuple)):
        return ";".join(str(_flat(v)) for v in value)
    return str(value)


def _clean_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The scorer's row without identity fields, paths and any other ``patient_*`` field."""
    if not isinstance(row, Mapping):
        raise TypeError(f"the scorer's as_dict() must return a mapping, got {type(row).__name__}")
    out = {}
    for key, value in row.items():
        key = str(key)
        if key in _REPLACED_KEYS or key.startswith("patient_") or "birth" in key:
            continue
        out[key] = _flat(value)
    return out


def _masks_of(result: Any, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Label volumes a score result exposes, by name, in the volume's geometry.

    Looked up, in order: a ``masks`` mapping (name -> (Z, Y, X) array); attributes
    ``lung_labels`` / ``lungs`` and ``opacity_labels`` / ``opacity``.  Arrays of another
    shape are ignored.
    """
    found: dict[str, np.ndarray] = {}
    masks = getattr(result, "masks", None)
    if callable(masks):
        masks = masks()
    if isinstance(masks, Mapping):
        found.update({str(k): v for k, v in masks.items() if v is not None})
    for name, attrs in (("lungs", ("lung_labels", "lungs", "lung_mask")),
                        ("opacity", ("opacity_labels", "opacity", "opacity_mask"))):
        if name in found:
            continue
        for attr in attrs:
            value = getattr(result, attr, None)
            if isinstance(value, np.ndarray):
                found[name] = value
                break
    return {k: np.asarray(v) for k, v in found.items() if np.shape(v) == tuple(shape)}


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "mask"


def _write_artifacts(task: _Task, volume: Any, result: Any, row: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Write masks / QC / SEG of one scan atomically; returns (artefacts, problems).

    Every mask the scorer exposes becomes ``<name>.nii.gz``; the QC picture and the SEG
    use ``lungs`` (1 right, 2 left) and ``opacity`` (1 ground-glass, 2 consolidation).
    """
    import SimpleITK as sitk

    scan_dir = Path(task.scan_dir)  # type: ignore[arg-type]
    artifacts: dict[str, Any] = {}
    problems: list[str] = []
    masks = _masks_of(result, volume.shape)
    if "masks" in task.artifacts:
        written = {}
        for name, mask in masks.items():
            data = mask.astype(np.uint8) if mask.dtype == np.bool_ or mask.max(initial=0) <= 255 else mask.astype(np.int16)
            fname = f"{_safe_name(name)}.nii.gz"
            atomic_write(scan_dir / fname, lambda p, d=data: sitk.WriteImage(volume.to_sitk(d), str(p), True))
            written[name] = f"{task.rel_dir}/{fname}"
        if not written:
            problems.append("masks: the scorer exposed no masks in the volume's geometry")
        artifacts["masks"] = written
    if "qc" in task.artifacts:
        artifacts["qc"] = _write_qc(task, volume, masks, row)
    if "seg" in task.artifacts:
        try:
            artifacts["seg"] = _write_seg(task, volume, masks)
        except SCAN_ERRORS as exc:
            problems.append(f"seg: {type(exc).__name__}: {exc}")
    return artifacts, problems


def _write_qc(task: _Task, volume: Any, masks: Mapping[str, np.ndarray], row: Mapping[str, Any]) -> dict[str, str]:
    """Write the QC picture (``qc.png``), its copy and thumbnail named for people under
    ``OUT/qc``, and the course panels (``course_panels.npz``); returns their paths
    relative to OUT by :data:`QC_FILES` key."""
    from imaging.pipeline.course_panels import course_panels, write_course_panels
    from imaging.pipeline.qc import render_qc, write_thumbnail

    out = task.out_dir
    assert out is not None  # only called for tasks that write
    label = task.qc_label or _safe_name(task.series.series_uid)
    paths = {"picture": f"{task.rel_dir}/qc.png", "named_picture": f"{SCANS_DIR}/{label}.png",
             "thumbnail": f"{THUMBS_DIR}/{label}.png", "course_panels": f"{task.rel_dir}/course_panels.npz"}
    po = row.get("percent_opacity")
    title = f"series ...{str(volume.info.series_uid)[-16:]}" + (
        f"   percent opacity {po:.1f} %" if isinstance(po, (int, float)) and math.isfinite(po) else "")
    picture = atomic_write(out / paths["picture"], lambda p: render_qc(
        p, volume.hu, spacing_mm=volume.spacing_mm, lungs=masks.get("lungs"), opacity=masks.get("opacity"),
        title=title, origin_mm=volume.origin_mm, direction=volume.direction))
    atomic_write(out / paths["named_picture"], lambda p: p.write_bytes(picture.read_bytes()))
    atomic_write(out / paths["thumbnail"], lambda p: write_thumbnail(picture, p))
    panels = course_panels(volume.hu, volume.spacing_mm, lungs=masks.get("lungs"), opacity=masks.get("opacity"))
    atomic_write(out / paths["course_panels"], lambda p: write_course_panels(p, panels))
    return paths


#: Names of the opacity labels (imaging.scoring.scores / models.inference: 1 ground-glass, 2 consolidation).
_OPACITY_SEGMENT_LABELS = {1: "Ground-glass opacity", 2: "Consolidation"}


def _write_seg(task: _Task, volume: Any, masks: Mapping[str, np.ndarray]) -> str:
    from imaging.pipeline.dicomseg import SegSegment, write_dicom_seg

    segments = []
    lungs = masks.get("lungs")
    if lungs is not None:
        names = {1: ("Right lung", "right_lung"), 2: ("Left lung", "left_lung")}
        for value in sorted(int(v) for v in np.unique(lungs) if v):
            label, kind = names.get(value, (f"Lung label {value}", "lung"))
            segments.append(SegSegment(label, lungs == value, kind))
    opacity = masks.get("opacity")
    if opacity is not None:
        for value in sorted(int(v) for v in np.unique(opacity) if v):
            segments.append(SegSegment(_OPACITY_SEGMENT_LABELS.get(value, f"Opacity {value}"), opacity == value,
                                       "lesion"))
    if not segments:
        raise ChestCTError("no non-empty mask to put in a DICOM SEG")
    files = list(task.series.files)
    atomic_write(Path(task.scan_dir) / "seg.dcm", lambda p: write_dicom_seg(  # type: ignore[arg-type]
        p, volume, files, segments, software_version=task.software_version, patient_id=task.seg_patient_id))
    return f"{task.rel_dir}/seg.dcm"


def run_task(task: _Task) -> dict[str, Any]:
    """Read, score and write one series; never raises for a scan-level failure.

    Top-level (importable) so worker processes and Dask workers can run it.

    Returns
    -------
    dict
        The record stored in ``OUT/results``: ``key``, ``series_uid``, ``settings_hash``,
        ``software_version``, ``row`` (flat score fields, identity removed) or ``error``,
        ``artifacts`` (relative paths), ``output_problems``, ``seconds``, ``traceback``.
    """
    from imaging.io.load import load_scan

    start = time.perf_counter()
    record: dict[str, Any] = {
        "key": task.key, "series_uid": task.series.series_uid, "settings_hash": task.settings_hash,
        "software_version": task.software_version, "row": None, "error": None, "artifacts": {},
        "output_problems": [], "seconds": None, "traceback": None,
    }
    try:
        scorer = _resolve_scorer(task.scorer)
        volume = load_scan(task.series)
        result = scorer(volume, **dict(task.options))
        row = _clean_row(result.as_dict())
        if task.scan_dir is not None and task.artifacts:
            record["artifacts"], record["output_problems"] = _write_artifacts(task, volume, result, row)
        record["row"] = row
    except SCAN_ERRORS as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=8)
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record


def _failed_record(task: _Task, message: str) -> dict[str, Any]:
    """Record of a task whose worker was lost: an error row now, retried by the next run."""
    return {"key": task.key, "series_uid": task.series.series_uid, "settings_hash": task.settings_hash,
            "software_version": task.software_version, "row": None, "error": message, "artifacts": {},
            "output_problems": [], "seconds": None, "traceback": None, "transient": True}

