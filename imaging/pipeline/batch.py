"""Score every study under a folder: one chosen series per study, in parallel, resumable.

:func:`score_studies` is the engine of ``chestct score ROOT -o OUT``:

1. :func:`imaging.find_series` walks ``ROOT`` (headers only) and chooses one series per
   study by its stated rules (or the user's ``overrides``); ``OUT/manifest.csv`` and
   ``OUT/manifest.json`` record every series, which one was chosen and why, and every
   file that was skipped.
2. Each chosen series is a *task*: read (:func:`imaging.load_scan`), score (by default
   :func:`imaging.score_scan`, which uses the shipped opacity model when its weights are
   installed), then write the masks (NIfTI), a QC picture (PNG) and optionally a DICOM SEG
   into ``OUT/scans/<series UID>/`` (``<series UID>-<8 hex digits of the study UID>`` when
   a broken export reuses one series UID in several studies).  Tasks run in worker processes
   (:class:`concurrent.futures.ProcessPoolExecutor`, spawn start method), on a
   ``dask.distributed`` cluster (``scheduler="tcp://HOST:PORT"`` or ``"local"``), or in
   the calling process when ``workers=1``.
3. Each finished task leaves ``OUT/results/<key>.json``; the key hashes the study and series UIDs,
   the scoring settings and the software version (incl. the model weights), so a rerun
   skips what is done and rescoring happens exactly when settings or software changed.
4. ``OUT/scores.csv`` and ``OUT/scores.parquet`` (one row per study: its scores, or the
   ``error`` that stopped it) are written at the end, from the stored records, so an
   interrupted-then-resumed run gives the same table as an uninterrupted one.

Failures (:data:`SCAN_ERRORS`) become rows with an ``error`` and the batch goes on;
``OUT/chestct.log`` keeps the details.  ``ROOT`` is only read.  Every file in ``OUT``
appears atomically (:mod:`imaging.common.files`), so Ctrl-C or ``kill -9`` leaves every
finished scan valid and a rerun resumes.

Patient data: outputs and the log hold patient IDs (or, with ``pseudonym_key``, keyed
pseudonyms, :mod:`imaging.pipeline.pseudonym`), study dates and DICOM UIDs; never names, birth
dates or other header fields that identify a person.

Remote clusters: workers read ``ROOT`` and write into ``OUT`` themselves, so both must be
visible under the same paths on every worker (a shared file system, as on any cluster).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import logging
import math
import multiprocessing
import os
import re
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imaging.common.environment import software_version
from imaging.common.errors import ChestCTError, InvalidArgumentError
from imaging.common.files import (
    ResultStore,
    atomic_write,
    atomic_write_json,
    check_output_folder,
    is_within,
    remove_stale_temps,
    result_key,
    run_lock,
    settings_hash,
    whole_numbers_as_int,
    write_table,
)

__all__ = ["score_studies", "BatchSummary", "SCAN_ERRORS", "scorer_name", "manifest_frame", "check_score_options"]

log = logging.getLogger(__name__)

#: What a failing scan may raise and still become an ``error`` row while the batch goes
#: on: the toolkit's own errors (not a CT, irregular spacing, not a chest, ...) and the
#: failures of reading, decoding and numerical work on one bad input.  Anything else
#: (KeyboardInterrupt, SystemExit, a bug in the runner itself) stops the run.
SCAN_ERRORS: tuple[type[BaseException], ...] = (
    ChestCTError, OSError, ValueError, ArithmeticError, LookupError, RuntimeError, MemoryError, TypeError,
    AttributeError, EOFError,
)

#: Leading columns of the scores table.
ID_COLUMNS: tuple[str, ...] = ("patient_id", "study_date", "study_uid", "series_uid", "error")
#: Row keys the scorer may return that are replaced by the catalogue's values (identity) or
#: dropped (paths); any ``patient_*`` key other than ``patient_id`` is dropped as well.
_REPLACED_KEYS = frozenset({"patient_id", "study_date", "study_uid", "series_uid", "error", "source"})
#: Artefact kinds a task can write.
ARTIFACT_KINDS = ("masks", "qc", "seg")

#: Why ``score_studies`` refuses to run inside a starting worker process.
MAIN_GUARD_HINT = (
    "score_studies was called while a worker process was starting: worker processes are spawned and re-run "
    "the calling script, so a script that calls score_studies with workers > 1 must do so under "
    '`if __name__ == "__main__":`'
)

#: Default scorer (imported in the worker, so torch is never imported by the parent).
DEFAULT_SCORER = "imaging.scoring.scores:score_scan"


# --------------------------------------------------------------------------- versions

def scorer_name(scorer: Callable[..., Any] | None) -> str:
    """``module:qualname`` of a scorer (the default when ``None``)."""
    if scorer is None:
        return DEFAULT_SCORER
    module = getattr(scorer, "__module__", None)
    qualname = getattr(scorer, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise TypeError(f"scorer must be a top-level function importable by worker processes, got {scorer!r}")
    return f"{module}:{qualname}"


def _resolve_scorer(name: str) -> Callable[..., Any]:
    import importlib

    module_name, _, qualname = name.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


#: Options of the default scorer whose values come from a fixed list (checked up front):
#: name -> (module, attribute) holding the tuple of accepted values ...
_CHOICES_FROM: dict[str, tuple[str, str]] = {
    "lung_method": ("imaging.scoring.lungs", "LUNG_METHODS"),
    "opacity_method": ("imaging.scoring.scores", "_OPACITY_METHODS"),
    "on_not_chest": ("imaging.scoring.scores", "_ON_NOT_CHEST"),
}
#: ... or name -> the accepted values themselves.
_FIXED_CHOICES: dict[str, tuple[str, ...]] = {"zone_thirds": ("height", "volume")}  # imaging.scoring.lungs.lung_zones


def _default_choices(name: str) -> tuple[str, ...] | None:
    """Accepted values of an enumerated option of the default scorer (None: not enumerated)."""
    import importlib

    if name in _CHOICES_FROM:
        module, attribute = _CHOICES_FROM[name]
        return tuple(getattr(importlib.import_module(module), attribute))
    return _FIXED_CHOICES.get(name)


def check_score_options(scorer: Callable[..., Any] | None, options: Mapping[str, Any], *,
                        what: str = "score_options") -> None:
    """Refuse options the scorer cannot take, before a batch starts.

    Every name must be a keyword parameter of the scorer (unless it takes
    ``**kwargs``).  For the default scorer (:func:`imaging.score_scan`) the values of
    the enumerated options (``lung_method``, ``opacity_method``, ``on_not_chest``,
    ``zone_thirds``) must be among the accepted ones, numbers must be numbers and
    flags booleans; otherwise every scan of the batch would fail with the same error.

    Parameters
    ----------
    scorer : callable or None
        The scorer (``None``: the default, :func:`imaging.score_scan`).
    options : mapping
        Keyword options name -> value.
    what : str
        How the options are named in messages (``"--option"`` on the command line).

    Raises
    ------
    InvalidArgumentError
        An unknown option name or a value the scorer refuses; the message names the
        option, its value and what is accepted.

    Examples
    --------
    >>> check_score_options(None, {"lung_method": "classical", "ggo_min_hu": -700})
    >>> check_score_options(None, {"lung_method": "bogus"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    imaging.common.errors.InvalidArgumentError: score_options lung_method='bogus' is not accepted; choose one of auto, ...
    """
    import inspect

    if not isinstance(options, Mapping):
        raise InvalidArgumentError(f"{what} must be a mapping of option name -> value, got {type(options).__name__}")
    name = scorer_name(scorer)
    func = _resolve_scorer(DEFAULT_SCORER) if scorer is None else scorer
    if not callable(func):
        raise InvalidArgumentError(f"scorer must be callable, got {func!r}")
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # no introspectable signature (a builtin): nothing to check
        return
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    volume_param = positional[0].name if positional else None  # the volume: never an option
    accepted = {p.name: p for p in params
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != volume_param}
    for key in options:
        if not isinstance(key, str) or (key not in accepted and (not takes_any or key == volume_param)):
            raise InvalidArgumentError(
                f"{what} {key!r} is not an option of {name} (its options: {', '.join(accepted) or 'none'})")
    if func is not _resolve_scorer(DEFAULT_SCORER):
        return  # other scorers check their own values
    for key, value in options.items():
        choices = _default_choices(key)
        if choices is not None:
            if value not in choices:
                raise InvalidArgumentError(f"{what} {key}={value!r} is not accepted; choose one of {', '.join(choices)}")
            continue
        default = accepted[key].default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise InvalidArgumentError(f"{what} {key}={value!r} must be true or false")
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidArgumentError(f"{what} {key}={value!r} must be a finite number")


# --------------------------------------------------------------------------- tasks

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


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


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
        from imaging.pipeline.qc import render_qc

        po = row.get("percent_opacity")
        title = f"series ...{str(volume.info.series_uid)[-16:]}" + (
            f"   percent opacity {po:.1f} %" if isinstance(po, (int, float)) and math.isfinite(po) else "")
        atomic_write(scan_dir / "qc.png", lambda p: render_qc(
            p, volume.hu, spacing_mm=volume.spacing_mm, lungs=masks.get("lungs"), opacity=masks.get("opacity"),
            title=title, origin_mm=volume.origin_mm, direction=volume.direction))
        artifacts["qc"] = f"{task.rel_dir}/qc.png"
    if "seg" in task.artifacts:
        try:
            artifacts["seg"] = _write_seg(task, volume, masks)
        except SCAN_ERRORS as exc:
            problems.append(f"seg: {type(exc).__name__}: {exc}")
    return artifacts, problems


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


def _init_worker(threads: int) -> None:
    """Worker-process start-up: cap BLAS / OpenMP / torch threads to share the cores."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


def _record_complete(record: Mapping[str, Any] | None, task: _Task, out: Path | None) -> bool:
    """Whether a stored record already holds everything this run asks of the task.

    Same settings and software version, and every requested artefact either present
    on disk or recorded as impossible (``output_problems``, e.g. a SEG of multi-frame
    sources).  A failed scan stays failed until settings or software change.
    """
    if record is None or record.get("settings_hash") != task.settings_hash or record.get("transient"):
        return False
    if record.get("software_version") != task.software_version:
        return False
    if record.get("error") is not None or out is None:
        return True
    artifacts = record.get("artifacts") or {}
    attempted = {str(p).split(":", 1)[0] for p in record.get("output_problems") or []}
    for kind in task.artifacts:
        if kind not in artifacts:
            if kind not in attempted:
                return False
            continue
        paths = artifacts[kind].values() if isinstance(artifacts[kind], Mapping) else [artifacts[kind]]
        if not all((out / p).is_file() for p in paths):
            return False
    return True


# --------------------------------------------------------------------------- executors

def _run_local(tasks: Sequence[_Task], workers: int, on_done: Callable[[dict[str, Any]], None]) -> None:
    """Run tasks in this process (``workers == 1``) or in a pool of spawned processes.

    A worker killed by the operating system (out of memory) breaks the whole pool; the
    tasks that were not finished are then rerun one at a time, each in a fresh process,
    so only the scan that kills its worker becomes an error row.
    """
    if workers <= 1:
        for task in tasks:
            on_done(run_task(task))
        return
    ctx = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)
    suspects: list[_Task] = []
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,))
    try:
        futures = {pool.submit(run_task, t): t for t in tasks}
        for future in cf.as_completed(futures):
            try:
                record = future.result()
            except cf.process.BrokenProcessPool:
                suspects.append(futures[future])
                continue
            on_done(record)
    except BaseException:
        for proc in list((getattr(pool, "_processes", None) or {}).values()):  # stop scans in flight now
            with contextlib.suppress(OSError, AttributeError):
                proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    for task in suspects:
        on_done(_run_isolated(task, ctx, threads))


