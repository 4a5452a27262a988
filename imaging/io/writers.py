"""Write volumes as standards-valid DICOM CT series and masks or volumes as NIfTI.

DICOM (:func:`write_dicom_series`): one CT Image Storage file per slice, stored values
``HU + 1024`` (RescaleIntercept -1024, RescaleSlope 1, unsigned 12-bit in 16, HU
outside -1024..3071 clipped), ImagePositionPatient / ImageOrientationPatient from the
volume's geometry (any direction, not only axial), PixelSpacing, SliceThickness,
ConvolutionKernel, ImageType.  Uncompressed (explicit or implicit VR little endian),
RLE lossless (pydicom's own encoder) or JPEG 2000 lossless (pylibjpeg-openjpeg).

UIDs come from :func:`pydicom.uid.generate_uid` with deterministic entropy (patient,
date, series number, description, for a series also a digest of its pixels and
geometry, and a draw from ``rng`` when one is given), so the same call gives the same
files (a regenerated sample trial is byte-identical) while two different volumes, such
as two visits written with the same date, never share an instance UID.
No patient name, birth date or other identifying attribute beyond ``patient_id`` is
written (type-2 attributes are present and empty).  Text is Latin-1 (``ISO_IR 100``),
or UTF-8 (``ISO_IR 192``) when a value needs it; values that would make an invalid
attribute (a kernel over 16 characters, a malformed time or UID) are refused.
"""

from __future__ import annotations

import io
import os
from datetime import date
from pathlib import Path
from typing import Sequence

import numpy as np

from imaging.common.files import atomic_write, atomic_write_bytes
from imaging.common.volume import CTVolume

__all__ = ["write_dicom_series", "write_localizer", "write_nifti", "RESCALE_INTERCEPT", "SUPPORTED_TRANSFER_SYNTAXES"]

#: Stored value = HU - RESCALE_INTERCEPT.
RESCALE_INTERCEPT: int = -1024
_MAX_STORED = 4095  # 12 bits stored

#: Transfer syntaxes :func:`write_dicom_series` can write.
SUPPORTED_TRANSFER_SYNTAXES: dict[str, str] = {
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.5": "RLE Lossless",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Image Compression (Lossless Only)",
}
_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def _iso_to_da(value: str, name: str) -> str:
    try:
        return date.fromisoformat(value).strftime("%Y%m%d")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an ISO date YYYY-MM-DD, got {value!r}") from exc


