"""Scores and arms tables for :mod:`imaging.trial.compare`: checks, visits and the join.

Every problem found is either a typed error (:class:`imaging.common.errors.InvalidTableError`,
when nothing sensible can be computed) or a row appended to the warnings list
(``kind, patient_id, visit, detail``; kinds in :data:`WARNING_KINDS`), never a silent
drop.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imaging.common.errors import InvalidTableError

__all__ = [
    "WARNING_KINDS",
    "read_table",
    "describe_columns",
    "assign_visits",
    "check_visits",
    "check_scores",
    "prepare_scans",
    "prepare_arms",
    "join_arms",
    "change_table",
    "report_missing_visits",
    "choose_reference",
    "reference_rule",
    "parse_study_dates",
    "check_arm_labels",
    "rename_clashing_strata",
    "check_strata_values",
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

_REFERENCE_PATTERN = re.compile(r"placebo|control|standard|usual|\bsoc\b", re.IGNORECASE)
#: An arm named by the reference term alone ("SOC", "Placebo", "standard of care") is taken
#: before arms that only contain one ("MSC + SOC").
_REFERENCE_NAME = re.compile(r"\s*(placebo|controls?|standard( of)? care|standard|usual care|soc)\s*", re.IGNORECASE)
_EPS = 1e-9


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


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$")
_YMD_SLASH = re.compile(r"^\d{4}[/.]\d{1,2}[/.]\d{1,2}$")
_COMPACT_DATE = re.compile(r"^\d{8}(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d+)?)?)?)?$")
_DAY_MONTH = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{2}|\d{4})$")

#: Date formats :func:`parse_study_dates` reads without ``date_format``.
ACCEPTED_DATES = "YYYY-MM-DD (ISO, optionally with a time) or YYYYMMDD (DICOM, as text or integer)"


def _compact(text: str) -> pd.Timestamp:
    """``YYYYMMDD[HH[MM[SS[.ffffff]]]]`` (DICOM DA / DT) to a Timestamp (NaT when invalid)."""
    fmt = {8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    head, _, frac = text.partition(".")
    stamp = pd.to_datetime(head, format=fmt[len(head)], errors="coerce")
    return stamp + pd.to_timedelta(float("0." + frac), unit="s") if frac and not pd.isna(stamp) else stamp


def _one_date(value: Any, date_format: str | None) -> pd.Timestamp | None:
    """One study date as a Timestamp; NaT when unreadable; None when it is a day-first/month-first
    date that cannot be read without ``date_format``."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return pd.NaT
    if isinstance(value, (pd.Timestamp, np.datetime64)) or hasattr(value, "isoformat"):
        stamp = pd.Timestamp(value)
        # time-zone aware: keep the local (scanner) wall time, as study dates are written
        return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp
    if isinstance(value, (bool, np.bool_)):
        return pd.NaT
    if isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating)) and float(value).is_integer()):
        text = str(int(value))  # 20200217 read as a number: a DICOM DA date, never nanoseconds
        return _compact(text) if len(text) == 8 else pd.NaT
    if not isinstance(value, str):
        return pd.NaT
    text = value.strip()
    if date_format is not None:
        stamp = pd.to_datetime(text, format=date_format, errors="coerce")
        if not pd.isna(stamp):
            return stamp
    if _ISO_DATE.match(text) or _YMD_SLASH.match(text):
        return pd.to_datetime(text.replace("/", "-").replace(".", "-") if _YMD_SLASH.match(text) else text,
                              errors="coerce", format="ISO8601")
    if _COMPACT_DATE.match(text) and len(text.partition(".")[0]) in (8, 10, 12, 14):
        return _compact(text)
    if date_format is None and _DAY_MONTH.match(text):
        return None
    return pd.NaT


