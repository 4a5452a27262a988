"""Describe one DICOM series from its file headers: geometry, counts and problems.

:func:`describe_series` is the step of :func:`~imaging.io.series.find_series` that turns
the headers of one series into a :class:`~imaging.io.series_info.SeriesInfo`, in named
steps: set aside localizers (by ImageType, or a few images in another orientation) and
duplicate copies of one instance; check that the images form one grid (image size,
PixelSpacing, ImageOrientationPatient); check each file's own problems (colour,
truncated, unusable rescale); stack the slices along their normal (spacing, missing
slices, two instances at one position, gantry tilt); then take the most common value of
every descriptive field.  Everything unusual is recorded in plain words; the
*blocking* problems are those that stop the series being read as a volume.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imaging.common.errors import NotCTVolumeError
from imaging.io.headers import INVALID_RESCALE, MISSING_INTERCEPT, MIXED_FRAME_ORIENTATIONS, SliceHeader
from imaging.io.series_info import PLACEHOLDER_UID_PREFIX, SeriesInfo, SliceRef, syntax_name
from imaging.io.slices import GANTRY_TILT_TOLERANCE_DEG, StackGeometry, orientation_label, stack_geometry

__all__ = ["describe_series", "majority", "ORIENTATION_TOLERANCE", "MAX_ORIENTATION_OUTLIERS",
           "ORIENTATION_MAJORITY_RATIO"]

_LOCALIZER_TYPES = frozenset({"LOCALIZER", "SCOUT", "TOPOGRAM"})

#: Two ImageOrientationPatient values closer than this (max abs difference) are the same.
ORIENTATION_TOLERANCE: float = 1e-3
#: At most this many images in other orientations are set aside as probable localizers ...
MAX_ORIENTATION_OUTLIERS = 3
#: ... and only beside at least this many times as many images in the main orientation.
ORIENTATION_MAJORITY_RATIO = 10


@dataclass
class _Findings:
    """Problems found so far: all of them, and the ones that block reading the volume."""

    problems: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)

    def all_problems(self) -> tuple[str, ...]:
        """Blocking problems first, then the others (each once)."""
        return tuple(self.blocking) + tuple(p for p in self.problems if p not in self.blocking)


@dataclass(frozen=True)
class _Stack:
    """The slices in order along the normal, and what stacking them measured."""

    slices: tuple[SliceRef, ...]
    spacing_mm: float | None = None
    tilt_deg: float = 0.0
    duplicates: tuple[tuple[SliceRef, SliceRef], ...] = ()


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
    found = _Findings()
    _note_placeholder_uids(series_uid, study_uid, found)
    headers = _set_aside_localizers(headers, found, root)
    headers = _set_aside_orientation_outliers(headers, found, root)
    headers, refs = _drop_duplicate_copies(headers, found, root)
    _check_image_grid(headers, found, root)
    iop = _main_orientation(headers, found)
    _check_file_problems(headers, found, root)
    orientation = orientation_label(iop) if iop else "unknown"
    stack = _stack_slices(refs, iop, orientation, gantry_tilt=headers[0].gantry_tilt, found=found, root=root)
    _check_consistency(headers, refs, found)
    return _series_info(headers, stack, found, series_uid=series_uid, study_uid=study_uid, orientation=orientation)


def majority(values: list[Any]) -> Any:
    """The most common value that is not None, empty or ``()`` (None when there is none)."""
    present = [v for v in values if v not in (None, "", ())]
    return Counter(present).most_common(1)[0][0] if present else None


def _rel_name(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` (POSIX separators); the bare file name otherwise."""
    if root is not None:
        try:
            return Path(path).relative_to(root).as_posix() or Path(path).name
        except ValueError:
            pass
    return Path(path).name


