"""Synthetic chest CT phantoms with known truth, for tests, demos and the sample trial.

:func:`make_phantom` builds a chest CT that looks like one (body wall with fat and
muscle, ribs, spine, sternum, mediastinum, heart and great vessels, trachea and main
bronchi, two lungs from apex to diaphragm dome with the right one larger, a branching
tapering vessel tree, parenchyma near -850 HU with texture, partial-volume blur and
in-plane correlated noise) with COVID-19-like disease: bilateral, multifocal,
peripheral (subpleural), posterior and lower-zone predominant ground-glass opacity
(-680 to -380 HU, vessels visible through it) and consolidation (about -30 HU, air
bronchograms), optionally crazy-paving.  Severity is a target percent of lung volume;
the achieved truth percent is computed from the labels (:attr:`Phantom.percent_opacity`).

:meth:`Phantom.follow_up` re-images the same patient: same anatomy and the same disease
pattern (lesions grow or shrink in place as the target changes), a slightly different
position on the table and depth of inspiration, fresh noise.

How it is made (and why it is fast): the anatomy is a set of implicit fields
(:mod:`imaging.phantom.anatomy`) evaluated on a *work grid* no finer than
``work_spacing_mm`` (default 2.5 × 1.4 × 1.4 mm); HU are painted there, blurred for
partial volume, then linearly upsampled to the requested matrix, where the truth
labels are thresholds of the upsampled lung and disease fields (so labels and HU share
their boundaries) and noise is added at full resolution.

Truth labels
------------
``lungs``: 0 background, 1 right lung (low ``x`` index: LPS +x is the patient's left),
2 left lung.  The lungs include their vessels, intrapulmonary bronchi and all lesion
voxels, and exclude the trachea and main bronchi, like a clinical lung mask.
``lesions``: 0 none, 1 ground-glass, 2 consolidation; always inside ``lungs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from imaging.phantom.anatomy import (
    Anatomy,
    Pose,
    airway_field,
    carina_t,
    diaphragm_t,
    heart_field,
    hilum_points,
    lung_field,
    lung_t,
    make_anatomy,
    NOMINAL_T_MM,
    NOMINAL_U_MM,
)
from imaging.common.checks import is_real_number
from imaging.phantom.vessels import render_tubes
from imaging.common.volume import CTVolume, ScanInfo

__all__ = ["Phantom", "make_phantom", "Anatomy", "Pose", "make_anatomy", "PHANTOM_HU"]

#: Nominal HU of the phantom's tissues (mean values before texture, blur and noise).
#: Typical unenhanced CT values (e.g. Hofer, *CT Teaching Manual*; lung parenchyma
#: -850 and COVID-19 GGO -700..-300 / consolidation -100..+50 from the issue and
#: Chaganti et al., Radiology: AI 2020).
PHANTOM_HU: dict[str, float] = {
    "air": -1000.0,
    "fat": -100.0,
    "mediastinal_fat": -90.0,
    "muscle": 45.0,
    "blood": 40.0,
    "liver": 58.0,
    "abdomen": 25.0,
    "lung": -860.0,
    "lung_gravity_gradient": 40.0,
    "ggo_min": -680.0,
    "ggo_max": -380.0,
    "consolidation": -30.0,
    "bronchus_lumen": -950.0,
    "cortical_bone": 700.0,
    "cancellous_bone": 230.0,
    "rib": 450.0,
    "disc": 90.0,
    "cartilage": 120.0,
    "table": 100.0,
    "crazy_paving_septa": 170.0,
}

_DEFAULT_WORK_SPACING_MM = (2.5, 1.4, 1.4)


@dataclass(frozen=True, eq=False)
class Phantom:
    """A synthetic chest CT with its truth.

    Attributes
    ----------
    volume : CTVolume
        HU as int16, canonical LPS orientation (identity direction, slice 0 inferior).
    lungs : (Z, Y, X) uint8 ndarray
        0 background, 1 right lung, 2 left lung (lesions included).
    lesions : (Z, Y, X) uint8 ndarray
        0 none, 1 ground-glass, 2 consolidation (inside ``lungs``).
    anatomy : Anatomy
        The patient (reuse it for later visits, see :meth:`follow_up`).
    pose : Pose
        Position and inspiration of this visit.
    target_percent_opacity : float
        The severity asked for, % of lung volume.
    consolidation_fraction : float
        Fraction of the lesion volume asked to be consolidation.
    crazy_paving : bool
        Whether septal lines were drawn inside the ground-glass.
    noise_hu : float
        Standard deviation of the image noise, HU.
    fov_circle : bool
        Whether voxels outside the reconstruction circle were set to -1024 HU.
    work_spacing_mm : (z, y, x) tuple of float
        Finest spacing at which the anatomy was painted (kept for :meth:`follow_up`).
    """

    volume: CTVolume
    lungs: np.ndarray
    lesions: np.ndarray
    anatomy: Anatomy = field(repr=False)
    pose: Pose = field(default_factory=Pose)
    target_percent_opacity: float = 0.0
    consolidation_fraction: float = 0.3
    crazy_paving: bool = False
    noise_hu: float = 0.0
    fov_circle: bool = True
    work_spacing_mm: tuple[float, float, float] = _DEFAULT_WORK_SPACING_MM

    def _ml(self, mask: np.ndarray) -> float:
        return float(np.count_nonzero(mask)) * self.volume.voxel_volume_ml

    @property
    def lung_volume_ml(self) -> float:
        """Volume of both lungs, mL (lesions included)."""
        return self._ml(self.lungs > 0)

    @property
    def right_lung_volume_ml(self) -> float:
        """Volume of the right lung (label 1), mL."""
        return self._ml(self.lungs == 1)

    @property
    def left_lung_volume_ml(self) -> float:
        """Volume of the left lung (label 2), mL."""
        return self._ml(self.lungs == 2)

    @property
    def ggo_volume_ml(self) -> float:
        """Ground-glass volume (lesion label 1), mL."""
        return self._ml(self.lesions == 1)

    @property
    def consolidation_volume_ml(self) -> float:
        """Consolidation volume (lesion label 2), mL."""
        return self._ml(self.lesions == 2)

    @property
    def lesion_volume_ml(self) -> float:
        """Ground-glass plus consolidation, mL."""
        return self._ml(self.lesions > 0)

    @property
    def percent_opacity(self) -> float:
        """Lesion volume / lung volume × 100 (0 when there is no lung), from the labels."""
        lung = np.count_nonzero(self.lungs)
        return float(100.0 * np.count_nonzero(self.lesions) / lung) if lung else 0.0

    @property
    def percent_consolidation(self) -> float:
        """Consolidation volume / lung volume × 100 (high-opacity percent of the truth)."""
        lung = np.count_nonzero(self.lungs)
        return float(100.0 * np.count_nonzero(self.lesions == 2) / lung) if lung else 0.0

    def truth(self) -> dict[str, float]:
        """The truth volumes (mL) and percents as a flat dict, for table rows."""
        return {
            "lung_volume_ml": round(self.lung_volume_ml, 3),
            "right_lung_volume_ml": round(self.right_lung_volume_ml, 3),
            "left_lung_volume_ml": round(self.left_lung_volume_ml, 3),
            "ggo_volume_ml": round(self.ggo_volume_ml, 3),
            "consolidation_volume_ml": round(self.consolidation_volume_ml, 3),
            "percent_opacity": round(self.percent_opacity, 4),
            "percent_consolidation": round(self.percent_consolidation, 4),
        }

    def follow_up(
        self,
        *,
        percent_opacity: float,
        rng: np.random.Generator,
        consolidation_fraction: float | None = None,
        crazy_paving: bool | None = None,
        pose: Pose | None = None,
        info: ScanInfo | None = None,
    ) -> "Phantom":
        """The same patient re-imaged at a later visit.

        Same anatomy, same matrix, spacing and image formation (noise level,
        reconstruction circle, work grid), the same disease pattern grown or shrunk
        to ``percent_opacity``; a new random pose (position, inspiration) and noise
        drawn from ``rng`` unless ``pose`` is given.

        Parameters
        ----------
        percent_opacity : float
            Target percent of lung volume involved at this visit, 0-95.
        rng : numpy.random.Generator
        consolidation_fraction, crazy_paving : optional
            Default to this visit's values.
        pose : Pose, optional
        info : ScanInfo, optional
            Defaults to this visit's info.

        Returns
        -------
        Phantom
        """
        return make_phantom(
            shape=self.volume.shape,
            spacing_mm=self.volume.spacing_mm,
            percent_opacity=percent_opacity,
            consolidation_fraction=self.consolidation_fraction if consolidation_fraction is None else consolidation_fraction,
            crazy_paving=self.crazy_paving if crazy_paving is None else crazy_paving,
            noise_hu=self.noise_hu,
            fov_circle=self.fov_circle,
            work_spacing_mm=self.work_spacing_mm,
            rng=rng,
            anatomy=self.anatomy,
            pose=pose,  # None: make_phantom draws Pose.random(rng) first, after checking rng
            info=self.volume.info if info is None else info,
        )


# --------------------------------------------------------------------------------------
# grids
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Grid:
    """Normalised coordinates of a (possibly coarser) grid laid over the full matrix."""

    u: np.ndarray  # (X,) float32
    v: np.ndarray  # (Y,)
    t: np.ndarray  # (Z,)
    mm: tuple[np.ndarray, np.ndarray, np.ndarray]  # scan mm of voxel centres (z, y, x), origin-free
    shape: tuple[int, int, int]


def _full_positions(n_full: int, n_work: int) -> np.ndarray:
    """Full-matrix index of each work-grid index (end points aligned)."""
    if n_work == 1:
        return np.zeros(1)
    return np.arange(n_work) * ((n_full - 1) / (n_work - 1))


def _grid(shape: tuple[int, int, int], spacing: tuple[float, float, float], work_shape: tuple[int, int, int], s_mm: float) -> _Grid:
    Z, Y, X = shape
    sz, sy, sx = spacing
    zi, yi, xi = (_full_positions(n, w) for n, w in zip(shape, work_shape))
    x_mm = (xi - (X - 1) / 2) * sx
    y_mm = (yi - (Y - 1) / 2) * sy
    z_mm = (zi + 0.5) * sz
    return _Grid(
        u=(x_mm / s_mm).astype(np.float32),
        v=(y_mm / s_mm).astype(np.float32),
        t=(z_mm / (Z * sz)).astype(np.float32),
        mm=(z_mm, y_mm, x_mm),
        shape=work_shape,
    )


def _upsample(arr: np.ndarray, work_shape: tuple[int, int, int], crop_work: tuple[slice, ...],
              full_shape: tuple[int, int, int], crop_full: tuple[slice, ...]) -> np.ndarray:
    """Linear interpolation of a work-grid crop onto a full-grid crop (end points aligned)."""
    out = arr
    for axis in range(3):
        n_full, n_work = full_shape[axis], work_shape[axis]
        fs, ws = crop_full[axis], crop_work[axis]
        if n_full == n_work:
            out = np.take(out, np.arange(fs.start, fs.stop) - ws.start, axis=axis)
            continue
        c = np.arange(fs.start, fs.stop) * ((n_work - 1) / (n_full - 1)) - ws.start
        n = out.shape[axis]
        i0 = np.clip(np.floor(c).astype(np.intp), 0, max(n - 2, 0))
        w = np.clip(c - i0, 0.0, 1.0).astype(np.float32)
        shape_w = [1, 1, 1]
        shape_w[axis] = -1
        w = w.reshape(shape_w)
        lo = np.take(out, i0, axis=axis)
        hi = np.take(out, np.minimum(i0 + 1, n - 1), axis=axis)
        hi -= lo
        hi *= w
        lo += hi
        out = lo
    return out


def _bbox(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    idx = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != k))) for k in range(3)]
    if any(len(i) == 0 for i in idx):
        return tuple(slice(0, 1) for _ in range(3))
    return tuple(slice(max(int(i[0]) - margin, 0), min(int(i[-1]) + margin + 1, n)) for i, n in zip(idx, mask.shape))


def _smooth_noise(shape: tuple[int, ...], sigma: float | tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Gaussian-filtered white noise normalised to unit standard deviation (float32)."""
    n = rng.standard_normal(shape, dtype=np.float32)
    ndi.gaussian_filter(n, sigma, output=n, mode="wrap")
    sd = float(n.std())
    return n / sd if sd > 0 else n


