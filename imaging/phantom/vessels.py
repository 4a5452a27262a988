"""Branching, tapering pulmonary vessel and bronchial trees for the phantom.

Trees grow from each hilum by repeated asymmetric bifurcation (a main child of 0.84-0.94 the
parent's radius bending 9-23°, a side branch of 0.5-0.75 leaving at 34-63°, a pull away from the hilum so that the tree
fills the lung), stop at about 0.7 mm radius or at the pleura, and are stored as
tapered line segments in nominal anatomical mm (see :mod:`imaging.phantom.anatomy`).
Pulmonary veins grow as a second tree from just below and behind each hilum.
Bronchi run beside the larger arteries (radius 0.55 of the artery), as in the
broncho-arterial bundles of the real lung; inside consolidation they stay air-filled and
become air bronchograms.

:func:`render_tubes` turns segments into a partial-volume fraction map on a voxel grid
(each voxel: the fraction of it covered by a vessel, 0-1).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from imaging.phantom.anatomy import NOMINAL_T_MM, NOMINAL_U_MM, Anatomy, hilum_points, lung_field

__all__ = ["grow_trees", "render_tubes"]

_R_MIN_MM = 0.7
_MAX_SEGMENTS_PER_LUNG = 1400


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _rotate(d: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation of unit vector ``d`` about unit ``axis``."""
    c, s = np.cos(angle), np.sin(angle)
    return d * c + np.cross(axis, d) * s + axis * np.dot(axis, d) * (1 - c)


