"""Pure geometry of a stack of DICOM slices: orientation, ordering, spacing checks.

No file I/O here: the functions take ImageOrientationPatient / ImagePositionPatient
values (LPS, mm) as arrays and return orderings, spacings and plain-language problems.
The ordering follows highdicom ``spatial.get_series_volume_positions``: slices are
sorted by the projection of their position on the slice normal, never by z alone nor
by InstanceNumber.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imaging.common.errors import NotCTVolumeError

__all__ = [
    "SLICE_SPACING_TOLERANCE_MM",
    "SLICE_SPACING_TOLERANCE_FRACTION",
    "DUPLICATE_POSITION_TOLERANCE_MM",
    "GANTRY_TILT_TOLERANCE_DEG",
    "OBLIQUE_THRESHOLD_DEG",
    "StackGeometry",
    "orientation_axes",
    "orientation_label",
    "stack_geometry",
]

#: Absolute tolerance on each slice step, mm (positions are written with ~1e-3 mm rounding).
SLICE_SPACING_TOLERANCE_MM: float = 0.05
#: Relative tolerance on each slice step (fraction of the expected step).
SLICE_SPACING_TOLERANCE_FRACTION: float = 0.05
#: Two slices closer than this along the normal occupy the same position, mm.
DUPLICATE_POSITION_TOLERANCE_MM: float = 0.01
#: Angle between the slice normal and the stacking direction above which the stack is
#: sheared (gantry tilt), degrees.
GANTRY_TILT_TOLERANCE_DEG: float = 0.5
#: A slice normal further than this from every patient axis is "oblique", degrees.
OBLIQUE_THRESHOLD_DEG: float = 30.0


def orientation_axes(iop: "np.ndarray | list[float]") -> np.ndarray:
    """Orthonormal row, column and normal unit vectors from ImageOrientationPatient.

    Parameters
    ----------
    iop : (6,) array_like
        DICOM ImageOrientationPatient: row direction cosines then column direction
        cosines, LPS.

    Returns
    -------
    (3, 3) ndarray
        Columns are the row (x index), column (y index) and normal (z index) unit
        vectors: an ITK direction matrix for a stack sorted along the normal.

    Raises
    ------
    NotCTVolumeError
        When the two cosines are degenerate (zero or parallel).

    Examples
    --------
    >>> orientation_axes([1, 0, 0, 0, 1, 0]).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    v = np.asarray(iop, dtype=np.float64).ravel()
    if v.shape != (6,) or not np.all(np.isfinite(v)):
        raise NotCTVolumeError(f"ImageOrientationPatient must be 6 finite numbers, got {list(v)}")
    row, col = v[:3], v[3:]
    if np.linalg.norm(row) < 1e-6 or np.linalg.norm(col) < 1e-6:
        raise NotCTVolumeError(f"ImageOrientationPatient has a zero vector: {list(v)}")
    row = row / np.linalg.norm(row)
    col = col - (col @ row) * row
    if np.linalg.norm(col) < 1e-6:
        raise NotCTVolumeError(f"ImageOrientationPatient row and column are parallel: {list(v)}")
    col = col / np.linalg.norm(col)
    return np.column_stack([row, col, np.cross(row, col)])


def orientation_label(iop: "np.ndarray | list[float]") -> str:
    """'axial', 'coronal', 'sagittal' or 'oblique' from the slice normal.

    The label is the patient axis nearest the normal (z: axial, y: coronal,
    x: sagittal), or 'oblique' when the normal is more than
    :data:`OBLIQUE_THRESHOLD_DEG` from every axis.

    Examples
    --------
    >>> orientation_label([1, 0, 0, 0, 1, 0])
    'axial'
    >>> orientation_label([1, 0, 0, 0, 0, -1])
    'coronal'
    >>> orientation_label([0, 1, 0, 0, 0, -1])
    'sagittal'
    """
    normal = orientation_axes(iop)[:, 2]
    axis = int(np.argmax(np.abs(normal)))
    if np.abs(normal[axis]) < np.cos(np.deg2rad(OBLIQUE_THRESHOLD_DEG)):
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


@dataclass(frozen=True)
class StackGeometry:
    """Where the slices of a stack sit along its normal.

    Attributes
    ----------
    order : (N,) int ndarray
        Indices that sort the input slices by position along the normal (ascending).
    positions_mm : (N,) float ndarray
        Sorted projections of ImagePositionPatient on the normal, mm.
    spacing_mm : float or None
        Mean step between sorted distinct positions, mm (None with fewer than 2).
    duplicates : tuple of (int, int)
        Pairs of input indices found at the same position.
    gap_problems : tuple of str
        Steps outside the tolerance, each naming the gap and where it is.
    tilt_deg : float
        Angle between the normal and the stacking direction, degrees (gantry tilt).
    gaps : tuple of (int, int)
        For each of ``gap_problems``, the input indices of the slices on either side.
    """

    order: np.ndarray
    positions_mm: np.ndarray
    spacing_mm: float | None
    duplicates: tuple[tuple[int, int], ...]
    gap_problems: tuple[str, ...]
    tilt_deg: float
    gaps: tuple[tuple[int, int], ...] = ()

    @property
    def regular(self) -> bool:
        """True when every step is within tolerance and no position is duplicated."""
        return not self.gap_problems and not self.duplicates


