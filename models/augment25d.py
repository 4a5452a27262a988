"""Training-time negatives and noise for the 2.5-D network: gas under the diaphragm, sharp kernels.

Real scans that reach the upper abdomen put stomach and bowel gas a few millimetres under
the lung bases, often with an air-fluid level; a network trained on two near-healthy
chests sees too little of it and takes it for lung.  This module inserts such gas into a
training crop *on the fly*, in the network's input channels
(:func:`models.slices25d.volume_channels`), so every crop gets a different pocket:

1. :func:`gas_zone` marks, once per case, where gas may go: soft tissue inside the body,
   under the lungs' footprint, from :data:`GAP_MM` to :data:`DEPTH_MM` below the lowest
   lung voxel of its column (slice 0 is the most inferior), so a diaphragm-thin wall of
   tissue always stays between the pocket and the lung;
2. :func:`insert_gas` draws one to four ellipsoidal pockets (:data:`RADIUS_MM`) around a
   point of that zone, each with a fluid level in its posterior part half of the time,
   blends them in HU with partial volume at the edge, and re-windows the slice and its
   neighbours; the labels stay background;
3. :func:`sharpen_noise` adds the noise of a sharp (bone, lung) kernel to some crops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from models.slices25d import NEIGHBOUR_MM, PIXEL_MM, SOFT_WINDOW_HU, WIDE_WINDOW_HU

__all__ = ["GasZone", "gas_zone", "insert_gas", "sharpen_noise", "GAP_MM", "DEPTH_MM", "RADIUS_MM"]

#: Least tissue (mm) kept between an inserted gas pocket and the lung above it.
GAP_MM: float = 3.0
#: How far (mm) under the lowest lung voxel of a column gas may be put.
DEPTH_MM: float = 70.0
#: Range of the pockets' semi-axes (mm).
RADIUS_MM: tuple[float, float] = (6.0, 35.0)
#: Gas and fluid densities (HU) of the pockets.
GAS_HU, FLUID_HU = -1000.0, 15.0


@dataclass
class GasZone:
    """Where gas may be put in one case: allowed voxels and points to centre pockets on."""

    allowed: np.ndarray  # (Z, Y, X) bool, on the network grid
    centres: np.ndarray  # (N, 3) int, voxels of ``allowed``
    offset: int  # slices between a slice and its context neighbours
    slice_mm: float  # slice spacing (mm), from the offset


def _hu_of_wide(wide: np.ndarray) -> np.ndarray:
    lo, hi = WIDE_WINDOW_HU
    return wide * (hi - lo) + lo


def _window(hu: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    lo, hi = window
    return np.clip((hu - lo) / (hi - lo), 0.0, 1.0)


def context_offset(x: np.ndarray) -> int:
    """Neighbour offset of cached inputs ``(Z, C, Y, X)``: channel 0 of slice z is slice z - k."""
    z = x.shape[0] // 2
    for k in range(1, 6):
        if z - k >= 0 and np.array_equal(x[z, 0], x[z - k, 1]):
            return k
    return 1


def gas_zone(x: np.ndarray, y: np.ndarray, *, max_centres: int = 20000, seed: int = 0) -> GasZone | None:
    """Voxels of one case where gas may be inserted (``None`` when there are none).

    Parameters
    ----------
    x : (Z, C, Y, X) ndarray
        The case's network inputs.
    y : (Z, Y, X) ndarray
        Its labels (lungs > 0).
    """
    k = context_offset(x)
    slice_mm = NEIGHBOUR_MM / k
    lungs = y > 0
    has_lung = lungs.any(axis=0)
    if not has_lung.any():
        return None
    lowest = np.argmax(lungs, axis=0)  # first (most inferior) lung slice of each column
    z = np.arange(y.shape[0])[:, None, None]
    below = has_lung[None] & (z < lowest[None] - max(1, round(GAP_MM / slice_mm))) \
        & (z >= lowest[None] - DEPTH_MM / slice_mm)
    soft = (x[:, 3] > 0.1) & (x[:, 3] < 0.9)  # -160..160 HU: fat, organs, muscle
    far = ndi.distance_transform_edt(~lungs, sampling=(slice_mm, PIXEL_MM, PIXEL_MM)) >= GAP_MM
    allowed = below & soft & far & (y == 0)
    points = np.argwhere(allowed)
    if not len(points):
        return None
    rng = np.random.default_rng(seed)
    if len(points) > max_centres:
        points = points[rng.choice(len(points), max_centres, replace=False)]
    return GasZone(allowed, points, k, slice_mm)


def _pocket_fraction(shape: tuple[int, int], z_mm: float, centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Fraction (0..1) of each pixel inside an ellipsoid, at ``z_mm`` from its centre."""
    ry, rx = radii[1], radii[2]
    rows = (np.arange(shape[0]) - centre[0]) * PIXEL_MM
    cols = (np.arange(shape[1]) - centre[1]) * PIXEL_MM
    r = np.sqrt((rows[:, None] / ry) ** 2 + (cols[None, :] / rx) ** 2 + (z_mm / radii[0]) ** 2)
    edge_mm = 0.8  # partial volume over about one pixel
    return np.clip((1.0 - r) * min(ry, rx) / edge_mm + 0.5, 0.0, 1.0)


