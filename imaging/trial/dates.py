"""Study dates read without guessing: ISO and DICOM dates, or one explicit format.

:func:`parse_study_dates` reads ``YYYY-MM-DD`` (optionally with a time), ``YYYYMMDD``
(DICOM DA/DT, as text or integer) and date objects; a ``DD/MM/YYYY``-like date is
refused unless ``date_format`` says which of day-first and month-first is meant.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from imaging.common.errors import InvalidTableError

__all__ = ["ACCEPTED_DATES", "parse_study_dates"]


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