def _ds(value: float) -> str:
    """A DICOM DS string (at most 16 characters)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    if len(text) > 16:
        text = f"{value:.8g}"
    return text


def _uid(*parts: object) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["chestct"] + [str(p) for p in parts])


def _stored(hu: np.ndarray) -> np.ndarray:
    arr = np.rint(np.asarray(hu, dtype=np.float64)) if np.asarray(hu).dtype.kind == "f" else np.asarray(hu, dtype=np.int32)
    if arr.dtype.kind == "f" and np.isnan(arr).any():  # NaN would be cast to an arbitrary stored value
        raise ValueError(f"volume holds {int(np.isnan(arr).sum())} NaN HU value(s); fill them (e.g. with -1024) first")
    return np.clip(arr - RESCALE_INTERCEPT, 0, _MAX_STORED).astype(np.uint16)


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _base_dataset(
    *, patient_id: str, study_uid: str, series_uid: str, frame_uid: str, study_date: str, study_time: str,
    series_number: int, series_description: str, kernel: str, image_type: Sequence[str], manufacturer: str,
    rows: int, columns: int, pixel_spacing: tuple[float, float], orientation: Sequence[float],
    slice_thickness_mm: float | None,
):
    from pydicom.dataset import Dataset

    da = _iso_to_da(study_date, "study_date")
    ds = Dataset()
    texts = (patient_id, series_description, kernel, manufacturer)
    # Latin-1 when it can hold every text, else UTF-8: never '?' for letters it lacks
    ds.SpecificCharacterSet = "ISO_IR 100" if all(_latin1(t) for t in texts) else "ISO_IR 192"
    ds.ImageType = list(image_type)
    ds.SOPClassUID = _CT_IMAGE_STORAGE
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = da
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = study_time
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = manufacturer
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "CT CHEST"
    ds.SeriesDescription = series_description
    ds.ManufacturerModelName = "synthetic"
    ds.PatientName = ""
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "" if slice_thickness_mm is None else _ds(slice_thickness_mm)  # type 2
    ds.KVP = "120"
    ds.ConvolutionKernel = kernel
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = int(series_number)
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = [_ds(v) for v in orientation]
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = int(rows)
    ds.Columns = int(columns)
    ds.PixelSpacing = [_ds(pixel_spacing[0]), _ds(pixel_spacing[1])]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = "-600"
    ds.WindowWidth = "1500"
    ds.RescaleIntercept = str(RESCALE_INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    return ds


def _save(ds, pixels: np.ndarray, path: Path, transfer_syntax: str) -> Path:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless, RLELossless

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    pixels = np.ascontiguousarray(pixels, dtype=np.uint16)
    if transfer_syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        meta.TransferSyntaxUID = transfer_syntax
        ds.PixelData = pixels.tobytes()
        ds["PixelData"].VR = "OW"
    elif transfer_syntax == RLELossless:
        ds.compress(RLELossless, pixels, encoding_plugin="pydicom", generate_instance_uid=False)
    elif transfer_syntax == JPEG2000Lossless:
        ds.compress(JPEG2000Lossless, pixels, encoding_plugin="pylibjpeg", generate_instance_uid=False)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return atomic_write_bytes(path, buffer.getvalue())


def _check_values(**named: tuple[str, object]) -> None:
    """Refuse argument values that would make an invalid DICOM attribute.

    ``named`` maps an argument name to ``(VR, value)``; a list or tuple value is
    checked item by item (a multi-valued attribute).  A backslash inside one value
    would split it into several values on reading, so it is refused too.
    """
    from pydicom import config
    from pydicom.valuerep import validate_value

    for name, (vr, value) in named.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(item, str):
                raise ValueError(f"{name} must be a string, got {item!r}")
            try:
                if "\\" in item:
                    raise ValueError("a backslash separates DICOM values")
                validate_value(vr, item, config.RAISE)
            except ValueError as exc:
                raise ValueError(f"{name} {item!r} is not a valid DICOM {vr} value: {exc}") from None


def _resolve_uids(patient_id: str, study_uid: str | None, series_uid: str | None, study_date: str,
                  series_number: int, series_description: str, kernel: str, rng: np.random.Generator | None,
                  content: str) -> tuple[str, str]:
    salt = "" if rng is None else str(int(rng.integers(0, 2**63 - 1)))
    study = study_uid or _uid("study", patient_id, study_date, salt)
    series = series_uid or _uid("series", study, series_number, series_description, kernel, salt, content)
    return study, series


def _content_digest(stored: np.ndarray, volume: CTVolume) -> str:
    """Hex digest of the stored pixels and the geometry (tells two volumes apart in UIDs)."""
    import hashlib

    h = hashlib.blake2b(np.ascontiguousarray(stored).view(np.uint8), digest_size=16)
    h.update(repr((stored.shape, tuple(volume.spacing_mm), tuple(volume.origin_mm),
                   np.asarray(volume.direction, dtype=float).round(9).tolist())).encode())
    return h.hexdigest()


def _check_common(patient_id: str, series_number: int, transfer_syntax: str) -> None:
    if not isinstance(patient_id, str) or not patient_id or len(patient_id) > 64 or "\\" in patient_id:
        raise ValueError(f"patient_id must be a non-empty string of at most 64 characters without a backslash, got {patient_id!r}")
    if not isinstance(series_number, (int, np.integer)) or not 0 <= series_number < 2**31:
        raise ValueError(f"series_number must be an integer from 0 to 2**31 - 1, got {series_number!r}")
    if transfer_syntax not in SUPPORTED_TRANSFER_SYNTAXES:
        raise ValueError(
            f"transfer_syntax {transfer_syntax!r} is not supported; use one of "
            + ", ".join(f"{k} ({v})" for k, v in SUPPORTED_TRANSFER_SYNTAXES.items())
        )


def write_dicom_series(
    volume: CTVolume,
    folder: str | os.PathLike[str],
    *,
    patient_id: str,
    study_uid: str | None = None,
    series_uid: str | None = None,
    study_date: str = "2020-02-01",
    study_time: str = "093000",
    series_number: int = 1,
    series_description: str = "CHEST",
    kernel: str = "STANDARD",
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    slice_thickness_mm: float | None = None,
    manufacturer: str = "chestct phantom",
    transfer_syntax: str = "1.2.840.10008.1.2.1",
    rng: np.random.Generator | None = None,
) -> list[Path]:
    """Write ``volume`` as a DICOM CT Image Storage series, one file per slice.

    Parameters
    ----------
    volume : CTVolume
        Voxels in HU, ``(Z, Y, X)``; slice ``k`` becomes instance ``k + 1`` placed at
        ``volume.index_to_lps([k, 0, 0])``; rows run along index ``y``, columns along ``x``.
    folder : path-like
        Created when missing; files are ``0001.dcm``, ``0002.dcm``, … (written atomically).
    patient_id : str
        PatientID (the only patient attribute written).
    study_uid, series_uid : str, optional
        Derived deterministically when omitted (see module docstring).
    study_date : str
        ISO ``YYYY-MM-DD``; also series, acquisition and content date.
    study_time : str
        DICOM TM ``HHMMSS``.
    series_number : int
    series_description, kernel : str
        SeriesDescription and ConvolutionKernel.
    image_type : sequence of str, or str
        ImageType values (a string is split at backslashes: ``"ORIGINAL\\PRIMARY\\AXIAL"``).
    slice_thickness_mm : float, optional
        Defaults to ``volume.info.slice_thickness_mm``, else the slice spacing.
    manufacturer : str
    transfer_syntax : str
        UID from :data:`SUPPORTED_TRANSFER_SYNTAXES` (default explicit VR little endian;
        ``pydicom.uid.RLELossless`` and ``pydicom.uid.JPEG2000Lossless`` compress).
    rng : numpy.random.Generator, optional
        Mixed into the entropy of generated UIDs (still reproducible for a seeded rng).

    Returns
    -------
    list of Path
        The files written, in slice order.

    Raises
    ------
    ValueError
        On a bad argument (message names it).

    Examples
    --------
    >>> import tempfile, numpy as np, pydicom
    >>> from imaging.common.volume import CTVolume
    >>> v = CTVolume(np.full((3, 8, 8), -1000, np.int16), (2.5, 0.7, 0.7))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     files = write_dicom_series(v, d, patient_id="P01")
    ...     ds = pydicom.dcmread(files[0])
    ...     len(files), ds.Modality, int(ds.pixel_array[0, 0]) + int(ds.RescaleIntercept)
    (3, 'CT', -1000)
    """
    if not isinstance(volume, CTVolume):
        raise ValueError(f"volume must be a CTVolume, got {type(volume).__name__}")
    _check_common(patient_id, series_number, transfer_syntax)
    image_type = image_type.split("\\") if isinstance(image_type, str) else list(image_type)
    _check_values(study_time=("TM", study_time), series_description=("LO", series_description), kernel=("SH", kernel),
                  image_type=("CS", image_type), manufacturer=("LO", manufacturer),
                  **{k: ("UI", v) for k, v in (("study_uid", study_uid), ("series_uid", series_uid)) if v is not None})
    thickness = slice_thickness_mm if slice_thickness_mm is not None else (
        volume.info.slice_thickness_mm if volume.info.slice_thickness_mm is not None else volume.spacing_mm[0])
    if not (np.isfinite(float(thickness)) and float(thickness) > 0):
        raise ValueError(f"slice_thickness_mm must be positive and finite, got {thickness}")
    stored = _stored(volume.hu)
    study_uid, series_uid = _resolve_uids(patient_id, study_uid, series_uid, study_date, series_number,
                                          series_description, kernel, rng, _content_digest(stored, volume))
    d = volume.direction
    orientation = [*d[:, 0], *d[:, 1]]
    Z, Y, X = volume.shape
    sz, sy, sx = volume.spacing_mm
    ds = _base_dataset(
        patient_id=patient_id, study_uid=study_uid, series_uid=series_uid, frame_uid=_uid("frame", study_uid),
        study_date=study_date, study_time=study_time, series_number=series_number,
        series_description=series_description, kernel=kernel, image_type=image_type, manufacturer=manufacturer,
        rows=Y, columns=X, pixel_spacing=(sy, sx), orientation=orientation, slice_thickness_mm=float(thickness),
    )
    ds.SpacingBetweenSlices = _ds(sz)
    positions = volume.index_to_lps(np.stack([np.arange(Z), np.zeros(Z), np.zeros(Z)], axis=1))
    normal = d[:, 2]
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for k in range(Z):
        ds.SOPInstanceUID = _uid("instance", series_uid, k)
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(c) for c in positions[k]]
        ds.SliceLocation = _ds(float(positions[k] @ normal))
        files.append(_save(ds, stored[k], out_dir / f"{k + 1:04d}.dcm", transfer_syntax))
        if "PixelData" in ds:
            del ds.PixelData
    return files


def write_localizer(
    volume: CTVolume,
    folder: str | os.PathLike[str],
    *,
    patient_id: str,
    study_uid: str,
    series_uid: str | None = None,
    study_date: str = "2020-02-01",
    study_time: str = "092900",
    series_number: int = 1,
    series_description: str = "TOPOGRAM",
    transfer_syntax: str = "1.2.840.10008.1.2.1",
) -> Path:
    """Write a frontal scout (localizer) image of a canonical volume: a single CT image,
    ImageType ``ORIGINAL\\PRIMARY\\LOCALIZER``, the mean HU along the antero-posterior
    axis (a projection radiograph look), coronal orientation, superior at the top.

    Parameters
    ----------
    volume : CTVolume
        Canonical orientation (identity direction) expected.
    folder : path-like
    patient_id, study_uid : str
    series_uid : str, optional
    study_date, study_time, series_number, series_description, transfer_syntax
        As in :func:`write_dicom_series`.

    Returns
    -------
    Path
        The single file written (``0001.dcm``).
    """
    if not isinstance(volume, CTVolume):
        raise ValueError(f"volume must be a CTVolume, got {type(volume).__name__}")
    if not np.allclose(volume.direction, np.eye(3), atol=1e-6):
        raise ValueError("write_localizer needs a canonical volume (identity direction); call volume.canonical() first")
    _check_common(patient_id, series_number, transfer_syntax)
    _check_values(study_uid=("UI", study_uid), study_time=("TM", study_time), series_description=("LO", series_description),
                  **{"series_uid": ("UI", series_uid)} if series_uid is not None else {})
    series_uid = series_uid or _uid("localizer", study_uid, series_number)
    Z, Y, X = volume.shape
    sz, sy, sx = volume.spacing_mm
    projection = volume.hu.astype(np.float32).mean(axis=1)[::-1]  # (Z, X), superior first
    ds = _base_dataset(
        patient_id=patient_id, study_uid=study_uid, series_uid=series_uid, frame_uid=_uid("frame", study_uid),
        study_date=study_date, study_time=study_time, series_number=series_number,
        series_description=series_description, kernel="LOCALIZER", image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
        manufacturer="chestct phantom", rows=Z, columns=X, pixel_spacing=(sz, sx),
        orientation=[1.0, 0.0, 0.0, 0.0, 0.0, -1.0], slice_thickness_mm=None,
    )
    x0, y0, z0 = volume.origin_mm
    ds.ImagePositionPatient = [_ds(x0), _ds(y0 + (Y - 1) * sy / 2), _ds(z0 + (Z - 1) * sz)]
    ds.SOPInstanceUID = _uid("instance", series_uid, 0)
    ds.InstanceNumber = 1
    return _save(ds, _stored(projection), Path(folder) / "0001.dcm", transfer_syntax)


def write_nifti(
    volume_or_array: CTVolume | np.ndarray,
    path: str | os.PathLike[str],
    *,
    reference: CTVolume | None = None,
) -> Path:
    """Write a volume, or a mask in a volume's geometry, as NIfTI (``.nii`` / ``.nii.gz``).

    Parameters
    ----------
    volume_or_array : CTVolume or (Z, Y, X) ndarray
        A volume (HU written with its dtype), or an array such as a label mask
        (bool is written as uint8).
    path : path-like
        Output file; must end in ``.nii`` or ``.nii.gz``.  Written atomically.
    reference : CTVolume, optional
        Geometry for an array (required for an array, ignored for a volume).

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, SimpleITK as sitk
    >>> from imaging.common.volume import CTVolume
    >>> v = CTVolume(np.zeros((4, 5, 6), np.int16), (3.0, 0.8, 0.8), (10.0, -5.0, 2.0))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = write_nifti(np.ones((4, 5, 6), bool), pathlib.Path(d) / "m.nii.gz", reference=v)
    ...     img = sitk.ReadImage(str(p))
    ...     img.GetSize(), [round(s, 3) for s in img.GetSpacing()], img.GetPixelIDTypeAsString()
    ((6, 5, 4), [0.8, 0.8, 3.0], '8-bit unsigned integer')
    """
    import SimpleITK as sitk

    out = Path(path)
    if not (out.name.endswith(".nii") or out.name.endswith(".nii.gz")):
        raise ValueError(f"path must end in .nii or .nii.gz, got {out.name!r}")
    if isinstance(volume_or_array, CTVolume):
        image = volume_or_array.to_sitk()
    else:
        if reference is None:
            raise ValueError("reference (a CTVolume giving the geometry) is required when writing an array")
        array = np.asarray(volume_or_array)
        if array.shape != reference.shape:
            raise ValueError(f"array shape {array.shape} differs from reference shape {reference.shape}")
        image = reference.to_sitk(array)
    return atomic_write(out, lambda tmp: sitk.WriteImage(image, str(tmp), True))