def parse_study_dates(values: Any, *, date_format: str | None = None) -> pd.Series:
    """Read study dates without guessing: ISO and DICOM dates, or one explicit format.

    Parameters
    ----------
    values : (n,) Series or array_like
        Dates as text (``"2020-02-17"``, ``"2020-02-17T10:30"``, ``"20200217"``), integers
        (``20200217``, as a CSV reader may give them), or date/Timestamp objects
        (time-zone aware ones are read at their local wall time).
    date_format : str, optional
        A :meth:`datetime.strptime` format (e.g. ``"%d/%m/%Y"``) for text dates in any
        other layout; ISO and ``YYYYMMDD`` dates are still read.

    Returns
    -------
    (n,) Series of datetime64
        NaT where a value is missing or is not a date in an accepted format (callers
        report those as ``bad_date``).

    Raises
    ------
    InvalidTableError
        Without ``date_format``, a value looks like ``DD/MM/YYYY`` or ``MM/DD/YYYY``
        (slash, dot or dash): which one is meant cannot be known, so nothing is guessed.

    Examples
    --------
    >>> parse_study_dates(["2020-02-17", "20200224", 20200302, "soon"]).dt.strftime("%Y-%m-%d").tolist()
    ['2020-02-17', '2020-02-24', '2020-03-02', nan]
    >>> parse_study_dates(["09/03/2020"], date_format="%d/%m/%Y").dt.strftime("%Y-%m-%d").tolist()
    ['2020-03-09']
    """
    if date_format is not None and (not isinstance(date_format, str) or "%" not in date_format):
        raise ValueError(f"date_format must be a strptime format such as '%d/%m/%Y', got {date_format!r}")
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    parsed = [_one_date(v, date_format) for v in series.astype("object")]
    ambiguous = [v for v, p in zip(series, parsed) if p is None]
    if ambiguous:
        first = str(ambiguous[0]).strip()
        a, sep, b, year = _DAY_MONTH.match(first).groups()
        y = "%Y" if len(year) == 4 else "%y"
        day_first, month_first = f"%d{sep}%m{sep}{y}", f"%m{sep}%d{sep}{y}"
        if int(a) > 12 >= int(b):
            lean = f" ({first!r} can only be day-first)"
        elif int(b) > 12 >= int(a):
            lean = f" ({first!r} can only be month-first: date_format={month_first!r})"
        else:
            lean = ""
        raise InvalidTableError(
            f"study_date {first!r} ({len(ambiguous)} value(s) like it) is written day/month/year or "
            f"month/day/year, and which one is never guessed. Write them as {ACCEPTED_DATES}, or give the format explicitly: "
            f"date_format={day_first!r} (command line: --date-format '{day_first}') for day-first{lean}."
        )
    out = pd.Series(pd.to_datetime(pd.Series(parsed, dtype=object), errors="coerce"), dtype="datetime64[ns]")
    out.index = series.index
    return out


def assign_visits(
    days: Any,
    visits: Mapping[str, tuple[float, float]],
) -> tuple[np.ndarray, np.ndarray]:
    """Snap days since baseline to nominal visits with windows.

    Parameters
    ----------
    days : (n,) array_like of float
        Days since each patient's baseline scan.
    visits : mapping of str to (target_day, half_width_days)
        E.g. ``{"baseline": (0, 0), "day 7": (7, 2)}``: a day within ``target ± width``
        (inclusive) belongs to that visit; where windows overlap the nearest target wins.

    Returns
    -------
    labels : (n,) ndarray of object
        Visit label, or None outside every window.
    targets : (n,) ndarray of float
        The nominal day of the visit (NaN outside every window).

    Examples
    --------
    >>> labels, _ = assign_visits([0, 6, 9, 20, 30], {"baseline": (0, 0), "day 7": (7, 2), "day 21": (21, 3)})
    >>> labels.tolist()
    ['baseline', 'day 7', 'day 7', 'day 21', None]
    """
    d = np.asarray(days, dtype=float)
    if d.ndim != 1:
        raise ValueError(f"days must be 1-D, got shape {d.shape}")
    names = list(visits)
    targets = np.array([float(visits[k][0]) for k in names])
    widths = np.array([float(visits[k][1]) for k in names])
    labels = np.full(d.shape, None, dtype=object)
    out_targets = np.full(d.shape, np.nan)
    if not names:
        return labels, out_targets
    dist = np.abs(d[:, None] - targets[None, :])
    inside = dist <= widths[None, :] + _EPS
    dist = np.where(inside, dist, np.inf)
    best = np.argmin(dist, axis=1)
    ok = np.isfinite(dist[np.arange(d.size), best])
    labels[ok] = np.array(names, dtype=object)[best[ok]]
    out_targets[ok] = targets[best[ok]]
    return labels, out_targets


