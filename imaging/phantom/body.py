"""HU of the phantom's body: everything but the lung parenchyma, painted on the work grid.

Table, body outline with subcutaneous fat and chest-wall muscle, mediastinal fat, liver,
stomach (with an air-fluid level) and spleen below the diaphragm, heart and great vessels
(unenhanced blood), oesophagus, trachea and main bronchi with their wall, spine
(vertebral bodies, discs, canal, posterior elements), ribs with costal cartilage, and the
sternum, at the nominal HU of :data:`imaging.phantom.constants.PHANTOM_HU`.  Bones and the
body wall stay where they are as the patient breathes; what is attached to the lungs
follows the inspiration (see :mod:`imaging.phantom.anatomy`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imaging.phantom.anatomy import (
    NOMINAL_U_MM,
    Anatomy,
    Pose,
    airway_field,
    carina_t,
    diaphragm_t,
    heart_field,
    hilum_points,
    lung_t,
    segment_distance,
)
from imaging.phantom.constants import PHANTOM_HU
from imaging.phantom.grid import WorkGrid

__all__ = ["paint_body"]


def _capsule(u, v, t, p0, p1, radius):
    """> 0 inside a capsule between (u, v, t) points, radius in normalised u units."""
    return radius * NOMINAL_U_MM - segment_distance(u, v, t, p0, p1)


@dataclass(frozen=True)
class _Frame:
    """Coordinates of the work grid for one visit (broadcastable (Z, Y, X) arrays).

    ``U``, ``V``, ``T``: scanner frame; ``ua``, ``va``, ``ta``: the patient's (pose shift
    removed); ``tl``: lung height (follows the inspiration).
    """

    U: np.ndarray
    V: np.ndarray
    T: np.ndarray
    ua: np.ndarray
    va: np.ndarray
    ta: np.ndarray
    tl: np.ndarray
    shape: tuple[int, int, int]


def _frame(anatomy: Anatomy, pose: Pose, g: WorkGrid) -> _Frame:
    U = g.u[None, None, :]
    V = g.v[None, :, None]
    T = g.t[:, None, None]
    return _Frame(U, V, T, U - pose.du, V - pose.dv, T - pose.dt, lung_t(anatomy, pose, T), g.shape)


def paint_body(anatomy: Anatomy, pose: Pose, g: WorkGrid, tex: np.ndarray) -> np.ndarray:
    """HU of everything but the lung parenchyma, on the work grid.

    Parameters
    ----------
    anatomy : Anatomy
    pose : Pose
        This visit's position and inspiration.
    g : WorkGrid
    tex : float32 ndarray of ``g.shape``
        Unit soft-tissue texture (3 HU of it is added inside the body).

    Returns
    -------
    float32 ndarray of ``g.shape``, HU
    """
    f = _frame(anatomy, pose, g)
    hu = np.full(f.shape, PHANTOM_HU["air"], dtype=np.float32)
    body, cavity, thorax, rc = _paint_trunk(hu, anatomy, f)
    _paint_mediastinum(hu, anatomy, f, body=body, cavity=cavity, thorax=thorax)
    _paint_spine(hu, anatomy, f, body=body)
    _paint_ribs_and_sternum(hu, anatomy, f, body=body, rc=rc)
    # mild soft-tissue texture everywhere inside the body
    hu += np.where(np.broadcast_to(body, f.shape), 3.0 * tex, 0.0).astype(np.float32)
    return hu


def _paint_trunk(hu: np.ndarray, a: Anatomy, f: _Frame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Table, body (fat, muscle), mediastinal fat and the abdomen below the diaphragm.

    Returns the body, thoracic cavity and thorax (cavity above the diaphragm) masks, and
    the normalised radius ``rc`` of the cavity ellipse (1 at the pleura).
    """
    H = PHANTOM_HU
    ua, va, tl, shape = f.ua, f.va, f.tl, f.shape
    # table under the patient (scanner coordinates)
    table = (f.V > a.body_b + 0.06) & (f.V < a.body_b + 0.10) & (np.abs(f.U) < 0.75)
    hu[np.broadcast_to(table, shape)] = H["table"]
    p = 2.4
    rb = (np.abs(ua / a.body_a) ** p + np.abs((va - 0.01) / a.body_b) ** p) ** (1 / p)
    body = rb < 1.0
    hu[np.broadcast_to(body, shape)] = H["fat"]
    inner = (np.abs(ua / (a.body_a - a.fat)) ** p + np.abs((va - 0.01) / (a.body_b - 0.6 * a.fat)) ** p) ** (1 / p) < 1.0
    hu[np.broadcast_to(inner, shape)] = H["muscle"]
    rc = np.sqrt((ua / a.cavity_a) ** 2 + ((va - 0.02) / a.cavity_b) ** 2)
    cavity = np.broadcast_to(rc < 1.0, shape)
    above = tl > diaphragm_t(a, ua, va) - 0.02
    thorax = cavity & above
    hu[thorax] = H["mediastinal_fat"]
    # abdomen below the diaphragm: liver on the right, stomach with an air-fluid level, spleen
    abdomen = cavity & ~above
    hu[abdomen & np.broadcast_to(ua < 0.2, shape)] = H["liver"]
    hu[abdomen & np.broadcast_to(ua >= 0.2, shape)] = H["abdomen"]
    st_t = a.dome_left_t - 0.06
    stomach = ((ua - 0.33) / 0.17) ** 2 + ((va + 0.02) / 0.15) ** 2 + ((tl - st_t) / 0.07) ** 2 < 1.0
    hu[abdomen & stomach] = H["abdomen"] - 5
    hu[abdomen & stomach & (tl > st_t + 0.01)] = H["air"]
    return body, cavity, thorax, rc


