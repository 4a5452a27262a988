"""Score every study under a folder: one chosen series per study, in parallel, resumable.

:func:`score_studies` is the engine of ``chestct score ROOT -o OUT``:

1. :func:`imaging.find_series` walks ``ROOT`` (headers only) and chooses one series per
   study by its stated rules (or the user's ``overrides``); ``OUT/manifest.csv`` and
   ``OUT/manifest.json`` record every series, which one was chosen and why, and every
   file that was skipped.
2. Each chosen series is a *task*: read (:func:`imaging.load_scan`), score (by default
   :func:`imaging.score_scan`, which uses the shipped opacity model when its weights are
   installed), then write the masks (NIfTI), a QC picture (PNG), the small panels of the
   patient's course and optionally a DICOM SEG into ``OUT/scans/<series UID>/``
   (``<series UID>-<8 hex digits of the study UID>`` when a broken export reuses one series
   UID in several studies), and the QC picture named for people with its thumbnail into
   ``OUT/qc/scans`` and ``OUT/qc/thumbs`` (:mod:`imaging.pipeline.qc_names`).  Tasks run in worker processes
   (:class:`concurrent.futures.ProcessPoolExecutor`, spawn start method), on a
   ``dask.distributed`` cluster (``scheduler="tcp://HOST:PORT"`` or ``"local"``), or in
   the calling process when ``workers=1``.
3. Each finished task leaves ``OUT/results/<key>.json``; the key hashes the study and series UIDs,
   the scoring settings and the software version (incl. the model weights), so a rerun
   skips what is done and rescoring happens exactly when settings or software changed.
4. ``OUT/scores.csv`` and ``OUT/scores.parquet`` (one row per study: its scores, or the
   ``error`` that stopped it) are written at the end, from the stored records, so an
   interrupted-then-resumed run gives the same table as an uninterrupted one; so is one
   picture per patient, ``OUT/qc/courses/<patient>.png``, every visit side by side
   (:mod:`imaging.pipeline.course_pictures`, from the panels: no volume is read again).

Failures (:data:`~imaging.pipeline.scan_task.SCAN_ERRORS`) become rows with an ``error`` and the batch goes on;
``OUT/chestct.log`` keeps the details.  ``ROOT`` is only read.  Every file in ``OUT``
appears atomically (:mod:`imaging.common.files`), so Ctrl-C or ``kill -9`` leaves every
finished scan valid and a rerun resumes.

Patient data: outputs and the log hold patient IDs (or, with ``pseudonym_key``, keyed
pseudonyms, :mod:`imaging.pipeline.pseudonym`), study dates and DICOM UIDs; never names, birth
dates or other header fields that identify a person.

Remote clusters: workers read ``ROOT`` and write into ``OUT`` themselves, so both must be
visible under the same paths on every worker (a shared file system, as on any cluster).

This module holds the method, step by step; the steps live in
:mod:`~imaging.pipeline.settings` (arguments checked, the run's settings),
:mod:`~imaging.pipeline.scan_task` (one scan's work in a worker),
:mod:`~imaging.pipeline.scheduling` (process pool or Dask, and resume),
:mod:`~imaging.pipeline.store` (stored results, the run lock),
:mod:`~imaging.pipeline.tables` (manifest, scores, summary) and
:mod:`~imaging.pipeline.run_log` (the log, paths in messages).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from imaging.common.files import remove_stale_temps, write_table
from imaging.pipeline.gallery import refresh_gallery
from imaging.pipeline.run_log import _run_logging, message_scrubber
from imaging.pipeline.scan_task import _Task, make_tasks
from imaging.pipeline.scheduling import _connect_scheduler, _quiet_distributed, resumed_records, run_tasks
from imaging.pipeline.settings import RunSettings, _jsonable, run_settings
from imaging.pipeline.store import ResultStore, run_lock
from imaging.pipeline.tables import FREE_TEXT_COLUMNS, scores_table, summarize, write_manifest

__all__ = ["score_studies"]

log = logging.getLogger(__name__)


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
        Write NIfTI masks, the QC PNG and a DICOM SEG (default: no SEG) per scan.  ``qc``
        also writes the named QC picture and thumbnail under ``OUT/qc`` and each patient's
        course picture, and adds the columns ``qc_picture``, ``qc_thumbnail`` and
        ``qc_course`` (paths relative to ``OUT``) to the table.
    resume : bool
        Skip scans whose stored result matches the settings and software version.
    progress : bool
        Show a progress bar with time remaining on stderr.

    Returns
    -------
    pandas.DataFrame
        One row per study: ``patient_id``, ``study_date``, ``study_uid``,
        ``series_uid``, ``error`` (empty when scored), then the scorer's fields.
        ``frame.attrs["summary"]`` holds a :class:`~imaging.pipeline.tables.BatchSummary` as dict.

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
    started = time.perf_counter()
    run = run_settings(root, out=out, workers=workers, scheduler=scheduler, scorer=scorer, score_options=score_options,
                       pseudonym_key=pseudonym_key, masks=masks, qc=qc, dicom_seg=dicom_seg)
    catalog = _find_studies(run.root, rules=rules, overrides=overrides)  # reads only: before anything is written
    scrub = message_scrubber(run.root, catalog, hide_paths=run.pseudonyms)

    with contextlib.ExitStack() as stack:
        dask_target, stale = _open_run(stack, run)
        _log_start(run, catalog, overrides, stale)
        store = ResultStore(run.out / "results") if run.out is not None else None
        if run.out is not None:
            write_manifest(run.out, catalog, run, scrub)
        tasks = make_tasks(catalog, run)
        records = resumed_records(store, tasks, run.out) if store is not None and resume else {}
        n_resumed = len(records)
        todo = [t for t in tasks if t.key not in records]
        log.info("%d scans to score, %d already scored (resumed)", len(todo), n_resumed)
        _score(todo, tasks, records, run, dask_target, store, scrub, progress=progress)
        courses = _write_courses(run, tasks, records)
        table = scores_table(catalog, tasks, records, run.pseudonym, scrub, courses=courses)
        summary = summarize(catalog, tasks, table, n_resumed=n_resumed, n_scored=len(todo),
                            seconds=time.perf_counter() - started, out=run.out)
        if run.out is not None:
            write_table(table, run.out, "scores")
            refresh_gallery(run.out, scores=table)  # OUT/qc/index.html; a failure is only a warning
        for line in summary.lines():
            log.info(line)
        table.attrs["summary"] = summary.__dict__.copy()
        return table


def _find_studies(root: Path, *, rules: Any, overrides: Mapping[str, str] | None) -> Any:
    """The catalogue of the studies under ``root`` and their chosen series (headers only).

    Raises
    ------
    NoDicomFoundError
        No DICOM study under ``root``; nothing was written.
    """
    from imaging.common.errors import NoDicomFoundError
    from imaging.io.series import find_series

    catalog = find_series(root, rules=rules, overrides=overrides)
    if not catalog.studies:
        counts = catalog.skipped_counts()
        detail = ": " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) if counts else ""
        raise NoDicomFoundError(
            f"no DICOM studies found under {str(root)!r} ({catalog.n_files} files looked at, "
            f"{len(catalog.skipped_files)} skipped{detail}); nothing was scored or written"
        )
    return catalog


def _open_run(stack: contextlib.ExitStack, run: RunSettings) -> tuple[Any, int]:
    """Enter what the run holds until it ends: Dask's logs kept quiet, the scheduler connected,
    ``OUT`` created, locked and cleared of temporary files, the log open.

    Returns
    -------
    (dask_target, stale)
        The Dask scheduler to use (``"local"``, a connected client, or ``None``: no Dask)
        and the number of temporary files an interrupted run had left in ``OUT``.
    """
    dask_target = run.scheduler
    if run.scheduler is not None:
        stack.enter_context(_quiet_distributed())
    if isinstance(run.scheduler, str) and run.scheduler != "local":
        dask_target = stack.enter_context(_connect_scheduler(run.scheduler))  # before anything is written
    stale = 0
    if run.out is not None:
        run.out.mkdir(parents=True, exist_ok=True)
        stack.enter_context(run_lock(run.out))
        stale = remove_stale_temps(run.out)
    stack.enter_context(_run_logging(run.out))
    return dask_target, stale


def _log_start(run: RunSettings, catalog: Any, overrides: Mapping[str, str] | None, stale: int) -> None:
    """Log what this run does and what it found."""
    scheduler = run.scheduler if isinstance(run.scheduler, (str, type(None))) else "client"
    log.info("chestct score: root=%s out=%s workers=%d scheduler=%s scorer=%s options=%s %s%s",
             run.root, run.out, run.workers, scheduler, run.scorer, json.dumps(_jsonable(run.options), sort_keys=True),
             run.software_version,
             "" if run.key_fingerprint is None else f" pseudonyms on (key fingerprint {run.key_fingerprint})")
    if run.out is not None and stale:
        log.info("removed %d temporary files left by an interrupted run", stale)
    log.info("found %d studies, %d series, %d files skipped (%s)", len(catalog.studies), len(catalog.series),
             len(catalog.skipped_files), catalog.skipped_counts())
    log.info("selection rules: %s%s", json.dumps(_jsonable(getattr(catalog.rules, "__dict__", {})), sort_keys=True),
             f"; overrides for {len(overrides)} studies" if overrides else "")


def _score(todo: Sequence[_Task], tasks: Sequence[_Task], records: dict[str, dict[str, Any]], run: RunSettings,
           dask_target: Any, store: ResultStore | None, scrub: Callable[[Any], Any], *, progress: bool) -> None:
    """Score the tasks ``todo``, keeping each record as it arrives, with a progress bar.

    ``records`` (the resumed ones) receives every finished record by key; with a
    ``store`` each is stored at once, so Ctrl-C keeps every finished scan.
    """
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), initial=len(records), desc="scoring", unit="scan", file=sys.stderr,
               disable=not progress, dynamic_ncols=True, smoothing=0.1)
    n_failed_now = 0

    def on_done(record: dict[str, Any]) -> None:
        nonlocal n_failed_now
        _scrub_record(record, scrub, hide_free_text=run.pseudonyms)
        if store is not None:
            store.put(record["key"], record)
        records[record["key"]] = record
        if record.get("error"):
            n_failed_now += 1
        _log_finished(record)
        bar.update(1)
        bar.set_postfix(failed=n_failed_now, refresh=False)

    try:
        if todo:
            run_tasks(todo, run.scheduler, dask_target, run.workers, on_done)
    except KeyboardInterrupt:
        bar.close()
        log.warning("interrupted: %d of %d scans are finished and stored; rerun the same command to resume",
                    len(records), len(tasks))
        raise
    bar.close()


def _write_courses(run: RunSettings, tasks: Sequence[_Task],
                   records: Mapping[str, Mapping[str, Any]]) -> dict[str | None, str] | None:
    """Each patient's course picture from every record, resumed ones included (when the run
    writes QC pictures); patient ID -> its path relative to ``OUT``, or ``None``: not written."""
    if run.out is None or "qc" not in run.artifacts:
        return None
    from imaging.pipeline.course_pictures import write_courses

    return write_courses(run.out, tasks, records, run.pseudonym)


def _scrub_record(record: dict[str, Any], scrub: Callable[[Any], Any], *,
                  hide_free_text: bool) -> None:
    """Write the paths in a finished record's messages and row with ``scrub`` (in place).

    ``scrub`` is the run's :func:`~imaging.pipeline.run_log.message_scrubber`; with
    ``hide_free_text`` (pseudonyms on) the row's
    :data:`~imaging.pipeline.tables.FREE_TEXT_COLUMNS` are emptied.
    """
    record["error"] = scrub(record.get("error"))
    record["traceback"] = scrub(record.get("traceback"))
    record["output_problems"] = [scrub(p) for p in record.get("output_problems") or []]
    if isinstance(record.get("row"), Mapping):  # e.g. `notes` name set-aside files by their path
        record["row"] = {k: None if hide_free_text and k in FREE_TEXT_COLUMNS else scrub(v)
                         for k, v in record["row"].items()}


def _log_finished(record: Mapping[str, Any]) -> None:
    """Log a finished scan: its time, or its error (the traceback in the log file only)."""
    if record.get("error"):
        log.warning("series %s failed: %s", record["series_uid"], record["error"])
        if record.get("traceback"):
            log.info("traceback of series %s:\n%s", record["series_uid"], record["traceback"])
    else:
        log.info("series %s scored in %.2f s", record["series_uid"], record.get("seconds") or 0.0)
    for problem in record.get("output_problems") or []:
        log.warning("series %s: output not written: %s", record["series_uid"], problem)
