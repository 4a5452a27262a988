"""Discover the DICOM series under a folder, describe each, and choose one per study.

:func:`find_series` walks a folder tree of any depth, reads headers only (see
:mod:`imaging.io.headers`), groups the image files into studies and series by their
UIDs, describes every series (orientation, slice count, thickness and spacing, kernel,
transfer syntax, problems found) and chooses per study the series to score by the rules
of :mod:`imaging.io.selection`.  Files that are not DICOM images (PNG captures, DICOMDIR,
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from imaging.io.headers import (
    INVALID_RESCALE, MISSING_INTERCEPT, MIXED_FRAME_ORIENTATIONS, FrameHeader, SkippedFile, SliceHeader, read_header,
    walk_files,
)
from imaging.common.errors import ChestCTError, InvalidArgumentError, NoDicomFoundError, NotCTVolumeError
from imaging.io.selection import SelectionRules, choose_series
from imaging.io.slices import GANTRY_TILT_TOLERANCE_DEG, orientation_label, stack_geometry

__all__ = [
    "SelectionRules",
    "SeriesInfo",
    "StudySelection",
    "SeriesCatalog",
    "SkippedFile",
    "find_series",
    "describe_series",
    "require_one_series",
    "syntax_name",
]

_LOCALIZER_TYPES = frozenset({"LOCALIZER", "SCOUT", "TOPOGRAM"})
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


def _majority(values: list[Any]) -> Any:
    present = [v for v in values if v not in (None, "", ())]
    return Counter(present).most_common(1)[0][0] if present else None


def _names(headers: list[SliceHeader], limit: int = 3, *, root: Path | None = None) -> str:
    """The first ``limit`` file names, relative to ``root`` when they lie under it."""
    names = [_rel_name(h.path, root) for h in headers[:limit]]
    return ", ".join(names) + (f" and {len(headers) - limit} more" if len(headers) > limit else "")


#: Two ImageOrientationPatient values closer than this (max abs difference) are the same.
ORIENTATION_TOLERANCE: float = 1e-3


def _cluster_orientations(headers: list[SliceHeader]) -> Counter:
    """Count files per orientation; values within :data:`ORIENTATION_TOLERANCE` share a cluster."""
    counts: Counter = Counter()
    for h in headers:
        if h.orientation is None:
            counts[None] += 1
            continue
        for rep in counts:
            if rep is not None and max(abs(a - b) for a, b in zip(rep, h.orientation)) < ORIENTATION_TOLERANCE:
                counts[rep] += 1
                break
        else:
            counts[tuple(h.orientation)] += 1
    return counts


#: At most this many images in other orientations are set aside as probable localizers ...
MAX_ORIENTATION_OUTLIERS = 3
#: ... and only beside at least this many times as many images in the main orientation.
ORIENTATION_MAJORITY_RATIO = 10


def _orientation_outliers(headers: list[SliceHeader]) -> list[SliceHeader]:
    """Single-frame images whose orientation differs from a large majority (see the two
    constants above); none when the series is truly mixed."""
    iops = _cluster_orientations(headers)
    known = [k for k in iops if k is not None]
    if len(known) < 2:
        return []
    main = max(known, key=lambda k: iops[k])
    n_other = sum(n for k, n in iops.items() if k != main)
    if n_other > MAX_ORIENTATION_OUTLIERS or iops[main] < ORIENTATION_MAJORITY_RATIO * n_other:
        return []
    out = [h for h in headers if h.orientation is not None and not h.multiframe
           and max(abs(a - b) for a, b in zip(main, h.orientation)) >= ORIENTATION_TOLERANCE]
    return out if len(out) == n_other else []


def _safe_label(iop: tuple[float, ...]) -> str:
    try:
        return orientation_label(iop)
    except NotCTVolumeError:
        return "invalid"


def _rel_name(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` (POSIX separators); the bare file name otherwise."""
    if root is not None:
        try:
            return Path(path).relative_to(root).as_posix() or Path(path).name
        except ValueError:
            pass
    return Path(path).name


def _placeholder_uid(kind: str, *parts: Any) -> str:
    digest = hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()[:16]
    return f"missing-uid:{kind}:{digest}"


