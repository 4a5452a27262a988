"""The in-memory CT volume: voxels in HU plus the geometry that places them in the patient.

Conventions (followed by every reader and writer in the toolkit)
----------------------------------------------------------------
* ``hu`` is indexed ``(z, y, x)``: slice, row, column (NumPy / SimpleITK array order).
* Patient coordinates are DICOM LPS, in mm: +x towards the patient's Left, +y Posterior,
  +z Superior (head).
* ``direction`` is the ITK direction matrix, shape (3, 3): column ``j`` is the unit LPS
  vector of index axis ``j`` in ITK order (0 = x / column, 1 = y / row, 2 = z / slice).
* ``origin_mm`` is the LPS position (x, y, z) of the centre of voxel ``hu[0, 0, 0]``.
* ``spacing_mm`` is given in array order ``(z, y, x)``, like ``hu.shape``.
* Readers return volumes in the *canonical orientation*: the index axes reordered and
  flipped so that ``direction`` is as close to the identity as possible (SimpleITK's
  ``DICOMOrient(image, "LPS")``).  For an axial scan this means columns run right→left,
  rows anterior→posterior and slice 0 is the most inferior (feet-most) slice.  Oblique
  acquisitions keep their exact, non-identity direction; nothing is resampled.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Sequence

import numpy as np

__all__ = ["ScanInfo", "CTVolume", "canonical_axes", "to_canonical", "from_canonical", "index_to_lps"]


@dataclass(frozen=True)
class ScanInfo:
    """Facts about the study and series a volume came from.

    Only identifiers a trial table needs are kept: no patient name, birth date,
    address or other identifying header fields ever enter a ``ScanInfo``.

    Attributes
    ----------
    patient_id, study_uid, study_date, series_uid : str or None
        ``study_date`` as ISO ``YYYY-MM-DD`` when known.
    series_number : int or None
    series_description, modality, kernel, manufacturer, transfer_syntax : str or None
    image_type : tuple of str
        DICOM ImageType values, e.g. ``("ORIGINAL", "PRIMARY", "AXIAL")``.
    slice_thickness_mm : float or None
        Nominal SliceThickness, mm (the spacing is in :attr:`CTVolume.spacing_mm`).
    source : str or None
        Path the volume was read from.
    notes : tuple of str
        Problems found and handled while reading (e.g. "rescale varied per slice").
    """

    patient_id: str | None = None
    study_uid: str | None = None
    study_date: str | None = None
    series_uid: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    modality: str | None = None
    image_type: tuple[str, ...] = ()
    kernel: str | None = None
    manufacturer: str | None = None
    slice_thickness_mm: float | None = None
    transfer_syntax: str | None = None
    source: str | None = None
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Flat dict of the fields (tuples joined with ``\\``), for table rows."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = "\\".join(value) if isinstance(value, tuple) else value
        return out


def _as_direction(direction: Any) -> np.ndarray:
    d = np.asarray(direction, dtype=np.float64)
    if d.shape == (9,):
        d = d.reshape(3, 3)
    if d.shape != (3, 3):
        raise ValueError(f"direction must be a 3x3 matrix or 9 values, got shape {d.shape}")
    if not np.allclose(d.T @ d, np.eye(3), atol=1e-4):
        raise ValueError(f"direction must be orthonormal, got {d.tolist()}")
    return d


@dataclass(frozen=True, eq=False)
class CTVolume:
    """A CT volume in Hounsfield units with its patient geometry.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        Voxel values in HU.  ``int16`` when the rescale gives whole numbers in range,
        otherwise ``float32``.
    spacing_mm : (3,) tuple of float
        Voxel spacing in mm, array order ``(z, y, x)``.
    origin_mm : (3,) tuple of float
        LPS position (x, y, z) in mm of the centre of voxel ``[0, 0, 0]``.
    direction : (3, 3) ndarray
        ITK direction matrix (columns: LPS unit vectors of index axes x, y, z).
    info : ScanInfo
        Study and series facts.

    Examples
    --------
    >>> import numpy as np
    >>> v = CTVolume(np.full((4, 8, 8), -1000, np.int16), (2.5, 0.7, 0.7))
    >>> round(v.voxel_volume_ml, 6)
    0.001225
    >>> CTVolume.from_sitk(v.to_sitk()).spacing_mm
    (2.5, 0.7, 0.7)
    """

    hu: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    info: ScanInfo = field(default_factory=ScanInfo)

    def __post_init__(self) -> None:
        hu = np.asarray(self.hu)
        if hu.ndim != 3:
            raise ValueError(f"hu must be a 3-D (z, y, x) array, got shape {hu.shape}")
        spacing = tuple(float(s) for s in self.spacing_mm)
        if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise ValueError(f"spacing_mm must be 3 positive numbers (z, y, x), got {self.spacing_mm}")
        origin = tuple(float(o) for o in self.origin_mm)
        if len(origin) != 3:
            raise ValueError(f"origin_mm must be 3 numbers (x, y, z), got {self.origin_mm}")
        object.__setattr__(self, "hu", hu)
        object.__setattr__(self, "spacing_mm", spacing)
        object.__setattr__(self, "origin_mm", origin)
        object.__setattr__(self, "direction", _as_direction(self.direction))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(Z, Y, X)``."""
        return tuple(self.hu.shape)  # type: ignore[return-value]

    @property
    def voxel_volume_ml(self) -> float:
        """Volume of one voxel, mL (1 mL = 1000 mm³)."""
        z, y, x = self.spacing_mm
        return z * y * x / 1000.0

    def with_hu(self, hu: np.ndarray) -> "CTVolume":
        """A copy with new voxel values (same shape) and the same geometry and info."""
        if np.shape(hu) != self.shape:
            raise ValueError(f"hu shape {np.shape(hu)} differs from volume shape {self.shape}")
        return replace(self, hu=hu)

    def to_sitk(self, array: np.ndarray | None = None) -> "Any":
        """This volume (or ``array``, e.g. a mask, in its geometry) as a SimpleITK image.

        Parameters
        ----------
        array : (Z, Y, X) ndarray, optional
            Voxels to place in this volume's geometry instead of ``hu``.
        """
        import SimpleITK as sitk

        data = self.hu if array is None else np.asarray(array)
        if data.shape != self.shape:
            raise ValueError(f"array shape {data.shape} differs from volume shape {self.shape}")
        if data.dtype == np.bool_:
            data = data.astype(np.uint8)
        image = sitk.GetImageFromArray(np.ascontiguousarray(data))
        image.SetSpacing(tuple(reversed(self.spacing_mm)))
        image.SetOrigin(self.origin_mm)
        image.SetDirection(tuple(self.direction.ravel()))
        return image

    @classmethod
    def from_sitk(cls, image: "Any", info: ScanInfo | None = None) -> "CTVolume":
        """Build a volume from a 3-D SimpleITK image whose voxels are already HU.

        The geometry is copied exactly; the array is not reoriented (see
        :meth:`canonical`).
        """
        import SimpleITK as sitk

        if image.GetDimension() != 3:
            raise ValueError(f"image must be 3-D, got {image.GetDimension()}-D")
        hu = sitk.GetArrayFromImage(image)
        return cls(
            hu=hu,
            spacing_mm=tuple(reversed(image.GetSpacing())),  # type: ignore[arg-type]
            origin_mm=image.GetOrigin(),
            direction=np.array(image.GetDirection()).reshape(3, 3),
            info=info or ScanInfo(),
        )

    def canonical(self) -> "CTVolume":
        """The same voxels with index axes permuted/flipped towards LPS (no resampling).

        Returns ``self`` when already canonical.
        """
        d = self.direction
        # Index axis j is dominated by LPS axis argmax|d[:, j]|; canonical wants axis j -> j, positive.
        if np.array_equal(np.argmax(np.abs(d), axis=0), [0, 1, 2]) and np.all(np.diag(d) > 0):
            return self
        import SimpleITK as sitk

        return CTVolume.from_sitk(sitk.DICOMOrient(self.to_sitk(), "LPS"), self.info)

    def index_to_lps(self, index_zyx: np.ndarray) -> np.ndarray:
        """LPS positions (mm) of voxel indices.

        Parameters
        ----------
        index_zyx : (N, 3) or (3,) array
            Indices in array order (z, y, x).

        Returns
        -------
        (N, 3) or (3,) ndarray
            LPS (x, y, z) positions in mm.
        """
        return index_to_lps(index_zyx, self.spacing_mm, self.origin_mm, self.direction)


