"""What the header scan knows about one series (:class:`SeriesInfo`) and one study.

:class:`SeriesInfo` is the description :func:`~imaging.io.describe.describe_series`
builds from the headers of one series (geometry, counts, kernel, problems found) and
that :func:`~imaging.io.load.load_scan` reads the pixels from; its ``slices`` are
:class:`SliceRef` (a file header and one frame of it), sorted along the slice normal.
:class:`StudySelection` holds one study's series, the one chosen by
:mod:`imaging.io.selection` and why each series was (not) chosen.  These types import
nothing from the modules that build or choose them, so that every reading step can use
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imaging.io.headers import FrameHeader, SliceHeader

__all__ = ["SliceRef", "SeriesInfo", "StudySelection", "syntax_name", "PLACEHOLDER_UID_PREFIX"]

#: Start of the UID a series or study is grouped under when the export blanked its UID
#: (``missing-uid:<kind>:<hash>``).
PLACEHOLDER_UID_PREFIX = "missing-uid"

_SYNTAX_NAMES = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
    "1.2.840.10008.1.2.4.50": "JPEG Baseline",
    "1.2.840.10008.1.2.4.51": "JPEG Extended",
    "1.2.840.10008.1.2.4.57": "JPEG Lossless",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
    "1.2.840.10008.1.2.4.201": "HTJ2K Lossless",
    "1.2.840.10008.1.2.4.203": "HTJ2K",
    "1.2.840.10008.1.2.5": "RLE Lossless",
}


def syntax_name(uid: str) -> str:
    """Readable name of a transfer syntax UID (the UID itself when unknown)."""
    return _SYNTAX_NAMES.get(uid, uid)


@dataclass(frozen=True)
class SliceRef:
    """One slice of a series: the file header and the frame inside the file."""

    header: SliceHeader
    frame: FrameHeader


@dataclass(frozen=True, eq=False)
class SeriesInfo:
    """Description of one DICOM series (from headers only).

    Attributes
    ----------
    series_uid, study_uid, patient_id : str
        UIDs as in the files (``missing-uid:<hash>`` when the export blanked them).
    study_date : str or None
        ISO ``YYYY-MM-DD``.
    series_number : int or None
    series_description, modality, kernel, transfer_syntax, manufacturer : str
    image_type : tuple of str
    orientation : {'axial', 'coronal', 'sagittal', 'oblique', 'unknown'}
    n_slices : int
        Distinct slices (frames of a multi-frame file count one each).
    slice_thickness_mm : float or None
        Nominal SliceThickness, mm.
    slice_spacing_mm : float or None
        Mean distance between consecutive slice positions along the normal, mm.
    rows, columns : int
    files : tuple of Path
        The image files of the series (localizers and duplicate copies left out).
    problems : tuple of str
        Everything unusual found, in plain words (blocking ones included).
    blocking : tuple of str
        The problems that stop the series being read as a volume.
    slices : tuple of SliceRef
        Slices sorted along the normal (used by :func:`imaging.io.load.load_scan`).
    """

    series_uid: str
    study_uid: str
    patient_id: str
    study_date: str | None
    series_number: int | None
    series_description: str
    modality: str
    image_type: tuple[str, ...]
    orientation: str
    n_slices: int
    slice_thickness_mm: float | None
    slice_spacing_mm: float | None
    kernel: str
    transfer_syntax: str
    rows: int
    columns: int
    files: tuple[Path, ...]
    problems: tuple[str, ...] = ()
    blocking: tuple[str, ...] = ()
    manufacturer: str = ""
    tilt_deg: float = 0.0
    slices: tuple[SliceRef, ...] = field(default=(), repr=False)
    duplicate_slices: tuple[tuple[SliceRef, SliceRef], ...] = field(default=(), repr=False)

    @property
    def folder(self) -> Path | None:
        """The deepest folder holding every file of the series."""
        if not self.files:
            return None
        parents = {f.parent for f in self.files}
        if len(parents) == 1:
            return next(iter(parents))
        return Path(*_common_parts([p.parts for p in parents]))

    def as_dict(self) -> dict[str, Any]:
        """Flat description for tables and JSON (files summarised by count and folder)."""
        return {
            "patient_id": self.patient_id,
            "study_uid": self.study_uid,
            "study_date": self.study_date,
            "series_uid": self.series_uid,
            "series_number": self.series_number,
            "series_description": self.series_description,
            "modality": self.modality,
            "image_type": "\\".join(self.image_type),
            "orientation": self.orientation,
            "n_slices": self.n_slices,
            "slice_thickness_mm": self.slice_thickness_mm,
            "slice_spacing_mm": None if self.slice_spacing_mm is None else round(self.slice_spacing_mm, 4),
            "kernel": self.kernel,
            "transfer_syntax": syntax_name(self.transfer_syntax),
            "rows": self.rows,
            "columns": self.columns,
            "n_files": len(self.files),
            "folder": str(self.folder) if self.folder else None,
            "problems": "; ".join(self.problems),
        }


def _common_parts(parts: list[tuple[str, ...]]) -> tuple[str, ...]:
    out: list[str] = []
    for items in zip(*parts):
        if len(set(items)) != 1:
            break
        out.append(items[0])
    return tuple(out) or ("/",)


@dataclass(frozen=True, eq=False)
class StudySelection:
    """One study, its series, the series chosen and why every series was (not) chosen."""

    patient_id: str
    study_uid: str
    study_date: str | None
    series: list[SeriesInfo]
    chosen: SeriesInfo | None
    reasons: dict[str, str]

    def get(self, series_uid: str) -> SeriesInfo:
        """The series with this UID (KeyError naming the study otherwise)."""
        for s in self.series:
            if s.series_uid == series_uid:
                return s
        raise KeyError(f"series {series_uid!r} not in study {self.study_uid!r}")