def _names(headers: list[SliceHeader], limit: int = 3, *, root: Path | None = None) -> str:
    """The first ``limit`` file names, relative to ``root`` when they lie under it."""
    names = [_rel_name(h.path, root) for h in headers[:limit]]
    return ", ".join(names) + (f" and {len(headers) - limit} more" if len(headers) > limit else "")


def _without(headers: list[SliceHeader], removed: list[SliceHeader]) -> list[SliceHeader]:
    """``headers`` less the (identical) objects in ``removed``, order kept."""
    ids = {id(h) for h in removed}
    return [h for h in headers if id(h) not in ids]


# --- set aside what is not a slice of the series -------------------------------------------


def _note_placeholder_uids(series_uid: str, study_uid: str, found: _Findings) -> None:
    """Note the UIDs the export blanked (the series was grouped under a placeholder)."""
    if series_uid.startswith(PLACEHOLDER_UID_PREFIX):
        found.problems.append("SeriesInstanceUID missing: grouped by folder, frame of reference and series number")
    if study_uid.startswith(PLACEHOLDER_UID_PREFIX):
        found.problems.append("StudyInstanceUID missing: grouped by folder and patient")


def _set_aside_localizers(headers: list[SliceHeader], found: _Findings, root: Path | None) -> list[SliceHeader]:
    """Images whose ImageType says localizer/scout/topogram, unless every image says so."""
    localizers = [h for h in headers if _LOCALIZER_TYPES & set(h.image_type)]
    if not localizers or len(localizers) == len(headers):
        return headers
    found.problems.append(f"{len(localizers)} localizer image(s) set aside: {_names(localizers, root=root)}")
    return _without(headers, localizers)


def _set_aside_orientation_outliers(headers: list[SliceHeader], found: _Findings,
                                    root: Path | None) -> list[SliceHeader]:
    """A scout exported inside the axial series without LOCALIZER in its ImageType.

    A few images in another orientation beside many in one are set aside, not reported
    as a mixed series (see :data:`MAX_ORIENTATION_OUTLIERS`).
    """
    scouts = _orientation_outliers(headers)
    if not scouts:
        return headers
    found.problems.append(f"{len(scouts)} image(s) in another orientation than the other "
                          f"{len(headers) - len(scouts)} set aside as probable localizer(s): {_names(scouts, root=root)}")
    return _without(headers, scouts)


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


def _orientation_outliers(headers: list[SliceHeader]) -> list[SliceHeader]:
    """Single-frame images whose orientation differs from a large majority (see
    :data:`MAX_ORIENTATION_OUTLIERS`, :data:`ORIENTATION_MAJORITY_RATIO`); none when
    the series is truly mixed."""
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


def _is_truncated(h: SliceHeader) -> bool:
    return any(p.startswith("truncated") for p in h.problems)


def _drop_duplicate_copies(headers: list[SliceHeader], found: _Findings,
                           root: Path | None) -> tuple[list[SliceHeader], list[SliceRef]]:
    """One :class:`SliceRef` per frame; a second file of the same SOPInstanceUID is dropped.

    A complete copy is kept before a truncated one (an interrupted earlier copy of the
    export may lie beside the full one).  Returns the headers kept (complete files
    first) and their slices.
    """
    headers = sorted(headers, key=_is_truncated)
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
        found.problems.append(f"{len(copies)} duplicate file(s) of the same instance ignored: {_names(copies, root=root)}")
    return _without(headers, copies), refs


# --- one grid: image size, pixel spacing, orientation --------------------------------------


