"""COVID-19-like lesions of the phantom: where they lie, how dense they are.

Each patient has a fixed *disease propensity* field (:func:`disease_field`): a smooth
random multifocal pattern (seeded by the anatomy) plus weights for peripheral
(subpleural), posterior and lower-zone lung.  The lesions are the lung voxels whose
propensity reaches the quantile that gives the target percent of lung volume
(:func:`draw_lesions`); the highest ``consolidation_fraction`` of them are consolidation,
the rest ground-glass.  Since the pattern is fixed, a follow-up visit's lesions grow or
shrink in place as the target changes.

Densities (:func:`paint_lesions`): ground-glass ramps from ``ggo_min`` at its edge to
``ggo_max`` towards the consolidation (:data:`imaging.phantom.constants.PHANTOM_HU`), with
optional crazy-paving septal lines; consolidation is about -30 HU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from imaging.phantom.anatomy import Anatomy
from imaging.phantom.constants import PHANTOM_HU
from imaging.phantom.grid import smooth_noise

__all__ = ["Lesions", "disease_field", "draw_lesions", "paint_lesions"]


@dataclass(frozen=True)
class Lesions:
    """The lesions inside the lung box of the work grid.

    Attributes
    ----------
    field : float32 ndarray or None
        Disease propensity in the lung box; None when no opacity was asked for.
    ggo_threshold : float
        Lesion where ``field >= ggo_threshold`` inside the lungs (``inf``: no lesion).
    consolidation_threshold : float
        Consolidation where ``field >=`` this (``inf``: none).
    ramp_top : float
        Propensity at which the ground-glass reaches its densest HU.
    ggo, consolidation : bool ndarrays, lung-box shape
        The ground-glass and consolidation voxels of the work grid.
    """

    field: np.ndarray | None
    ggo_threshold: float
    consolidation_threshold: float
    ramp_top: float
    ggo: np.ndarray
    consolidation: np.ndarray

    @property
    def drawn(self) -> bool:
        """Whether there are lesion thresholds (opacity asked for, and lungs to put it in)."""
        return self.field is not None and bool(np.isfinite(self.ggo_threshold))


def disease_field(anatomy: Anatomy, ua: np.ndarray, va: np.ndarray, tl: np.ndarray) -> np.ndarray:
    """Lesion propensity: a fixed random multifocal pattern of this patient plus peripheral,
    posterior and lower-zone weights.  Thresholding it gives the lesions.

    Parameters
    ----------
    anatomy : Anatomy
        The pattern is seeded by ``anatomy.seed``.
    ua, va : ndarray
        Patient in-plane coordinates (pose shift removed), normalised units.
    tl : ndarray
        Lung height (:func:`imaging.phantom.anatomy.lung_t`).

    Returns
    -------
    float32 ndarray, the broadcast shape of the inputs
    """
    rng = np.random.default_rng(anatomy.seed + 1)
    coarse = smooth_noise((26, 40, 40), 1.6, rng)  # over t in [-0.1, 1.1], v, u in [-1.1, 1.1]
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


def _thresholds(field: np.ndarray, lung: np.ndarray, percent_opacity: float,
                consolidation_fraction: float) -> tuple[float, float, float] | None:
    """(lesion, consolidation, ramp top) propensity thresholds; None when there is no lung."""
    vals = field[lung]
    if not vals.size:
        return None
    thr = float(np.quantile(vals, 1.0 - percent_opacity / 100.0))
    lv = field[lung & (field >= thr)]
    thr_c = float(np.quantile(lv, 1.0 - consolidation_fraction)) if consolidation_fraction > 0 and lv.size else np.inf
    if consolidation_fraction >= 1.0:
        thr_c = thr
    top = thr_c if np.isfinite(thr_c) else float(lv.max()) if lv.size else thr
    return thr, thr_c, top


def draw_lesions(anatomy: Anatomy, ua: np.ndarray, va: np.ndarray, tl: np.ndarray, lung: np.ndarray, *,
                 percent_opacity: float, consolidation_fraction: float) -> Lesions:
    """The lesions of one visit in the lung box.

    Parameters
    ----------
    anatomy : Anatomy
    ua, va, tl : ndarrays, lung-box shape
        Patient coordinates and lung height of the box voxels.
    lung : bool ndarray, lung-box shape
        Lung voxels of the work grid.
    percent_opacity : float
        Target percent of lung volume involved, 0-95.
    consolidation_fraction : float
        Fraction of the lesion volume that is consolidation, 0-1.

    Returns
    -------
    Lesions
    """
    none = np.zeros(lung.shape, dtype=bool)
    if percent_opacity <= 0:
        return Lesions(None, np.inf, np.inf, np.inf, none, none)
    field = disease_field(anatomy, ua, va, tl)
    thresholds = _thresholds(field, lung, percent_opacity, consolidation_fraction)
    if thresholds is None:
        return Lesions(field, np.inf, np.inf, np.inf, none, none)
    thr, thr_c, top = thresholds
    lesion = lung & (field >= thr)
    consolidation = lesion & (field >= thr_c)
    return Lesions(field, thr, thr_c, top, lesion & ~consolidation, consolidation)


def paint_lesions(parenchyma: np.ndarray, lesions: Lesions, tex: np.ndarray, *, seed: int,
                  crazy_paving: bool) -> np.ndarray:
    """Parenchyma HU with the ground-glass and consolidation painted in.

    Parameters
    ----------
    parenchyma : float32 ndarray, lung-box shape, HU
    lesions : Lesions
    tex : float32 ndarray, lung-box shape
        Unit texture (25 HU of it in ground-glass, 15 HU in consolidation).
    seed : int
        The anatomy's seed (the crazy-paving pattern is fixed per patient).
    crazy_paving : bool
        Draw thickened septal lines inside the ground-glass.

    Returns
    -------
    float32 ndarray, lung-box shape, HU
    """
    if not lesions.drawn:
        return parenchyma
    H = PHANTOM_HU
    thr = lesions.ggo_threshold
    ramp = np.clip((lesions.field - thr) / max(lesions.ramp_top - thr, 1e-6), 0, 1)
    ggo_hu = H["ggo_min"] + (H["ggo_max"] - H["ggo_min"]) * ramp + 25.0 * tex
    if crazy_paving:
        fine = smooth_noise(parenchyma.shape, (0.8, 1.6, 1.6), np.random.default_rng(seed + 2))
        septa = np.abs((fine * 2.0) % 1.0 - 0.5) < 0.09
        ggo_hu = np.where(septa, np.minimum(ggo_hu + H["crazy_paving_septa"], -250.0), ggo_hu)
    out = np.where(lesions.ggo, ggo_hu, parenchyma)
    return np.where(lesions.consolidation, H["consolidation"] + 15.0 * tex, out)