def _run_isolated(task: _Task, ctx: Any, threads: int) -> dict[str, Any]:
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_init_worker, initargs=(threads,)) as pool:
        try:
            return pool.submit(run_task, task).result()
        except cf.process.BrokenProcessPool:
            return _failed_record(task, "worker process died while scoring (killed by the system: out of memory?"
                                        " or, from a script, score_studies called without the "
                                        "`if __name__ == \"__main__\":` guard)")


def _failed_record(task: _Task, message: str) -> dict[str, Any]:
    """Record of a task whose worker was lost: an error row now, retried by the next run."""
    return {"key": task.key, "series_uid": task.series.series_uid, "settings_hash": task.settings_hash,
            "software_version": task.software_version, "row": None, "error": message, "artifacts": {},
            "output_problems": [], "seconds": None, "traceback": None, "transient": True}


def _connect_scheduler(scheduler: str) -> Any:
    """A ``distributed.Client`` of the running scheduler at ``scheduler``, connected now.

    Called before anything is written, so that an unreachable or malformed address is
    a one-line error (the connection wait is Dask's ``distributed.comm.timeouts.connect``)
    rather than a traceback after the manifest was written.
    """
    from distributed import Client

    try:
        return Client(scheduler)
    except (OSError, ValueError, TypeError) as exc:  # refused / timed out (OSError), bad address (ValueError)
        raise InvalidArgumentError(
            f"scheduler {scheduler!r}: cannot connect to a Dask scheduler ({type(exc).__name__}: {exc}); "
            "start it (dask scheduler) or use --scheduler local; nothing was scored or written"
        ) from exc