def stack_geometry(
    positions: "np.ndarray | list[list[float]]",
    iop: "np.ndarray | list[float]",
    *,
    tolerance_mm: float = SLICE_SPACING_TOLERANCE_MM,
    tolerance_fraction: float = SLICE_SPACING_TOLERANCE_FRACTION,
) -> StackGeometry:
    """Order slices along the normal and check that they are evenly spaced.

    Parameters
    ----------
    positions : (N, 3) array_like
        ImagePositionPatient of each slice, LPS mm, in any order.
    iop : (6,) array_like
        The ImageOrientationPatient shared by the slices.
    tolerance_mm, tolerance_fraction : float
        A step is regular when it differs from the expected step (the most common
        step, rounded to 0.01 mm; ties go to the smallest) by at most
        ``max(tolerance_mm, tolerance_fraction * expected)``.

    Returns
    -------
    StackGeometry

    Notes
    -----
    Duplicated positions (steps below :data:`DUPLICATE_POSITION_TOLERANCE_MM`) are
    reported in ``duplicates`` and left out of the spacing; the caller decides whether
    they are identical copies or a second acquisition. The tilt is measured between
    the normal and the line through the first and last slice: a gantry-tilted stack
    is sheared, not rotated, and cannot be placed on a rectilinear grid unresampled.

    Examples
    --------
    >>> g = stack_geometry([[0, 0, 5.0], [0, 0, 0.0], [0, 0, 2.5]], [1, 0, 0, 0, 1, 0])
    >>> g.order.tolist(), g.spacing_mm, g.regular
    ([1, 2, 0], 2.5, True)
    >>> g = stack_geometry([[0, 0, 0], [0, 0, 2.5], [0, 0, 7.5]], [1, 0, 0, 0, 1, 0])
    >>> g.gap_problems
    ('gap of 5.00 mm between slices at 2.50 and 7.50 mm along the normal (expected 2.50 mm): a slice is missing?',)
    >>> g.gaps  # input indices of the slices on either side of the gap
    ((1, 2),)
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) == 0:
        raise ValueError(f"positions must be an (N, 3) array with N >= 1, got shape {pos.shape}")
    if tolerance_mm < 0 or tolerance_fraction < 0:
        raise ValueError(f"tolerances must be >= 0, got {tolerance_mm}, {tolerance_fraction}")
    normal = orientation_axes(iop)[:, 2]
    proj = pos @ normal
    order = np.argsort(proj, kind="stable")
    sorted_proj = proj[order]
    steps = np.diff(sorted_proj)
    dup_mask = steps < DUPLICATE_POSITION_TOLERANCE_MM
    duplicates = tuple((int(order[i]), int(order[i + 1])) for i in np.flatnonzero(dup_mask))
    kept = np.flatnonzero(np.concatenate([[True], ~dup_mask]))  # sorted indices of distinct positions
    distinct = sorted_proj[kept]
    dsteps = np.diff(distinct)
    spacing: float | None = None
    problems: list[str] = []
    gaps: list[tuple[int, int]] = []
    if len(dsteps):
        # the expected step: the most common one (rounded to 0.01 mm; ties -> the smallest),
        # robust where a median is not (two steps, one of them a gap)
        values, counts = np.unique(np.round(dsteps, 2), return_counts=True)
        expected = float(values[np.argmax(counts)])
        tol = max(tolerance_mm, tolerance_fraction * expected)
        for i in np.flatnonzero(np.abs(dsteps - expected) > tol):
            kind = "a slice is missing?" if dsteps[i] > expected else "slices overlap?"
            problems.append(
                f"gap of {dsteps[i]:.2f} mm between slices at {distinct[i]:.2f} and "
                f"{distinct[i + 1]:.2f} mm along the normal (expected {expected:.2f} mm): {kind}"
            )
            gaps.append((int(order[kept[i]]), int(order[kept[i + 1]])))
        spacing = float((distinct[-1] - distinct[0]) / (len(distinct) - 1))
    tilt = 0.0
    span = pos[order[-1]] - pos[order[0]]
    if np.linalg.norm(span) > 1e-6:
        cosang = abs(float(span @ normal)) / float(np.linalg.norm(span))
        tilt = float(np.degrees(np.arccos(min(1.0, cosang))))
    return StackGeometry(order, sorted_proj, spacing, duplicates, tuple(problems), tilt, tuple(gaps))
