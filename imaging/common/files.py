"""Writing outputs safely: atomic files, tables, output folders that can be created.

Every file is first written under a temporary name in its final folder
(``.tmp-<random>-<name>``) and then moved into place with :func:`os.replace`, which is
atomic on POSIX and Windows: a reader (or a rerun after Ctrl-C or ``kill -9``) sees
either the previous complete file or the new complete one, never half a file.
Temporary files left by a killed run are removed by :func:`remove_stale_temps` at
the start of the next run.

The batch run's result store and run lock, built on these, are in
:mod:`imaging.pipeline.store`.

Examples
--------
>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as d:
...     p = atomic_write_text(pathlib.Path(d) / "a.txt", "hello")
...     p.read_text(), sorted(x.name for x in pathlib.Path(d).iterdir())
('hello', ['a.txt'])
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "TEMP_PREFIX",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "write_table",
    "whole_numbers_as_int",
    "remove_stale_temps",
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

    Only call this while no other run writes to ``folder`` (see :func:`imaging.pipeline.store.run_lock`).

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
