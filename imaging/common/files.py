"""Writing batch outputs safely: atomic files, the per-scan result store, a run lock.

Every file is first written under a temporary name in its final folder
(``.tmp-<random>-<name>``) and then moved into place with :func:`os.replace`, which is
atomic on POSIX and Windows: a reader (or a rerun after Ctrl-C or ``kill -9``) sees
either the previous complete file or the new complete one, never half a file.
Temporary files left by a killed run are removed by :func:`remove_stale_temps` at
the start of the next run.

The result store keeps one small JSON record per scored scan under
``OUT/results/<key>.json``; the key hashes the series UID, the scoring settings and
the software version (:func:`result_key`), so a rerun with the same settings skips the
scan and a rerun with other settings or another version scores it again.

Examples
--------
>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     p = atomic_write_text(pathlib.Path(d) / "a.txt", "hello")
...     p.read_text(), sorted(x.name for x in pathlib.Path(d).iterdir())
('hello', ['a.txt'])
>>> result_key("1.2.3", settings_hash="abc", software_version="0.1.0") == result_key(
...     "1.2.3", settings_hash="abc", software_version="0.1.1")
False
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from imaging.common.errors import ChestCTError

__all__ = [
    "TEMP_PREFIX",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "write_table",
    "whole_numbers_as_int",
    "remove_stale_temps",
    "settings_hash",
    "result_key",
    "ResultStore",
    "OutputLockedError",
    "run_lock",
    "is_within",
    "check_output_folder",
]

#: Prefix of temporary files; never used by a final output name.
TEMP_PREFIX = ".tmp-"


def is_within(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether ``path`` lies inside ``folder`` (or is it), after resolving links."""
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return False
    return True


def check_output_folder(path: str | os.PathLike[str], *, what: str = "out") -> Path:
    """Refuse an output folder that cannot be created: it, or a folder above it, is a file.

    Checks only (nothing is created), so a caller can refuse before writing anything.

    Raises
    ------
    InvalidArgumentError
        ``path`` or one of its parents exists and is not a folder; the message names both.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"; _ = f.write_text("x")
    >>> check_output_folder(f.parent / "out").name
    'out'
    >>> check_output_folder(f)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    imaging.common.errors.InvalidArgumentError: out '...notes.txt' exists and is not a folder: give a folder (new or existing)
    """
    from imaging.common.errors import InvalidArgumentError

    folder = Path(path)
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            break
        if os.path.lexists(candidate):  # a file, or a broken link, in the way
            problem = ("exists and is not a folder" if candidate == folder
                       else f"cannot be created ({str(candidate)!r} exists and is not a folder)")
            raise InvalidArgumentError(f"{what} {str(folder)!r} {problem}: give a folder (new or existing)")
    return folder


def _temp_path(path: Path) -> Path:
    # keep the final name as suffix so writers that choose the format by extension work
    return path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(6)}-{path.name}")