def index_to_lps(index_zyx: np.ndarray, spacing_mm: Sequence[float], origin_mm: Sequence[float],
                 direction: np.ndarray | Sequence[float] | None = None) -> np.ndarray:
    """LPS positions (mm) of voxel indices of a grid (ITK conventions, as :class:`CTVolume`).

    Parameters
    ----------
    index_zyx : (N, 3) or (3,) array
        Indices in array order (z, y, x).
    spacing_mm : (3,) floats
        Voxel spacing (z, y, x), mm.
    origin_mm : (3,) floats
        LPS position of voxel (0, 0, 0), mm.
    direction : 3 x 3 (or 9) floats or None
        ITK direction cosines (columns: x, y, z axes); None: identity.

    Returns
    -------
    (N, 3) or (3,) ndarray
        LPS (x, y, z) positions in mm.

    Examples
    --------
    >>> index_to_lps([2, 1, 0], (5.0, 1.0, 1.0), (0.0, 0.0, -10.0)).tolist()
    [0.0, 1.0, 0.0]
    """
    d = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64).reshape(3, 3)
    idx = np.asarray(index_zyx, dtype=np.float64)[..., ::-1]
    scaled = idx * np.array(list(reversed(spacing_mm)), dtype=np.float64)
    return np.asarray(origin_mm, dtype=np.float64) + scaled @ d.T


