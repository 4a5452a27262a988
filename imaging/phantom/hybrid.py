"""COVID-19-like lesions inserted into a real chest CT: real anatomy with known truth.

Following the idea of Yao et al. (IEEE TMI 2021, doi:10.1109/TMI.2021.3066161): simple,
documented image operations turn a near-healthy real scan into a diseased one whose
lesions are known exactly, so a lung mask and an opacity score can be measured against
truth on real anatomy (heart, liver dome, stomach, table and noise all real).

The method, step by step (:func:`insert_lesions`):

1. **Where**: a *propensity* field over the lungs, high near the pleura, posteriorly and
   in the lower zones (the distribution of COVID-19 pneumonia: Bernheim et al.,
   Radiology 2020; Chung et al., Radiology 2020), times a smooth random field (patches of
   :data:`PATCH_SCALE_MM`), plus a boost at the lung surface that faces the heart,
   mediastinum and diaphragm (so that dense consolidation lies against those organs on
   purpose).  The lesion is the part of the lungs above the quantile of the field that
   gives the requested involvement: multifocal, bilateral, peripheral, posterior,
   basal.
2. **What**: the densest part of each patch becomes consolidation (cores), the rest
   ground-glass; lesions at the heart, mediastinum and diaphragm are consolidation; a
   share of the ground-glass patches gets a reticular pattern (crazy paving).
3. **Densities**: ground-glass adds density to the real parenchyma, so vessels and the
   scan's own texture stay visible (cores at :data:`HU_GGO_CORE`); consolidation
   replaces the lung with soft tissue at :data:`HU_CONSOLIDATION_CORE` with a texture of
   :data:`CONSOLIDATION_TEXTURE_SD_HU` and the scan's own noise level, keeping airway
   lumen darker than :data:`HU_AIR_BRONCHOGRAM` (air bronchograms) except in airless
   consolidation; edges are blurred over about one voxel (partial volume).

Densities were calibrated on the real COVID-19 scan ``ricord_1a_001012`` (consolidation
cores about +3 HU with SD about 35; ground-glass cores about -584 HU).

Arrays are canonical ``(z, y, x)``: slice 0 inferior, rows anterior → posterior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from imaging.common.volume import CTVolume
from imaging.phantom.real_lungs import body_mask

__all__ = [
    "HybridCase",
    "ScanContext",
    "prepare_scan",
    "insert_lesions",
    "juxta_organ_lung",
    "scan_noise_sd",
    "HU_GGO_CORE",
    "HU_CONSOLIDATION_CORE",
    "CONSOLIDATION_TEXTURE_SD_HU",
    "HU_AIR_BRONCHOGRAM",
    "PATCH_SCALE_MM",
    "JUXTA_ORGAN_MM",
]

#: Ground-glass core density (HU), calibrated on ricord_1a_001012 (about -584 HU).
HU_GGO_CORE: float = -584.0
#: Spread of the ground-glass core density between patches (SD, HU).
GGO_CORE_SD_HU: float = 60.0
#: Consolidation core density (HU), calibrated on ricord_1a_001012 (about +3 HU).
HU_CONSOLIDATION_CORE: float = 3.0
#: Texture of consolidation beyond the scan's noise (SD, HU): total SD about 35 HU.
CONSOLIDATION_TEXTURE_SD_HU: float = 25.0
#: Airway lumen inside consolidation keeps its air below this (HU): air bronchograms.
HU_AIR_BRONCHOGRAM: float = -930.0
#: Septal lines of crazy paving: added density (HU) and their spacing (mm).
CRAZY_PAVING_LINE_HU: float = 250.0
CRAZY_PAVING_SCALE_MM: float = 6.0
#: Size of the patches of the random field that places lesions (mm).
PATCH_SCALE_MM: float = 25.0
#: Weights of the propensity terms, in SDs of the random field: peripheral (decaying
#: over PERIPHERAL_DEPTH_MM from the pleura), posterior and basal gradients (over the
#: lungs' extent), and the juxta-organ boost on a random share of that surface.
PERIPHERAL_WEIGHT: float = 0.4
PERIPHERAL_DEPTH_MM: float = 25.0
GRADIENT_WEIGHT: float = 0.5
JUXTA_WEIGHT: float = 1.0
JUXTA_PATCH_CUT: float = 0.3
#: Lung within this distance (mm) of the heart, mediastinum or diaphragm is "juxta-organ".
JUXTA_ORGAN_MM: float = 8.0
#: Indentations of the lung outline by ribs up to this depth (mm) are chest wall, not
#: mediastinum: the lungs are closed by this radius before the convex hull is compared.
RIB_INDENT_MM: float = 10.0
#: Non-lung tissue under the lungs deeper than this below the skin (mm) is diaphragm.
DIAPHRAGM_MIN_DEPTH_MM: float = 40.0
#: Partial volume at lesion edges: Gaussian blur of the lesion (voxels, in-plane).
EDGE_BLUR_VOXELS: float = 0.7


@dataclass(frozen=True)
class HybridCase:
    """A real scan with inserted lesions and its truth.

    Attributes
    ----------
    volume : CTVolume
        The scan with lesions (HU).
    lungs : (Z, Y, X) ndarray of bool
        Truth lungs (the healthy scan's lungs; every inserted lesion lies inside).
    ggo, consolidation : (Z, Y, X) ndarray of bool
        Truth ground-glass (crazy paving included) and consolidation, inside ``lungs``.
    juxta_organ : (Z, Y, X) ndarray of bool
        Truth lesion voxels within :data:`JUXTA_ORGAN_MM` of the heart, mediastinum or
        diaphragm (the lesion a lung mask must not leave out).
    involvement_pct : float
        Lesion volume as a percentage of the lung volume (the truth percent opacity).
    """

    volume: CTVolume
    lungs: np.ndarray
    ggo: np.ndarray
    consolidation: np.ndarray
    juxta_organ: np.ndarray
    involvement_pct: float


def _smooth_field(shape: tuple[int, ...], spacing_mm: tuple[float, ...], scale_mm: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-SD Gaussian random field with correlation length ``scale_mm``."""
    step = [max(1, int(round(scale_mm / 3.0 / s))) for s in spacing_mm]
    coarse_shape = [int(np.ceil(n / k)) + 2 for n, k in zip(shape, step)]
    coarse = ndi.gaussian_filter(rng.standard_normal(coarse_shape), sigma=1.0, mode="wrap")
    field = ndi.zoom(coarse, step, order=1)[tuple(slice(0, n) for n in shape)]
    return ((field - field.mean()) / (field.std() + 1e-12)).astype(np.float32)


def scan_noise_sd(hu: np.ndarray, body: np.ndarray) -> float:
    """The scan's noise (SD, HU), measured in homogeneous soft tissue.

    The residual from a 5 x 5 in-plane mean in soft tissue (0..100 HU), in the quietest
    quarter of such voxels by local SD (muscle, liver), corrected for the mean's own share.
    """
    soft = body & (hu > 0) & (hu < 100)
    soft = ndi.binary_erosion(soft, structure=np.ones((1, 5, 5), bool))
    if soft.sum() < 1000:
        return 15.0
    f = hu.astype(np.float32)
    mean = ndi.uniform_filter(f, size=(1, 5, 5))
    sq = ndi.uniform_filter(f * f, size=(1, 5, 5))
    local_sd = np.sqrt(np.maximum(sq - mean * mean, 0.0))[soft]
    quiet = local_sd <= np.quantile(local_sd, 0.25)
    residual = (f - mean)[soft][quiet]
    return float(np.std(residual) / np.sqrt(1.0 - 1.0 / 25.0))


def juxta_organ_lung(lungs: np.ndarray, body: np.ndarray, spacing_mm: tuple[float, float, float],
                     distance_mm: float = JUXTA_ORGAN_MM) -> np.ndarray:
    """Lung within ``distance_mm`` of the heart, mediastinum or diaphragm.

    Mediastinum and heart: non-lung body voxels inside each slice's convex hull of the
    lungs, rib indentations (:data:`RIB_INDENT_MM`) closed first; diaphragm: non-lung body voxels directly below a lung voxel (slice 0 is
    inferior) and more than :data:`DIAPHRAGM_MIN_DEPTH_MM` below the skin.  Chest wall
    (outside the hull, or near the skin) is not counted.
    """
    from skimage.morphology import convex_hull_image

    organ = np.zeros(lungs.shape, bool)
    for z in np.flatnonzero(lungs.any(axis=(1, 2))):
        hull = ndi.binary_erosion(convex_hull_image(lungs[z]), iterations=2)  # not the pixelated rim
        organ[z] = hull & ~(lungs[z] | _closed(lungs[z], spacing_mm[1:], RIB_INDENT_MM)) & body[z]
    below = np.zeros(lungs.shape, bool)
    below[:-1] = lungs[1:] & ~lungs[:-1] & body[:-1]
    # under the lungs, the diaphragm lies deep in the body; the chest wall of the
    # tapering costophrenic recess lies near the skin
    depth = np.stack([ndi.distance_transform_edt(b, sampling=spacing_mm[1:]) for b in body])
    organ |= below & (depth > DIAPHRAGM_MIN_DEPTH_MM)
    dist = ndi.distance_transform_edt(~organ, sampling=spacing_mm)
    return lungs & (dist <= distance_mm)


def _closed(mask: np.ndarray, spacing_mm: tuple[float, ...], radius_mm: float) -> np.ndarray:
    """Morphological closing by a disk of ``radius_mm`` (through distance transforms)."""
    dilated = ndi.distance_transform_edt(~mask, sampling=spacing_mm) <= radius_mm
    return ndi.distance_transform_edt(dilated, sampling=spacing_mm) > radius_mm


def _propensity(lungs: np.ndarray, juxta: np.ndarray, spacing_mm: tuple[float, float, float],
                rng: np.random.Generator) -> np.ndarray:
    """Where lesions go: peripheral, posterior, basal, patchy, and against the organs."""
    depth = ndi.distance_transform_edt(lungs, sampling=spacing_mm).astype(np.float32)
    zs = np.flatnonzero(lungs.any(axis=(1, 2)))
    ys = np.flatnonzero(lungs.any(axis=(0, 2)))
    z_frac = ((np.arange(lungs.shape[0]) - zs[0]) / max(1, zs[-1] - zs[0])).astype(np.float32)
    y_frac = ((np.arange(lungs.shape[1]) - ys[0]) / max(1, ys[-1] - ys[0])).astype(np.float32)
    field = _smooth_field(lungs.shape, spacing_mm, PATCH_SCALE_MM, rng)
    field += PERIPHERAL_WEIGHT * np.exp(-depth / PERIPHERAL_DEPTH_MM)
    field += GRADIENT_WEIGHT * y_frac[None, :, None]   # posterior
    field -= GRADIENT_WEIGHT * z_frac[:, None, None]   # lower zones
    patches = _smooth_field(lungs.shape, spacing_mm, 2 * PATCH_SCALE_MM, rng) > JUXTA_PATCH_CUT
    field += JUXTA_WEIGHT * (juxta & patches)
    return field


def _lesion_split(lesion: np.ndarray, field: np.ndarray, juxta: np.ndarray, consolidation_fraction: float,
                  crazy_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Consolidation (patch cores, juxta-organ lesion), ground-glass and crazy-paving masks."""
    if not lesion.any():
        empty = np.zeros(lesion.shape, bool)
        return empty, empty, empty
    cut = np.quantile(field[lesion], 1.0 - consolidation_fraction) if consolidation_fraction > 0 else np.inf
    consolidation = lesion & ((field >= cut) | juxta)
    ggo = lesion & ~consolidation
    labels, n = ndi.label(ggo)
    crazy = np.zeros(lesion.shape, bool)
    if n and crazy_fraction > 0:
        chosen = np.flatnonzero(rng.random(n) < crazy_fraction) + 1
        crazy = np.isin(labels, chosen)
    return ggo, consolidation, crazy


def _densities(hu: np.ndarray, lungs: np.ndarray, ggo: np.ndarray, consolidation: np.ndarray,
               crazy: np.ndarray, noise_sd: float, spacing_mm: tuple[float, float, float],
               rng: np.random.Generator) -> np.ndarray:
    """The scan's HU with the lesions' densities blended in at soft edges."""
    f = hu.astype(np.float32)
    background = float(np.median(f[lungs & (f < -500)])) if (lungs & (f < -500)).any() else -850.0
    sigma = (EDGE_BLUR_VOXELS * 0.5, EDGE_BLUR_VOXELS, EDGE_BLUR_VOXELS)
    # the truth lungs stop at -500 HU: the partial-volume rim of lung outside them at the
    # pleura and fissures takes the lesion too, or a dark line would remain around it
    reach = lungs | (ndi.binary_dilation(lungs, structure=np.ones((1, 5, 5), bool)) & (f < -200.0))
    w_ggo = ndi.gaussian_filter(ndi.binary_dilation(ggo, np.ones((1, 5, 5), bool), mask=reach).astype(np.float32), sigma)
    w_con = ndi.gaussian_filter(ndi.binary_dilation(consolidation, np.ones((1, 5, 5), bool), mask=reach).astype(np.float32), sigma)
    w_ggo = np.where(lungs, ndi.gaussian_filter(ggo.astype(np.float32), sigma), w_ggo * reach)
    w_con = np.where(lungs, ndi.gaussian_filter(consolidation.astype(np.float32), sigma), w_con * reach)
    ggo_core = HU_GGO_CORE + GGO_CORE_SD_HU * _smooth_field(hu.shape, spacing_mm, PATCH_SCALE_MM, rng) * 0.5
    vessel = np.clip((f + 500.0) / 300.0, 0.0, 1.0)  # vessels already dense gain little
    out = f + w_ggo * (ggo_core - background) * (1.0 - vessel)
    lines = np.abs(_smooth_field(hu.shape, spacing_mm, CRAZY_PAVING_SCALE_MM, rng)) < 0.15
    out += CRAZY_PAVING_LINE_HU * (crazy & lines) * w_ggo
    texture = CONSOLIDATION_TEXTURE_SD_HU * _smooth_field(hu.shape, spacing_mm, 3.0, rng)
    noise = noise_sd * ndi.gaussian_filter(rng.standard_normal(hu.shape).astype(np.float32), 0.6) / 0.33
    solid = HU_CONSOLIDATION_CORE + texture + noise
    # air bronchograms: airway lumen at least 3 voxels wide, not single dark voxels of noise
    bronchogram = ndi.binary_opening(consolidation & (f < HU_AIR_BRONCHOGRAM), structure=np.ones((1, 3, 3), bool))
    out = np.where(bronchogram, f, out * (1.0 - w_con) + solid * w_con)
    touched = (w_ggo > 1e-3) | (w_con > 1e-3)
    return np.where(touched, np.clip(np.rint(out), -1024, 3071), hu).astype(hu.dtype)


@dataclass(frozen=True)
class ScanContext:
    """What lesion insertion measures once per scan (:func:`prepare_scan`).

    Attributes
    ----------
    spacing_mm : (3,) tuple of float
    noise_sd : float
        The scan's noise, HU (:func:`scan_noise_sd`).
    box : tuple of slice
        The lungs' bounding box with a margin; insertion works inside it.
    juxta_zone : ndarray of bool
        Lung against heart, mediastinum and diaphragm, inside ``box``.
    """

    spacing_mm: tuple[float, float, float]
    noise_sd: float
    box: tuple[slice, slice, slice]
    juxta_zone: np.ndarray


def prepare_scan(volume: CTVolume, lungs: np.ndarray) -> ScanContext:
    """Measure a scan once for :func:`insert_lesions`: its noise, lung box, juxta-organ lung."""
    lungs = np.asarray(lungs, bool)
    spacing = tuple(float(s) for s in volume.spacing_mm)
    body = body_mask(volume.hu)
    box = _lung_box(lungs)
    return ScanContext(spacing_mm=spacing, noise_sd=scan_noise_sd(volume.hu, body), box=box,  # type: ignore[arg-type]
                       juxta_zone=juxta_organ_lung(lungs[box], body[box], spacing))


def insert_lesions(
    volume: CTVolume,
    lungs: np.ndarray,
    involvement_pct: float,
    *,
    rng: np.random.Generator | int = 0,
    consolidation_fraction: float = 0.35,
    crazy_paving_fraction: float = 0.2,
    context: ScanContext | None = None,
) -> HybridCase:
    """Insert COVID-19-like lesions covering ``involvement_pct`` of the lungs.

    Parameters
    ----------
    volume : CTVolume
        A near-healthy canonical chest CT (HU).
    lungs : (Z, Y, X) array_like of bool
        Its reviewed truth lungs (e.g. :func:`imaging.phantom.real_lungs.healthy_lungs`).
    involvement_pct : float
        Percent of the lung volume to turn into lesion, 0..90.
    rng : numpy.random.Generator or int, optional
        Random generator or seed: the same seed gives the same case.
    consolidation_fraction : float, optional
        Share of the lesion (patch cores) made consolidation, 0..1; lesion against the
        heart, mediastinum and diaphragm is consolidation in any case.
    crazy_paving_fraction : float, optional
        Share of the ground-glass patches given a reticular pattern, 0..1.
    context : ScanContext, optional
        :func:`prepare_scan` of this volume and lungs, to insert several involvements
        into one scan without measuring it again.

    Returns
    -------
    HybridCase
    """
    lungs = np.asarray(lungs, bool)
    if lungs.shape != volume.shape:
        raise ValueError(f"lungs shape {lungs.shape} does not match the volume {volume.shape}")
    if not (0.0 <= float(involvement_pct) <= 90.0):
        raise ValueError(f"involvement_pct must be within 0..90, got {involvement_pct!r}")
    for name, value in (("consolidation_fraction", consolidation_fraction), ("crazy_paving_fraction", crazy_paving_fraction)):
        if not (0.0 <= float(value) <= 1.0):
            raise ValueError(f"{name} must be within 0..1, got {value!r}")
    rng = np.random.default_rng(rng)
    ctx = prepare_scan(volume, lungs) if context is None else context
    spacing, box, lung_box, juxta_zone = ctx.spacing_mm, ctx.box, lungs[ctx.box], ctx.juxta_zone
    field = _propensity(lung_box, juxta_zone, spacing, rng)
    lesion = np.zeros(lung_box.shape, bool)
    if involvement_pct > 0 and lung_box.any():
        lesion = lung_box & (field >= np.quantile(field[lung_box], 1.0 - involvement_pct / 100.0))
    ggo, consolidation, crazy = _lesion_split(lesion, field, juxta_zone & lesion,
                                              consolidation_fraction, crazy_paving_fraction, rng)
    hu = volume.hu.copy()
    hu[box] = _densities(volume.hu[box], lung_box, ggo, consolidation, crazy, ctx.noise_sd, spacing, rng)
    return HybridCase(
        volume=volume.with_hu(hu), lungs=lungs,
        ggo=_paste(ggo, box, lungs.shape), consolidation=_paste(consolidation, box, lungs.shape),
        juxta_organ=_paste(lesion & juxta_zone, box, lungs.shape),
        involvement_pct=float(100.0 * lesion.sum() / max(1, lungs.sum())),
    )


def _lung_box(lungs: np.ndarray, margin: tuple[int, int, int] = (2, 8, 8)) -> tuple[slice, slice, slice]:
    """The lungs' bounding box with a margin of voxels, clipped to the volume."""
    if not lungs.any():
        return (slice(0, 0),) * 3  # type: ignore[return-value]
    box = []
    for axis, m in enumerate(margin):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(lungs.any(axis=other))
        box.append(slice(max(0, idx[0] - m), min(lungs.shape[axis], idx[-1] + m + 1)))
    return tuple(box)  # type: ignore[return-value]


def _paste(part: np.ndarray, box: tuple[slice, slice, slice], shape: tuple[int, ...]) -> np.ndarray:
    """A full-size mask holding ``part`` at ``box``."""
    out = np.zeros(shape, bool)
    out[box] = part
    return out