def grow_trees(anatomy: Anatomy, *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Grow the vessel and bronchial trees of both lungs.

    Parameters
    ----------
    anatomy : Anatomy
        Lung shape to grow into (its own ``vessels``/``bronchi`` are ignored).
    rng : numpy.random.Generator

    Returns
    -------
    vessels, bronchi : (N, 8), (M, 8) float ndarrays
        Segments ``(x0, y0, z0, x1, y1, z1, r0, r1)`` in nominal anatomical mm.
    """
    scale = np.array([NOMINAL_U_MM, NOMINAL_U_MM, NOMINAL_T_MM])

    def inside(p: np.ndarray) -> bool:
        u, v, t = p / scale
        return bool(lung_field(anatomy, u, v, t) > 0.01)

    vessels: list[tuple[float, ...]] = []
    bronchi: list[tuple[float, ...]] = []
    trunks = [
        ((-0.3, 0.2, 1.0), 4.5), ((-1.0, 0.2, -0.6), 4.5), ((-0.5, -1.0, -0.7), 4.0),
        ((-0.4, 0.9, -1.2), 5.0), ((-0.5, -1.0, 0.5), 3.5), ((-0.6, 0.3, -1.6), 4.5),
    ]
    # arteries (with their bronchi) from the hila; veins from just below and behind them
    for tree, shift, r_scale in (("artery", (0.0, 0.0, 0.0), 1.0), ("vein", (0.0, 0.03, -0.06), 0.85)):
        for side, hilum in zip((-1.0, 1.0), hilum_points(anatomy)):
            origin = (np.asarray(hilum) + np.asarray(shift)) * scale
            stack = []
            for (dx, dy, dz), r in trunks:
                d = _unit(np.array([-side * dx, dy, dz]) + (rng.normal(scale=0.25, size=3) if tree == "vein" else 0.0))
                stack.append((origin.copy(), d, r * r_scale * (0.92 if side > 0 else 1.0), 0))
            n_start = len(vessels)
            while stack and len(vessels) - n_start < _MAX_SEGMENTS_PER_LUNG:
                p, d, r, depth = stack.pop()
                length = float(np.clip(5.5 * r, 4.0, 26.0) * rng.uniform(0.8, 1.2))
                q = p + d * length
                if not inside(q):
                    # bend back into the lung once before giving up at the pleura
                    d = _unit(d - 0.8 * _unit(q - origin))
                    q = p + d * length * 0.6
                    if not inside(q):
                        continue
                r_end = r * 0.97
                vessels.append((*p, *q, r, r_end))
                axis = _unit(np.cross(d, rng.normal(size=3)))
                if tree == "artery" and r >= 1.6:  # a bronchus beside the artery
                    off = axis * (r * 1.25 + 0.6)
                    bronchi.append((*(p + off), *(q + off), 0.55 * r, 0.55 * r_end))
                if depth >= 14:
                    continue
                outward = _unit(q - origin) if np.linalg.norm(q - origin) > 1e-6 else d
                for angle, ratio in ((rng.uniform(0.15, 0.4), rng.uniform(0.84, 0.94)),
                                     (-rng.uniform(0.6, 1.1), rng.uniform(0.5, 0.75))):
                    r_child = r_end * ratio
                    if r_child < _R_MIN_MM:
                        continue
                    d_child = _unit(_rotate(d, axis, angle) + 0.25 * outward)
                    stack.append((q, d_child, r_child, depth + 1))
    return np.asarray(vessels, dtype=np.float64).reshape(-1, 8), np.asarray(bronchi, dtype=np.float64).reshape(-1, 8)


def render_tubes(
    segments: np.ndarray,
    shape: tuple[int, int, int],
    *,
    axes_mm: tuple[np.ndarray, np.ndarray, np.ndarray],
    to_scan_mm: Callable[[np.ndarray], np.ndarray],
    radius_scale: float,
) -> np.ndarray:
    """Rasterise tapered tubes as partial-volume fractions.

    Parameters
    ----------
    segments : (N, 8) ndarray
        ``(x0, y0, z0, x1, y1, z1, r0, r1)`` in nominal anatomical mm.
    shape : (Z, Y, X) tuple of int
        Grid shape.
    axes_mm : tuple of three 1-D ndarrays
        Scan mm coordinates of the voxel centres along z, y and x (evenly spaced).
    to_scan_mm : callable
        Maps (K, 3) nominal anatomical mm points (x, y, z) to scan mm (x, y, z).
    radius_scale : float
        Scan mm per nominal mm for radii.

    Returns
    -------
    (Z, Y, X) float32 ndarray
        Fraction of each voxel inside a tube, 0-1 (maximum over tubes).
    """
    out = np.zeros(shape, dtype=np.float32)
    if len(segments) == 0:
        return out
    zc, yc, xc = axes_mm
    sz = zc[1] - zc[0] if len(zc) > 1 else 1.0
    sy = yc[1] - yc[0] if len(yc) > 1 else 1.0
    sx = xc[1] - xc[0] if len(xc) > 1 else 1.0
    h = max(sx, sy)
    a = to_scan_mm(segments[:, 0:3])
    b = to_scan_mm(segments[:, 3:6])
    radii = segments[:, 6:8] * radius_scale
    lo = np.minimum(a, b) - radii.max(axis=1, keepdims=True) - 1.5 * h
    hi = np.maximum(a, b) + radii.max(axis=1, keepdims=True) + 1.5 * h
    i_lo = np.floor((lo - np.array([xc[0], yc[0], zc[0]])) / np.array([sx, sy, sz])).astype(int)
    i_hi = np.ceil((hi - np.array([xc[0], yc[0], zc[0]])) / np.array([sx, sy, sz])).astype(int) + 1
    limits = np.array([shape[2], shape[1], shape[0]])
    i_lo = np.clip(i_lo, 0, limits)
    i_hi = np.clip(i_hi, 0, limits)
    for k in range(len(segments)):
        x0, y0, z0 = i_lo[k]
        x1, y1, z1 = i_hi[k]
        if x1 <= x0 or y1 <= y0 or z1 <= z0:
            continue
        ax, ay, az = a[k]
        dx, dy, dz = b[k] - a[k]
        px = (xc[x0:x1] - ax)[None, None, :]
        py = (yc[y0:y1] - ay)[None, :, None]
        pz = (zc[z0:z1] - az)[:, None, None]
        den = dx * dx + dy * dy + dz * dz
        if den <= 0:
            continue
        s = np.clip((px * dx + py * dy + pz * dz) / den, 0.0, 1.0)
        d = np.sqrt((px - s * dx) ** 2 + (py - s * dy) ** 2 + (pz - s * dz) ** 2)
        r = radii[k, 0] + (radii[k, 1] - radii[k, 0]) * s
        peak = np.minimum(1.0, np.pi * r * r / (h * h))
        frac = (np.clip((np.maximum(r, 0.5 * h) - d) / h + 0.5, 0.0, 1.0) * peak).astype(np.float32)
        view = out[z0:z1, y0:y1, x0:x1]
        np.maximum(view, frac, out=view)
    return out
