"""Where the tasks run, and which need not run again: in this process, a process pool or Dask; resume.

:func:`run_tasks` runs the tasks in the calling process (one worker), in a pool of
spawned worker processes (:class:`concurrent.futures.ProcessPoolExecutor`) or on a
``dask.distributed`` cluster, and hands each finished record to a callback as soon as
it arrives.  A worker lost while scoring (killed for memory, a Dask worker gone) makes
an error record marked ``transient``, so the next run tries that scan again.
:func:`resumed_records` finds the stored records a rerun can keep
(:func:`_record_complete`).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from imaging.common.errors import InvalidArgumentError
from imaging.pipeline.scan_task import QC_FILES, _failed_record, _Task, run_task
from imaging.pipeline.store import ResultStore

__all__ = ["run_tasks", "resumed_records"]


# --------------------------------------------------------------------------- resume

def resumed_records(store: ResultStore, tasks: Sequence[_Task], out: Path | None) -> dict[str, dict[str, Any]]:
    """The stored records that already hold everything this run asks of their task, by key."""
    records: dict[str, dict[str, Any]] = {}
    for task in tasks:
        record = store.get(task.key)
        if _record_complete(record, task, out):
            records[task.key] = record  # type: ignore[assignment]
    return records


def _record_complete(record: Mapping[str, Any] | None, task: _Task, out: Path | None) -> bool:
    """Whether a stored record already holds everything this run asks of the task.

    Same settings and software version, and every requested artefact either present
    on disk or recorded as impossible (``output_problems``, e.g. a SEG of multi-frame
    sources); the ``qc`` artefact holds every file of :data:`~imaging.pipeline.scan_task.QC_FILES`
    (a record from before the course panels is scored again).  A failed scan stays failed
    until settings or software change.
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
        if kind == "qc" and not (isinstance(artifacts[kind], Mapping) and set(QC_FILES) <= set(artifacts[kind])):
            return False
        paths = artifacts[kind].values() if isinstance(artifacts[kind], Mapping) else [artifacts[kind]]
        if not all((out / p).is_file() for p in paths):
            return False
    return True


# --------------------------------------------------------------------------- executors

def run_tasks(tasks: Sequence[_Task], scheduler: Any, dask_target: Any, workers: int,
              on_done: Callable[[dict[str, Any]], None]) -> None:
    """Run every task and call ``on_done(record)`` as each one finishes (in any order).

    Parameters
    ----------
    tasks : sequence of _Task
        What to score (not empty).
    scheduler : None, str or distributed.Client
        ``None``: this process or a process pool (:func:`_run_local`); otherwise Dask.
    dask_target : None, str or distributed.Client
        The Dask scheduler to use: ``"local"`` (a new local cluster), or a connected client.
    workers : int
        Parallel scans (at most one per task locally).
    on_done : callable
        Receives each finished task's record.
    """
    if scheduler is None:
        _run_local(tasks, min(workers, len(tasks)), on_done)
    else:
        _run_dask(tasks, dask_target, workers, on_done)


def _init_worker(threads: int) -> None:
    """Worker-process start-up: cap BLAS / OpenMP / torch threads to share the cores."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


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