def check_visits(visits: Any) -> dict[str, tuple[float, float]]:
    """Validate a nominal-visit mapping ``label -> (target_day, window_days)``."""
    if not isinstance(visits, Mapping) or not visits:
        raise ValueError(f"visits must be a non-empty mapping label -> (target_day, window_days), got {visits!r}")
    out: dict[str, tuple[float, float]] = {}
    for label, spec in visits.items():
        try:
            target, width = (float(v) for v in spec)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"visits[{label!r}] must be (target_day, window_days), got {spec!r}") from exc
        if not (math.isfinite(target) and math.isfinite(width) and width >= 0):
            raise ValueError(f"visits[{label!r}] needs a finite target and a window >= 0, got {spec!r}")
        out[str(label)] = (target, width)
    return out


def _day_label(day: float) -> str:
    return f"day {day:g}"


def prepare_scans(
    scores: pd.DataFrame,
    visits: dict[str, tuple[float, float]] | None,
    baseline_visit: str | None,
    warn: list[dict[str, Any]],
    *,
    date_format: str | None = None,
) -> tuple[pd.DataFrame, str, list[str]]:
    """Give every scan a day and a visit; mark the scans that cannot be used.

    Parameters
    ----------
    scores : DataFrame
        The scores table (see :func:`imaging.trial.compare.compare_arms`).
    visits : dict or None
        Checked nominal visits (:func:`check_visits`).
    baseline_visit : str or None
        Baseline label when visits come from a ``visit`` column.
    warn : list of dict
        Warnings rows are appended here.
    date_format : str, optional
        Format of ``study_date`` text that is neither ISO nor ``YYYYMMDD``
        (:func:`parse_study_dates`).

    Returns
    -------
    scans : DataFrame
        ``scores`` plus ``day``, ``visit``, ``target_day`` and ``status`` (``"used"`` or
        the warning kind that excluded the scan).
    baseline : str
        The baseline visit label.
    visit_order : list of str
        Visit labels in time order, baseline first.
    """
    # positional index: labels repeated by pd.concat would make .loc hit several scans at once
    scans = scores.reset_index(drop=True)
    scans["patient_id"] = _ids(scans["patient_id"])
    scans["status"] = "used"

    def drop(mask: pd.Series, kind: str, detail_fn) -> None:
        for idx in scans.index[mask & (scans["status"] == "used")]:
            row = scans.loc[idx]
            _warn(warn, kind, row["patient_id"], row.get("visit"), detail_fn(row))
            scans.loc[idx, "status"] = kind

    drop(scans["patient_id"].isna(), "missing_patient_id", lambda r: f"{_scan_label(r)} has no patient_id")
    if "error" in scans.columns:
        err = scans["error"].astype("object").where(scans["error"].notna(), "").map(str).str.strip()
        drop(err != "", "failed_scan", lambda r: f"{_scan_label(r)} failed: {str(r['error'])[:200]}")

    if "day" in scans.columns:
        day = pd.to_numeric(scans["day"], errors="coerce")
        drop(day.isna(), "bad_date", lambda r: f"{_scan_label(r)}: day {r['day']!r} is not a number")
        scans["day"] = day
    else:
        try:
            dates = parse_study_dates(scans["study_date"], date_format=date_format)
        except InvalidTableError as exc:
            raise InvalidTableError(f"{_table_label(scores, 'scores')}: {exc}") from exc
        formats = ACCEPTED_DATES if date_format is None else f"{date_format!r} or {ACCEPTED_DATES}"
        drop(dates.isna(), "bad_date",
             lambda r: f"{_scan_label(r)}: study_date {r['study_date']!r} is not a date in {formats}")
        # day 0 is the patient's earliest study date, failed scans included: a failed
        # baseline then shows as a missing baseline, not as the next scan relabelled.
        # Days count calendar dates (study days): a time of day (ISO "T10:30", DICOM DT)
        # must not make 6.9 and 7.1 two visits.
        dates = dates.dt.normalize()
        first = dates.groupby(scans["patient_id"]).transform("min")
        scans["day"] = (dates - first).dt.total_seconds() / 86400.0

    used = scans["status"] == "used"
    if visits is not None:
        full = dict(visits)
        if not any(abs(t) < _EPS for t, _ in full.values()):
            full = {"baseline": (0.0, 0.0), **full}
        baseline = next(k for k, (t, _) in full.items() if abs(t) < _EPS)
        labels, targets = assign_visits(scans["day"].to_numpy(dtype=float), full)
        scans["visit"] = labels
        scans["target_day"] = targets
        drop(used & scans["visit"].isna(), "outside_window",
             lambda r: f"{_scan_label(r)} at day {r['day']:g} is in no visit window {full}")
        order = sorted(full, key=lambda k: full[k][0])
    elif "visit" in scans.columns:
        scans["visit"] = scans["visit"].astype("object").where(scans["visit"].notna(), None).map(
            lambda v: None if v is None else str(v))
        drop(used & scans["visit"].isna(), "outside_window", lambda r: f"{_scan_label(r)} has no visit label")
        used = scans["status"] == "used"
        median_day = scans[used].groupby("visit")["day"].median()
        scans["target_day"] = scans["visit"].map(median_day)
        order = list(median_day.sort_values(kind="stable").index)
        if baseline_visit is None:
            first_visits = scans[used].sort_values("day", kind="stable").groupby("patient_id")["visit"].first()
            if first_visits.empty:
                raise InvalidTableError("scores table has no usable scan (see the warnings)")
            baseline = str(first_visits.mode().iloc[0])
        else:
            baseline = str(baseline_visit)
            if baseline not in order:
                raise ValueError(f"baseline_visit {baseline_visit!r} is not a visit label in scores; labels: {order}")
    else:
        scans["visit"] = scans["day"].map(lambda d: None if pd.isna(d) else _day_label(float(d)))
        scans["target_day"] = scans["day"]
        baseline = _day_label(0.0)
        order = [_day_label(d) for d in sorted(scans.loc[scans["status"] == "used", "day"].unique())]
        if baseline not in order:
            order.insert(0, baseline)
    if baseline in order:
        order.remove(baseline)
    order.insert(0, baseline)

    # duplicates: keep the scan nearest the nominal day, then the earliest row
    used = scans["status"] == "used"
    key = scans.loc[used].assign(
        _dist=(scans.loc[used, "day"] - scans.loc[used, "target_day"]).abs(),
        _row=np.arange(int(used.sum())),
    ).sort_values(["patient_id", "visit", "_dist", "_row"], kind="stable")
    dup = key.duplicated(["patient_id", "visit"], keep="first")
    for (pid, visit), group in key.groupby(["patient_id", "visit"], sort=False):
        if len(group) > 1:
            kept = scans.loc[group.index[0]]
            others = ", ".join(f"{_scan_label(scans.loc[i])} (day {scans.loc[i, 'day']:g})" for i in group.index[1:])
            _warn(warn, "duplicate_in_window", pid, visit,
                  f"{len(group)} scans in visit {visit!r}: kept {_scan_label(kept)} (day {kept['day']:g}), dropped {others}")
    scans.loc[dup[dup].index, "status"] = "duplicate_in_window"
    return scans, baseline, order