def atomic_write(path: str | os.PathLike[str], writer: Callable[[Path], Any]) -> Path:
    """Write a file atomically with any writer function.

    Parameters
    ----------
    path : path-like
        Final file path; its folder is created when missing.
    writer : callable
        ``writer(temp_path)`` writes the whole file to ``temp_path`` (which ends with the
        final file name, e.g. ``.tmp-1a2b3c-mask.nii.gz``, so format detection by
        extension works).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path(final)
    try:
        writer(temp)
        if not temp.exists():
            raise FileNotFoundError(f"writer {writer!r} did not create {temp}")
        with open(temp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(temp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return final


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON (keys in insertion order) atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=1, allow_nan=True, default=str) + "\n")


def write_table(frame: "Any", folder: str | os.PathLike[str], stem: str) -> tuple[Path, Path]:
    """Write a pandas DataFrame as ``<stem>.csv`` and ``<stem>.parquet``, each atomically.

    Returns
    -------
    (csv_path, parquet_path)
    """
    folder = Path(folder)
    csv_path = atomic_write(folder / f"{stem}.csv", lambda p: frame.to_csv(p, index=False))
    parquet_path = atomic_write(folder / f"{stem}.parquet", lambda p: frame.to_parquet(p, index=False))
    return csv_path, parquet_path


def whole_numbers_as_int(frame: "Any", rows: Sequence[Mapping[str, Any]]) -> "Any":
    """Columns whose values are all integers (or missing) as nullable ``Int64``, in place.

    Without this a column such as ``series_number`` turns float as soon as one row
    lacks it (a failed scan, a series without SeriesNumber), and CSV shows ``3000566.0``;
    with ``Int64`` CSV shows ``3000566`` and an empty cell, and Parquet stores a nullable
    int64.  Float columns whose values merely happen to be whole stay float, booleans
    stay boolean and all-missing columns are left alone (decided by the values' types in
    ``rows``, not their values).

    Parameters
    ----------
    frame : pandas.DataFrame
        Built from ``rows``.
    rows : sequence of mapping
        The rows' original values, column name -> value.

    Returns
    -------
    pandas.DataFrame
        ``frame`` itself.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [{"n": 3000566, "p": 1.0}, {"n": None, "p": None}]
    >>> out = whole_numbers_as_int(pd.DataFrame(rows), rows)
    >>> str(out["n"].dtype), str(out["p"].dtype), out.to_csv(index=False).splitlines()
    ('Int64', 'float64', ['n,p', '3000566,1.0', ','])
    """
    for column in frame.columns:
        present = [v for v in (row.get(column) for row in rows)
                   if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if present and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in present):
            frame[column] = frame[column].astype("Int64")
    return frame


def remove_stale_temps(folder: str | os.PathLike[str]) -> int:
    """Delete temporary files (``.tmp-*``) a killed run left under ``folder``.

    Only call this while no other run writes to ``folder`` (see :func:`run_lock`).

    Returns
    -------
    int
        Number of files removed.
    """
    removed = 0
    for temp in Path(folder).rglob(f"{TEMP_PREFIX}*"):
        if temp.is_file():
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
                removed += 1
    return removed


def settings_hash(settings: Mapping[str, Any]) -> str:
    """SHA-256 (16 hex digits) of the settings as canonical JSON (sorted keys).

    >>> settings_hash({"a": 1, "b": [1, 2]}) == settings_hash({"b": [1, 2], "a": 1})
    True
    """
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a mapping, got {type(settings).__name__}")
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def result_key(series_uid: str, *, settings_hash: str, software_version: str) -> str:
    """The resume key of one scan: SHA-256 (32 hex digits) of UID, settings and version."""
    if not series_uid:
        raise ValueError(f"series_uid must be a non-empty string, got {series_uid!r}")
    text = "\n".join([str(series_uid), settings_hash, software_version])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class ResultStore:
    """One JSON record per finished scan, under ``folder``.

    Parameters
    ----------
    folder : path-like
        Usually ``OUT/results``; created on first write.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        """Where the record of ``key`` lives."""
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"key must be a lowercase hex string, got {key!r}")
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The record of ``key``, or ``None`` when absent or unreadable."""
        path = self.path(key)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return record if isinstance(record, dict) and record.get("key") == key else None

    def put(self, key: str, record: Mapping[str, Any]) -> Path:
        """Store ``record`` (must carry ``"key": key``) atomically."""
        if record.get("key") != key:
            raise ValueError(f"record key {record.get('key')!r} differs from {key!r}")
        return atomic_write_json(self.path(key), dict(record))


class OutputLockedError(ChestCTError, RuntimeError):
    """Another live run is writing to the same output folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold ``folder/.lock`` for the duration of a run.

    A lock left by a dead process (``kill -9``) on this machine is taken over.

    Raises
    ------
    OutputLockedError
        Another live process holds the lock.
    """
    lock = Path(folder) / ".lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or "0")
            except (ValueError, FileNotFoundError):
                pid = 0
            if pid and pid != os.getpid() and _pid_alive(pid):
                raise OutputLockedError(f"output folder {folder} is in use by process {pid}; "
                                        f"wait for it or remove {lock} if that process is not chestct") from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        break
    else:
        raise OutputLockedError(f"could not take the lock {lock}")
    try:
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