# --------------------------------------------------------------------------------------
# painting
# --------------------------------------------------------------------------------------

def _capsule(u, v, t, p0, p1, radius):
    """> 0 inside a capsule between (u, v, t) points, radius in normalised u units."""
    from imaging.phantom.anatomy import _segment_distance

    return radius * NOMINAL_U_MM - _segment_distance(u, v, t, p0, p1)


def _disease_field(anatomy: Anatomy, ua, va, tl, lf) -> np.ndarray:
    """Lesion propensity: a fixed random multifocal pattern of this patient plus peripheral,
    posterior and lower-zone weights.  Thresholding it gives the lesions."""
    rng = np.random.default_rng(anatomy.seed + 1)
    coarse = _smooth_noise((26, 40, 40), 1.6, rng)  # over t in [-0.1, 1.1], v, u in [-1.1, 1.1]
    ct = (tl + 0.1) / 1.2 * 25
    cv = (va + 1.1) / 2.2 * 39
    cu = (ua + 1.1) / 2.2 * 39
    ct, cv, cu = np.broadcast_arrays(ct, cv, cu)
    g = ndi.map_coordinates(coarse, [ct.ravel(), cv.ravel(), cu.ravel()], order=1, mode="nearest").reshape(ct.shape)
    # subpleural: close to the costal pleura (the cavity wall), not the mediastinum
    rc = np.sqrt((ua / anatomy.cavity_a) ** 2 + ((va - 0.02) / anatomy.cavity_b) ** 2)
    peripheral = np.exp(-np.clip(0.97 - rc, 0, None) / 0.10)
    posterior = np.clip((va + 0.35) / 0.7, 0, 1)
    lower = np.clip((anatomy.apex_t - tl) / (anatomy.apex_t - anatomy.lung_base_t), 0, 1)
    return (g + 1.5 * peripheral + 1.0 * posterior + 0.9 * lower).astype(np.float32)


