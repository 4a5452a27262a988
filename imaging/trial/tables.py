"""Reading the trial's tables, and the checks and warnings every trial module shares.

:func:`read_table` reads a scores, arms or overrides table from CSV/TSV or Parquet,
undoing spreadsheet-export debris; :func:`check_scores` checks the scores table's columns
and picks the metrics to compare.  Every problem found is either a typed error
(:class:`imaging.common.errors.InvalidTableError`, when nothing sensible can be computed)
or a row appended to the warnings list (``kind, patient_id, visit, detail``, by
:func:`_warn`; kinds in :data:`WARNING_KINDS`), never a silent drop.  Dates are read in
:mod:`imaging.trial.dates`, visits in :mod:`imaging.trial.visits`, the arms table in
:mod:`imaging.trial.arms`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from imaging.common.errors import InvalidTableError

__all__ = [
    "WARNING_KINDS",
    "read_table",
    "describe_columns",
    "check_scores",
]


#: Kinds of rows in :attr:`Comparison.warnings` and what they mean.
WARNING_KINDS: dict[str, str] = {
    "failed_scan": "the scan has a non-empty 'error' in the scores table; excluded",
    "missing_patient_id": "a scan without patient_id; excluded",
    "bad_date": "study_date could not be read as a date; scan excluded",
    "missing_value": "a metric is missing for this scan; that metric is missing at that visit",
    "outside_window": "the scan falls in no nominal visit window; excluded",
    "duplicate_in_window": "two or more scans in one visit; the one nearest the nominal day is kept",
    "no_arm": "the patient has scans but no arm; excluded",
    "no_scans": "the patient has an arm but no usable scan",
    "arm_without_scans": "an arm in the arms table has no patient with scans",
    "missing_baseline": "the patient has no baseline scan; excluded from change and tests",
    "missing_visit": "the patient has a baseline but no scan at this visit",
    "zero_baseline": "baseline value is 0; relative change is undefined (NaN) for this patient and metric",
    "response_metric_substituted": "the default response metric is absent; another compared metric is used",
    "arms_column_renamed": "an arms-table column has the name of a scores or result column; renamed with suffix '_arms'",
    "missing_stratum": "the patient has no value in a strata column; left out of that column's within-level analyses",
    "empty_stratum": "a strata column of the arms table has no values; not used",
}


#: Columns named in an error message before "... and N more".
MAX_COLUMNS_SHOWN = 10


#: Text columns of trial tables (IDs must not become numbers).
_TEXT_COLUMNS = {"patient_id": str, "visit": str, "arm": str, "study_date": str}


#: Separators tried, in order, on the header line of a ``.csv`` / ``.txt`` file.
_CSV_SEPARATORS = (",", ";", "\t", "|")


def read_table(path: str | os.PathLike[str], *, name: str, dtype: Any = None) -> pd.DataFrame:
    """Read a CSV/TSV or Parquet table; ``patient_id``, ``visit`` and ``arm`` stay text.

    The path is kept in ``frame.attrs["source"]`` so that errors about the table name
    the file.  Spreadsheet-export debris is removed: spaces around column names, columns
    with no name and no value, rows with no value; a ``;``-separated file's columns
    written with decimal commas (``12,5``) are read as numbers.

    Parameters
    ----------
    path : path-like
        ``.csv`` / ``.txt`` (comma, or the first of ``;``, tab, ``|`` found in the header
        line when it has no comma), ``.tsv`` (tab), ``.parquet`` / ``.pq``.
    name : str
        What the table is ("scores", "arms", "overrides"), for messages.
    dtype : optional
        ``dtype`` for the CSV reader (default: the text columns above as str).

    Raises
    ------
    InvalidTableError
        The file is missing, has an unknown suffix or cannot be parsed.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} table path must be str or path-like, got {type(path).__name__}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InvalidTableError(f"{name} table {path!r} does not exist or is not a file")
    suffix = os.path.splitext(path)[1].lower()
    sep = None
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".tsv", ".txt"):
            sep = "\t" if suffix == ".tsv" else _sniff_separator(path)
            frame = pd.read_csv(path, sep=sep, dtype=_TEXT_COLUMNS if dtype is None else dtype,
                                keep_default_na=True)
        else:
            raise InvalidTableError(f"{name} table {path!r}: unknown suffix {suffix!r}; use .csv, .tsv or .parquet")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, InvalidTableError):
            raise
        hint = (" (save it as UTF-8, e.g. Excel's 'CSV UTF-8')" if isinstance(exc, UnicodeDecodeError) else "")
        raise InvalidTableError(f"{name} table {path!r} could not be read: {exc}{hint}") from exc
    frame = _tidy_spreadsheet_export(frame, f"{name} table {path!r}")
    if sep == ";" and dtype is None:  # a caller asking for dtype=str wants the text as written
        frame = _read_decimal_commas(frame)
    frame.attrs["source"] = path
    return frame