@contextlib.contextmanager
def _quiet_distributed() -> Iterator[None]:
    """Keep ``distributed``'s INFO logs (every connection, worker start and stop) as quiet
    as the caller's logging (the CLI's root level: WARNING, INFO with -v); restored after."""
    import distributed  # noqa: F401  (its first import sets the "distributed" logger to INFO)

    dask_log, root_level = logging.getLogger("distributed"), logging.root.getEffectiveLevel()
    saved = dask_log.level
    if dask_log.getEffectiveLevel() < root_level:
        dask_log.setLevel(root_level)
    try:
        yield
    finally:
        dask_log.setLevel(saved)


def _run_dask(tasks: Sequence[_Task], scheduler: Any, workers: int, on_done: Callable[[dict[str, Any]], None]) -> None:
    from distributed import Client, LocalCluster, as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    with contextlib.ExitStack() as stack:
        if isinstance(scheduler, Client):
            client = scheduler
        elif scheduler == "local":
            cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                       dashboard_address=None))
            client = stack.enter_context(Client(cluster))
        else:
            client = stack.enter_context(Client(scheduler))
        futures = {}
        for task in tasks:
            future = client.submit(run_task, task, key=f"chestct-{task.key}", pure=False, retries=0)
            futures[future.key] = (future, task)
        try:
            for future in as_completed([f for f, _ in futures.values()]):
                task = futures[future.key][1]
                try:
                    on_done(future.result())
                except (KilledWorker, FutureCancelledError) as exc:
                    on_done(_failed_record(task, f"dask worker lost while scoring: {type(exc).__name__}: {exc}"))
        except BaseException:
            client.cancel([f for f, _ in futures.values()])
            raise


