"""Mask files of a scored scan: NIfTI masks in the scan's geometry, under stems that never collide.

:func:`save_masks` writes the ``lungs``, ``opacity`` and ``zones`` masks of
:func:`imaging.scoring.scores.score_scan` (or any label masks) as
``<stem>_<name>.nii.gz``, atomically and in the volume's own geometry;
:func:`mask_stem` gives the stem: the SeriesInstanceUID, or the source file name and
a hash of the voxels and geometry, so scans scored into one folder never overwrite
each other's masks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from imaging.common.volume import CTVolume

__all__ = ["save_masks", "mask_stem"]


def save_masks(volume: CTVolume, masks: Mapping[str, np.ndarray], folder: str | os.PathLike[str], *,
               stem: str = "scan") -> dict[str, Path]:
    """Write masks as NIfTI (``<stem>_<name>.nii.gz``) in the volume's geometry, atomically.

    Parameters
    ----------
    volume : CTVolume
        Gives the geometry (spacing, origin, direction); masks must have its shape.
    masks : mapping name -> (Z, Y, X) integer or bool ndarray
    folder : path-like
        Created if missing.
    stem : str
        File name prefix.

    Returns
    -------
    dict name -> Path

    Examples
    --------
    >>> import tempfile
    >>> v = CTVolume(np.zeros((3, 4, 5), np.int16), (2.0, 1.0, 1.0))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     sorted(p.name for p in save_masks(v, {"lungs": np.ones((3, 4, 5), np.uint8)}, d).values())
    ['scan_lungs.nii.gz']
    """
    from imaging.io.writers import write_nifti

    if not isinstance(volume, CTVolume):
        raise TypeError(f"volume must be a CTVolume, got {type(volume).__name__}")
    if not stem or any(c in stem for c in "/\\"):
        raise ValueError(f"stem must be a plain file-name prefix, got {stem!r}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, mask in masks.items():
        arr = np.asarray(mask)
        if arr.shape != volume.shape:
            raise ValueError(f"mask {name!r} has shape {arr.shape}, volume has {volume.shape}")
        if arr.dtype != np.bool_ and arr.size and not (arr.min() >= 0 and arr.max() <= 255
                                                       and np.array_equal(arr, np.round(arr))):
            # written as uint8: other values would wrap or be truncated silently
            raise ValueError(f"mask {name!r} must hold whole numbers 0-255 (labels), got values "
                             f"{arr.min()!r} to {arr.max()!r}")
        written[name] = write_nifti(arr.astype(np.uint8), out / f"{stem}_{name}.nii.gz", reference=volume)
    return written


#: File endings stripped from a source file name to make a mask file stem.
_SOURCE_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")


def _plain(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip(".") or "scan"


def mask_stem(volume: CTVolume) -> str:
    """File-name stem for the masks of ``volume`` (``<stem>_<name>.nii.gz``).

    The SeriesInstanceUID when the volume has one (DICOM input).  Otherwise the source
    file's name without its ending (``ct.nii.gz`` -> ``ct``), or ``scan`` for a volume
    with no source, followed in both cases by 8 hex digits hashing the voxels and the
    geometry: two different volumes never share a stem (so one folder can take the
    masks of many files named alike), and the same volume always gets the same stem.

    Parameters
    ----------
    volume : CTVolume

    Returns
    -------
    str
        A plain file-name prefix (letters, digits, ``-``, ``_``, ``.``).

    Examples
    --------
    >>> v = CTVolume(np.zeros((2, 3, 4), np.int16), (1.0, 1.0, 1.0))
    >>> stem = mask_stem(v)
    >>> stem.startswith("scan_"), len(stem), stem == mask_stem(v.with_hu(v.hu + 1))
    (True, 13, False)
    """
    import hashlib

    if not isinstance(volume, CTVolume):
        raise TypeError(f"volume must be a CTVolume, got {type(volume).__name__}")
    if volume.info.series_uid:
        return _plain(str(volume.info.series_uid))
    base = "scan"
    if volume.info.source:
        name = Path(str(volume.info.source)).name
        for suffix in _SOURCE_SUFFIXES:
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        base = _plain(name) if name else "scan"
    digest = hashlib.blake2b(digest_size=4)
    hu = np.ascontiguousarray(volume.hu)
    digest.update(f"{hu.dtype.str}{hu.shape}{tuple(volume.spacing_mm)}{tuple(volume.origin_mm)}".encode())
    digest.update(np.asarray(volume.direction, dtype=np.float64).tobytes())
    digest.update(hu.data)
    return f"{base}_{digest.hexdigest()}"