def canonical_axes(direction: np.ndarray) -> tuple[tuple[int, int, int], tuple[bool, bool, bool]]:
    """Axis permutation and flips taking a (z, y, x) array to canonical LPS order.

    ``canonical = flip(transpose(a, perm), flips)``; slice 0 becomes the most inferior,
    row 0 the most anterior, column 0 the patient's rightmost.
    """
    d = np.asarray(direction, dtype=np.float64)
    dom = np.argmax(np.abs(d), axis=0)  # ITK index axis j -> dominant LPS axis
    if sorted(dom.tolist()) != [0, 1, 2]:
        return (0, 1, 2), (False, False, False)
    perm = [0, 1, 2]
    flips = [False, False, False]
    for j in range(3):
        k = 2 - int(dom[j])  # canonical array axis of LPS axis dom[j]
        perm[k] = 2 - j  # array axis of ITK index axis j
        flips[k] = bool(d[dom[j], j] < 0)
    return tuple(perm), tuple(flips)  # type: ignore[return-value]


def to_canonical(a: np.ndarray, perm: Sequence[int], flips: Sequence[bool]) -> np.ndarray:
    """View of a (z, y, x) array in canonical order (see :func:`canonical_axes`)."""
    b = np.transpose(a, perm)
    for k, f in enumerate(flips):
        if f:
            b = np.flip(b, axis=k)
    return b


def from_canonical(b: np.ndarray, perm: Sequence[int], flips: Sequence[bool]) -> np.ndarray:
    """Inverse of :func:`to_canonical`: a canonical array back in the input's order (copy)."""
    for k, f in enumerate(flips):
        if f:
            b = np.flip(b, axis=k)
    return np.ascontiguousarray(np.transpose(b, np.argsort(perm)))