# --------------------------------------------------------------------------- manifest

#: Free text typed at the scanner, which can quote a name: dropped from every output
#: when pseudonyms are on (the DICOM SEG never carries it).
FREE_TEXT_COLUMNS: tuple[str, ...] = ("series_description",)


def manifest_frame(catalog: Any, *, pseudonym: Callable[[str | None], str | None] | None = None,
                   with_paths: bool = True) -> "Any":
    """The manifest table: one row per series (chosen or not, and why) and per skipped file.

    Parameters
    ----------
    catalog : SeriesCatalog
        From :func:`imaging.find_series`.
    pseudonym : callable, optional
        Applied to every patient ID.
    with_paths : bool
        Keep folder and file paths (relative to the catalogue's root) and the series
        descriptions (:data:`FREE_TEXT_COLUMNS`).  Switched off with pseudonyms, since
        export folders are often named after the patient and descriptions are typed text.

    Returns
    -------
    pandas.DataFrame
        Columns ``entry`` ("series" or "skipped file"), the series description from
        :meth:`SeriesCatalog.to_frame`, ``chosen``, ``reason``, and ``path`` for skipped files.
    """
    import pandas as pd

    root = Path(catalog.root)
    frame = catalog.to_frame().copy()
    frame.insert(0, "entry", "series")
    skipped = pd.DataFrame({
        "entry": "skipped file",
        "path": [_relative(s.path, root) for s in catalog.skipped_files],
        "reason": [str(s.reason) for s in catalog.skipped_files],
    })
    if "folder" in frame.columns:
        frame["folder"] = [None if f is None or (isinstance(f, float) and math.isnan(f)) else _relative(Path(f), root)
                           for f in frame["folder"]]
    for column in frame.columns:  # booleans stay boolean next to the skipped-file rows (whole numbers are Int64)
        if pd.api.types.is_bool_dtype(frame[column]):
            frame[column] = frame[column].astype("boolean")
    out = pd.concat([frame, skipped], ignore_index=True) if len(skipped) else frame
    if pseudonym is not None and "patient_id" in out.columns:
        out["patient_id"] = [pseudonym(p) if isinstance(p, str) else None for p in out["patient_id"]]
    if not with_paths:
        out = out.drop(columns=[c for c in ("folder", "path", *FREE_TEXT_COLUMNS) if c in out.columns])
    drop = [c for c in out.columns if "name" in c.lower() and c != "entry" or "birth" in c.lower()]
    return out.drop(columns=drop)


def _relative(path: Path, root: Path) -> str:
    try:
        # resolve the folder only: the entry itself may be a link (even a loop), named as found
        return (Path(path).parent.resolve() / Path(path).name).relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- summary

