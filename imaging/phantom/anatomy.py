"""Geometry of the synthetic chest: one patient's anatomy, the pose of one visit, and the
implicit fields (positive inside) that place lungs, airways, heart, vessels and bones.

Coordinates
-----------
The phantom is framed on the chest the way a scan is: the anatomy is laid out in
*normalised* coordinates scaled to the field of view, so any matrix and spacing give a
whole chest.

* ``u``: left-right, ``+1`` = half the smaller in-plane field of view towards the
  patient's **left** (LPS +x, increasing column index); the right lung lies at ``u < 0``.
* ``v``: anterior-posterior, same unit, ``+`` = **posterior** (LPS +y, increasing row).
* ``t``: inferior-superior, 0 at the bottom of the first slice, 1 at the top of the last
  (LPS +z, increasing slice index).

A :class:`Pose` (one visit) shifts the patient on the table (``du``, ``dv``, ``dt``) and
changes the depth of inspiration (``inspiration``: > 1 lowers the diaphragm and
lengthens the lungs).  Structures attached to the lungs (lungs, diaphragm, heart,
vessels, disease) follow the inspiration; bones and the body wall do not.

Nominal sizes in this module are for a field of view of about 350 mm (``u = 1`` ≈
175 mm) and 300 mm of scan length; they scale with the actual field of view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Anatomy", "Pose", "draw_anatomy", "lung_field", "airway_field", "heart_field", "diaphragm_t", "lung_t",
    "carina_t", "hilum_points", "segment_distance", "NOMINAL_U_MM", "NOMINAL_T_MM",
]

#: Nominal mm per unit of ``u``/``v`` (half of a 350 mm field of view).
NOMINAL_U_MM: float = 175.0
#: Nominal mm per unit of ``t`` (a 300 mm scan length).
NOMINAL_T_MM: float = 300.0


@dataclass(frozen=True)
class Pose:
    """Position and inspiration of the patient at one visit.

    Attributes
    ----------
    du, dv : float
        Shift of the patient in ``u`` (to the left) and ``v`` (posterior), normalised units
        (0.03 ≈ 5 mm).
    dt : float
        Shift along the table (superior), normalised ``t`` units (0.02 ≈ 6 mm).
    inspiration : float
        Lung length factor about the apex (1 = reference breath-hold).
    """

    du: float = 0.0
    dv: float = 0.0
    dt: float = 0.0
    inspiration: float = 1.0

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Pose":
        """A small random change of position and inspiration, as between two visits."""
        return cls(
            du=float(rng.uniform(-0.03, 0.03)),
            dv=float(rng.uniform(-0.02, 0.02)),
            dt=float(rng.uniform(-0.025, 0.025)),
            inspiration=float(rng.uniform(0.95, 1.04)),
        )


@dataclass(frozen=True, eq=False)
class Anatomy:
    """One patient's anatomy (fixed across visits).

    Attributes
    ----------
    body_a, body_b : float
        Body semi-axes (left-right, antero-posterior), normalised units.
    fat : float
        Subcutaneous fat thickness, normalised units.
    wall : float
        Chest wall (muscle and ribs) thickness, normalised units.
    lung_a_right, lung_a_left, lung_b : float
        Semi-axes of the lung cross-sections (the right lung is larger).
    apex_t : float
        Height of the lung apices (``t``).
    dome_right_t, dome_left_t : float
        Height of the diaphragm domes (the right dome is higher, over the liver).
    heart_scale : float
        Heart size factor.
    rib_period_t : float
        Vertical rib spacing, ``t`` units.
    seed : int
        Seed of this patient's random fields (parenchymal texture, disease pattern).
    vessels : (N, 8) float ndarray
        Pulmonary vessel tree segments in nominal mm of anatomical space
        ``(x0, y0, z0, x1, y1, z1, r0, r1)`` (see :mod:`imaging.phantom.vessels`).
    bronchi : (M, 8) float ndarray
        Intrapulmonary bronchi (lumen), same layout.
    """

    body_a: float
    body_b: float
    fat: float
    wall: float
    lung_a_right: float
    lung_a_left: float
    lung_b: float
    apex_t: float
    dome_right_t: float
    dome_left_t: float
    heart_scale: float
    rib_period_t: float
    seed: int
    vessels: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 8)))
    bronchi: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 8)))

    # derived geometry -------------------------------------------------------------------
    @property
    def cavity_a(self) -> float:
        """Left-right semi-axis of the thoracic cavity (inside the ribs)."""
        return self.body_a - self.fat - self.wall

    @property
    def cavity_b(self) -> float:
        """Antero-posterior semi-axis of the thoracic cavity."""
        return self.body_b - 0.6 * self.fat - self.wall

    @property
    def lung_base_t(self) -> float:
        """Lowest point of the costophrenic recesses (``t``)."""
        return min(self.dome_right_t, self.dome_left_t) - 0.22


def draw_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one patient's body and lung sizes and the seed of their random fields.

    The vessel and bronchial trees are left empty: they are grown into these lungs by
    :func:`imaging.phantom.vessels.grow_trees` (see :func:`imaging.phantom.make.make_anatomy`,
    which does both).

    Parameters
    ----------
    rng : numpy.random.Generator
        Thirteen values are drawn from it.

    Returns
    -------
    Anatomy
        Without ``vessels`` and ``bronchi`` (empty (0, 8) arrays).
    """
    body_a = float(rng.uniform(0.84, 0.92))
    body_b = float(rng.uniform(0.56, 0.63))
    lung_a = float(rng.uniform(0.33, 0.37))
    dome_r = float(rng.uniform(0.32, 0.37))
    return Anatomy(
        body_a=body_a,
        body_b=body_b,
        fat=float(rng.uniform(0.035, 0.09)),
        wall=float(rng.uniform(0.055, 0.07)),
        lung_a_right=lung_a,
        lung_a_left=lung_a * float(rng.uniform(0.88, 0.94)),
        lung_b=float(rng.uniform(0.40, 0.46)),
        apex_t=float(rng.uniform(0.92, 0.96)),
        dome_right_t=dome_r,
        dome_left_t=dome_r - float(rng.uniform(0.02, 0.05)),
        heart_scale=float(rng.uniform(0.9, 1.1)),
        rib_period_t=float(rng.uniform(0.072, 0.082)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


# --------------------------------------------------------------------------------------
# implicit fields (numpy broadcasting: u, v, t may be scalars or arrays of any shape)
# --------------------------------------------------------------------------------------

def _ellipse_r(u, v, cu, cv, a, b):
    return np.sqrt(((u - cu) / a) ** 2 + ((v - cv) / b) ** 2)


def segment_distance(u, v, t, p0, p1):
    """Distance (in nominal mm) from points to the segment p0-p1 given in (u, v, t)."""
    su, st = NOMINAL_U_MM, NOMINAL_T_MM
    ax, ay, az = p0[0] * su, p0[1] * su, p0[2] * st
    bx, by, bz = p1[0] * su, p1[1] * su, p1[2] * st
    dx, dy, dz = bx - ax, by - ay, bz - az
    px, py, pz = u * su - ax, v * su - ay, t * st - az
    h = np.clip((px * dx + py * dy + pz * dz) / (dx * dx + dy * dy + dz * dz), 0.0, 1.0)
    return np.sqrt((px - h * dx) ** 2 + (py - h * dy) ** 2 + (pz - h * dz) ** 2)


def carina_t(anatomy: Anatomy) -> float:
    """Height of the tracheal bifurcation (``t``)."""
    return anatomy.dome_right_t + 0.36


def hilum_points(anatomy: Anatomy) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(u, v, t) of the right and left hila, where the main bronchi enter the lungs."""
    c = carina_t(anatomy)
    return (-0.20, 0.06, c - 0.07), (0.19, 0.07, c - 0.05)


def airway_field(anatomy: Anatomy, u, v, t):
    """Trachea and main bronchi: nominal mm inside the lumen (> 0 inside).

    The wall (about 2 mm of soft tissue) is where ``-2 < field <= 0``.
    """
    c = carina_t(anatomy)
    r_trachea = 9.0
    trachea = r_trachea - np.sqrt(((u - 0.0) * NOMINAL_U_MM) ** 2 + ((v - 0.04) * NOMINAL_U_MM * 1.15) ** 2)
    trachea = np.where(t >= c, trachea, -1e3)
    carina = (0.0, 0.04, c)
    right_hilum, left_hilum = hilum_points(anatomy)
    right = 7.0 - segment_distance(u, v, t, carina, right_hilum)
    left = 6.0 - segment_distance(u, v, t, carina, left_hilum)
    return np.maximum(trachea, np.maximum(right, left))


def lung_t(anatomy: Anatomy, pose: Pose, t):
    """Anatomical lung height of scanner height ``t`` (undoing shift and inspiration)."""
    return anatomy.apex_t - (anatomy.apex_t - (t - pose.dt)) / pose.inspiration


def diaphragm_t(anatomy: Anatomy, u, v):
    """Height (``t``) of the diaphragm surface under each (u, v): domes, lower at the
    periphery (costophrenic recesses) and posteriorly."""
    right = u < 0
    dome = np.where(right, anatomy.dome_right_t, anatomy.dome_left_t)
    cu = np.where(right, -0.30, 0.28)
    q = ((u - cu) / 0.42) ** 2 + ((v + 0.02) / 0.50) ** 2
    return dome - 0.17 * np.clip(q, 0, 1.25) - 0.05 * np.clip(v, 0, None)


def heart_field(anatomy: Anatomy, u, v, tl):
    """Heart ellipsoid (> 0 inside), in lung-height coordinates."""
    s = anatomy.heart_scale
    h_t = anatomy.dome_left_t + 0.05
    r = np.sqrt(((u - 0.09) / (0.29 * s)) ** 2 + ((v + 0.12) / (0.26 * s)) ** 2 + ((tl - h_t) / (0.17 * s)) ** 2)
    return 1.0 - r


def lung_field(anatomy: Anatomy, u, v, tl, t=None):
    """Both lungs as one field, positive inside (normalised units, roughly distance).

    Parameters
    ----------
    anatomy : Anatomy
    u, v : array_like
        Anatomical in-plane coordinates (pose shift removed).
    tl : array_like
        Lung height (:func:`lung_t`).
    t : array_like, optional
        Anatomical height for the bones and body wall (defaults to ``tl``).

    Returns
    -------
    ndarray
        Broadcast shape of the inputs; ``> 0`` inside a lung.  The sign of ``u`` tells
        right (``u < 0``) from left.
    """
    a = anatomy
    t = tl if t is None else t
    # apex taper: cross-sections shrink to a point at the apex
    t_wide = 0.60
    w = np.sqrt(np.clip((a.apex_t - tl) / (a.apex_t - t_wide), 0.0, 1.0))
    w = np.where(tl < t_wide, 1.0, w)
    right = w - _ellipse_r(u, v, -0.40, 0.04, a.lung_a_right, a.lung_b)
    left = w - _ellipse_r(u, v, 0.40, 0.04, a.lung_a_left, a.lung_b)
    f = np.maximum(right, left)
    # thoracic cavity (pleura just inside the ribs)
    f = np.minimum(f, 0.97 - _ellipse_r(u, v, 0.0, 0.02, a.cavity_a, a.cavity_b))
    # mediastinum: wider in the middle (trachea, aorta), narrow anteriorly
    half = 0.075 + 0.06 * np.exp(-(((v - 0.0) / 0.22) ** 2))
    f = np.minimum(f, (np.abs(u - 0.02) - half) * 1.5)
    # heart, descending aorta, spine (paravertebral gutters lie beside it)
    f = np.minimum(f, -heart_field(a, u, v, tl) * 0.5 - 0.02)
    f = np.minimum(f, _ellipse_r(u, v, 0.11, 0.24, 0.085, 0.085) - 1.0)
    f = np.minimum(f, _ellipse_r(u, v, 0.0, 0.36, 0.15, 0.14) - 1.0)
    # diaphragm
    f = np.minimum(f, (tl - diaphragm_t(a, u, v)) * 3.0)
    # trachea and main bronchi are not lung
    f = np.minimum(f, -(airway_field(a, u, v, tl) + 2.0) / NOMINAL_U_MM)
    return f