def _check_image_grid(headers: list[SliceHeader], found: _Findings, root: Path | None) -> None:
    """Block mixed image sizes, a missing or non-positive PixelSpacing, mixed pixel spacings."""
    sizes = Counter((h.rows, h.columns) for h in headers)
    if len(sizes) > 1:
        listing = ", ".join(f"{c}x{r} ({n} files)" for (r, c), n in sizes.most_common())
        found.blocking.append(f"mixed image sizes: {listing}")
    no_spacing = [h for h in headers if h.pixel_spacing is None or min(h.pixel_spacing) <= 0]
    if no_spacing:
        value = no_spacing[0].pixel_spacing
        shown = "missing" if value is None else "/".join(f"{v:g}" for v in value)
        found.blocking.append(f"PixelSpacing missing or not positive in {len(no_spacing)} file(s), voxel size unknown: "
                              f"{_names(no_spacing, root=root)} ({shown})")
    spacings = Counter(tuple(round(v, 3) for v in h.pixel_spacing) for h in headers if h.pixel_spacing)
    if len(spacings) > 1:
        listing = ", ".join(f"{r}x{c} mm ({n} files)" for (r, c), n in spacings.most_common())
        found.blocking.append(f"mixed pixel spacings: {listing}")


def _safe_label(iop: tuple[float, ...]) -> str:
    try:
        return orientation_label(iop)
    except NotCTVolumeError:
        return "invalid"


def _main_orientation(headers: list[SliceHeader], found: _Findings) -> tuple[float, ...] | None:
    """The most common ImageOrientationPatient; None (and blocked) when it is not usable.

    Blocks files without an orientation, mixed orientations and an orientation that is
    not two unit vectors at a right angle.
    """
    iops = _cluster_orientations(headers)
    if None in iops:
        found.blocking.append(f"ImageOrientationPatient missing in {iops[None]} file(s)")
    known = [k for k in iops if k is not None]
    if len(known) > 1:
        listing = ", ".join(f"{_safe_label(k)} {list(k)} ({iops[k]} files)" for k in known)
        found.blocking.append(f"mixed orientations: {listing}")
    iop = max(known, key=lambda k: iops[k]) if known else None
    if iop is not None:
        try:
            orientation_label(iop)
        except NotCTVolumeError as exc:
            found.blocking.append(str(exc))
            iop = None
    return iop


# --- each file's own problems ---------------------------------------------------------------


def _with_problem(headers: list[SliceHeader], prefix: str) -> tuple[list[SliceHeader], str]:
    """The files with a header problem starting with ``prefix``, and the first such problem."""
    hit = [h for h in headers if any(p.startswith(prefix) for p in h.problems)]
    first = next(p for p in hit[0].problems if p.startswith(prefix)) if hit else ""
    return hit, first


def _check_file_problems(headers: list[SliceHeader], found: _Findings, root: Path | None) -> None:
    """Block what one file can spoil (see :mod:`imaging.io.headers`); note the other header problems."""
    multiframe = [h for h in headers if h.multiframe]
    if multiframe and len(headers) > 1:
        found.blocking.append(f"series mixes {len(multiframe)} multi-frame file(s) with {len(headers) - len(multiframe)} other file(s)")
    colour = [h for h in headers if h.samples_per_pixel != 1]
    if colour:
        found.blocking.append(f"{len(colour)} colour image(s) (SamplesPerPixel {colour[0].samples_per_pixel}): not CT")
    truncated, detail = _with_problem(headers, "truncated")
    if truncated:
        found.blocking.append(f"{len(truncated)} unreadable truncated file(s): {_names(truncated, root=root)} "
                              f"({detail.removeprefix('truncated: ')})")
    bad_rescale, detail = _with_problem(headers, INVALID_RESCALE)
    if bad_rescale:
        found.blocking.append(f"{len(bad_rescale)} file(s) with an unusable rescale, HU unknown: "
                              f"{_names(bad_rescale, root=root)} ({detail.removeprefix(INVALID_RESCALE)})")
    mixed_frames, detail = _with_problem(headers, MIXED_FRAME_ORIENTATIONS)
    if mixed_frames:
        found.blocking.append(f"mixed orientations in multi-frame file {_names(mixed_frames, root=root)} ({detail})")
    _check_intercepts(headers, found, root)
    for p in sorted({p for h in headers for p in h.problems
                     if not p.startswith(("truncated", INVALID_RESCALE, MIXED_FRAME_ORIENTATIONS))
                     and p != MISSING_INTERCEPT}):
        found.problems.append(p)