@dataclass
class BatchSummary:
    """Counts of one run (also in ``DataFrame.attrs['summary']``)."""

    n_studies: int = 0
    n_scans: int = 0
    n_resumed: int = 0
    n_scored: int = 0
    n_failed: int = 0
    n_skipped_files: int = 0
    seconds: float = 0.0
    out: str | None = None
    failures: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The closing lines printed by ``chestct score``."""
        ok = self.n_studies - self.n_failed
        lines = [f"{ok} of {self.n_studies} studies scored, {self.n_failed} failed "
                 f"({self.n_resumed} resumed from an earlier run, {self.n_skipped_files} non-image files skipped) "
                 f"in {self.seconds:.1f} s"]
        if self.out:
            lines.append(f"scores: {Path(self.out) / 'scores.csv'}  (errors in column 'error'; log: "
                         f"{Path(self.out) / 'chestct.log'})")
        return lines


# --------------------------------------------------------------------------- logging

@contextlib.contextmanager
def _run_logging(out: Path | None) -> Iterator[None]:
    """INFO to ``OUT/chestct.log``; WARNING (INFO with -v) to stderr; restored afterwards."""
    logger = logging.getLogger("imaging")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    handlers: list[logging.Handler] = []
    if out is not None:
        file_handler = logging.FileHandler(out / "chestct.log", mode="a", encoding="utf-8")
        file_handler.setLevel(logging.INFO)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(file_handler)
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setLevel(min(logging.WARNING, max(logging.root.getEffectiveLevel(), logging.DEBUG)))
    stderr_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handlers.append(stderr_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for h in handlers:
        logger.addHandler(h)
    try:
        yield
    finally:
        for h in handlers:
            logger.removeHandler(h)
            h.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _path_scrubber(root: Path, *, hide_paths: bool, folders: Iterable[str] = ()) -> Callable[[Any], Any]:
    """A function writing paths under ``root`` in messages relative to ``root``.

    ``/data/exports/PAT/visit/1.dcm`` becomes ``PAT/visit/1.dcm`` (``root`` itself
    becomes ``.``), the same form as the manifest's ``folder`` and ``path`` columns.
    With ``hide_paths`` (pseudonyms on) only the file name is kept, as
    ``<ROOT>/.../1.dcm``, since export folders are often named after the patient;
    ``folders`` (POSIX, relative to ``root``) are the folders whose relative paths
    messages may quote (e.g. ``PAT/visit/1.dcm``): with ``hide_paths`` they become
    ``.../1.dcm`` too.

    Examples
    --------
    >>> _path_scrubber(Path("/data/x"), hide_paths=False)("cannot read /data/x/P1/a.dcm: truncated")
    'cannot read P1/a.dcm: truncated'
    >>> _path_scrubber(Path("/data/x"), hide_paths=True)("cannot read /data/x/P1/a.dcm: truncated")
    'cannot read <ROOT>/.../a.dcm: truncated'
    >>> _path_scrubber(Path("CT"), hide_paths=False)("CT/P1/a.dcm: CT axial, e.g. CT.")
    'P1/a.dcm: CT axial, e.g. CT.'
    >>> scrub = _path_scrubber(Path("/data/x"), hide_paths=True, folders=["DOE J/ct"])
    >>> scrub("in /data/x/DOE J/ct: '/data/x/DOE J/ct/a.dcm'")
    "in <ROOT>/...: '<ROOT>/.../a.dcm'"
    """
    prefixes = sorted({str(root), str(root.absolute()), str(root.resolve())}, key=len, reverse=True)
    # a path starts at a word boundary; a relative ROOT ("CT", ".") counts only followed by "/",
    # else words and full stops of the messages ("CT axial", "e.g.") would be taken for it
    ends = {p: r"(?![^/\s'\",;:)])" if Path(p).is_absolute() else "(?=/)" for p in prefixes}
    pattern = re.compile(r"(?<![^\s'\"(,:=])(" + "|".join(re.escape(p) + ends[p] for p in prefixes)
                         + r")(/[^\s'\",;:)]*)?")
    rel = sorted({f.strip("/") for f in folders if f.strip("/") not in ("", ".")}, key=len, reverse=True)
    rel_pattern = (re.compile(r"(?<![^\s'\"(,:])(?:" + "|".join(re.escape(f) for f in rel) + ")/")
                   if hide_paths and rel else None)
    # the known folders in full first: a folder name with a space ("DOE JOHN") ends the generic match early
    known_pattern = (re.compile("(?:" + "|".join(re.escape(p) for p in prefixes) + ")/(?:"
                                + "|".join(re.escape(f) for f in rel) + r")(?![^/\s'\",;:)])")
                     if hide_paths and rel else None)

    def replace(match: re.Match[str]) -> str:
        tail = match.group(2) or ""
        if hide_paths:
            return "<ROOT>/.../" + tail.rstrip("/").rsplit("/", 1)[-1] if tail.strip("/") else "<ROOT>"
        return tail.strip("/") or "."

    def scrub(text: Any) -> Any:
        if not isinstance(text, str) or "/" not in text:  # every path matched here holds a "/"
            return text
        if known_pattern is not None:
            text = known_pattern.sub("<ROOT>/...", text)
        text = pattern.sub(replace, text)
        return rel_pattern.sub(".../", text) if rel_pattern is not None else text

    return scrub


def _catalog_folders(catalog: Any) -> set[str]:
    """Every folder holding a file of ``catalog``, POSIX and relative to its root."""
    root = Path(catalog.root)
    paths = [f for s in catalog.series for f in s.files] + [s.path for s in catalog.skipped_files]
    folders: set[str] = set()
    for p in paths:
        rel = _relative(Path(p).parent, root)
        if not rel.startswith("/"):
            folders.add(rel)
    return folders


# --------------------------------------------------------------------------- main entry

def score_studies(
    root: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    scheduler: Any = None,
    overrides: Mapping[str, str] | None = None,
    rules: Any = None,
    pseudonym_key: bytes | str | os.PathLike[str] | None = None,
    scorer: Callable[..., Any] | None = None,
    score_options: Mapping[str, Any] | None = None,
    masks: bool = True,
    qc: bool = True,
    dicom_seg: bool = False,
    resume: bool = True,
    progress: bool = True,
) -> "Any":
    """Score the chosen series of every study under ``root``.

    Parameters
    ----------
    root : path-like
        Folder of DICOM studies (any layout, any depth).  Only read, never written.
    out : path-like, optional
        Output folder (created; must not overlap ``root``).  ``None``: nothing is
        written, nothing is resumed, the table is only returned.
    workers : int, optional
        Parallel scans (default :func:`os.cpu_count`).  ``1`` scores in this process.
        With a Dask ``scheduler="local"``, the number of local workers.
    scheduler : None, "local", "tcp://HOST:PORT" or distributed.Client
        ``None``: worker processes on this machine.  Otherwise the tasks run on a
        ``dask.distributed`` cluster: a new ``LocalCluster``, the scheduler at that
        address, or the given client (ROOT and OUT must be visible to its workers).
    overrides : mapping, optional
        StudyInstanceUID -> SeriesInstanceUID: the series to score in that study,
        whatever the rules say (see :func:`imaging.find_series`).
    rules : SelectionRules, optional
        Series selection rules (see :class:`imaging.io.selection.SelectionRules`).
    pseudonym_key : bytes or path-like, optional
        Key (bytes) or key file: patient IDs in every output become keyed pseudonyms
        (:mod:`imaging.pipeline.pseudonym`); the key file must lie outside ``out``, and file
        paths under ``root`` are left out of the manifest.
    scorer : callable, optional
        ``scorer(volume, **score_options)`` returning an object with ``as_dict()`` (one
        flat row) and, for masks, a ``masks`` mapping name -> (Z, Y, X) labels (or
        ``lung_labels`` / ``opacity_labels`` attributes).  Default
        :func:`imaging.score_scan`.  Must be a top-level function (worker processes
        import it by name).
    score_options : mapping, optional
        Keyword options for the scorer; part of the resume key.
    masks, qc, dicom_seg : bool
        Write NIfTI masks, the QC PNG and a DICOM SEG (default: no SEG) per scan.
    resume : bool
        Skip scans whose stored result matches the settings and software version.
    progress : bool
        Show a progress bar with time remaining on stderr.

    Returns
    -------
    pandas.DataFrame
        One row per study: ``patient_id``, ``study_date``, ``study_uid``,
        ``series_uid``, ``error`` (empty when scored), then the scorer's fields.
        ``frame.attrs["summary"]`` holds a :class:`BatchSummary` as dict.

    Raises
    ------
    NoDicomFoundError
        ``root`` does not exist or holds no DICOM study (nothing is written).
    InvalidArgumentError
        ``out`` overlaps ``root``, a key lies inside ``out``, bad ``workers`` (a
        :class:`ValueError` and a :class:`~imaging.common.errors.ChestCTError`); also when
        called while a worker process starts (a script without the ``__main__`` guard).
    KeyboardInterrupt
        After Ctrl-C; finished scans are stored and a rerun resumes.
    """
    from tqdm import tqdm

    from imaging.io.series import find_series
    from imaging.common.errors import NoDicomFoundError

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise InvalidArgumentError(MAIN_GUARD_HINT)
    started = time.perf_counter()
    root_path = Path(root)
    if not root_path.exists():
        raise NoDicomFoundError(f"root {str(root_path)!r} does not exist")
    out_path = None if out is None else check_output_folder(out)
    if out_path is not None and (is_within(out_path, root_path) or is_within(root_path, out_path)):
        raise InvalidArgumentError(f"out {str(out_path)!r} overlaps root {str(root_path)!r}: choose an output folder outside "
                         "the input tree (the input is never written to)")
    n_workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if n_workers < 1:
        raise InvalidArgumentError(f"workers must be >= 1, got {workers}")
    if scheduler is not None and not (isinstance(scheduler, str) or hasattr(scheduler, "submit")):
        raise TypeError(f"scheduler must be None, 'local', an address or a distributed.Client, got {scheduler!r}")
    if score_options is not None and not isinstance(score_options, Mapping):
        raise InvalidArgumentError(f"score_options must be a mapping, got {type(score_options).__name__}")
    options = dict(score_options or {})
    check_score_options(scorer, options)  # a bad option would fail every scan: refuse it before the run
    key = _load_pseudonym_key(pseudonym_key, out_path)
    if key is not None:
        from imaging.pipeline.pseudonym import pseudonymize

        def pseudonym(pid: str | None) -> str | None:
            return pseudonymize(pid, key)
    else:
        def pseudonym(pid: str | None) -> str | None:
            return pid or None

    s_name = scorer_name(scorer)
    version = software_version()
    key_fp = None if key is None else _fingerprint(key)
    settings: dict[str, Any] = {"scorer": s_name, "options": _jsonable(options)}
    if key_fp is not None:  # pseudonyms change the stored rows (no descriptions, no paths): never resume across
        settings["pseudonym_key"] = key_fp
    s_hash = settings_hash(settings)
    wanted = tuple(k for k, on in zip(ARTIFACT_KINDS, (masks, qc, dicom_seg)) if on)

    if out_path is not None:
        _check_pseudonym_mode(out_path, key_fp)
    catalog = find_series(root_path, rules=rules, overrides=overrides)  # reads only: before anything is written
    if not catalog.studies:
        counts = catalog.skipped_counts()
        detail = ": " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) if counts else ""
        raise NoDicomFoundError(
            f"no DICOM studies found under {str(root_path)!r} ({catalog.n_files} files looked at, "
            f"{len(catalog.skipped_files)} skipped{detail}); nothing was scored or written"
        )
    scrub = _path_scrubber(root_path, hide_paths=key is not None,
                           folders=_catalog_folders(catalog) if key is not None else ())

    with contextlib.ExitStack() as stack:
        dask_target = scheduler
        if scheduler is not None:
            stack.enter_context(_quiet_distributed())
        if isinstance(scheduler, str) and scheduler != "local":
            dask_target = stack.enter_context(_connect_scheduler(scheduler))  # before anything is written
        if out_path is not None:
            out_path.mkdir(parents=True, exist_ok=True)
            stack.enter_context(run_lock(out_path))
            stale = remove_stale_temps(out_path)
        stack.enter_context(_run_logging(out_path))
        log.info("chestct score: root=%s out=%s workers=%d scheduler=%s scorer=%s options=%s %s%s",
                 root_path, out_path, n_workers, scheduler if isinstance(scheduler, (str, type(None))) else "client",
                 s_name, json.dumps(_jsonable(options), sort_keys=True), version,
                 "" if key_fp is None else f" pseudonyms on (key fingerprint {key_fp})")
        if out_path is not None and stale:
            log.info("removed %d temporary files left by an interrupted run", stale)
        log.info("found %d studies, %d series, %d files skipped (%s)", len(catalog.studies), len(catalog.series),
                 len(catalog.skipped_files), catalog.skipped_counts())
        log.info("selection rules: %s%s", json.dumps(_jsonable(getattr(catalog.rules, "__dict__", {})), sort_keys=True),
                 f"; overrides for {len(overrides)} studies" if overrides else "")
        store = ResultStore(out_path / "results") if out_path is not None else None
        if out_path is not None:
            frame = manifest_frame(catalog, pseudonym=pseudonym if key is not None else None, with_paths=key is None)
            for column in ("reason", "problems"):
                if column in frame.columns:
                    frame[column] = [scrub(v) for v in frame[column]]
            atomic_write(out_path / "manifest.csv", lambda p: frame.to_csv(p, index=False))
            atomic_write_json(out_path / "manifest.json", _manifest_json(catalog, pseudonym, scrub, s_name, options,
                                                                         version, with_paths=key is None,
                                                                         key_fp=key_fp))

        tasks: list[_Task] = []
        chosen_in = Counter(st.chosen.series_uid for st in catalog.studies if st.chosen is not None)
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
                               settings_hash=s_hash, software_version=version),
                series=study.chosen,
                scorer=s_name, options=options, scan_dir=None if out_path is None else str(out_path / rel),
                rel_dir=rel, artifacts=wanted if out_path is not None else (),
                seg_patient_id=pseudonym(study.chosen.patient_id) if key is not None else None,
                software_version=version, settings_hash=s_hash))
        records: dict[str, dict[str, Any]] = {}
        if store is not None and resume:
            for task in tasks:
                record = store.get(task.key)
                if _record_complete(record, task, out_path):
                    records[task.key] = record  # type: ignore[assignment]
        n_resumed = len(records)
        todo = [t for t in tasks if t.key not in records]
        log.info("%d scans to score, %d already scored (resumed)", len(todo), n_resumed)

        bar = tqdm(total=len(tasks), initial=n_resumed, desc="scoring", unit="scan", file=sys.stderr,
                   disable=not progress, dynamic_ncols=True, smoothing=0.1)
        n_failed_now = 0

        def on_done(record: dict[str, Any]) -> None:
            nonlocal n_failed_now
            record["error"] = scrub(record.get("error"))
            record["traceback"] = scrub(record.get("traceback"))
            record["output_problems"] = [scrub(p) for p in record.get("output_problems") or []]
            if isinstance(record.get("row"), Mapping):  # e.g. `notes` name set-aside files by their path
                record["row"] = {k: None if key is not None and k in FREE_TEXT_COLUMNS else scrub(v)
                                 for k, v in record["row"].items()}
            if store is not None:
                store.put(record["key"], record)
            records[record["key"]] = record
            if record.get("error"):
                n_failed_now += 1
                log.warning("series %s failed: %s", record["series_uid"], record["error"])
                if record.get("traceback"):
                    log.info("traceback of series %s:\n%s", record["series_uid"], record["traceback"])
            else:
                log.info("series %s scored in %.2f s", record["series_uid"], record.get("seconds") or 0.0)
            for problem in record.get("output_problems") or []:
                log.warning("series %s: output not written: %s", record["series_uid"], problem)
            bar.update(1)
            bar.set_postfix(failed=n_failed_now, refresh=False)

        try:
            if todo:
                if scheduler is None:
                    _run_local(todo, min(n_workers, len(todo)), on_done)
                else:
                    _run_dask(todo, dask_target, n_workers, on_done)
        except KeyboardInterrupt:
            bar.close()
            log.warning("interrupted: %d of %d scans are finished and stored; rerun the same command to resume",
                        len(records), len(tasks))
            raise
        bar.close()

        table = _assemble(catalog, tasks, records, pseudonym, scrub)
        summary = BatchSummary(
            n_studies=len(catalog.studies), n_scans=len(tasks), n_resumed=n_resumed, n_scored=len(todo),
            n_failed=int(table["error"].notna().sum()) if len(table) else 0,
            n_skipped_files=len(catalog.skipped_files), seconds=time.perf_counter() - started,
            out=None if out_path is None else str(out_path),
            failures=[f"{_text(r.series_uid) or _text(r.study_uid)}: {r.error}"
                      for r in table.itertuples() if _text(r.error)])
        if out_path is not None:
            write_table(table, out_path, "scores")
        for line in summary.lines():
            log.info(line)
        table.attrs["summary"] = summary.__dict__.copy()
        return table


def _text(value: Any) -> str | None:
    """A table cell as text; ``None`` for an empty cell (None, NaN, NA: pandas 3 string
    columns hold missing values as NaN, which is truthy)."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)) or value == "":
        return None
    return str(value)