def _paint_mediastinum(hu: np.ndarray, a: Anatomy, f: _Frame, *, body: np.ndarray, cavity: np.ndarray,
                       thorax: np.ndarray) -> None:
    """Heart and great vessels (unenhanced blood), oesophagus, trachea and main bronchi."""
    H = PHANTOM_HU
    ua, va, tl, shape = f.ua, f.va, f.tl, f.shape
    c = carina_t(a)
    hf = heart_field(a, ua, va, tl)
    hu[thorax & (hf > 0.06)] = H["blood"]
    vessels = (
        (_capsule(ua, va, tl, (0.04, -0.11, c - 0.17), (0.04, -0.11, c + 0.05), 0.075) > 0)
        | (_capsule(ua, va, tl, (0.04, -0.11, c + 0.05), (0.11, 0.22, c + 0.08), 0.065) > 0)
        | (_capsule(ua, va, tl, (0.11, 0.24, a.lung_base_t - 0.1), (0.11, 0.24, c + 0.08), 0.065) > 0)
        | (_capsule(ua, va, tl, (0.10, -0.15, c - 0.16), (0.08, -0.05, c - 0.05), 0.07) > 0)
        | (_capsule(ua, va, tl, (0.08, -0.05, c - 0.05), hilum_points(a)[1], 0.045) > 0)
        | (_capsule(ua, va, tl, (0.04, -0.03, c - 0.06), hilum_points(a)[0], 0.045) > 0)
        | (_capsule(ua, va, tl, (-0.11, -0.08, c - 0.14), (-0.11, -0.08, 1.2), 0.045) > 0)
    )
    hu[(cavity | np.broadcast_to(f.T > a.apex_t, shape)) & vessels] = H["blood"]
    # oesophagus
    hu[body & np.broadcast_to(np.hypot(ua - 0.03, va - 0.19) < 0.03, shape)] = H["muscle"] - 10
    # trachea and main bronchi: air with a soft-tissue wall
    aw = airway_field(a, ua, va, tl)
    hu[body & (aw > -2.0)] = H["muscle"] - 15
    hu[body & (aw > 0)] = H["air"]


def _paint_spine(hu: np.ndarray, a: Anatomy, f: _Frame, *, body: np.ndarray) -> None:
    """Paraspinal soft tissue, vertebral bodies with discs, canal, posterior elements."""
    H = PHANTOM_HU
    ua, va, ta, shape = f.ua, f.va, f.ta, f.shape
    hu[np.broadcast_to(((ua / 0.16) ** 2 + ((va - 0.47) / 0.13) ** 2 < 1.0) & body, shape)] = H["muscle"]
    disc = ((ta / a.rib_period_t) % 1.0) < 0.2
    rv = np.hypot(ua, va - 0.36)
    vb = rv < 0.09
    hu[np.broadcast_to(vb & ~disc, shape)] = H["cortical_bone"]
    hu[np.broadcast_to((rv < 0.075) & ~disc, shape)] = H["cancellous_bone"]
    hu[np.broadcast_to(vb & disc, shape)] = H["disc"]
    rcan = np.hypot(ua, va - 0.49)
    arch = ((rcan >= 0.04) & (rcan < 0.065) & (va > 0.45)) | ((np.abs(ua) < 0.018) & (va > 0.5) & (va < 0.64)) | (
        (np.abs(va - 0.46) < 0.02) & (np.abs(ua) < 0.13) & (np.abs(ua) > 0.06))
    hu[np.broadcast_to(arch & ~disc, shape)] = H["cortical_bone"] - 100
    hu[np.broadcast_to(rcan < 0.04, shape)] = H["muscle"] - 25  # cord and CSF


def _paint_ribs_and_sternum(hu: np.ndarray, a: Anatomy, f: _Frame, *, body: np.ndarray, rc: np.ndarray) -> None:
    """Ribs: oblique bands in the chest-wall ring, lower anteriorly, with costal cartilage
    near the sternum; then the sternum."""
    H = PHANTOM_HU
    ua, va, ta, shape = f.ua, f.va, f.ta, f.shape
    ring = (rc >= 1.02) & (rc < 1.02 + 0.07 / max(a.cavity_a, 1e-3)) & body
    phase = (ta / a.rib_period_t + 2.4 * np.arctan2(va, np.abs(ua)) / np.pi) % 1.0
    rib_z = (ta > a.lung_base_t - 0.06) & (ta < a.apex_t + 0.01)
    rib = ring & (phase < 0.32) & rib_z
    anterior = (va < -0.15) & (np.abs(ua) < 0.3)
    hu[np.broadcast_to(rib & ~anterior, shape)] = H["rib"]
    hu[np.broadcast_to(rib & anterior & (np.abs(ua) > 0.07), shape)] = H["cartilage"]
    c = carina_t(a)
    sv = -(a.cavity_b - 0.02) - 0.045
    sternum = (((ua / 0.065) ** 2 + ((va - sv) / 0.03) ** 2) < 1.0) & (ta > c - 0.22) & (ta < a.apex_t - 0.06)
    hu[np.broadcast_to(sternum, shape)] = H["cortical_bone"] - 150
    hu[np.broadcast_to((((ua / 0.05) ** 2 + ((va - sv) / 0.017) ** 2) < 1.0) & sternum, shape)] = H["cancellous_bone"]
