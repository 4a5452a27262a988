"""Discover the DICOM series under a folder, describe each, and choose one per study.

:func:`find_series` walks a folder tree of any depth, reads headers only (see
:mod:`imaging.io.headers`), groups the image files into studies and series by their
UIDs, describes every series (orientation, slice count, thickness and spacing, kernel,
transfer syntax, problems found; see :mod:`imaging.io.describe`) and chooses per study
the series to score by the rules of :mod:`imaging.io.selection`.  The result is a
:class:`SeriesCatalog`.  Files that are not DICOM images (PNG captures, DICOMDIR,
hidden files, unreadable or cut-short headers) are listed with the reason in
``SeriesCatalog.skipped_files``; a broken series is described with its problems and
never stops the others being listed.

Grouping
--------
Files are grouped by (StudyInstanceUID, SeriesInstanceUID).  When an export has blanked
a UID (anonymisers do), files are grouped by their folder, FrameOfReferenceUID,
SeriesNumber and SeriesDescription instead, under a placeholder UID
``missing-uid:<hash>`` and the problem is recorded.  Inside a series, localizer images
are set aside; images of different orientations or sizes are never merged (the series
is reported as mixed and refused).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from imaging.common.errors import ChestCTError, InvalidArgumentError, NoDicomFoundError, NotCTVolumeError
from imaging.io.describe import describe_series, majority
from imaging.io.headers import SkippedFile, SliceHeader, read_header, walk_files
from imaging.io.selection import SelectionRules, choose_series
from imaging.io.series_info import PLACEHOLDER_UID_PREFIX, SeriesInfo, StudySelection

__all__ = [
    "SeriesCatalog",
    "SkippedFile",
    "find_series",
    "require_one_series",
]


@dataclass(frozen=True, eq=False)
class SeriesCatalog:
    """Result of :func:`find_series`: studies with their chosen series, and skipped files.

    Attributes
    ----------
    root : Path
    studies : list of StudySelection
        Sorted by patient ID, study date and study UID.
    skipped_files : list of SkippedFile
        Non-DICOM, hidden, DICOMDIR, non-image and unreadable files with the reason.
    rules : SelectionRules
    n_files : int
        Files examined (images plus skipped).
    """

    root: Path
    studies: list[StudySelection]
    skipped_files: list[SkippedFile]
    rules: SelectionRules
    n_files: int = 0

    @property
    def series(self) -> list[SeriesInfo]:
        """Every series of every study."""
        return [s for st in self.studies for s in st.series]

    def skipped_counts(self) -> dict[str, int]:
        """Number of skipped files per reason (reason text up to the first colon or parenthesis)."""
        return dict(Counter(_reason_kind(s.reason) for s in self.skipped_files))

    def to_frame(self) -> "Any":
        """One row per series: its description, ``chosen`` (bool) and ``reason``.

        Returns
        -------
        pandas.DataFrame
            Whole-number columns (``series_number``, ``n_slices``, ...) are nullable
            ``Int64``, so a series without SeriesNumber leaves an empty cell, not ``3.0``.
        """
        import pandas as pd

        rows = []
        for st in self.studies:
            for s in st.series:
                row = s.as_dict()
                row["chosen"] = st.chosen is s
                row["reason"] = st.reasons.get(s.series_uid, "")
                rows.append(row)
        if not rows:
            return pd.DataFrame(columns=[*_EMPTY_COLUMNS, "chosen", "reason"])
        from imaging.common.files import whole_numbers_as_int

        return whole_numbers_as_int(pd.DataFrame(rows), rows)  # a missing SeriesNumber must not make 3 -> 3.0


_EMPTY_COLUMNS = [
    "patient_id", "study_uid", "study_date", "series_uid", "series_number", "series_description",
    "modality", "image_type", "orientation", "n_slices", "slice_thickness_mm", "slice_spacing_mm",
    "kernel", "transfer_syntax", "rows", "columns", "n_files", "folder", "problems",
]


def _reason_kind(reason: str) -> str:
    for sep in (":", " ("):
        if sep in reason:
            reason = reason.split(sep, 1)[0]
    return reason


def _placeholder_uid(kind: str, *parts: Any) -> str:
    """``missing-uid:<kind>:<hash of parts>``: the key of files whose export blanked the UID."""
    digest = hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()[:16]
    return f"{PLACEHOLDER_UID_PREFIX}:{kind}:{digest}"


def _describe_safely(headers: list[SliceHeader], *, series_uid: str, study_uid: str,
                     root: Path | None = None) -> SeriesInfo:
    """:func:`describe_series`, or a series marked unreadable when its headers defeat it."""
    try:
        return describe_series(headers, series_uid=series_uid, study_uid=study_uid, root=root)
    except (ChestCTError, ValueError, TypeError, IndexError) as exc:
        h = headers[0]
        problem = f"headers could not be described ({type(exc).__name__}: {exc})"
        return SeriesInfo(
            series_uid=series_uid, study_uid=study_uid, patient_id=h.patient_id, study_date=h.study_date or None,
            series_number=h.series_number, series_description=h.series_description, modality=h.modality,
            image_type=h.image_type, orientation="unknown", n_slices=len(headers), slice_thickness_mm=h.slice_thickness,
            slice_spacing_mm=None, kernel=h.kernel, transfer_syntax=h.transfer_syntax, rows=h.rows, columns=h.columns,
            files=tuple(sorted(x.path for x in headers)), problems=(problem,), blocking=(problem,),
            manufacturer=h.manufacturer,
        )


def _scan(root: Path) -> tuple[list[SliceHeader], list[SkippedFile], int]:
    """Read the header of every file under ``root`` (or of ``root`` itself, a file).

    Returns the image headers, the skipped files (with reasons) and the number of files
    examined.
    """
    skipped: list[SkippedFile] = []
    headers: list[SliceHeader] = []
    n = 0
    read_skips: set[int] = set()  # skipped by read_header: already counted in n
    files = [(root, root.stat().st_size)] if root.is_file() else walk_files(root, skipped)
    for path, size in files:
        n += 1
        result = read_header(path, size)
        if isinstance(result, SkippedFile):
            skipped.append(result)
            read_skips.add(id(result))
        else:
            headers.append(result)
    walk_skips = sum(1 for s in skipped if id(s) not in read_skips and s.reason.startswith(("hidden", "DICOMDIR", "symbolic link loop", "broken symbolic link", "entry cannot")))
    return headers, skipped, n + walk_skips


def _group(headers: list[SliceHeader]) -> dict[str, dict[str, list[SliceHeader]]]:
    """Study UID -> series UID -> headers (placeholder UIDs where the export blanked them)."""
    studies: dict[str, dict[str, list[SliceHeader]]] = {}
    for h in headers:
        study = h.study_uid or _placeholder_uid("study", h.path.parent, h.patient_id, h.study_date)
        series = h.series_uid or _placeholder_uid(
            "series", h.path.parent, h.frame_of_reference, h.series_number, h.series_description
        )
        if h.multiframe and h.series_uid:
            # several multi-frame files in one series are separate stacks
            series = h.series_uid if not any(
                o.path != h.path for o in studies.get(study, {}).get(h.series_uid, [])
            ) else f"{h.series_uid}#{h.sop_uid or h.path.name}"
        studies.setdefault(study, {}).setdefault(series, []).append(h)
    return studies


def _check_override_studies(overrides: Mapping[str, str], study_uids: list[str], root: Path) -> None:
    """Refuse overrides whose study is not under ``root`` (a typo would otherwise be ignored).

    Raises
    ------
    InvalidArgumentError
        Naming the unknown study UID(s) and the studies that were found.
    """
    unknown = [uid for uid in overrides if uid not in set(study_uids)]
    if not unknown:
        return
    shown = ", ".join(study_uids[:5]) + (f", ... ({len(study_uids)} in all)" if len(study_uids) > 5 else "")
    raise InvalidArgumentError(
        f"override names study UID {', '.join(unknown)}, which is not found under {str(root)!r} "
        f"(studies found: {shown or 'none'})"
    )


def find_series(
    root: str | Path,
    *,
    rules: SelectionRules | None = None,
    overrides: Mapping[str, str] | None = None,
) -> SeriesCatalog:
    """Find, describe and choose the DICOM series under ``root`` (headers only).

    Parameters
    ----------
    root : str or Path
        A folder (walked to any depth) or a single DICOM file.
    rules : SelectionRules, optional
        How to choose the series per study (defaults: see :class:`SelectionRules`).
    overrides : mapping, optional
        StudyInstanceUID -> SeriesInstanceUID chosen by the user; wins over the rules.
        Every study must be found under ``root``.

    Returns
    -------
    SeriesCatalog
        Empty (no studies) when no DICOM image is found; skipped files still listed.

    Raises
    ------
    NoDicomFoundError
        When ``root`` does not exist.
    InvalidArgumentError
        When an override names a study not found under ``root``, or a series that is
        not in its study (a :class:`ValueError`).

    Examples
    --------
    >>> import tempfile
    >>> find_series(tempfile.mkdtemp()).studies
    []
    """
    root = Path(root)
    if not root.exists():
        raise NoDicomFoundError(f"root {str(root)!r} does not exist")
    rules = rules or SelectionRules()
    if not isinstance(rules, SelectionRules):
        raise TypeError(f"rules must be a SelectionRules, got {type(rules).__name__}")
    overrides = dict(overrides or {})
    headers, skipped, n_files = _scan(root)
    names_root = root if root.is_dir() else None
    studies = [_select_in_study(study_uid, groups, rules, override=overrides.get(study_uid), root=names_root)
               for study_uid, groups in _group(headers).items()]
    studies.sort(key=lambda st: (st.patient_id, st.study_date or "", st.study_uid))
    _check_override_studies(overrides, [st.study_uid for st in studies], root)
    return SeriesCatalog(root=root, studies=studies, skipped_files=skipped, rules=rules, n_files=n_files)


def _select_in_study(study_uid: str, groups: dict[str, list[SliceHeader]], rules: SelectionRules, *,
                     override: str | None, root: Path | None) -> StudySelection:
    """Describe every series of one study (sorted by SeriesNumber) and choose the one to score."""
    series = [_describe_safely(hs, series_uid=uid, study_uid=study_uid, root=root) for uid, hs in groups.items()]
    series.sort(key=lambda s: (s.series_number if s.series_number is not None else 1 << 62, s.series_uid))
    chosen, reasons = choose_series(series, rules, override=override)
    return StudySelection(
        patient_id=majority([s.patient_id for s in series]) or "",
        study_uid=study_uid,
        study_date=majority([s.study_date for s in series]) or series[0].study_date,
        series=series,
        chosen=chosen,
        reasons=reasons,
    )


def require_one_series(catalog: SeriesCatalog, *, series_uid: str | None = None) -> SeriesInfo:
    """The series :func:`imaging.io.load.load_scan` should read from a catalog.

    ``series_uid`` when given; else the only series; else the chosen series of the
    only study.

    Raises
    ------
    NoDicomFoundError
        No DICOM image series under the root.
    NotCTVolumeError
        Several studies, or a study where no series passes the rules (reasons listed).
    KeyError
        ``series_uid`` not found.
    """
    all_series = catalog.series
    if not all_series:
        counts = catalog.skipped_counts()
        detail = f" ({', '.join(f'{n} {k}' for k, n in counts.items())})" if counts else ""
        raise NoDicomFoundError(f"no DICOM image series found under {str(catalog.root)!r}{detail}")
    if series_uid is not None:
        for s in all_series:
            if s.series_uid == series_uid:
                return s
        raise KeyError(
            f"series_uid {series_uid!r} not found under {str(catalog.root)!r}; series there: "
            f"{[s.series_uid for s in all_series]}"
        )
    if len(all_series) == 1:
        return all_series[0]
    if len(catalog.studies) > 1:
        raise NotCTVolumeError(
            f"{str(catalog.root)!r} holds {len(catalog.studies)} studies; pass one study folder, "
            "a series folder or series_uid (see `chestct inspect`)"
        )
    study = catalog.studies[0]
    if study.chosen is None:
        why = "; ".join(f"{uid}: {r}" for uid, r in study.reasons.items())
        raise NotCTVolumeError(
            f"no series of study {study.study_uid} under {str(catalog.root)!r} passes the selection rules "
            f"({why}); pass series_uid to read one anyway"
        )
    return study.chosen