def describe_series(headers: list[SliceHeader], *, series_uid: str, study_uid: str,
                    root: Path | None = None) -> SeriesInfo:
    """Describe one series from its file headers: geometry, counts and problems.

    Parameters
    ----------
    headers : list of SliceHeader
        Every image file of the series (any order).
    series_uid, study_uid : str
        Keys the series was grouped under.
    root : Path, optional
        Folder searched: problems name files relative to it (else by file name).

    Returns
    -------
    SeriesInfo
    """
    if not headers:
        raise ValueError("headers must hold at least one file header")
    problems: list[str] = []
    blocking: list[str] = []
    if series_uid.startswith("missing-uid"):
        problems.append("SeriesInstanceUID missing: grouped by folder, frame of reference and series number")
    if study_uid.startswith("missing-uid"):
        problems.append("StudyInstanceUID missing: grouped by folder and patient")

    localizers = [h for h in headers if _LOCALIZER_TYPES & set(h.image_type)]
    if localizers and len(localizers) < len(headers):
        problems.append(f"{len(localizers)} localizer image(s) set aside: {_names(localizers, root=root)}")
        set_aside = {id(h) for h in localizers}
        headers = [h for h in headers if id(h) not in set_aside]

    # a scout exported inside the axial series without LOCALIZER in its ImageType: a few
    # images in another orientation beside many in one are set aside, not a mixed series
    scouts = _orientation_outliers(headers)
    if scouts:
        problems.append(f"{len(scouts)} image(s) in another orientation than the other "
                        f"{len(headers) - len(scouts)} set aside as probable localizer(s): {_names(scouts, root=root)}")
        outlier_ids = {id(h) for h in scouts}
        headers = [h for h in headers if id(h) not in outlier_ids]

    # one SliceRef per frame; same-instance copies dropped, a complete copy kept before a
    # truncated one (an interrupted earlier copy of the export may lie beside the full one)
    headers = sorted(headers, key=lambda h: any(p.startswith("truncated") for p in h.problems))
    refs: list[SliceRef] = []
    seen_sop: dict[str, SliceHeader] = {}
    copies: list[SliceHeader] = []
    for h in headers:
        if h.sop_uid and h.sop_uid in seen_sop:
            copies.append(h)
            continue
        if h.sop_uid:
            seen_sop[h.sop_uid] = h
        refs.extend(SliceRef(h, f) for f in h.frames)
    if copies:
        problems.append(f"{len(copies)} duplicate file(s) of the same instance ignored: {_names(copies, root=root)}")
    copy_ids = {id(h) for h in copies}
    headers = [h for h in headers if id(h) not in copy_ids]

    first = headers[0]
    sizes = Counter((h.rows, h.columns) for h in headers)
    if len(sizes) > 1:
        listing = ", ".join(f"{c}x{r} ({n} files)" for (r, c), n in sizes.most_common())
        blocking.append(f"mixed image sizes: {listing}")
    no_spacing = [h for h in headers if h.pixel_spacing is None or min(h.pixel_spacing) <= 0]
    if no_spacing:
        value = no_spacing[0].pixel_spacing
        shown = "missing" if value is None else "/".join(f"{v:g}" for v in value)
        blocking.append(f"PixelSpacing missing or not positive in {len(no_spacing)} file(s), voxel size unknown: "
                        f"{_names(no_spacing, root=root)} ({shown})")
    spacings = Counter(tuple(round(v, 3) for v in h.pixel_spacing) for h in headers if h.pixel_spacing)
    if len(spacings) > 1:
        listing = ", ".join(f"{r}x{c} mm ({n} files)" for (r, c), n in spacings.most_common())
        blocking.append(f"mixed pixel spacings: {listing}")
    iops = _cluster_orientations(headers)
    if None in iops:
        blocking.append(f"ImageOrientationPatient missing in {iops[None]} file(s)")
    known = [k for k in iops if k is not None]
    if len(known) > 1:
        listing = ", ".join(f"{_safe_label(k)} {list(k)} ({iops[k]} files)" for k in known)
        blocking.append(f"mixed orientations: {listing}")
    iop = max(known, key=lambda k: iops[k]) if known else None
    if iop is not None:
        try:
            orientation_label(iop)
        except NotCTVolumeError as exc:
            blocking.append(str(exc))
            iop = None
    multiframe = [h for h in headers if h.multiframe]
    if multiframe and len(headers) > 1:
        blocking.append(f"series mixes {len(multiframe)} multi-frame file(s) with {len(headers) - len(multiframe)} other file(s)")
    colour = [h for h in headers if h.samples_per_pixel != 1]
    if colour:
        blocking.append(f"{len(colour)} colour image(s) (SamplesPerPixel {colour[0].samples_per_pixel}): not CT")
    truncated = [h for h in headers if any(p.startswith("truncated") for p in h.problems)]
    if truncated:
        detail = next(p for p in truncated[0].problems if p.startswith("truncated"))
        blocking.append(f"{len(truncated)} unreadable truncated file(s): {_names(truncated, root=root)} "
                        f"({detail.removeprefix('truncated: ')})")
    bad_rescale = [h for h in headers if any(p.startswith(INVALID_RESCALE) for p in h.problems)]
    if bad_rescale:
        detail = next(p for p in bad_rescale[0].problems if p.startswith(INVALID_RESCALE))
        blocking.append(f"{len(bad_rescale)} file(s) with an unusable rescale, HU unknown: "
                        f"{_names(bad_rescale, root=root)} ({detail.removeprefix(INVALID_RESCALE)})")
    mixed_frames = [h for h in headers if any(p.startswith(MIXED_FRAME_ORIENTATIONS) for p in h.problems)]
    if mixed_frames:
        detail = next(p for p in mixed_frames[0].problems if p.startswith(MIXED_FRAME_ORIENTATIONS))
        blocking.append(f"mixed orientations in multi-frame file {_names(mixed_frames, root=root)} ({detail})")
    no_intercept = [h for h in headers if MISSING_INTERCEPT in h.problems]
    if no_intercept and len(no_intercept) < len(headers):
        blocking.append(f"RescaleIntercept missing in {len(no_intercept)} of {len(headers)} files, present in the "
                        f"others: HU of {_names(no_intercept, root=root)} unknown")
    elif no_intercept:
        problems.append("RescaleIntercept missing: stored values taken as HU")
    for p in sorted({p for h in headers for p in h.problems
                     if not p.startswith(("truncated", INVALID_RESCALE, MIXED_FRAME_ORIENTATIONS))
                     and p != MISSING_INTERCEPT}):
        problems.append(p)

    missing_pos = [r for r in refs if r.frame.position is None]
    if missing_pos:
        where = [_rel_name(r.header.path, root) + (f" frame {r.frame.frame + 1}" if r.header.multiframe else "")
                 for r in missing_pos[:3]]
        blocking.append(f"ImagePositionPatient missing in {len(missing_pos)} slice(s): {', '.join(where)}"
                        + (f" and {len(missing_pos) - 3} more" if len(missing_pos) > 3 else ""))

    orientation = orientation_label(iop) if iop else "unknown"
    spacing = None
    tilt = 0.0
    duplicate_pairs: list[tuple[SliceRef, SliceRef]] = []
    sorted_refs = tuple(refs)
    if iop and not missing_pos:
        geometry = stack_geometry([r.frame.position for r in refs], iop)  # type: ignore[misc]
        sorted_refs = tuple(refs[i] for i in geometry.order)
        spacing = geometry.spacing_mm
        tilt = geometry.tilt_deg
        for a, b in geometry.duplicates:
            duplicate_pairs.append((refs[a], refs[b]))
        if duplicate_pairs:
            blocking.append(
                f"{len(duplicate_pairs)} slice position(s) occupied by two different instances "
                f"(e.g. {duplicate_pairs[0][0].header.path.name} and {duplicate_pairs[0][1].header.path.name}): "
                "two acquisitions in one series?"
            )
        for problem, (a, b) in zip(geometry.gap_problems, geometry.gaps):  # name the slices on either side
            ra, rb = refs[a], refs[b]
            where = (f"frames {ra.frame.frame + 1} and {rb.frame.frame + 1} of {_rel_name(ra.header.path, root)}"
                     if ra.header.path == rb.header.path else
                     f"{_rel_name(ra.header.path, root)} and {_rel_name(rb.header.path, root)}")
            blocking.append(f"{problem} (between {where})")
        if tilt > GANTRY_TILT_TOLERANCE_DEG:
            problems.append(
                f"gantry tilt: slices are stacked {tilt:.1f} degrees off their normal "
                f"(GantryDetectorTilt {first.gantry_tilt if first.gantry_tilt is not None else 'absent'}); "
                "resampled to an orthogonal grid when loaded"
            )
        normal = np.cross(iop[:3], iop[3:])
        axis = int(np.argmax(np.abs(normal)))
        off_axis = float(np.degrees(np.arccos(min(1.0, abs(normal[axis]) / np.linalg.norm(normal)))))
        if off_axis > 1.0 and orientation != "oblique":
            problems.append(f"slice plane {off_axis:.1f} degrees off the {orientation} plane")
    negative = sorted({h.spacing_between_slices for h in headers if h.spacing_between_slices is not None and h.spacing_between_slices < 0})
    if negative:
        problems.append(
            f"SpacingBetweenSlices is negative ({negative[0]:g} mm): ignored, spacing taken from positions"
        )
    rescales = {(r.frame.slope, r.frame.intercept) for r in refs}
    if len(rescales) > 1:
        problems.append(f"rescale slope/intercept vary per slice ({len(rescales)} distinct pairs): applied per slice")
    syntaxes = Counter(h.transfer_syntax for h in headers)
    if len(syntaxes) > 1:
        problems.append("mixed transfer syntaxes: " + ", ".join(syntax_name(s) for s in syntaxes))
    modality = _majority([h.modality for h in headers]) or ""
    if not modality:
        problems.append("Modality missing")
    patient_id = _majority([h.patient_id for h in headers]) or ""
    if not patient_id:
        problems.append("PatientID missing")
    study_date = _majority([h.study_date for h in headers])
    if not study_date:
        problems.append("StudyDate missing")
    thickness = _majority([h.slice_thickness for h in headers])
    all_problems = tuple(blocking) + tuple(p for p in problems if p not in blocking)
    return SeriesInfo(
        series_uid=series_uid,
        study_uid=study_uid,
        patient_id=patient_id,
        study_date=study_date,
        series_number=_majority([h.series_number for h in headers]),
        series_description=_majority([h.series_description for h in headers]) or "",
        modality=modality,
        image_type=_majority([h.image_type for h in headers]) or (),
        orientation=orientation,
        n_slices=len(refs),
        slice_thickness_mm=thickness,
        slice_spacing_mm=spacing,
        kernel=_majority([h.kernel for h in headers]) or "",
        transfer_syntax=syntaxes.most_common(1)[0][0],
        rows=first.rows if len(sizes) == 1 else sizes.most_common(1)[0][0][0],
        columns=first.columns if len(sizes) == 1 else sizes.most_common(1)[0][0][1],
        files=tuple(sorted({r.header.path for r in sorted_refs}, key=lambda p: str(p))),
        problems=all_problems,
        blocking=tuple(blocking),
        manufacturer=_majority([h.manufacturer for h in headers]) or "",
        tilt_deg=tilt,
        slices=sorted_refs,
        duplicate_slices=tuple(duplicate_pairs),
    )


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
    studies = []
    for study_uid, groups in _group(headers).items():
        series = [_describe_safely(hs, series_uid=uid, study_uid=study_uid, root=root if root.is_dir() else None) for uid, hs in groups.items()]
        series.sort(key=lambda s: (s.series_number if s.series_number is not None else 1 << 62, s.series_uid))
        chosen, reasons = choose_series(series, rules, override=overrides.get(study_uid))
        first = series[0]
        studies.append(
            StudySelection(
                patient_id=_majority([s.patient_id for s in series]) or "",
                study_uid=study_uid,
                study_date=_majority([s.study_date for s in series]) or first.study_date,
                series=series,
                chosen=chosen,
                reasons=reasons,
            )
        )
    studies.sort(key=lambda st: (st.patient_id, st.study_date or "", st.study_uid))
    _check_override_studies(overrides, [st.study_uid for st in studies], root)
    return SeriesCatalog(root=root, studies=studies, skipped_files=skipped, rules=rules, n_files=n_files)


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
