"""Read a CT scan, from whatever form it arrives in, as a :class:`~imaging.common.volume.CTVolume`.

:func:`load_scan` accepts a series folder, a study folder (the series chosen by
:mod:`imaging.io.selection`, or ``series_uid``), a single multi-frame (enhanced CT) file,
a NIfTI / NRRD / MetaImage file, or a :class:`~imaging.io.series_info.SeriesInfo` from
:func:`~imaging.io.series.find_series`.  It always returns the canonical orientation
(:meth:`CTVolume.canonical`) with voxels in HU.

How DICOM slices become a volume
--------------------------------
* Slices are sorted by the projection of ImagePositionPatient on the slice normal;
  the spacing is the mean step along the normal and every step must agree with the
  most common step within ``max(0.05 mm, 5 %)`` (else :class:`IrregularSpacingError` naming the gap).
* RescaleSlope/Intercept are applied per slice (they may differ between slices);
  voxels are ``int16`` when every slope and intercept is a whole number and the result
  fits, else ``float32``.  PixelPaddingValue is left as is (as SimpleITK does).
* Uncompressed little-endian slices are read straight from the byte offset found
  while scanning the headers (no second header parse); compressed ones (JPEG 2000,
  JPEG lossless, JPEG-LS, RLE, deflate) are decoded with the fastest installed decoder
  (a pydicom plugin; GDCM through SimpleITK for JPEG lossless), many files at once in
  worker processes when CPUs are idle (:mod:`imaging.io.decode`;
  ``CHESTCT_DECODE_WORKERS=1`` keeps them in the calling process).
* Refused with a typed error naming the series: a modality other than CT, fewer than
  ``min_slices`` slices, mixed image sizes or orientations, two different instances at
  one position (identical copies are dropped with a note), a missing slice (the files on
  either side are named), truncated files, missing or non-positive PixelSpacing, missing
  positions, a RescaleSlope/RescaleIntercept that is not a number (or a zero slope), an
  intercept missing in some files only (missing in all: stored values taken as HU, noted).
* Gantry tilt (slices stacked off their normal) is handled by resampling with linear
  interpolation onto an orthogonal grid along the table (float32 HU; noted in
  ``info.notes``).
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import closing
from pathlib import Path
from typing import Iterator

import numpy as np

from imaging.io.series import find_series, require_one_series
from imaging.io.series_info import SeriesInfo, SliceRef, syntax_name
from imaging.io.decode import decode_files, decode_stored_values, decode_workers
from imaging.io.headers import SliceHeader
from imaging.common.errors import (
    InvalidArgumentError,
    IrregularSpacingError,
    NoDicomFoundError,
    NotCTVolumeError,
    PixelDecodeError,
)
from imaging.io.slices import GANTRY_TILT_TOLERANCE_DEG, orientation_axes
from imaging.common.volume import CTVolume, ScanInfo

__all__ = ["load_scan", "IMAGE_FILE_SUFFIXES", "MIN_VOLUME_SLICES"]

#: File name endings read with SimpleITK rather than as DICOM.
IMAGE_FILE_SUFFIXES: tuple[str, ...] = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
#: Fewest slices :func:`load_scan` accepts as a volume (spacing needs 3 to be checked).
MIN_VOLUME_SLICES: int = 3

_INT16 = np.iinfo(np.int16)


def load_scan(
    source: str | Path | SeriesInfo,
    *,
    series_uid: str | None = None,
    min_slices: int = MIN_VOLUME_SLICES,
) -> CTVolume:
    """Read a CT scan as a canonical :class:`CTVolume` in HU.

    Parameters
    ----------
    source : str, Path or SeriesInfo
        A series folder, a study folder, a multi-frame DICOM file, a NIfTI / NRRD /
        MHA file, or a series described by :func:`~imaging.io.series.find_series`.
    series_uid : str, optional
        Which series to read from a folder holding several (default: the only series,
        else the series chosen for the only study).
    min_slices : int
        Fewest slices accepted as a volume (default 3).

    Returns
    -------
    CTVolume
        ``hu`` (Z, Y, X) int16 (or float32 when the rescale is fractional or the scan
        was resampled for gantry tilt), spacing in mm, canonical LPS orientation, and
        ``info`` with the study facts (no names or birth dates) and notes.

    Raises
    ------
    InvalidArgumentError
        ``source`` is None (e.g. the ``.chosen`` of a study with no usable series).
    NoDicomFoundError
        Nothing readable at ``source``.
    NotCTVolumeError
        The series is not a CT volume (see module docstring).
    IrregularSpacingError
        A slice is missing or the spacing varies beyond tolerance.
    PixelDecodeError
        Pixels cannot be decoded or a file is truncated.

    Examples
    --------
    >>> import tempfile, os, numpy as np
    >>> from imaging.common.volume import CTVolume
    >>> import SimpleITK as sitk
    >>> path = os.path.join(tempfile.mkdtemp(), "ct.nrrd")
    >>> sitk.WriteImage(CTVolume(np.zeros((4, 5, 6), np.int16), (2.5, 0.7, 0.7)).to_sitk(), path)
    >>> v = load_scan(path)
    >>> v.shape, v.spacing_mm, v.hu.dtype
    ((4, 5, 6), (2.5, 0.7, 0.7), dtype('int16'))
    """
    if int(min_slices) < 2:
        raise ValueError(f"min_slices must be >= 2, got {min_slices}")
    if isinstance(source, SeriesInfo):
        if series_uid is not None and series_uid != source.series_uid:
            raise ValueError(f"series_uid {series_uid!r} differs from the SeriesInfo given ({source.series_uid!r})")
        return _load_series(source, min_slices=min_slices)
    if source is None:
        raise InvalidArgumentError(
            "source is None: no series was given. A study whose `.chosen` is None has no series that "
            "passes the selection rules; its `.reasons` (series UID -> why passed over) and "
            "`chestct inspect ROOT` say why. Pick a study with `study.chosen is not None`, or pass "
            "one of `study.series` (or a folder / series_uid) yourself."
        )
    if not isinstance(source, (str, Path)):
        raise TypeError(f"source must be a path or a SeriesInfo, got {type(source).__name__}")
    path = Path(source)
    if not path.exists():
        raise NoDicomFoundError(f"source {str(path)!r} does not exist")
    if path.is_file() and path.name.lower().endswith(IMAGE_FILE_SUFFIXES):
        return _load_image_file(path)
    catalog = find_series(path)
    series = require_one_series(catalog, series_uid=series_uid)
    return _load_series(series, min_slices=min_slices)


# ----------------------------------------------------------------------------- files


def _as_hu_dtype(array: np.ndarray) -> np.ndarray:
    """int16 when every value is a whole number in range, else float32."""
    if array.dtype == np.int16:
        return array
    if array.size == 0:
        return array.astype(np.int16)
    lo, hi = array.min(), array.max()
    if np.issubdtype(array.dtype, np.integer):
        if lo >= _INT16.min and hi <= _INT16.max:
            return array.astype(np.int16)
        return array.astype(np.float32)
    if lo >= _INT16.min and hi <= _INT16.max and np.all(np.mod(array, 1) == 0):
        return array.astype(np.int16)
    return array.astype(np.float32)


def _nifti_expected_bytes(header: bytes) -> int | None:
    """Bytes a complete NIfTI-1/2 file holds (vox_offset + voxel data); None if not NIfTI."""
    import struct

    for endian in "<>":
        if len(header) >= 348 and struct.unpack_from(endian + "i", header, 0)[0] == 348:
            dim = struct.unpack_from(endian + "8h", header, 40)
            bitpix = struct.unpack_from(endian + "h", header, 72)[0]
            offset = int(struct.unpack_from(endian + "f", header, 108)[0])
            break
        if len(header) >= 540 and struct.unpack_from(endian + "i", header, 0)[0] == 540:
            bitpix = struct.unpack_from(endian + "h", header, 14)[0]
            dim = struct.unpack_from(endian + "8q", header, 16)
            offset = struct.unpack_from(endian + "q", header, 168)[0]
            break
    else:
        return None
    if not 1 <= dim[0] <= 7 or bitpix <= 0 or offset < 348:  # offset 0: a .hdr/.img pair
        return None
    return offset + int(np.prod(dim[1 : dim[0] + 1])) * bitpix // 8


def _check_nifti_complete(path: Path) -> None:
    """Raise PixelDecodeError when a NIfTI file ends before its voxel data does.

    SimpleITK (ITK's NIfTI reader) silently zero-fills a truncated ``.nii`` or
    ``.nii.gz``; MetaImage and NRRD readers already raise.
    """
    import gzip
    import os
    import zlib

    gz = path.name.lower().endswith(".gz")
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            expected = _nifti_expected_bytes(f.read(540))
            if expected is None:
                return
            if not gz:
                size = os.path.getsize(path)
            else:
                with open(path, "rb") as raw:  # gzip trailer: uncompressed size mod 2**32
                    raw.seek(-4, os.SEEK_END)
                    if int.from_bytes(raw.read(4), "little") == expected % 2**32:
                        return
                f.seek(0)
                size = 0
                while size < expected and (chunk := f.read(1 << 22)):
                    size += len(chunk)
    except (EOFError, OSError, zlib.error) as exc:  # gzip stream cut short or corrupt
        raise PixelDecodeError(f"{path}: NIfTI file is truncated or corrupt ({exc}). Copy the file again.") from exc
    if size < expected:
        raise PixelDecodeError(
            f"{path}: NIfTI file is truncated: {size} of {expected} bytes of header and voxel data present. "
            "Copy the file again."
        )


def _load_image_file(path: Path) -> CTVolume:
    import SimpleITK as sitk

    if path.name.lower().endswith((".nii", ".nii.gz")):
        _check_nifti_complete(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise PixelDecodeError(f"{path}: SimpleITK cannot read this image file: {exc}") from exc
    if image.GetDimension() != 3:
        raise NotCTVolumeError(f"{path}: a {image.GetDimension()}-D image, not a 3-D CT volume")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise NotCTVolumeError(f"{path}: {image.GetNumberOfComponentsPerPixel()} components per voxel, not a CT volume")
    if image.GetSize()[2] < 2:
        raise NotCTVolumeError(f"{path}: a single slice ({image.GetSize()}), not a volume")
    info = ScanInfo(source=str(path), notes=("read with SimpleITK; voxels assumed to be HU",))
    volume = CTVolume.from_sitk(image, info)
    volume = volume.with_hu(_as_hu_dtype(volume.hu))
    return volume.canonical()


# ----------------------------------------------------------------------------- DICOM


def _label(s: SeriesInfo) -> str:
    where = s.folder
    return f"series {s.series_uid}" + (f" in {where}" if where else "")


def _check_series(s: SeriesInfo, min_slices: int) -> list[str]:
    notes: list[str] = []
    label = _label(s)
    blocking = [b for b in s.blocking if "occupied by two different instances" not in b]
    if blocking:
        first = blocking[0]
        message = f"{label}: {'; '.join(blocking)}"
        if first.startswith("gap of"):
            raise IrregularSpacingError(message + ". Re-export the complete series.")
        if "truncated" in first:
            raise PixelDecodeError(message + ". Copy the files again from the archive.")
        raise NotCTVolumeError(message + ". Choose another series (see `chestct inspect`).")
    if s.modality and s.modality != "CT":
        raise NotCTVolumeError(f"{label}: modality {s.modality}, not CT")
    if not s.modality:
        notes.append("Modality missing: assumed CT")
    if {"LOCALIZER", "SCOUT", "TOPOGRAM"} & set(s.image_type):
        raise NotCTVolumeError(f"{label}: a localizer/scout series (ImageType {'/'.join(s.image_type)}), not a volume")
    if s.n_slices < min_slices:
        raise NotCTVolumeError(
            f"{label}: {s.n_slices} slice(s), fewer than min_slices={min_slices}: too short to be a volume"
        )
    if not s.slices:
        raise NotCTVolumeError(f"{label}: no slice headers (use find_series to describe the series)")
    if s.slices[0].header.pixel_spacing is None:
        raise NotCTVolumeError(f"{label}: PixelSpacing missing, voxel size unknown (volumes in mL impossible)")
    return notes


def _raw_dtype(h: SliceHeader) -> np.dtype:
    kind = "i" if h.pixel_representation == 1 else "u"
    if h.bits_allocated not in (8, 16, 32):
        raise PixelDecodeError(f"{h.path}: BitsAllocated {h.bits_allocated} not supported")
    return np.dtype(f"<{kind}{h.bits_allocated // 8}")


def _fix_bits(raw: np.ndarray, h: SliceHeader) -> np.ndarray:
    """Mask unused high bits (unsigned) or sign-extend from BitsStored (signed)."""
    if h.bits_stored >= h.bits_allocated:
        return raw
    shift = h.bits_allocated - h.bits_stored
    if h.pixel_representation == 1:
        return (raw << shift) >> shift
    return raw & np.array((1 << h.bits_stored) - 1, dtype=raw.dtype)


#: Packages that provide pydicom's decoders for compressed transfer syntaxes.
_DECODER_PACKAGES = "pylibjpeg, pylibjpeg-openjpeg, pylibjpeg-libjpeg and pylibjpeg-rle"


def _decode_error(h: SliceHeader, exc: BaseException, read_warnings: list[str]) -> PixelDecodeError:
    """The error for pixels pydicom could not decode, naming the real cause.

    A file that ends early (pydicom warned "End of file reached", or found no Pixel Data
    although the header describes an image) is reported as truncated with its size; the
    decoder packages are suggested only when no decoder for the syntax is installed.
    """
    import os

    from pydicom.pixels import get_decoder

    where = f"{h.path}: cannot decode pixel data ({syntax_name(h.transfer_syntax)})"
    try:
        size = os.path.getsize(h.path)
    except OSError:
        size = None
    ended_early = any("end of file" in w.lower() for w in read_warnings) or "no 'Pixel Data'" in str(exc)
    if ended_early or (h.pixel_offset is not None and size is not None and size < h.pixel_offset):
        return PixelDecodeError(f"{where}: file is truncated ({size} bytes). Copy the file again from the archive.")
    try:
        available = get_decoder(h.transfer_syntax).is_available
    except NotImplementedError:  # no decoder exists for this syntax at all
        available = False
    if not available:
        return PixelDecodeError(f"{where}: {exc}. No decoder for this syntax is installed: install {_DECODER_PACKAGES}.")
    return PixelDecodeError(f"{where}: {exc}")


def _vanished(h: SliceHeader) -> PixelDecodeError:
    return PixelDecodeError(f"{h.path}: file vanished since the folder was scanned (moved or deleted while reading)")


def _read_frames(h: SliceHeader) -> np.ndarray:
    """Stored pixel values of every frame of one file, shape (frames, rows, columns)."""
    n = max(1, h.n_frames)
    count = n * h.rows * h.columns
    if _read_directly(h):
        dtype = _raw_dtype(h)
        if h.pixel_length < count * dtype.itemsize:
            raise PixelDecodeError(
                f"{h.path}: PixelData holds {h.pixel_length} bytes, {count * dtype.itemsize} expected "
                f"for {n} frame(s) of {h.rows}x{h.columns} at {h.bits_allocated} bits"
            )
        try:
            raw = np.fromfile(h.path, dtype=dtype, count=count, offset=h.pixel_offset)
        except FileNotFoundError as exc:
            raise _vanished(h) from exc
        except OSError as exc:
            raise PixelDecodeError(f"{h.path}: cannot read pixel data: {exc}") from exc
        if raw.size != count:
            raise PixelDecodeError(f"{h.path}: truncated, {raw.size} of {count} pixel values present")
        return _fix_bits(raw, h).reshape(n, h.rows, h.columns)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            arr = decode_stored_values(h)
        except FileNotFoundError as exc:
            raise _vanished(h) from exc
        except (RuntimeError, NotImplementedError, ValueError, OSError, EOFError, KeyError, AttributeError,
                TypeError) as exc:
            raise _decode_error(h, exc, [str(w.message) for w in caught]) from exc
    return _as_frames(h, arr)


def _as_frames(h: SliceHeader, arr: np.ndarray) -> np.ndarray:
    """Decoded values of one file as (frames, rows, columns), checked against its header."""
    arr = np.asarray(arr)
    if arr.shape[-2:] != (h.rows, h.columns):
        raise PixelDecodeError(f"{h.path}: decoded shape {arr.shape} does not match {h.rows}x{h.columns}")
    return arr.reshape(-1, h.rows, h.columns)


def _read_directly(h: SliceHeader) -> bool:
    """True when the file's pixels are read straight from disk (uncompressed little endian)."""
    return h.pixel_offset is not None and h.pixel_length is not None


def _nothing() -> Iterator[np.ndarray]:
    yield from ()


def _frames_of_files(headers: list[SliceHeader], decoded: dict[Path, np.ndarray]) -> Iterator[np.ndarray]:
    """Stored values of each file, (frames, rows, columns), in the order of ``headers``.

    Files in ``decoded`` are taken from it (never decoded again).  Files pydicom must
    decode are decoded in worker processes when there are enough of them
    (:mod:`imaging.io.decode`); a file a worker could not decode is decoded again here by
    :func:`_read_frames`, whose error names it.  Every other file is read here.
    """
    pending = [h for h in headers if h.path not in decoded and not _read_directly(h)]
    workers = decode_workers(len(pending))
    in_workers = {h.path for h in pending} if workers > 1 else set()
    with closing(decode_files(pending, workers) if in_workers else _nothing()) as results:
        for h in headers:
            if h.path in decoded:
                yield decoded.pop(h.path)
            elif h.path in in_workers:
                values = next(results)
                yield _read_frames(h) if values is None else _as_frames(h, values)
            else:
                yield _read_frames(h)


def _rescale_into(out: np.ndarray, raw: np.ndarray, slope: float, intercept: float) -> bool:
    """Write HU of one slice into ``out``; False when int16 would overflow."""
    if out.dtype == np.int16:
        lo, hi = int(raw.min()), int(raw.max())
        ends = (lo * slope + intercept, hi * slope + intercept)
        if min(ends) < _INT16.min or max(ends) > _INT16.max:
            return False
        if slope == 1:
            np.add(raw, np.int32(intercept), out=out, casting="unsafe")
        else:
            out[...] = raw.astype(np.int32) * int(slope) + int(intercept)
        return True
    out[...] = raw.astype(np.float64) * slope + intercept
    return True


def _read_pixels(s: SeriesInfo, refs: tuple[SliceRef, ...],
                 decoded: dict[Path, np.ndarray] | None = None) -> tuple[np.ndarray, list[str]]:
    """HU of ``refs``; ``decoded`` holds files already decoded (taken, never decoded again)."""
    decoded = {} if decoded is None else decoded
    notes: list[str] = []
    rescales = [(r.frame.slope, r.frame.intercept) for r in refs]
    whole = all(float(a).is_integer() and float(b).is_integer() for a, b in rescales)
    hu = np.empty((len(refs), s.rows, s.columns), dtype=np.int16 if whole else np.float32)
    by_file: dict[Path, list[tuple[int, SliceRef]]] = defaultdict(list)
    for k, r in enumerate(refs):
        by_file[r.header.path].append((k, r))
    with closing(_frames_of_files([items[0][1].header for items in by_file.values()], decoded)) as files:
        for (path, items), frames in zip(by_file.items(), files):
            for k, r in items:
                if r.frame.frame >= len(frames):
                    raise PixelDecodeError(f"{path}: frame {r.frame.frame} requested, {len(frames)} decoded")
                raw = frames[r.frame.frame]
                if not _rescale_into(hu[k], raw, r.frame.slope, r.frame.intercept):
                    hu = hu.astype(np.float32)
                    notes.append("HU outside the int16 range: stored as float32")
                    _rescale_into(hu[k], raw, r.frame.slope, r.frame.intercept)
    if not whole:
        notes.append("fractional rescale slope/intercept: HU stored as float32")
    return hu, notes


def _drop_identical_duplicates(
    s: SeriesInfo, decoded: dict[Path, np.ndarray]
) -> tuple[tuple[SliceRef, ...], list[str]]:
    """Slices with same-position copies of identical pixels dropped.

    Every file decoded for the comparison is kept in ``decoded`` (path -> frames) so
    that :func:`_read_pixels` does not decode it a second time.
    """
    if not s.duplicate_slices:
        return s.slices, []

    def frames(r: SliceRef) -> np.ndarray:
        path = r.header.path
        if path not in decoded:
            decoded[path] = _read_frames(r.header)
        return decoded[path]

    drop: set[int] = set()
    for a, b in s.duplicate_slices:
        pa = frames(a)[a.frame.frame] * a.frame.slope + a.frame.intercept
        pb = frames(b)[b.frame.frame] * b.frame.slope + b.frame.intercept
        if not np.array_equal(pa, pb):
            pos = a.frame.position
            raise NotCTVolumeError(
                f"{_label(s)}: {a.header.path.name} and {b.header.path.name} lie at the same position "
                f"{pos} with different pixels (two acquisitions in one series); split the series "
                "or choose another"
            )
        drop.add(id(b))
    kept = tuple(r for r in s.slices if id(r) not in drop)
    return kept, [f"{len(drop)} duplicated slice(s) with identical pixels dropped"]


def _resample_tilted(hu: np.ndarray, refs: tuple[SliceRef, ...], axes: np.ndarray, pixel_spacing: tuple[float, float]) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray, tuple[float, float, float]]:
    """Resample a gantry-tilted (sheared) stack onto an orthogonal grid along the table."""
    from scipy import ndimage

    p0 = np.asarray(refs[0].frame.position, dtype=np.float64)
    pn = np.asarray(refs[-1].frame.position, dtype=np.float64)
    n, rows, cols = hu.shape
    step = (pn - p0) / (n - 1)
    dy, dx = pixel_spacing
    row, col = axes[:, 0], axes[:, 1]
    e_x = row
    e_z = step - (step @ e_x) * e_x
    e_z /= np.linalg.norm(e_z)
    e_y = np.cross(e_z, e_x)
    target_axes = np.column_stack([e_x, e_y, e_z])
    source = np.column_stack([dx * row, dy * col, step])  # index (i, j, k) -> LPS offset
    corners = np.array([[i, j, k] for i in (0, cols - 1) for j in (0, rows - 1) for k in (0, n - 1)], float)
    in_target = (corners @ source.T) @ target_axes  # offsets expressed along e_x, e_y, e_z
    lo, hi = in_target.min(axis=0), in_target.max(axis=0)
    dz = float(step @ e_z)
    spacing_xyz = np.array([dx, dy, dz])
    size = np.floor((hi - lo) / spacing_xyz + 1e-6).astype(int) + 1
    origin = p0 + target_axes @ lo
    # target index (i', j', k') -> source index (i, j, k)
    to_source = np.linalg.solve(source, target_axes @ np.diag(spacing_xyz))
    offset = np.linalg.solve(source, origin - p0)
    perm = [2, 1, 0]  # (x, y, z) <-> array (k, j, i)
    matrix = to_source[np.ix_(perm, perm)]
    out = ndimage.affine_transform(
        hu.astype(np.float32), matrix, offset=offset[perm], output_shape=tuple(size[perm]),
        order=1, mode="constant", cval=float(hu.min()),
    )
    return out, tuple(origin), target_axes, (dz, dy, dx)