def _check_pseudonym_mode(out: Path, key_fp: str | None) -> None:
    """Refuse an OUT written by a run with other pseudonym settings: its files (masks, SEG,
    stored records) would keep the other run's IDs and paths beside the new ones."""
    manifest = out / "manifest.json"
    try:
        before = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # a new OUT (or no readable manifest: nothing to compare with)
    if not isinstance(before, dict):
        return
    # manifests written before the fingerprint was recorded: pseudonymized ones have no root
    old_fp = before.get("pseudonym_key_fingerprint", None if before.get("root") else "unknown key")
    if old_fp != key_fp:
        was = "without pseudonyms" if old_fp is None else f"with pseudonym key {old_fp}"
        now = "without pseudonyms" if key_fp is None else f"with pseudonym key {key_fp}"
        raise InvalidArgumentError(
            f"output folder {str(out)!r} holds the outputs of a run {was}; this run is {now}. Its files "
            "(masks, DICOM SEG, stored results) would keep the other run's identifiers: write to a new, "
            "empty output folder")


def _fingerprint(key: bytes) -> str:
    from imaging.pipeline.pseudonym import key_fingerprint

    return key_fingerprint(key)


def _load_pseudonym_key(pseudonym_key: Any, out: Path | None) -> bytes | None:
    if pseudonym_key is None:
        return None
    if isinstance(pseudonym_key, (bytes, bytearray)):
        from imaging.pipeline.pseudonym import MIN_KEY_BYTES

        if len(pseudonym_key) < MIN_KEY_BYTES:
            raise InvalidArgumentError(f"pseudonym_key must be at least {MIN_KEY_BYTES} bytes, got {len(pseudonym_key)}")
        return bytes(pseudonym_key)
    from imaging.pipeline.pseudonym import load_key

    return load_key(pseudonym_key, out=out)