def _paint_body(anatomy: Anatomy, pose: Pose, g: _Grid, tex: np.ndarray) -> np.ndarray:
    """HU of everything but the lung parenchyma, on the work grid (float32)."""
    a = anatomy
    H = PHANTOM_HU
    U = g.u[None, None, :]
    V = g.v[None, :, None]
    T = g.t[:, None, None]
    ua, va, ta = U - pose.du, V - pose.dv, T - pose.dt
    tl = lung_t(a, pose, T)
    shape = g.shape
    hu = np.full(shape, H["air"], dtype=np.float32)
    # table under the patient (scanner coordinates)
    table = (V > a.body_b + 0.06) & (V < a.body_b + 0.10) & (np.abs(U) < 0.75)
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
    # heart and great vessels (blood, unenhanced)
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
    hu[(cavity | np.broadcast_to(T > a.apex_t, shape)) & vessels] = H["blood"]
    # oesophagus
    hu[body & np.broadcast_to(np.hypot(ua - 0.03, va - 0.19) < 0.03, shape)] = H["muscle"] - 10
    # trachea and main bronchi: air with a soft-tissue wall
    aw = airway_field(a, ua, va, tl)
    hu[body & (aw > -2.0)] = H["muscle"] - 15
    hu[body & (aw > 0)] = H["air"]
    # spine: paraspinal soft tissue, vertebral bodies with discs, canal, posterior elements
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
    # ribs: oblique bands in the chest wall ring, lower anteriorly; costal cartilage near the sternum
    ring = (rc >= 1.02) & (rc < 1.02 + 0.07 / max(a.cavity_a, 1e-3)) & body
    phase = (ta / a.rib_period_t + 2.4 * np.arctan2(va, np.abs(ua)) / np.pi) % 1.0
    rib_z = (ta > a.lung_base_t - 0.06) & (ta < a.apex_t + 0.01)
    rib = ring & (phase < 0.32) & rib_z
    anterior = (va < -0.15) & (np.abs(ua) < 0.3)
    hu[np.broadcast_to(rib & ~anterior, shape)] = H["rib"]
    hu[np.broadcast_to(rib & anterior & (np.abs(ua) > 0.07), shape)] = H["cartilage"]
    # sternum
    sv = -(a.cavity_b - 0.02) - 0.045
    sternum = (((ua / 0.065) ** 2 + ((va - sv) / 0.03) ** 2) < 1.0) & (ta > c - 0.22) & (ta < a.apex_t - 0.06)
    hu[np.broadcast_to(sternum, shape)] = H["cortical_bone"] - 150
    hu[np.broadcast_to((((ua / 0.05) ** 2 + ((va - sv) / 0.017) ** 2) < 1.0) & sternum, shape)] = H["cancellous_bone"]
    # mild soft-tissue texture everywhere inside the body
    hu += np.where(np.broadcast_to(body, shape), 3.0 * tex, 0.0).astype(np.float32)
    return hu