def insert_gas(img: np.ndarray, zone: GasZone, z: int, y0: int, x0: int, rng: np.random.Generator) -> np.ndarray:
    """Gas pockets in a crop ``img`` (C, H, W) of slice ``z`` at (``y0``, ``x0``); returns a new crop.

    Pockets are centred on points of ``zone`` in this slice's neighbourhood that fall in the
    crop; only ``zone.allowed`` voxels change, in the slice and its two context neighbours.
    """
    C, H, W = img.shape
    out = img.copy()
    near = zone.centres[(np.abs(zone.centres[:, 0] - z) * zone.slice_mm < RADIUS_MM[1])
                        & (zone.centres[:, 1] >= y0) & (zone.centres[:, 1] < y0 + H)
                        & (zone.centres[:, 2] >= x0) & (zone.centres[:, 2] < x0 + W)]
    if not len(near):
        return out
    Z = zone.allowed.shape[0]
    for _ in range(int(rng.integers(1, 5))):
        cz, cy, cx = near[rng.integers(len(near))]
        radii = rng.uniform(*RADIUS_MM, size=3)
        fluid_row = cy - y0 + rng.uniform(-0.2, 0.8) * radii[1] / PIXEL_MM if rng.random() < 0.5 else None
        gas = GAS_HU + rng.normal(0.0, 15.0)
        for channel, dz in ((0, -zone.offset), (1, 0), (2, zone.offset)):
            zz = int(np.clip(z + dz, 0, Z - 1))
            frac = _pocket_fraction((H, W), (zz - cz) * zone.slice_mm, np.array([cy - y0, cx - x0]), radii)
            frac *= zone.allowed[zz, y0:y0 + H, x0:x0 + W]
            if not frac.any():
                continue
            content = np.full((H, W), gas, np.float32)
            if fluid_row is not None:  # supine: fluid lies posterior (larger row index)
                content[int(max(0, fluid_row)):] = FLUID_HU
            hu = _hu_of_wide(out[channel])
            hu = (1 - frac) * hu + frac * content
            out[channel] = _window(hu, WIDE_WINDOW_HU)
            if channel == 1:
                out[3] = _window(hu, SOFT_WINDOW_HU)
    return out


def sharpen_noise(img: np.ndarray, rng: np.random.Generator, *, sd_hu: tuple[float, float] = (25.0, 80.0)) -> np.ndarray:
    """The crop with extra fine-grained noise of a sharp kernel (SD drawn from ``sd_hu``), re-windowed."""
    sd = rng.uniform(*sd_hu)
    noise = ndi.gaussian_filter(rng.normal(0.0, 1.0, size=img.shape[1:]), 0.6)
    noise = (noise / max(noise.std(), 1e-6) * sd).astype(np.float32)
    out = img.copy()
    hu = _hu_of_wide(img[:3]) + noise[None]
    out[:3] = _window(hu, WIDE_WINDOW_HU)
    out[3] = _window(hu[1], SOFT_WINDOW_HU)
    return out