_UNNAMED = re.compile(r"^Unnamed: \d+$")


_DECIMAL_COMMA = re.compile(r"^[+-]?\d+(?:,\d+)?$")


def _tidy_spreadsheet_export(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """Undo what spreadsheet exports add: spaces around column names, columns with
    neither a name nor a value, and rows with no value at all (they hold no data)."""
    names = [str(c).strip() for c in frame.columns]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InvalidTableError(f"{label} has column names that are equal once spaces are removed: {twice}")
    frame = frame.set_axis(names, axis=1)
    empty_cols = [c for c in frame.columns if _UNNAMED.match(c) and frame[c].isna().all()]
    frame = frame.drop(columns=empty_cols)
    return frame[frame.notna().any(axis=1)].reset_index(drop=True)


def _read_decimal_commas(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of a ``;``-separated file written with decimal commas (``12,5``, as
    spreadsheets in those locales write them) as numbers; only columns whose every value
    is such a number, so text and decimal-point columns are left as they are."""
    for col in frame.columns:
        if col in _TEXT_COLUMNS or pd.api.types.is_numeric_dtype(frame[col]):
            continue
        values = frame[col].dropna().astype(str).str.strip()
        values = values[values != ""]
        if len(values) and values.map(lambda v: bool(_DECIMAL_COMMA.match(v))).all() \
                and values.str.contains(",", regex=False).any():
            text = frame[col].astype("object").where(frame[col].notna(), None)
            frame[col] = pd.to_numeric(text.map(lambda v: None if v is None or str(v).strip() == ""
                                                else str(v).strip().replace(",", ".")), errors="coerce")
    return frame


def _sniff_separator(path: str) -> str:
    """The separator of a delimited text file, judged from its header line.

    A comma when the header has one (the CSV default), else the first of ``;``, tab and
    ``|`` that it contains, else a comma (a one-column table).
    """
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        header = fh.readline()
    for sep in _CSV_SEPARATORS:
        if sep in header:
            return sep
    return ","


def describe_columns(columns: Sequence[Any], limit: int = MAX_COLUMNS_SHOWN) -> str:
    """The first ``limit`` column names, then "... and N more".

    Examples
    --------
    >>> describe_columns(["a", "b", "c"], limit=2)
    "['a', 'b', ... and 1 more]"
    """
    names = [str(c) for c in columns]
    if len(names) <= limit:
        return str(names)
    return str(names[:limit])[:-1] + f", ... and {len(names) - limit} more]"


def _table_label(table: pd.DataFrame, name: str) -> str:
    """``name table 'path'`` when the table was read from a file, else ``name table``."""
    source = table.attrs.get("source")
    return f"{name} table {source!r}" if source else f"{name} table"


def _require_columns(table: pd.DataFrame, columns: Sequence[str], name: str, hint: str = "") -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        glued = [str(c) for c in table.columns if any(sep in str(c) for sep in _CSV_SEPARATORS)]
        if glued:
            seps = sorted({repr(sep) for c in glued for sep in _CSV_SEPARATORS if sep in c})
            hint = (f"Column name {glued[0]!r} contains {', '.join(seps)}: is the file separated by "
                    f"{' or '.join(seps)} rather than the separator it was read with? {hint}")
        raise InvalidTableError(
            f"{_table_label(table, name)} lacks column(s) {missing}; it has {describe_columns(table.columns)}. "
            f"{hint}".strip()
        )


def _warn(rows: list[dict[str, Any]], kind: str, patient_id: Any, visit: Any, detail: str) -> None:
    rows.append({"kind": kind, "patient_id": None if patient_id is None else str(patient_id),
                 "visit": None if visit is None else str(visit), "detail": detail})


def _ids(series: pd.Series) -> pd.Series:
    """Patient IDs as stripped strings (NaN stays missing)."""
    out = series.astype("object").where(series.notna(), None)
    return out.map(lambda v: None if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip()))


def _scan_label(row: pd.Series) -> str:
    for key in ("series_uid", "study_date"):
        value = row.get(key)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return f"{key}={value}"
    return f"data row {row.name + 1}"  # 1-based, as a spreadsheet user counts them


def check_scores(scores: pd.DataFrame, metrics: Sequence[str] | str | None,
                 default: Sequence[str]) -> list[str]:
    """Check the scores table's required columns and return the metric columns to compare.

    Raises
    ------
    InvalidTableError
        ``patient_id`` or both of ``study_date`` / ``day`` are missing, a metric is
        missing or not numeric, or no default metric is present.
    """
    _require_columns(scores, ["patient_id"], "scores")
    if "study_date" not in scores.columns and "day" not in scores.columns:
        raise InvalidTableError(
            f"{_table_label(scores, 'scores')} needs 'study_date' (ISO date) or 'day' (days since baseline); "
            f"it has {describe_columns(scores.columns)}"
        )
    if metrics is None:
        metrics = [m for m in default if m in scores.columns]
        if not metrics:
            raise InvalidTableError(
                f"{_table_label(scores, 'scores')} has none of the default metrics {list(default)}; pass "
                f"metrics=[...] naming numeric columns of {describe_columns(scores.columns)}"
            )
    else:
        if isinstance(metrics, str):
            metrics = [metrics]
        metrics = list(dict.fromkeys(str(m) for m in metrics))  # a metric named twice is compared once
        if not metrics:
            raise ValueError("metrics must name at least one column")
        _require_columns(scores, metrics, "scores", "Pass metrics=[...] naming its numeric columns.")
    for m in metrics:
        numeric = pd.to_numeric(scores[m], errors="coerce")
        if not pd.api.types.is_numeric_dtype(scores[m]) and numeric.notna().sum() < scores[m].notna().sum():
            is_bad = (scores[m].notna() & numeric.isna()).to_numpy()
            bad = scores[m][is_bad]
            first = bad.iloc[0]
            row = int(np.flatnonzero(is_bad)[0]) + 1  # 1-based data row, as a spreadsheet user counts
            where = f"data row {row}" + (f", patient_id {scores['patient_id'].iloc[row - 1]!s}"
                                        if "patient_id" in scores.columns else "")
            hint = ""
            if _DECIMAL_COMMA.match(str(first).strip()):
                hint = ("; a decimal comma? write decimal points (12.5), or separate the columns "
                        "with ';' so that decimal commas are read")
            if re.match(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$", str(first).strip()):
                hint += "; thousands separators? write numbers without them"
            raise InvalidTableError(f"{_table_label(scores, 'scores')} column {m!r} is not numeric: {len(bad)} "
                                    f"value(s) such as {first!r} ({where}) are not numbers{hint} "
                                    "(leave missing values empty)")
    return list(metrics)