def _load_series(s: SeriesInfo, *, min_slices: int) -> CTVolume:
    notes = _check_series(s, min_slices)
    decoded: dict[Path, np.ndarray] = {}
    refs, dup_notes = _drop_identical_duplicates(s, decoded)
    notes += dup_notes
    if len(refs) < min_slices:
        raise NotCTVolumeError(f"{_label(s)}: {len(refs)} distinct slice(s), fewer than min_slices={min_slices}")
    hu, pixel_notes = _read_pixels(s, refs, decoded)
    notes += pixel_notes
    first = refs[0].header
    iop = first.orientation
    if iop is None:
        raise NotCTVolumeError(f"{_label(s)}: ImageOrientationPatient missing")
    axes = orientation_axes(iop)
    dy, dx = first.pixel_spacing  # type: ignore[misc]
    if s.tilt_deg > GANTRY_TILT_TOLERANCE_DEG:
        hu, origin, direction, spacing = _resample_tilted(hu, refs, axes, (dy, dx))
        notes.append(f"gantry tilt of {s.tilt_deg:.1f} degrees corrected by linear resampling (float32 HU)")
    else:
        positions = np.array([r.frame.position for r in refs], dtype=np.float64)
        normal = axes[:, 2]
        proj = positions @ normal
        spacing_z = float((proj[-1] - proj[0]) / (len(proj) - 1))  # len >= min_slices >= 2
        origin = tuple(positions[0])
        direction = axes
        spacing = (spacing_z, float(dy), float(dx))
    notes += [p for p in s.problems if p not in notes]
    info = ScanInfo(
        patient_id=s.patient_id or None,
        study_uid=s.study_uid,
        study_date=s.study_date,
        series_uid=s.series_uid,
        series_number=s.series_number,
        series_description=s.series_description or None,
        modality=s.modality or None,
        image_type=s.image_type,
        kernel=s.kernel or None,
        manufacturer=s.manufacturer or None,
        slice_thickness_mm=s.slice_thickness_mm,
        transfer_syntax=s.transfer_syntax,
        source=str(s.folder) if s.folder else None,
        notes=tuple(notes),
    )
    return CTVolume(hu, spacing, origin, direction, info).canonical()
