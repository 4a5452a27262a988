"""Header-only reading of one DICOM file, and the walk that finds candidate files.

This is the fast edge of :func:`imaging.io.series.find_series`: each file is opened once,
its first 132 bytes are checked for the ``DICM`` marker (PNG captures, NIfTI files and
other non-DICOM files are recognised by their magic bytes and skipped), then pydicom
reads only the tags listed in :data:`HEADER_TAGS`, stopping before the pixel data.
The position of the pixel data element is noted (:mod:`imaging.io.pixel_element`) so
that uncompressed slices can later be read straight from disk without parsing the header
again, and so that a file cut short by an interrupted copy is reported here, before any
pixels are read.  :func:`read_header` works in named steps: recognise non-DICOM files,
parse the header (fast reader, else pydicom), refuse DICOMDIR and non-image files, then
build the :class:`SliceHeader` (pixel location, frames and geometry, identifying fields).
"""

from __future__ import annotations

import errno
import math
import os
import struct
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.datadict import tag_for_keyword
from pydicom.errors import InvalidDicomError

from imaging.io.fastheader import Fallback, FastHeader, read_fast_header
from imaging.io.pixel_element import (
    IMPLICIT_VR_LITTLE_ENDIAN, UNCOMPRESSED_SYNTAXES, has_pixel_element_header, locate_pixel_data,
)

__all__ = [
    "SkippedFile", "SliceHeader", "FrameHeader", "read_header", "walk_files", "UNCOMPRESSED_SYNTAXES",
    "INVALID_RESCALE", "MISSING_INTERCEPT",
]

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
ENHANCED_CT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2.1"

HEADER_TAGS = [
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientID",
    "StudyDate", "SeriesNumber", "SeriesDescription", "Modality", "ImageType", "Manufacturer",
    "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
    "SpacingBetweenSlices", "Rows", "Columns", "RescaleSlope", "RescaleIntercept",
    "ConvolutionKernel", "BitsAllocated", "BitsStored", "PixelRepresentation",
    "SamplesPerPixel", "NumberOfFrames", "InstanceNumber", "FrameOfReferenceUID",
    "GantryDetectorTilt", "AcquisitionNumber", "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence", "DirectoryRecordSequence",
]

_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"%PDF", "PDF document"),
    (b"NRRD", "NRRD volume (load it with load_scan)"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip file (e.g. .nii.gz; load NIfTI with load_scan)"),
]


