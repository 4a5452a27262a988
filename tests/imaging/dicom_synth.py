"""Write tiny synthetic DICOM CT series with pydicom, for the reader tests.

Every value a test checks is known: by default voxel ``(k, j, i)`` of slice ``k``
(in position order) stores ``raw = 100 * k + 10 * j + i`` and HU = raw + intercept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def known_raw(n: int, rows: int, cols: int) -> np.ndarray:
    """(n, rows, cols) int16 with value 100*k + 10*j + i."""
    k, j, i = np.meshgrid(np.arange(n), np.arange(rows), np.arange(cols), indexing="ij")
    return (100 * k + 10 * j + i).astype(np.int16)


def make_dataset(
    raw: np.ndarray,
    *,
    position: Sequence[float],
    iop: Sequence[float] = AXIAL,
    pixel_spacing: Sequence[float] = (0.7, 0.8),
    study_uid: str,
    series_uid: str,
    modality: str = "CT",
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    slope: float = 1.0,
    intercept: float = -1024.0,
    series_number: int = 1,
    kernel: str = "STANDARD",
    thickness: float = 2.5,
    instance: int = 1,
    patient_id: str = "P1",
    study_date: str = "20200101",
    description: str = "CHEST",
) -> Dataset:
    """One single-frame CT image dataset holding ``raw`` (rows, cols) int16."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.PatientID = patient_id
    ds.PatientName = "Anon^Test"
    ds.StudyDate = study_date
    ds.Modality = modality
    ds.ImageType = list(image_type)
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.InstanceNumber = instance
    ds.Manufacturer = "SYNTH"
    ds.ConvolutionKernel = kernel
    ds.SliceThickness = thickness
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in iop]
    ds.PixelSpacing = [float(v) for v in pixel_spacing]
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = raw.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = np.ascontiguousarray(raw, dtype="<i2").tobytes()
    return ds


def write_series(
    folder: Path,
    *,
    n: int = 5,
    rows: int = 16,
    cols: int = 16,
    spacing: float = 2.5,
    z0: float = -100.0,
    iop: Sequence[float] = AXIAL,
    positions: Sequence[Sequence[float]] | None = None,
    raw: np.ndarray | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    names: Sequence[str] | None = None,
    transfer_syntax: str | None = None,
    edit: Callable[[Dataset, int], Any] | None = None,
    **kwargs: Any,
) -> tuple[list[Path], np.ndarray, str, str]:
    """Write an ``n``-slice series into ``folder``; slice ``k`` at ``z0 + k*spacing`` along the normal.

    Returns (paths in position order, raw (n, rows, cols), study_uid, series_uid).
    ``edit(ds, k)`` may modify each dataset before it is written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    raw = known_raw(n, rows, cols) if raw is None else raw
    normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
    paths = []
    for k in range(n):
        pos = positions[k] if positions is not None else tuple(normal * (z0 + k * spacing))
        ds = make_dataset(raw[k], position=pos, iop=iop, study_uid=study_uid, series_uid=series_uid, instance=n - k, **kwargs)
        if edit is not None:
            edit(ds, k)
        if transfer_syntax is not None:
            if transfer_syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
                ds.file_meta.TransferSyntaxUID = transfer_syntax
            else:
                ds.compress(transfer_syntax)
        name = names[k] if names is not None else f"IM{k:04d}.dcm"
        path = folder / name
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths, raw, study_uid, series_uid
