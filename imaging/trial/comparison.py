"""The result of :func:`imaging.trial.compare.compare_arms`: tidy tables plus the settings used.

:class:`Comparison` holds the tables (scans, changes, responses, summary, tests,
categories, warnings), the settings and the notes every reader needs, and writes them
as JSON (:meth:`Comparison.to_json`); :func:`imaging.trial.report.write_report` turns it
into figures and a report.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = ["Comparison"]


@dataclass(frozen=True)
class Comparison:
    """Results of :func:`compare_arms`: tidy pandas tables plus the settings used.

    Attributes
    ----------
    scans : DataFrame
        One row per input scan: ``patient_id, study_date, series_uid, day, visit, status``
        (``"used"`` or why it was left out).
    changes : DataFrame
        One row per patient × visit × metric (baseline included): ``patient_id, arm,
        <strata>, visit, visit_order, day, metric, baseline, value, change,
        relative_change_pct``.
    responses : DataFrame
        ``changes`` rows of the response metric at follow-up visits, plus ``category``.
    summary : DataFrame
        Descriptives per stratum × visit × metric × outcome (``value``, ``change``,
        ``relative_change_pct``; baseline: ``value`` only) × arm:
        ``n, median, q1, q3, mean, sd, min, max``.
    tests : DataFrame
        One row per comparison × stratum × visit × metric × test: ``n_treatment,
        n_reference, statistic, estimate, ci_low, ci_high, confidence, p_unadjusted,
        method, note``.  Estimates are treatment minus reference.  ``visit`` is
        ``"all visits"`` for the mixed model; ``metric`` is the response metric and
        ``outcome`` ``"response"`` for χ² and Fisher.
    categories : DataFrame
        Response counts per stratum × visit × arm × category (``count``, ``percent``).
    warnings : DataFrame
        ``kind, patient_id, visit, detail``; kinds are listed in
        :data:`imaging.trial.tables.WARNING_KINDS`.
    settings : dict
        Every option, the thresholds, the arms compared and the software versions.
    notes : tuple of str
        Statements every reader needs (multiplicity, reference arm, ...).
    """

    scans: pd.DataFrame
    changes: pd.DataFrame
    responses: pd.DataFrame
    summary: pd.DataFrame
    tests: pd.DataFrame
    categories: pd.DataFrame
    warnings: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    TABLES: ClassVar[tuple[str, ...]] = ("scans", "changes", "responses", "summary", "tests", "categories", "warnings")

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Every result table by name."""
        return {name: getattr(self, name) for name in self.TABLES}

    def to_dict(self) -> dict[str, Any]:
        """Settings, notes and every table as lists of records (NaN as None)."""
        out: dict[str, Any] = {"notes": list(self.notes), "settings": self.settings}
        for name, table in self.tables.items():
            clean = table.replace([np.inf, -np.inf], np.nan)
            records = json.loads(clean.to_json(orient="records", double_precision=15))
            # to_json keeps 15 decimal places, not digits (p = 1.234567e-14 -> 1.2e-14):
            # float columns are put back exactly (json writes Python floats round-trip)
            for col in clean.columns[[pd.api.types.is_float_dtype(t) for t in clean.dtypes]]:
                for rec, v in zip(records, clean[col].to_numpy(float)):
                    rec[col] = None if math.isnan(v) else float(v)
            out[name] = records
        return out

    def to_json(self, path: str | Path | None = None, *, indent: int | None = 2) -> str:
        """The results as JSON (missing numbers as ``null``); written to ``path`` if given.

        Parameters
        ----------
        path : str or Path, optional
            File to write (atomically).
        indent : int, optional

        Returns
        -------
        str
            The JSON text.
        """
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=str)
        if path is not None:
            from imaging.common.files import atomic_write_text

            atomic_write_text(path, text)
        return text