@dataclass(frozen=True)
class SkippedFile:
    """A file that is not part of any image series, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class FrameHeader:
    """Per-frame geometry and rescale of one slice (one frame of a file)."""

    frame: int
    position: tuple[float, float, float] | None
    slope: float
    intercept: float


@dataclass(frozen=True)
class SliceHeader:
    """What :func:`read_header` learned about one DICOM image file (no pixels)."""

    path: Path
    file_size: int
    sop_class: str
    sop_uid: str
    study_uid: str
    series_uid: str
    patient_id: str
    study_date: str
    series_number: int | None
    series_description: str
    modality: str
    image_type: tuple[str, ...]
    manufacturer: str
    kernel: str
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    spacing_between_slices: float | None
    rows: int
    columns: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    samples_per_pixel: int
    n_frames: int
    instance_number: int | None
    frame_of_reference: str
    gantry_tilt: float | None
    acquisition_number: int | None
    transfer_syntax: str
    pixel_offset: int | None
    pixel_length: int | None
    frames: tuple[FrameHeader, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def multiframe(self) -> bool:
        return self.n_frames > 1 or self.sop_class == ENHANCED_CT_SOP_CLASS


def walk_files(root: Path, skipped: list[SkippedFile]) -> Iterator[tuple[Path, int]]:
    """Yield ``(path, size)`` of every regular file under ``root``, any depth.

    Hidden files and folders (name starting with ``.``), DICOMDIR index files, symbolic
    links to folders (not followed), broken symbolic links, symbolic link loops and
    entries that cannot be examined (``stat`` fails) are recorded in ``skipped`` instead,
    with the reason; the walk goes on.
    """
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(SkippedFile(Path(folder), f"folder cannot be listed: {exc.strerror}"))
            continue
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                kind = "folder" if entry.is_dir(follow_symlinks=False) else "file"
                skipped.append(SkippedFile(path, f"hidden {kind}"))
            elif entry.is_dir(follow_symlinks=False):
                subfolders.append(path)
            else:
                try:
                    size = entry.stat().st_size if entry.is_file() else None
                    is_dir = size is None and entry.is_dir()
                except OSError as exc:  # e.g. ELOOP: a symbolic link loop
                    what = "symbolic link loop" if exc.errno == errno.ELOOP else "entry cannot be examined"
                    skipped.append(SkippedFile(path, f"{what} ({exc.strerror})"))
                    continue
                if size is None:
                    if is_dir:  # not followed: it could lead out of ROOT or back into it
                        skipped.append(SkippedFile(path, "symbolic link to a folder (not followed)"))
                    elif entry.is_symlink():
                        skipped.append(SkippedFile(path, "broken symbolic link (its target does not exist)"))
                elif entry.name.upper() == "DICOMDIR":
                    skipped.append(SkippedFile(path, "DICOMDIR (an index of the export, not an image)"))
                else:
                    yield path, size
        stack.extend(reversed(subfolders))


_TAGS = {name: tag_for_keyword(name) for name in HEADER_TAGS}
_WANTED = frozenset(_TAGS.values())
#: Text fields decoded by pydicom (character sets matter); all others are decoded from raw bytes.
_CHARSET_TEXT = frozenset({"PatientID", "SeriesDescription", "Manufacturer", "ConvolutionKernel"})
_US = frozenset({"Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation", "SamplesPerPixel"})


def _raw_value(ds: Any, name: str) -> Any:
    """Value of a top-level element, decoded cheaply from its raw bytes when possible.

    pydicom converts values lazily and its conversion dominates a header scan; for the
    plain UIDs, code strings and numbers read here a ``latin-1`` decode of the raw bytes
    gives the same result (multi-values split on backslash).
    """
    elem = ds.get_item(_TAGS[name])
    if elem is None:
        return None
    if not isinstance(elem, RawDataElement) or name in _CHARSET_TEXT:
        return ds.get(name)
    raw = elem.value
    if raw is None:
        return None
    if name in _US:
        if len(raw) < 2:
            return None
        return struct.unpack("<H" if elem.is_little_endian else ">H", raw[:2])[0]
    text = raw.decode("latin-1").strip(" \0")
    if "\\" in text:
        return [v.strip(" \0") for v in text.split("\\")]
    return text


def _text(ds: Any, name: str) -> str:
    value = _raw_value(ds, name)
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _float(ds: Any, name: str) -> float | None:
    value = _raw_value(ds, name)
    if value is None or value == "" or isinstance(value, list):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(ds: Any, name: str, default: int | None = None) -> int | None:
    value = _raw_value(ds, name)
    if value is None or value == "" or isinstance(value, list):
        return default
    try:
        return int(float(value)) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        return default


#: Prefix of the header problem recorded when RescaleSlope/RescaleIntercept cannot be used.
INVALID_RESCALE = "invalid rescale: "
#: Prefix of the header problem recorded when the frames of a multi-frame file differ in
#: orientation (not one volume: the series is blocked, like a folder of mixed orientations).
MIXED_FRAME_ORIENTATIONS = "frames have different orientations"
#: Header problem recorded when RescaleIntercept is absent (Type 1 in the CT Image module).
MISSING_INTERCEPT = "RescaleIntercept missing"


def _rescale(ds: Any, name: str, default: float, problems: list[str]) -> float:
    """RescaleSlope or RescaleIntercept: ``default`` when absent, NaN (with a problem) when unusable.

    A value present but not a finite number (``'-1024,0'``, two values) must not fall back
    to the default silently: that would shift or scale every HU of the slice.  A slope of
    0 would give every pixel the same value.
    """
    raw = _raw_value(ds, name)
    if raw is None or raw == "":
        if name == "RescaleIntercept":
            problems.append(MISSING_INTERCEPT)
        return default
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value):
        shown = "\\".join(str(v) for v in raw) if isinstance(raw, list) else str(raw)
        problems.append(f"{INVALID_RESCALE}{name} {shown!r} is not a number")
        return float("nan")
    if name == "RescaleSlope" and value == 0:
        problems.append(f"{INVALID_RESCALE}RescaleSlope is 0: every pixel would get the same HU")
        return float("nan")
    return value


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(math.isfinite(v) for v in out) else None


def _iso_date(value: str) -> str:
    v = value.strip()
    if len(v) == 8 and v.isdigit():
        return f"{v[:4]}-{v[4:6]}-{v[6:]}"
    if len(v) == 10 and v[4] == "." and v[7] == ".":  # old ACR-NEMA yyyy.mm.dd
        return v.replace(".", "-")
    return ""


def _seq_item(ds: Any, name: str) -> Any:
    seq = ds.get(name)
    return seq[0] if seq else None


def _frames(ds: Any, n_frames: int, problems: list[str]) -> tuple[tuple[FrameHeader, ...], tuple[float, ...] | None, tuple[float, float] | None, float | None]:
    """Per-frame positions and rescale, plus orientation/spacing/thickness of a multi-frame file."""
    shared = _seq_item(ds, "SharedFunctionalGroupsSequence")
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []

    def find(item: Any, seq: str, attr: str) -> Any:
        sub = _seq_item(item, seq) if item is not None else None
        return None if sub is None else sub.get(attr)

    def lookup(i: int, seq: str, attr: str) -> Any:
        if i < len(per_frame):
            value = find(per_frame[i], seq, attr)
            if value is not None:
                return value
        return find(shared, seq, attr)

    iop = _floats(lookup(0, "PlaneOrientationSequence", "ImageOrientationPatient"), 6)
    spacing = _floats(lookup(0, "PixelMeasuresSequence", "PixelSpacing"), 2)
    thickness_value = lookup(0, "PixelMeasuresSequence", "SliceThickness")
    thickness = float(thickness_value) if thickness_value not in (None, "") else None

    def rescale_item(i: int) -> Any:
        """The PixelValueTransformation item of frame ``i`` (its own, else the shared one)."""
        for group in ((per_frame[i],) if i < len(per_frame) else ()) + (shared,):
            item = _seq_item(group, "PixelValueTransformationSequence") if group is not None else None
            if item is not None:
                return item
        return pydicom.Dataset()

    frames = []
    no_intercept = 0
    for i in range(n_frames):
        pos = _floats(lookup(i, "PlanePositionSequence", "ImagePositionPatient"), 3)
        # Checked like single-frame files: a slope of 0 or a value that is not a number blocks.
        item, frame_problems = rescale_item(i), []
        slope = _rescale(item, "RescaleSlope", 1.0, frame_problems)
        intercept = _rescale(item, "RescaleIntercept", 0.0, frame_problems)
        no_intercept += MISSING_INTERCEPT in frame_problems
        bad = [p for p in frame_problems if p.startswith(INVALID_RESCALE)]
        if bad and not any(p.startswith(INVALID_RESCALE) for p in problems):
            problems.append(f"{INVALID_RESCALE}frame {i + 1}: {bad[0].removeprefix(INVALID_RESCALE)}")
        frames.append(FrameHeader(i, pos, slope, intercept))  # type: ignore[arg-type]
        if i > 0 and not any(p.startswith(MIXED_FRAME_ORIENTATIONS) for p in problems):
            other = _floats(lookup(i, "PlaneOrientationSequence", "ImageOrientationPatient"), 6)
            if other is not None and iop is not None and max(abs(a - b) for a, b in zip(other, iop)) > 1e-3:
                shown = ["\\".join(f"{v:g}" for v in o) for o in (other, iop)]
                problems.append(f"{MIXED_FRAME_ORIENTATIONS}: frame {i + 1} has {shown[0]}, frame 1 {shown[1]}")
    if no_intercept == n_frames:
        problems.append(MISSING_INTERCEPT)  # stored values taken as HU, noted (as for single frames)
    elif no_intercept:
        problems.append(f"{INVALID_RESCALE}RescaleIntercept missing in {no_intercept} of {n_frames} frames, "
                        "present in the others")
    if len(per_frame) < n_frames and n_frames > 1:
        problems.append(f"PerFrameFunctionalGroupsSequence has {len(per_frame)} items for {n_frames} frames")
    return tuple(frames), iop, spacing, thickness  # type: ignore[return-value]


@dataclass(frozen=True)
class _ParsedHeader:
    """A parsed header (pydicom Dataset or :class:`FastHeader`) and what the parse learned."""

    ds: Any
    pixel_pos: int
    transfer_syntax: str
    media_class: str
    media_instance: str
    warnings: tuple[str, ...] = ()


def read_header(path: Path, size: int) -> SliceHeader | SkippedFile:
    """Read the header of one file; a :class:`SkippedFile` when it is not a DICOM image.

    Never raises for a bad file: unreadable, truncated or non-image files come back
    as :class:`SkippedFile` with the reason.

    Parameters
    ----------
    path : Path
        The file.
    size : int
        Its size, bytes (from the folder walk).
    """
    try:
        with open(path, "rb") as fp:
            start = fp.read(132)
            reason = _not_dicom(start)
            if reason:
                return SkippedFile(path, reason)
            parsed = _parse_header(fp, start, size, force=start[128:132] != b"DICM")
            ds = parsed.ds
            sop_class = _text(ds, "SOPClassUID") or parsed.media_class
            if DICOMDIR_SOP_CLASS in (sop_class, parsed.media_class) or "DirectoryRecordSequence" in ds:
                return SkippedFile(path, "DICOMDIR (an index of the export, not an image)")
            rows, columns = _int(ds, "Rows", 0) or 0, _int(ds, "Columns", 0) or 0
            if not rows or not columns:
                return SkippedFile(path, _no_image_reason(parsed, sop_class, size))
            return _slice_header(fp, parsed, path, size, sop_class=sop_class, rows=rows, columns=columns)
    except InvalidDicomError as exc:
        return SkippedFile(path, f"not DICOM: {exc}")
    except (OSError, EOFError, ValueError, struct.error, KeyError, IndexError, TypeError, NotImplementedError) as exc:
        return SkippedFile(path, f"unreadable DICOM header ({type(exc).__name__}: {exc})")


def _not_dicom(start: bytes) -> str | None:
    """Why a file beginning with ``start`` (its first 132 bytes) is not DICOM; None when it may be.

    A file without the ``DICM`` marker at byte 128 is still read (forcing pydicom) when
    it starts like a headerless (ACR-NEMA style) DICOM file: a group 0008 or 0002 tag.
    """
    if start[128:132] == b"DICM":
        return None
    for magic, what in _MAGIC:
        if start.startswith(magic):
            return f"not DICOM: {what}"
    if start[344:348] in (b"n+1\0", b"ni1\0") or start[:4] in (b"\x5c\x01\x00\x00",):
        return "not DICOM: NIfTI volume (load it with load_scan)"
    if start[:2] not in (b"\x08\x00", b"\x02\x00"):
        return "not DICOM: no DICM marker at byte 128"
    return None


def _parse_header(fp: Any, start: bytes, size: int, *, force: bool) -> _ParsedHeader:
    """Parse the tags of :data:`HEADER_TAGS`: the fast reader first, pydicom when it cannot.

    ``force`` (no DICM marker) goes straight to pydicom.  A missing transfer syntax is
    taken as DICOM's default, implicit VR little endian.
    """
    parsed = None if force else _parse_fast(fp, start, size)
    if parsed is None:
        parsed = _parse_with_pydicom(fp, force=force)
    if not parsed.transfer_syntax:
        parsed = replace(parsed, transfer_syntax=IMPLICIT_VR_LITTLE_ENDIAN)
    return parsed


def _parse_fast(fp: Any, start: bytes, size: int) -> _ParsedHeader | None:
    """:func:`~imaging.io.fastheader.read_fast_header`; None when the file needs pydicom."""
    try:
        ds = read_fast_header(fp, start, _WANTED)
    except Fallback:
        return None
    if not isinstance(ds, FastHeader):
        return None
    pos = ds.pixel_pos if ds.pixel_pos is not None else size
    return _ParsedHeader(ds, pos, ds.transfer_syntax, ds.media_class, ds.media_instance)


def _parse_with_pydicom(fp: Any, *, force: bool) -> _ParsedHeader:
    """pydicom's header read (stopping before the pixels), its warnings kept as the file's problems."""
    fp.seek(0)
    with warnings.catch_warnings(record=True) as caught:  # a problem of this file, not console noise
        warnings.simplefilter("always")
        ds = pydicom.dcmread(fp, stop_before_pixels=True, specific_tags=HEADER_TAGS, force=force)
    read_warnings = tuple(str(w.message) for w in caught)
    pos = fp.tell()
    meta = getattr(ds, "file_meta", None)

    def meta_value(name: str) -> str:
        return str(meta.get(name, "")) if meta is not None else ""

    return _ParsedHeader(ds, pos, meta_value("TransferSyntaxUID"), meta_value("MediaStorageSOPClassUID"),
                         meta_value("MediaStorageSOPInstanceUID"), read_warnings)


def _no_image_reason(parsed: _ParsedHeader, sop_class: str, size: int) -> str:
    """Why a header without Rows/Columns is skipped: cut short, or not an image at all."""
    ended_early = [w for w in parsed.warnings if "end of file" in w.lower()]
    if ended_early:  # pydicom gave up on the whole header
        return f"truncated DICOM file ({size} bytes): {ended_early[0]}"
    return f"DICOM without an image (SOP class {sop_class or 'unknown'})"


def _slice_header(fp: Any, parsed: _ParsedHeader, path: Path, size: int, *, sop_class: str,
                  rows: int, columns: int) -> SliceHeader:
    """The :class:`SliceHeader` of an image file: pixel location, geometry, identifying fields."""
    ds = parsed.ds
    problems: list[str] = [
        (f"truncated: file is truncated ({size} bytes; {w})" if "end of file" in w.lower() else f"header: {w}")
        for w in parsed.warnings
    ]
    offset, length = _pixel_location(fp, parsed, size, problems)
    n_frames = _int(ds, "NumberOfFrames", 1) or 1
    frames, iop, spacing, thickness = _geometry(ds, n_frames, problems)
    return SliceHeader(
        path=path,
        file_size=size,
        sop_class=sop_class,
        **_identifying_fields(ds, parsed.media_instance),
        orientation=iop,
        pixel_spacing=spacing,  # type: ignore[arg-type]
        slice_thickness=thickness,
        spacing_between_slices=_float(ds, "SpacingBetweenSlices"),
        rows=rows,
        columns=columns,
        **_pixel_format(ds),
        n_frames=n_frames,
        transfer_syntax=parsed.transfer_syntax,
        pixel_offset=offset,
        pixel_length=length,
        frames=frames,
        problems=tuple(problems),
    )


def _pixel_location(fp: Any, parsed: _ParsedHeader, size: int, problems: list[str]) -> tuple[int | None, int | None]:
    """Offset and length of uncompressed pixel bytes (None otherwise); notes a file cut short."""
    offset = length = None
    if has_pixel_element_header(parsed.transfer_syntax):
        offset, length, problem = locate_pixel_data(fp, parsed.pixel_pos, parsed.transfer_syntax, size)
        if problem and not any(p.startswith("truncated") for p in problems):
            problems.append(problem)
    if parsed.transfer_syntax not in UNCOMPRESSED_SYNTAXES:
        return None, None  # compressed/deflated/big endian: decode through pydicom
    return offset, length


def _geometry(ds: Any, n_frames: int, problems: list[str]) -> tuple[
        tuple[FrameHeader, ...], tuple[float, ...] | None, tuple[float, ...] | None, float | None]:
    """Frames (position and rescale), orientation, PixelSpacing (mm) and SliceThickness (mm).

    Multi-frame files take their per-frame and shared functional groups first (see
    :func:`_frames`), the top-level values where those are absent.
    """
    iop = _floats(_raw_value(ds, "ImageOrientationPatient"), 6)
    spacing = _floats(_raw_value(ds, "PixelSpacing"), 2)
    thickness = _float(ds, "SliceThickness")
    if n_frames > 1 or "PerFrameFunctionalGroupsSequence" in ds:
        frames, f_iop, f_spacing, f_thick = _frames(ds, n_frames, problems)
        return frames, f_iop or iop, f_spacing or spacing, f_thick or thickness
    frame = FrameHeader(
        0,
        _floats(_raw_value(ds, "ImagePositionPatient"), 3),  # type: ignore[arg-type]
        _rescale(ds, "RescaleSlope", 1.0, problems),
        _rescale(ds, "RescaleIntercept", 0.0, problems),
    )
    return (frame,), iop, spacing, thickness


def _image_type(ds: Any) -> tuple[str, ...]:
    """ImageType values, upper case (``()`` when absent)."""
    image_type = _raw_value(ds, "ImageType")
    if image_type is None:
        return ()
    if isinstance(image_type, str):
        return tuple(v.strip().upper() for v in image_type.split("\\"))
    return tuple(str(v).strip().upper() for v in image_type)


def _identifying_fields(ds: Any, media_instance: str) -> dict[str, Any]:
    """UIDs, patient, study, series and acquisition fields of :class:`SliceHeader`."""
    return {
        "sop_uid": _text(ds, "SOPInstanceUID") or media_instance,
        "study_uid": _text(ds, "StudyInstanceUID"),
        "series_uid": _text(ds, "SeriesInstanceUID"),
        "patient_id": _text(ds, "PatientID"),
        "study_date": _iso_date(_text(ds, "StudyDate")),
        "series_number": _int(ds, "SeriesNumber"),
        "series_description": _text(ds, "SeriesDescription"),
        "modality": _text(ds, "Modality").upper(),
        "image_type": _image_type(ds),
        "manufacturer": _text(ds, "Manufacturer"),
        "kernel": _text(ds, "ConvolutionKernel"),
        "instance_number": _int(ds, "InstanceNumber"),
        "frame_of_reference": _text(ds, "FrameOfReferenceUID"),
        "gantry_tilt": _float(ds, "GantryDetectorTilt"),
        "acquisition_number": _int(ds, "AcquisitionNumber"),
    }


def _pixel_format(ds: Any) -> dict[str, int]:
    """BitsAllocated, BitsStored, PixelRepresentation and SamplesPerPixel (with DICOM's defaults)."""
    bits_allocated = _int(ds, "BitsAllocated", 16) or 16
    return {
        "bits_allocated": bits_allocated,
        "bits_stored": _int(ds, "BitsStored", bits_allocated) or bits_allocated,
        "pixel_representation": _int(ds, "PixelRepresentation", 0) or 0,
        "samples_per_pixel": _int(ds, "SamplesPerPixel", 1) or 1,
    }