def _manifest_json(catalog: Any, pseudonym: Callable[[str | None], str | None], scrub: Callable[[Any], Any], s_name: str,
                   options: Mapping[str, Any], version: str, *, with_paths: bool,
                   key_fp: str | None = None) -> dict[str, Any]:
    root = Path(catalog.root)
    studies = []
    for study in catalog.studies:
        studies.append({
            "patient_id": pseudonym(study.patient_id),
            "study_uid": study.study_uid,
            "study_date": study.study_date,
            "chosen_series_uid": None if study.chosen is None else study.chosen.series_uid,
            "series": [{
                "series_uid": s.series_uid, "series_number": s.series_number,
                "series_description": s.series_description if with_paths else None, "modality": s.modality,
                "orientation": s.orientation, "n_slices": s.n_slices, "slice_thickness_mm": s.slice_thickness_mm,
                "kernel": s.kernel, "chosen": study.chosen is s, "reason": scrub(study.reasons.get(s.series_uid, "")),
                "problems": [scrub(p) for p in s.problems],
                **({"folder": _relative(s.folder, root) if s.folder else None} if with_paths else {}),
            } for s in study.series],
        })
    return {
        "root": str(root) if with_paths else None,
        "pseudonym_key_fingerprint": key_fp,
        "software_version": version,
        "scorer": s_name,
        "score_options": _jsonable(dict(options)),
        "rules": _jsonable(getattr(catalog.rules, "__dict__", {})) if catalog.rules is not None else None,
        "n_files": catalog.n_files,
        "skipped_files": [{"path": _relative(s.path, root) if with_paths else None, "reason": scrub(str(s.reason))}
                          for s in catalog.skipped_files],
        "studies": studies,
    }