def _check_intercepts(headers: list[SliceHeader], found: _Findings, root: Path | None) -> None:
    """RescaleIntercept missing in some files blocks (HU unknown); missing in all is noted."""
    no_intercept = [h for h in headers if MISSING_INTERCEPT in h.problems]
    if no_intercept and len(no_intercept) < len(headers):
        found.blocking.append(f"RescaleIntercept missing in {len(no_intercept)} of {len(headers)} files, present in the "
                              f"others: HU of {_names(no_intercept, root=root)} unknown")
    elif no_intercept:
        found.problems.append("RescaleIntercept missing: stored values taken as HU")


# --- the slices stacked along the normal ----------------------------------------------------


def _stack_slices(refs: list[SliceRef], iop: tuple[float, ...] | None, orientation: str, *,
                  gantry_tilt: float | None, found: _Findings, root: Path | None) -> _Stack:
    """Sort the slices along the normal and check the stack (see :func:`imaging.io.slices.stack_geometry`).

    Left unsorted when the orientation or a slice position is missing.
    """
    if _positions_missing(refs, found, root) or not iop:
        return _Stack(tuple(refs))
    geometry = stack_geometry([r.frame.position for r in refs], iop)  # type: ignore[misc]
    stack = _Stack(
        slices=tuple(refs[i] for i in geometry.order),
        spacing_mm=geometry.spacing_mm,
        tilt_deg=geometry.tilt_deg,
        duplicates=tuple((refs[a], refs[b]) for a, b in geometry.duplicates),
    )
    _note_duplicate_positions(stack.duplicates, found)
    _note_gaps(geometry, refs, found, root)
    _note_tilt(stack.tilt_deg, gantry_tilt, found)
    _note_off_plane(iop, orientation, found)
    return stack


