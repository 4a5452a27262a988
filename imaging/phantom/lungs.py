"""The lungs of the phantom on the work grid: parenchyma, vessels, bronchi and lesions.

Everything inside the lungs is painted in their bounding box only (:func:`lung_box`, the
speed of the phantom): parenchyma near -860 HU with a gravity gradient (denser
posteriorly) and texture, the lesions (:mod:`imaging.phantom.lesions`), the bronchi as air
(air bronchograms inside consolidation) and the vessels as blood on top, both as
partial-volume fractions of their tubes (:func:`imaging.phantom.vessels.render_tubes`).
The result is blended into the body HU with a partial-volume edge at the pleura
(:func:`paint_lungs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imaging.phantom.anatomy import NOMINAL_T_MM, NOMINAL_U_MM, Anatomy, Pose, lung_field, lung_t
from imaging.phantom.constants import PHANTOM_HU
from imaging.phantom.grid import Box, WorkGrid, bbox
from imaging.phantom.lesions import Lesions, paint_lesions
from imaging.phantom.vessels import render_tubes

__all__ = ["LungBox", "lung_box", "paint_lungs"]


@dataclass(frozen=True)
class LungBox:
    """The lungs' bounding box on the work grid, and what is known inside it.

    Attributes
    ----------
    box : tuple of three slices
        Work-grid crop around the lungs (2 voxels of margin).
    field : float32 ndarray
        Lung field in the box (:func:`imaging.phantom.anatomy.lung_field`, > 0 inside).
    ua, va : float32 ndarrays, box shape
        Patient in-plane coordinates (pose shift removed), normalised units.
    tl : float32 ndarray, box shape
        Lung height (:func:`imaging.phantom.anatomy.lung_t`).
    tex : float32 ndarray, box shape
        Unit parenchymal texture.
    """

    box: Box
    field: np.ndarray
    ua: np.ndarray
    va: np.ndarray
    tl: np.ndarray
    tex: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the box."""
        return self.field.shape

    @property
    def lung(self) -> np.ndarray:
        """Lung voxels of the work grid in the box (bool)."""
        return self.field > 0


def lung_box(anatomy: Anatomy, pose: Pose, g: WorkGrid, tex: np.ndarray) -> LungBox:
    """Evaluate the lung field of this visit on the work grid and crop around it.

    Parameters
    ----------
    anatomy : Anatomy
    pose : Pose
    g : WorkGrid
    tex : float32 ndarray of ``g.shape``
        Unit texture of the whole work grid.

    Returns
    -------
    LungBox
    """
    U = g.u[None, None, :]
    V = g.v[None, :, None]
    T = g.t[:, None, None]
    ua, va, ta = U - pose.du, V - pose.dv, T - pose.dt
    tl = lung_t(anatomy, pose, T)
    lf = np.broadcast_to(lung_field(anatomy, ua, va, tl, ta).astype(np.float32), g.shape)
    box = bbox(lf > -0.05, margin=2)
    return LungBox(
        box=box,
        field=np.ascontiguousarray(lf[box]),
        ua=np.broadcast_to(ua, g.shape)[box],
        va=np.broadcast_to(va, g.shape)[box],
        tl=np.broadcast_to(tl, g.shape)[box],
        tex=tex[box],
    )


def _parenchyma_hu(lb: LungBox) -> np.ndarray:
    """Aerated lung: -860 HU, up to 40 HU denser posteriorly (gravity), 14 HU of texture."""
    H = PHANTOM_HU
    return H["lung"] + H["lung_gravity_gradient"] * np.clip((lb.va + 0.4) / 0.8, 0, 1) + 14.0 * lb.tex


def _tube_fractions(anatomy: Anatomy, pose: Pose, g: WorkGrid, lb: LungBox) -> tuple[np.ndarray, np.ndarray]:
    """Partial-volume fractions (0-1) of the vessels and of the bronchi in the lung box."""
    s_mm = g.scale_mm
    Z, sz = g.full_shape[0], g.full_spacing_mm[0]

    def to_scan_mm(p: np.ndarray) -> np.ndarray:
        u = p[:, 0] / NOMINAL_U_MM + pose.du
        v = p[:, 1] / NOMINAL_U_MM + pose.dv
        t = anatomy.apex_t - (anatomy.apex_t - p[:, 2] / NOMINAL_T_MM) * pose.inspiration + pose.dt
        return np.stack([u * s_mm, v * s_mm, t * Z * sz], axis=1)

    axes_mm = tuple(m[b] for m, b in zip(g.mm, lb.box))
    vf = render_tubes(anatomy.vessels, lb.shape, axes_mm=axes_mm, to_scan_mm=to_scan_mm, radius_scale=s_mm / NOMINAL_U_MM)
    bf = render_tubes(anatomy.bronchi, lb.shape, axes_mm=axes_mm, to_scan_mm=to_scan_mm, radius_scale=s_mm / NOMINAL_U_MM)
    return vf, bf


def paint_lungs(hu: np.ndarray, anatomy: Anatomy, pose: Pose, g: WorkGrid, lb: LungBox, lesions: Lesions, *,
                crazy_paving: bool) -> None:
    """Paint the lungs into the body HU of the work grid (in place).

    Parameters
    ----------
    hu : float32 ndarray of ``g.shape``, HU
        The body (:func:`imaging.phantom.body.paint_body`); the lung box is overwritten.
    anatomy, pose : Anatomy, Pose
    g : WorkGrid
    lb : LungBox
    lesions : Lesions
        From :func:`imaging.phantom.lesions.draw_lesions`.
    crazy_paving : bool
        Draw septal lines inside the ground-glass.
    """
    H = PHANTOM_HU
    paren = paint_lesions(_parenchyma_hu(lb), lesions, lb.tex, seed=anatomy.seed, crazy_paving=crazy_paving)
    vf, bf = _tube_fractions(anatomy, pose, g, lb)
    # bronchi: air lumen (air bronchograms inside consolidation), then vessels on top
    paren = paren * (1 - bf) + H["bronchus_lumen"] * bf
    vf = np.where(lesions.consolidation, 0.0, vf)
    paren = paren * (1 - vf) + H["blood"] * vf
    # blend the lung into the body with a partial-volume edge at the pleura
    h_norm = max(g.spacing_mm[1], g.spacing_mm[2]) / g.scale_mm
    frac = np.clip(lb.field / h_norm + 0.5, 0, 1)
    hu_box = hu[lb.box]
    hu[lb.box] = hu_box * (1 - frac) + paren * frac