def _assemble(catalog: Any, tasks: Sequence[_Task], records: Mapping[str, Mapping[str, Any]],
              pseudonym: Callable[[str | None], str | None], scrub: Callable[[Any], Any]) -> "Any":
    """The scores table, in catalogue order, from stored records (deterministic)."""
    import pandas as pd

    by_study = {t.series.study_uid: t for t in tasks}
    rows: list[dict[str, Any]] = []
    columns: list[str] = list(ID_COLUMNS)
    for study in catalog.studies:
        row: dict[str, Any] = {"patient_id": pseudonym(study.patient_id or None), "study_date": study.study_date,
                               "study_uid": study.study_uid}
        if study.chosen is None:
            why = "; ".join(f"{uid}: {reason}" for uid, reason in study.reasons.items()) or "no image series"
            row.update(series_uid=None, error=scrub(f"no series to score in this study ({why})"))
        else:
            task = by_study[study.chosen.study_uid]
            record = records.get(task.key)
            row["series_uid"] = study.chosen.series_uid
            if record is None:
                row["error"] = "not scored (run interrupted)"
            else:
                row["error"] = record.get("error")
                for k, v in (record.get("row") or {}).items():
                    if k not in row:
                        row[k] = v
                problems = record.get("output_problems") or []
                if problems:
                    row["output_problems"] = "; ".join(problems)
        for k in row:
            if k not in columns:
                columns.append(k)
        rows.append(row)
    if "output_problems" in columns:
        columns.remove("output_problems")
        columns.append("output_problems")
    return whole_numbers_as_int(pd.DataFrame(rows, columns=columns), rows)