def prepare_arms(
    arms: pd.DataFrame, strata: Sequence[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    """Check the arms table: one row per patient, IDs and labels as text.

    Returns
    -------
    arm_table : DataFrame
        ``patient_id, arm, <strata>`` (missing arms as None).
    strata : list of str
        The strata columns (default: every column besides ``patient_id`` and ``arm``).

    Raises
    ------
    InvalidTableError
        A column is missing, a patient has two different rows, or two arm labels differ
        only in case or whitespace (:func:`check_arm_labels`).
    """
    _require_columns(arms, ["patient_id", "arm"], "arms", "It needs one row per patient: patient_id, arm.")
    table = arms.copy()
    table["patient_id"] = _ids(table["patient_id"])
    table = table[table["patient_id"].notna()]
    check_arm_labels(table["arm"], table=_table_label(arms, "arms"))
    table["arm"] = table["arm"].astype("object").where(table["arm"].notna(), None).map(
        lambda v: None if v is None or str(v).strip() == "" else str(v).strip())
    if strata is None:
        strata = [c for c in table.columns if c not in ("patient_id", "arm")]
    else:
        strata = [strata] if isinstance(strata, str) else list(dict.fromkeys(str(s) for s in strata))
        _require_columns(table, strata, "arms", "Name only strata columns of the arms table.")
    table = table[["patient_id", "arm", *strata]].drop_duplicates()
    clash = table[table.duplicated("patient_id", keep=False)]
    if not clash.empty:
        detail = "; ".join(f"{pid}: {sorted(map(str, g['arm'].tolist()))}" for pid, g in clash.groupby("patient_id"))
        raise InvalidTableError(f"{_table_label(arms, 'arms')} gives some patients two arms or strata: {detail}. "
                                "Keep one row per patient.")
    for col in strata:
        table[col] = table[col].astype("object").where(table[col].notna(), None).map(
            lambda v: None if v is None or str(v).strip() == "" else str(v).strip())
    return table.reset_index(drop=True), list(strata)


def check_strata_values(arm_table: pd.DataFrame, strata: Sequence[str],
                        warn: list[dict[str, Any]]) -> list[str]:
    """Warn about patients without a stratum value; drop strata columns without values.

    Parameters
    ----------
    arm_table : DataFrame
        From :func:`prepare_arms` (missing values as None).
    strata : sequence of str
        Its strata columns.
    warn : list of dict
        Warning rows (:data:`WARNING_KINDS`), appended to.

    Returns
    -------
    list of str
        The strata columns holding at least one value.
    """
    kept = []
    for col in strata:
        missing = arm_table.loc[arm_table[col].isna(), "patient_id"]
        if len(missing) == len(arm_table):
            _warn(warn, "empty_stratum", None, None, f"strata column {col!r} of the arms table has no values: not used")
            continue
        kept.append(col)
        for pid in missing:
            _warn(warn, "missing_stratum", pid, None,
                  f"patient {pid} has no {col!r} value: left out of the analyses within {col} levels")
    return kept


def _label_key(label: str) -> str:
    """A label case-folded with its whitespace runs removed: the key two labels must not share."""
    return "".join(str(label).split()).casefold()


def check_arm_labels(labels: Any, *, table: str = "arms table") -> None:
    """Refuse arm labels that differ only in case or whitespace (``placebo`` / ``Placebo ``).

    They are not merged silently: either they are one arm misspelt (then the analysis
    would split it) or they are meant to differ (then the names are too alike to report).
    ``table`` names the table in the message (e.g. ``"arms table 'arms.csv'"``).

    Raises
    ------
    InvalidTableError
        Naming every group of variants and their row counts.

    Examples
    --------
    >>> check_arm_labels(["MSC", "placebo", "MSC"])
    >>> check_arm_labels(["MSC", "placebo", "Placebo "])
    Traceback (most recent call last):
    ...
    imaging.common.errors.InvalidTableError: arms table: arm labels differ only in case or whitespace: 'Placebo ' (1 row) / 'placebo' (1 row). Write each arm exactly one way in the arms table.
    """
    raw = pd.Series(list(labels), dtype=object).dropna().map(str)
    raw = raw[raw.str.strip() != ""]
    groups: dict[str, dict[str, int]] = {}
    for label, count in raw.value_counts(sort=False).items():
        groups.setdefault(_label_key(label), {})[label] = int(count)
    clashes = [variants for variants in groups.values() if len(variants) > 1]
    if clashes:
        detail = "; ".join(" / ".join(f"{v!r} ({n} row{'s' if n != 1 else ''})" for v, n in sorted(variants.items()))
                           for variants in clashes)
        raise InvalidTableError(
            f"{table}: arm labels differ only in case or whitespace: {detail}. "
            "Write each arm exactly one way in the arms table."
        )


#: Result and scores columns an arms-table column may not shadow in the joined tables.
_RESERVED_COLUMNS = frozenset({
    "patient_id", "arm", "study_date", "series_uid", "day", "visit", "target_day", "status", "error",
    "visit_order", "metric", "baseline", "value", "change", "relative_change_pct", "category", "stratum",
})


def rename_clashing_strata(
    arm_table: pd.DataFrame, strata: Sequence[str], reserved: Sequence[str], warn: list[dict[str, Any]]
) -> tuple[pd.DataFrame, list[str]]:
    """Rename arms-table columns named like a metric or a scores/result column (suffix ``_arms``).

    Parameters
    ----------
    arm_table : DataFrame
        From :func:`prepare_arms`.
    strata : sequence of str
        Its strata columns.
    reserved : sequence of str
        Further names in use (the compared metrics).
    warn : list of dict
        An ``arms_column_renamed`` row is appended per renamed column.

    Returns
    -------
    arm_table, strata
        With clashing columns renamed (``notes`` -> ``notes_arms``).
    """
    taken = set(_RESERVED_COLUMNS) | {str(r) for r in reserved}
    renames: dict[str, str] = {}
    for col in strata:
        if col in taken:
            new = f"{col}_arms"
            while new in taken or new in arm_table.columns:
                new += "_arms"
            renames[col] = new
            _warn(warn, "arms_column_renamed", None, None,
                  f"arms column {col!r} has the name of a scores or result column; it is used as {new!r}")
    if not renames:
        return arm_table, list(strata)
    return arm_table.rename(columns=renames), [renames.get(c, c) for c in strata]


def reference_rule(arm_names: list[str], reference_arm: str | None) -> str:
    """How :func:`choose_reference` picks the reference arm, in words (recorded in the outputs)."""
    if reference_arm is not None:
        return "given (reference_arm / --reference-arm)"
    if sum(bool(_REFERENCE_NAME.fullmatch(a)) for a in arm_names) == 1:
        return "default: the only arm named by a reference term alone (placebo/control/standard/usual care/SOC)"
    matches = [a for a in arm_names if _REFERENCE_PATTERN.search(a)]
    if len(matches) == 1:
        return "default: the only arm named placebo/control/standard/usual/SOC"
    why = "no arm" if not matches else f"{len(matches)} arms ({', '.join(matches)})"
    return (f"default: alphabetically first, as {why} named placebo/control/standard/usual/SOC; "
            "pass reference_arm / --reference-arm to choose")


def choose_reference(arm_names: list[str], reference_arm: str | None) -> str:
    """The reference arm: the one given, else the single placebo/control-named arm, else the first by name."""
    if reference_arm is not None:
        if str(reference_arm) not in arm_names:
            raise ValueError(f"reference_arm {reference_arm!r} is not an arm with scans; arms: {arm_names}")
        return str(reference_arm)
    for pattern in (_REFERENCE_NAME.fullmatch, _REFERENCE_PATTERN.search):
        matches = [a for a in arm_names if pattern(a)]
        if len(matches) == 1:
            return matches[0]
    return sorted(arm_names)[0]


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


def join_arms(scans: pd.DataFrame, arm_table: pd.DataFrame, baseline: str,
              warn: list[dict[str, Any]]) -> pd.DataFrame:
    """Join arms to the usable scans, recording every mismatch.

    Marks (in ``scans["status"]``, in place) scans of patients without an arm and of
    patients without a baseline scan; warns about arms-table patients and arms without
    scans.

    Returns
    -------
    DataFrame
        The used scans with the arm and strata columns.
    """
    used = scans[scans["status"] == "used"]
    with_arm = set(arm_table.loc[arm_table["arm"].notna(), "patient_id"])
    scan_ids = set(used["patient_id"])
    arm_keys = _keys_to_ids(with_arm)
    for pid in sorted(scan_ids - with_arm):
        n_scans = int((used["patient_id"] == pid).sum())
        _warn(warn, "no_arm", pid, None, f"patient {pid} has {n_scans} scan(s) but no arm in the arms table"
              + _near_miss(pid, arm_keys, "arms table"))
    scans.loc[(scans["status"] == "used") & ~scans["patient_id"].isin(with_arm), "status"] = "no_arm"
    used = scans[scans["status"] == "used"]
    scan_keys = _keys_to_ids(set(scans.loc[scans["patient_id"].notna(), "patient_id"]))
    for pid in sorted(with_arm - set(used["patient_id"])):
        _warn(warn, "no_scans", pid, None, f"patient {pid} is in the arms table but has no usable scan"
              + _near_miss(pid, scan_keys, "scores table"))
    arms_with_scans = set(arm_table.loc[arm_table["patient_id"].isin(set(used["patient_id"])), "arm"])
    for arm in sorted(set(arm_table["arm"].dropna()) - arms_with_scans):
        _warn(warn, "arm_without_scans", None, None, f"arm {arm!r} has no patient with usable scans")

    has_base = set(used.loc[used["visit"] == baseline, "patient_id"])
    for pid in sorted(set(used["patient_id"]) - has_base):
        _warn(warn, "missing_baseline", pid, baseline, f"patient {pid} has no scan at baseline visit {baseline!r}")
    scans.loc[(scans["status"] == "used") & ~scans["patient_id"].isin(has_base), "status"] = "missing_baseline"
    used = scans[scans["status"] == "used"]
    # the arms table is the source of arm and strata: same-named scores columns are not carried
    shadowed = [c for c in arm_table.columns if c != "patient_id" and c in used.columns]
    return used.drop(columns=shadowed).merge(arm_table, on="patient_id", how="left")


def _id_key(pid: str) -> str:
    """An ID case-folded, whitespace removed and leading zeros of digit runs dropped
    (``"P 007"`` -> ``"p7"``: a spreadsheet that read IDs as numbers lost those zeros)."""
    return re.sub(r"(?<!\d)0+(?=\d)", "", _label_key(pid))


def _keys_to_ids(ids: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pid in sorted(ids):
        out.setdefault(_id_key(pid), []).append(pid)
    return out


def _near_miss(pid: str, keys: dict[str, list[str]], where: str) -> str:
    """A hint when ``pid`` matches IDs of the other table only ignoring case, whitespace or
    leading zeros."""
    near = [p for p in keys.get(_id_key(pid), []) if p != pid]
    if not near:
        return ""
    return (f"; the {where} has {', '.join(map(repr, near))}, equal ignoring case/whitespace/leading zeros "
            "(IDs are matched exactly: fix the spelling in one table; read IDs as text to keep leading zeros)")


def change_table(used: pd.DataFrame, metrics: Sequence[str], strata: Sequence[str], baseline: str,
                 visit_order: Sequence[str], warn: list[dict[str, Any]]) -> pd.DataFrame:
    """Long table: one row per patient × visit × metric with baseline, value and change.

    Returns
    -------
    DataFrame
        ``patient_id, arm, <strata>, visit, visit_order, day, metric, baseline, value,
        change, relative_change_pct`` (the last NaN where the baseline is 0, with a
        ``zero_baseline`` warning).
    """
    long = used.melt(
        id_vars=["patient_id", "arm", *strata, "visit", "day"], value_vars=metrics,
        var_name="metric", value_name="value",
    )
    raw = pd.to_numeric(long["value"], errors="coerce").astype(float)
    long["value"] = raw.where(np.isfinite(raw))  # +-inf (e.g. a 0 mL lung ratio) counts as missing
    for row in long[long["value"].isna()].itertuples():
        what = "missing" if pd.isna(raw[row.Index]) else f"{raw[row.Index]} (not a finite number): treated as missing"
        _warn(warn, "missing_value", row.patient_id, row.visit, f"{row.metric} is {what}")
    long = long[long["value"].notna()]
    base = long[long["visit"] == baseline].set_index(["patient_id", "metric"])["value"].rename("baseline")
    long = long.join(base, on=["patient_id", "metric"])
    lost = long["baseline"].isna() & (long["visit"] != baseline)
    for (pid, metric), _g in long[lost].groupby(["patient_id", "metric"]):
        _warn(warn, "missing_value", pid, baseline, f"{metric} is missing at baseline: its follow-ups are not compared")
    long = long[~lost]
    long["change"] = long["value"] - long["baseline"]
    with np.errstate(divide="ignore", invalid="ignore"):
        long["relative_change_pct"] = np.where(long["baseline"] != 0, 100.0 * long["change"] / long["baseline"], np.nan)
    zero = long[(long["baseline"] == 0) & (long["visit"] != baseline)]
    for (pid, metric), _g in zero.groupby(["patient_id", "metric"]):
        _warn(warn, "zero_baseline", pid, baseline, f"{metric} is 0 at baseline")
    rank = {v: i for i, v in enumerate(visit_order)}
    long["visit_order"] = long["visit"].map(rank).astype(int)
    long = long.sort_values(["metric", "arm", "patient_id", "visit_order"], kind="stable").reset_index(drop=True)
    changes = long[["patient_id", "arm", *strata, "visit", "visit_order", "day", "metric",
                    "baseline", "value", "change", "relative_change_pct"]]
    return changes


def report_missing_visits(changes: pd.DataFrame, patients: pd.DataFrame, follow_visits: Sequence[str],
                          warn: list[dict[str, Any]]) -> None:
    """Warn for each patient with a baseline but no scan at a follow-up visit."""
    for v in follow_visits:
        seen = set(changes.loc[changes["visit"] == v, "patient_id"])
        for pid in sorted(set(patients["patient_id"]) - seen):
            _warn(warn, "missing_visit", pid, v, f"patient {pid} has no scan at visit {v!r}")