def _positions_missing(refs: list[SliceRef], found: _Findings, root: Path | None) -> bool:
    """Block slices without ImagePositionPatient (naming up to three); True when any is missing."""
    missing = [r for r in refs if r.frame.position is None]
    if missing:
        where = [_rel_name(r.header.path, root) + (f" frame {r.frame.frame + 1}" if r.header.multiframe else "")
                 for r in missing[:3]]
        found.blocking.append(f"ImagePositionPatient missing in {len(missing)} slice(s): {', '.join(where)}"
                              + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    return bool(missing)


def _note_duplicate_positions(duplicates: tuple[tuple[SliceRef, SliceRef], ...], found: _Findings) -> None:
    """Block two different instances at one slice position (two acquisitions in one series?)."""
    if duplicates:
        a, b = duplicates[0]
        found.blocking.append(
            f"{len(duplicates)} slice position(s) occupied by two different instances "
            f"(e.g. {a.header.path.name} and {b.header.path.name}): "
            "two acquisitions in one series?"
        )


def _note_gaps(geometry: StackGeometry, refs: list[SliceRef], found: _Findings, root: Path | None) -> None:
    """Block every irregular step (a missing slice), naming the slices on either side."""
    for problem, (a, b) in zip(geometry.gap_problems, geometry.gaps):
        ra, rb = refs[a], refs[b]
        where = (f"frames {ra.frame.frame + 1} and {rb.frame.frame + 1} of {_rel_name(ra.header.path, root)}"
                 if ra.header.path == rb.header.path else
                 f"{_rel_name(ra.header.path, root)} and {_rel_name(rb.header.path, root)}")
        found.blocking.append(f"{problem} (between {where})")


def _note_tilt(tilt_deg: float, gantry_tilt: float | None, found: _Findings) -> None:
    """Note slices stacked off their normal by more than :data:`GANTRY_TILT_TOLERANCE_DEG`."""
    if tilt_deg > GANTRY_TILT_TOLERANCE_DEG:
        found.problems.append(
            f"gantry tilt: slices are stacked {tilt_deg:.1f} degrees off their normal "
            f"(GantryDetectorTilt {gantry_tilt if gantry_tilt is not None else 'absent'}); "
            "resampled to an orthogonal grid when loaded"
        )


def _note_off_plane(iop: tuple[float, ...], orientation: str, found: _Findings) -> None:
    """Note a slice plane more than 1 degree off the axial/coronal/sagittal plane it is named after."""
    normal = np.cross(iop[:3], iop[3:])
    axis = int(np.argmax(np.abs(normal)))
    off_axis = float(np.degrees(np.arccos(min(1.0, abs(normal[axis]) / np.linalg.norm(normal)))))
    if off_axis > 1.0 and orientation != "oblique":
        found.problems.append(f"slice plane {off_axis:.1f} degrees off the {orientation} plane")


# --- values that should agree between files, and the description ---------------------------


def _check_consistency(headers: list[SliceHeader], refs: list[SliceRef], found: _Findings) -> None:
    """Note a negative SpacingBetweenSlices, rescales varying per slice, mixed transfer syntaxes."""
    negative = sorted({h.spacing_between_slices for h in headers
                       if h.spacing_between_slices is not None and h.spacing_between_slices < 0})
    if negative:
        found.problems.append(
            f"SpacingBetweenSlices is negative ({negative[0]:g} mm): ignored, spacing taken from positions"
        )
    rescales = {(r.frame.slope, r.frame.intercept) for r in refs}
    if len(rescales) > 1:
        found.problems.append(f"rescale slope/intercept vary per slice ({len(rescales)} distinct pairs): applied per slice")
    syntaxes = Counter(h.transfer_syntax for h in headers)
    if len(syntaxes) > 1:
        found.problems.append("mixed transfer syntaxes: " + ", ".join(syntax_name(s) for s in syntaxes))


def _identity(headers: list[SliceHeader], found: _Findings) -> dict[str, Any]:
    """Modality, PatientID and StudyDate (most common values), each noted when missing."""
    modality = majority([h.modality for h in headers]) or ""
    if not modality:
        found.problems.append("Modality missing")
    patient_id = majority([h.patient_id for h in headers]) or ""
    if not patient_id:
        found.problems.append("PatientID missing")
    study_date = majority([h.study_date for h in headers])
    if not study_date:
        found.problems.append("StudyDate missing")
    return {"modality": modality, "patient_id": patient_id, "study_date": study_date}


def _series_info(headers: list[SliceHeader], stack: _Stack, found: _Findings, *, series_uid: str,
                 study_uid: str, orientation: str) -> SeriesInfo:
    """The :class:`SeriesInfo`: the most common value of each field over the files kept."""
    identity = _identity(headers, found)
    rows, columns = Counter((h.rows, h.columns) for h in headers).most_common(1)[0][0]
    return SeriesInfo(
        series_uid=series_uid,
        study_uid=study_uid,
        **identity,
        series_number=majority([h.series_number for h in headers]),
        series_description=majority([h.series_description for h in headers]) or "",
        image_type=majority([h.image_type for h in headers]) or (),
        orientation=orientation,
        n_slices=len(stack.slices),
        slice_thickness_mm=majority([h.slice_thickness for h in headers]),
        slice_spacing_mm=stack.spacing_mm,
        kernel=majority([h.kernel for h in headers]) or "",
        transfer_syntax=Counter(h.transfer_syntax for h in headers).most_common(1)[0][0],
        rows=rows,
        columns=columns,
        files=tuple(sorted({r.header.path for r in stack.slices}, key=str)),
        problems=found.all_problems(),
        blocking=tuple(found.blocking),
        manufacturer=majority([h.manufacturer for h in headers]) or "",
        tilt_deg=stack.tilt_deg,
        slices=stack.slices,
        duplicate_slices=stack.duplicates,
    )