def _work_shape(shape: tuple[int, int, int], spacing: tuple[float, float, float], work_spacing: tuple[float, float, float]) -> tuple[int, int, int]:
    out = []
    for n, s, w in zip(shape, spacing, work_spacing):
        out.append(n if s >= w else max(min(n, int(np.ceil((n - 1) * s / w)) + 1), 2))
    return tuple(out)  # type: ignore[return-value]


def _real(name: str, value: object) -> float:
    """``value`` as a float; TypeError naming ``name`` when it is not a real number."""
    if not is_real_number(value):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return float(value)


def make_phantom(
    *,
    shape: tuple[int, int, int] = (60, 128, 128),
    spacing_mm: tuple[float, float, float] = (5.0, 2.7, 2.7),
    percent_opacity: float = 0.0,
    consolidation_fraction: float = 0.3,
    crazy_paving: bool = False,
    noise_hu: float | None = None,
    rng: np.random.Generator,
    anatomy: Anatomy | None = None,
    pose: Pose | None = None,
    info: ScanInfo | None = None,
    fov_circle: bool = True,
    work_spacing_mm: tuple[float, float, float] = _DEFAULT_WORK_SPACING_MM,
) -> Phantom:
    """Make a synthetic chest CT with COVID-19-like disease and its truth labels.

    Parameters
    ----------
    shape : (Z, Y, X) tuple of int
        Matrix; each axis at least 8.  The chest is framed to the field of view
        ``shape × spacing_mm`` (in-plane by the smaller of the two extents).
    spacing_mm : (z, y, x) tuple of float
        Voxel spacing, mm.
    percent_opacity : float
        Target percent of lung volume involved (ground-glass + consolidation), 0-95.
        The achieved value (from the labels) is :attr:`Phantom.percent_opacity`.
    consolidation_fraction : float
        Fraction of the lesion volume that is consolidation, 0-1 (lesion cores).
    crazy_paving : bool
        Draw thickened septal lines inside the ground-glass.
    noise_hu : float, optional
        Standard deviation of the image noise, HU; defaults to ``25 / sqrt(z spacing
        in mm)`` (thicker slices are less noisy), between 6 and 35.
    rng : numpy.random.Generator
        Source of all randomness (anatomy when not given, pose, texture, noise).
    anatomy : Anatomy, optional
        Reuse a patient (later visit); drawn from ``rng`` when omitted.
    pose : Pose, optional
        Defaults to the reference pose for a new patient and to a random small change
        (:meth:`Pose.random`) when ``anatomy`` is given.
    info : ScanInfo, optional
        Attached to the volume (defaults describe a phantom).
    fov_circle : bool
        Set voxels outside the reconstruction circle (inscribed in the smaller in-plane
        extent) to -1024 HU, as scanners do.
    work_spacing_mm : (z, y, x) tuple of float
        Finest spacing at which the anatomy is painted before upsampling.

    Returns
    -------
    Phantom

    Raises
    ------
    ValueError
        On a bad shape, spacing, percent, fraction or noise level.
    TypeError
        When ``rng`` is not a :class:`numpy.random.Generator`, ``anatomy`` not an
        :class:`Anatomy`, ``pose`` not a :class:`Pose`, or a percent, fraction or noise
        level not a number.

    Examples
    --------
    >>> import numpy as np
    >>> p = make_phantom(shape=(32, 48, 48), spacing_mm=(9.0, 7.0, 7.0), percent_opacity=20.0,
    ...                  rng=np.random.default_rng(0))
    >>> p.volume.hu.dtype, p.lungs.max(), abs(p.percent_opacity - 20.0) < 1.0
    (dtype('int16'), np.uint8(2), True)
    >>> later = p.follow_up(percent_opacity=5.0, rng=np.random.default_rng(1))
    >>> later.percent_opacity < p.percent_opacity
    True
    """
    if np.ndim(shape) != 1 or len(shape) != 3 or any(float(n) != int(n) or int(n) < 8 for n in shape):
        raise ValueError(f"shape must be 3 integers (Z, Y, X), each >= 8, got {shape}")
    shape = tuple(int(n) for n in shape)  # type: ignore[assignment]
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing_mm must be 3 positive numbers (z, y, x), got {spacing_mm}")
    percent_opacity = _real("percent_opacity", percent_opacity)
    if not (0.0 <= percent_opacity <= 95.0):
        raise ValueError(f"percent_opacity must be between 0 and 95, got {percent_opacity}")
    consolidation_fraction = _real("consolidation_fraction", consolidation_fraction)
    if not (0.0 <= consolidation_fraction <= 1.0):
        raise ValueError(f"consolidation_fraction must be between 0 and 1, got {consolidation_fraction}")
    if noise_hu is not None and not (0.0 <= _real("noise_hu", noise_hu) <= 200.0):
        raise ValueError(f"noise_hu must be between 0 and 200 HU, got {noise_hu}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if anatomy is not None and not isinstance(anatomy, Anatomy):
        raise TypeError(f"anatomy must be an Anatomy (from make_anatomy or Phantom.anatomy), got {type(anatomy).__name__}")
    if pose is not None and not isinstance(pose, Pose):
        raise TypeError(f"pose must be a Pose, got {type(pose).__name__}")
    ws = tuple(float(s) for s in work_spacing_mm)
    if len(ws) != 3 or not all(np.isfinite(s) and s > 0 for s in ws):
        raise ValueError(f"work_spacing_mm must be 3 positive numbers, got {work_spacing_mm}")

    if anatomy is None:
        anatomy = make_anatomy(rng)
        pose = Pose() if pose is None else pose
    elif pose is None:
        pose = Pose.random(rng)
    if noise_hu is None:
        noise_hu = float(np.clip(25.0 / np.sqrt(spacing[0]), 6.0, 35.0))
    H = PHANTOM_HU
    Z, Y, X = shape
    s_mm = 0.5 * min(X * spacing[2], Y * spacing[1])
    work_shape = _work_shape(shape, spacing, ws)
    g = _grid(shape, spacing, work_shape, s_mm)
    work_spacing = tuple(
        (n_full - 1) * sp / (n_work - 1) if n_work > 1 else sp for n_full, n_work, sp in zip(shape, work_shape, spacing)
    )

    U = g.u[None, None, :]
    V = g.v[None, :, None]
    T = g.t[:, None, None]
    ua, va, ta = U - pose.du, V - pose.dv, T - pose.dt
    tl = lung_t(anatomy, pose, T)

    # lungs (field > 0 inside) and the lung bounding box on the work grid
    lf = lung_field(anatomy, ua, va, tl, ta).astype(np.float32)
    lf = np.broadcast_to(lf, work_shape)
    box = _bbox(lf > -0.05, margin=2)
    lfb = np.ascontiguousarray(lf[box])
    lung_w = lfb > 0

    tex = _smooth_noise(work_shape, (0.6, 1.0, 1.0), rng)
    hu = _paint_body(anatomy, pose, g, tex)

    # parenchyma, vessels, bronchi and disease inside the lung box
    uab, vab = np.broadcast_to(ua, work_shape)[box], np.broadcast_to(va, work_shape)[box]
    tlb = np.broadcast_to(tl, work_shape)[box]
    texb = tex[box]
    paren = H["lung"] + H["lung_gravity_gradient"] * np.clip((vab + 0.4) / 0.8, 0, 1) + 14.0 * texb

    def to_scan_mm(p: np.ndarray) -> np.ndarray:
        u = p[:, 0] / NOMINAL_U_MM + pose.du
        v = p[:, 1] / NOMINAL_U_MM + pose.dv
        t = anatomy.apex_t - (anatomy.apex_t - p[:, 2] / NOMINAL_T_MM) * pose.inspiration + pose.dt
        return np.stack([u * s_mm, v * s_mm, t * Z * spacing[0]], axis=1)

    axes_mm = tuple(m[b] for m, b in zip(g.mm, box))
    box_shape = lfb.shape
    vf = render_tubes(anatomy.vessels, box_shape, axes_mm=axes_mm, to_scan_mm=to_scan_mm, radius_scale=s_mm / NOMINAL_U_MM)
    bf = render_tubes(anatomy.bronchi, box_shape, axes_mm=axes_mm, to_scan_mm=to_scan_mm, radius_scale=s_mm / NOMINAL_U_MM)

    ggo_w = np.zeros(box_shape, dtype=bool)
    cons_w = np.zeros(box_shape, dtype=bool)
    thr = thr_c = np.inf
    dfb = None
    if percent_opacity > 0:
        dfb = _disease_field(anatomy, uab, vab, tlb, lfb)
        vals = dfb[lung_w]
        if vals.size:
            thr = float(np.quantile(vals, 1.0 - percent_opacity / 100.0))
            les = lung_w & (dfb >= thr)
            lv = dfb[les]
            thr_c = float(np.quantile(lv, 1.0 - consolidation_fraction)) if consolidation_fraction > 0 and lv.size else np.inf
            if consolidation_fraction >= 1.0:
                thr_c = thr
            cons_w = les & (dfb >= thr_c)
            ggo_w = les & ~cons_w
            hi = thr_c if np.isfinite(thr_c) else float(lv.max()) if lv.size else thr
            ramp = np.clip((dfb - thr) / max(hi - thr, 1e-6), 0, 1)
            ggo_hu = H["ggo_min"] + (H["ggo_max"] - H["ggo_min"]) * ramp + 25.0 * texb
            if crazy_paving:
                fine = _smooth_noise(box_shape, (0.8, 1.6, 1.6), np.random.default_rng(anatomy.seed + 2))
                septa = np.abs((fine * 2.0) % 1.0 - 0.5) < 0.09
                ggo_hu = np.where(septa, np.minimum(ggo_hu + H["crazy_paving_septa"], -250.0), ggo_hu)
            paren = np.where(ggo_w, ggo_hu, paren)
            paren = np.where(cons_w, H["consolidation"] + 15.0 * texb, paren)
    # bronchi: air lumen (air bronchograms inside consolidation), then vessels on top
    paren = paren * (1 - bf) + H["bronchus_lumen"] * bf
    vf = np.where(cons_w, 0.0, vf)
    paren = paren * (1 - vf) + H["blood"] * vf
    # blend the lung into the body with a partial-volume edge at the pleura
    h_norm = max(work_spacing[1], work_spacing[2]) / s_mm
    frac = np.clip(lfb / h_norm + 0.5, 0, 1)
    hu_box = hu[box]
    hu[box] = hu_box * (1 - frac) + paren * frac

    # partial-volume blur (scanner point spread), then to the full matrix
    ndi.gaussian_filter(hu, (0.45, 0.6, 0.6), output=hu)
    full_all = tuple(slice(0, n) for n in shape)
    work_all = tuple(slice(0, n) for n in work_shape)
    if work_shape != shape:
        hu = _upsample(hu, work_shape, work_all, shape, full_all)
        fbox = tuple(
            slice(int(np.floor(_full_positions(n, w)[b.start])), int(np.ceil(_full_positions(n, w)[b.stop - 1])) + 1)
            for n, w, b in zip(shape, work_shape, box)
        )
        lf_full = _upsample(lfb, work_shape, box, shape, fbox)
        df_full = _upsample(dfb, work_shape, box, shape, fbox) if dfb is not None else None
    else:
        fbox = box
        lf_full, df_full = lfb, dfb

    # noise: white, correlated in-plane like a reconstruction kernel
    if noise_hu > 0:
        noise = rng.standard_normal(shape, dtype=np.float32)
        sig = 0.8
        ndi.gaussian_filter1d(noise, sig, axis=1, output=noise)
        ndi.gaussian_filter1d(noise, sig, axis=2, output=noise)
        noise *= noise_hu * 2.0 * np.sqrt(np.pi) * sig
        hu += noise
    np.clip(hu, -1024, 3071, out=hu)
    if fov_circle:
        yy = (np.arange(Y) - (Y - 1) / 2) * spacing[1]
        xx = (np.arange(X) - (X - 1) / 2) * spacing[2]
        outside = (yy[:, None] ** 2 + xx[None, :] ** 2) > s_mm**2
        hu[:, outside] = -1024.0
    hu_i16 = np.rint(hu).astype(np.int16)

    # truth labels on the full matrix
    lungs = np.zeros(shape, dtype=np.uint8)
    lesions = np.zeros(shape, dtype=np.uint8)
    inside = lf_full > 0
    x_full = np.arange(fbox[2].start, fbox[2].stop)
    u_full = ((x_full - (X - 1) / 2) * spacing[2] / s_mm - pose.du).astype(np.float32)
    side = np.where(u_full < 0, 1, 2).astype(np.uint8)[None, None, :]
    lungs[fbox] = np.where(inside, side, 0)
    if df_full is not None and np.isfinite(thr):
        les = inside & (df_full >= thr)
        lesions[fbox] = np.where(les & (df_full >= thr_c), 2, np.where(les, 1, 0)).astype(np.uint8)

    if info is None:
        info = ScanInfo(
            modality="CT", image_type=("ORIGINAL", "PRIMARY", "AXIAL"), kernel="STANDARD",
            manufacturer="chestct phantom", slice_thickness_mm=spacing[0], series_description="phantom chest CT",
        )
    origin = (-(X - 1) / 2 * spacing[2], -(Y - 1) / 2 * spacing[1], -(Z - 1) * spacing[0] - 100.0)
    volume = CTVolume(hu_i16, spacing, origin, np.eye(3), info)
    return Phantom(
        volume=volume, lungs=lungs, lesions=lesions, anatomy=anatomy, pose=pose,
        target_percent_opacity=float(percent_opacity), consolidation_fraction=float(consolidation_fraction),
        crazy_paving=bool(crazy_paving), noise_hu=float(noise_hu), fov_circle=bool(fov_circle),
        work_spacing_mm=ws,  # type: ignore[arg-type]
    )

