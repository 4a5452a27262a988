"""The tables of a batch run: the manifest at the start, the scores and the summary at the end.

``OUT/manifest.csv`` / ``OUT/manifest.json`` (:func:`write_manifest`) record every series
found, which one was chosen in each study and why, and every file that was skipped.
``OUT/scores.csv`` / ``OUT/scores.parquet`` (:func:`scores_table`) hold one row per study,
in catalogue order, built from the stored records, so an interrupted-then-resumed run
gives the same table as an uninterrupted one.  :class:`BatchSummary` counts the run and
lists its failures.  With pseudonyms on, patient IDs are pseudonyms and paths and free
text (:data:`FREE_TEXT_COLUMNS`) are left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imaging.common.files import atomic_write, atomic_write_json, whole_numbers_as_int
from imaging.pipeline.run_log import _relative
from imaging.pipeline.scan_task import _Task
from imaging.pipeline.settings import RunSettings, _jsonable

__all__ = ["manifest_frame", "write_manifest", "scores_table", "BatchSummary", "summarize",
           "ID_COLUMNS", "FREE_TEXT_COLUMNS", "QC_COLUMNS"]

#: Leading columns of the scores table.
ID_COLUMNS: tuple[str, ...] = ("patient_id", "study_date", "study_uid", "series_uid", "error")

#: Columns of the scores table naming a scan's QC files (paths relative to OUT, POSIX), when the
#: run writes QC pictures: its picture and thumbnail under ``OUT/qc`` and its patient's course.
QC_COLUMNS: tuple[str, ...] = ("qc_picture", "qc_thumbnail", "qc_course")

#: Free text typed at the scanner, which can quote a name: dropped from every output
#: when pseudonyms are on (the DICOM SEG never carries it).
FREE_TEXT_COLUMNS: tuple[str, ...] = ("series_description",)


# --------------------------------------------------------------------------- manifest

def write_manifest(out: Path, catalog: Any, run: RunSettings, scrub: Callable[[Any], Any]) -> None:
    """Write ``out/manifest.csv`` (:func:`manifest_frame`) and ``out/manifest.json``, each atomically."""
    frame = manifest_frame(catalog, pseudonym=run.pseudonym if run.pseudonyms else None, with_paths=not run.pseudonyms)
    for column in ("reason", "problems"):
        if column in frame.columns:
            frame[column] = [scrub(v) for v in frame[column]]
    atomic_write(out / "manifest.csv", lambda p: frame.to_csv(p, index=False))
    atomic_write_json(out / "manifest.json", _manifest_json(catalog, run.pseudonym, scrub, run.scorer, run.options,
                                                           run.software_version, with_paths=not run.pseudonyms,
                                                           key_fp=run.key_fingerprint))


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


# --------------------------------------------------------------------------- scores

def scores_table(catalog: Any, tasks: Sequence[_Task], records: Mapping[str, Mapping[str, Any]],
                 pseudonym: Callable[[str | None], str | None], scrub: Callable[[Any], Any], *,
                 courses: Mapping[str | None, str] | None = None) -> "Any":
    """The scores table, in catalogue order, from stored records (deterministic).

    With ``courses`` (patient ID as in the table -> its course picture, from
    :func:`~imaging.pipeline.course_pictures.write_courses`; given when the run writes QC
    pictures) the :data:`QC_COLUMNS` come last but ``output_problems``.
    """
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
        if courses is not None:
            row.update(_qc_cells(records.get(by_study[study.study_uid].key) if study.chosen is not None else None,
                                 courses.get(row["patient_id"])))
        for k in row:
            if k not in columns:
                columns.append(k)
        rows.append(row)
    for last in (*(QC_COLUMNS if courses is not None else ()), "output_problems"):
        if last in columns:
            columns.remove(last)
            columns.append(last)
    return whole_numbers_as_int(pd.DataFrame(rows, columns=columns), rows)


def _qc_cells(record: Mapping[str, Any] | None, course: str | None) -> dict[str, str | None]:
    """The :data:`QC_COLUMNS` of one study: from its record's ``qc`` artefact and its patient's course."""
    qc = ((record or {}).get("artifacts") or {}).get("qc")
    qc = qc if isinstance(qc, Mapping) else {}
    return {"qc_picture": qc.get("named_picture"), "qc_thumbnail": qc.get("thumbnail"), "qc_course": course}


def _text(value: Any) -> str | None:
    """A table cell as text; ``None`` for an empty cell (None, NaN, NA: pandas 3 string
    columns hold missing values as NaN, which is truthy)."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)) or value == "":
        return None
    return str(value)


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


def summarize(catalog: Any, tasks: Sequence[_Task], table: Any, *, n_resumed: int, n_scored: int, seconds: float,
              out: Path | None) -> BatchSummary:
    """The counts of a finished run and one line per failed study (from the scores ``table``)."""
    return BatchSummary(
        n_studies=len(catalog.studies), n_scans=len(tasks), n_resumed=n_resumed, n_scored=n_scored,
        n_failed=int(table["error"].notna().sum()) if len(table) else 0,
        n_skipped_files=len(catalog.skipped_files), seconds=seconds,
        out=None if out is None else str(out),
        failures=[f"{_text(r.series_uid) or _text(r.study_uid)}: {r.error}"
                  for r in table.itertuples() if _text(r.error)])
