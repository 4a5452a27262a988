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

How it is made (and why it is fast), one module per step of :func:`make_phantom`:

1. the patient: :func:`make_anatomy` draws the anatomy (:mod:`imaging.phantom.anatomy`,
   a set of implicit fields) and grows its vessel and bronchial trees
   (:mod:`imaging.phantom.vessels`);
2. the work grid: the fields are evaluated on a grid no finer than ``work_spacing_mm``
   (default 2.5 × 1.4 × 1.4 mm, :mod:`imaging.phantom.grid`);
3. painting there: the body (:mod:`imaging.phantom.body`), then, in the lungs' bounding
   box, parenchyma, lesions, bronchi and vessels (:mod:`imaging.phantom.lungs`,
   :mod:`imaging.phantom.lesions`);
4. the scanner: partial-volume blur, linear upsampling to the requested matrix, noise at
   full resolution, reconstruction circle (:mod:`imaging.phantom.scanner`);
5. the truth: thresholds of the upsampled lung and disease fields, so labels and HU share
   their boundaries (:mod:`imaging.phantom.truth`).

Truth labels
------------
``lungs``: 0 background, 1 right lung (low ``x`` index: LPS +x is the patient's left),
2 left lung.  The lungs include their vessels, intrapulmonary bronchi and all lesion
voxels, and exclude the trachea and main bronchi, like a clinical lung mask.
``lesions``: 0 none, 1 ground-glass, 2 consolidation; always inside ``lungs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from imaging.common.checks import is_real_number
from imaging.common.volume import CTVolume, ScanInfo
from imaging.phantom.anatomy import Anatomy, Pose, draw_anatomy
from imaging.phantom.body import paint_body
from imaging.phantom.constants import DEFAULT_WORK_SPACING_MM, PHANTOM_HU
from imaging.phantom.grid import smooth_noise, work_grid
from imaging.phantom.lesions import draw_lesions
from imaging.phantom.lungs import lung_box, paint_lungs
from imaging.phantom.scanner import default_noise_hu, form_image
from imaging.phantom.truth import truth_labels
from imaging.phantom.vessels import grow_trees

__all__ = ["Phantom", "make_phantom", "Anatomy", "Pose", "make_anatomy", "PHANTOM_HU"]


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
    work_spacing_mm: tuple[float, float, float] = DEFAULT_WORK_SPACING_MM

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


def make_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one patient's anatomy, including the vessel and bronchial trees.

    Parameters
    ----------
    rng : numpy.random.Generator
        The sizes are drawn from it (:func:`imaging.phantom.anatomy.draw_anatomy`); the
        trees from a generator seeded by the anatomy's own seed.

    Returns
    -------
    Anatomy
    """
    anatomy = draw_anatomy(rng)
    vessels, bronchi = grow_trees(anatomy, rng=np.random.default_rng(anatomy.seed + 17))
    return replace(anatomy, vessels=vessels, bronchi=bronchi)


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
    work_spacing_mm: tuple[float, float, float] = DEFAULT_WORK_SPACING_MM,
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
    shape, spacing, percent_opacity, consolidation_fraction, ws = _checked_arguments(
        shape, spacing_mm, percent_opacity, consolidation_fraction, noise_hu, rng, anatomy, pose, work_spacing_mm)
    anatomy, pose = _patient_and_pose(anatomy, pose, rng)
    if noise_hu is None:
        noise_hu = default_noise_hu(spacing[0])
    # paint the anatomy on the work grid: the body, then the lungs with their lesions
    g = work_grid(shape, spacing, ws)
    tex = smooth_noise(g.shape, (0.6, 1.0, 1.0), rng)
    hu = paint_body(anatomy, pose, g, tex)
    lb = lung_box(anatomy, pose, g, tex)
    lesions = draw_lesions(anatomy, lb.ua, lb.va, lb.tl, lb.lung, percent_opacity=percent_opacity,
                           consolidation_fraction=consolidation_fraction)
    paint_lungs(hu, anatomy, pose, g, lb, lesions, crazy_paving=crazy_paving)
    # the scanner's image on the full matrix, and the truth that shares its boundaries
    hu_i16 = form_image(hu, g, noise_hu=noise_hu, fov_circle=fov_circle, rng=rng)
    lungs, lesion_labels = truth_labels(g, lb, lesions, pose)
    return Phantom(
        volume=_volume(hu_i16, spacing, info), lungs=lungs, lesions=lesion_labels, anatomy=anatomy, pose=pose,
        target_percent_opacity=float(percent_opacity), consolidation_fraction=float(consolidation_fraction),
        crazy_paving=bool(crazy_paving), noise_hu=float(noise_hu), fov_circle=bool(fov_circle),
        work_spacing_mm=ws,
    )


def _checked_arguments(
    shape: Any, spacing_mm: Any, percent_opacity: Any, consolidation_fraction: Any,
    noise_hu: Any, rng: Any, anatomy: Any, pose: Any, work_spacing_mm: Any,
) -> tuple[tuple[int, int, int], tuple[float, float, float], float, float, tuple[float, float, float]]:
    """Check :func:`make_phantom`'s arguments (in the order of its docstring's errors).

    Returns
    -------
    shape, spacing_mm, percent_opacity, consolidation_fraction, work_spacing_mm
        As ints and floats.
    """
    if np.ndim(shape) != 1 or len(shape) != 3 or any(float(n) != int(n) or int(n) < 8 for n in shape):
        raise ValueError(f"shape must be 3 integers (Z, Y, X), each >= 8, got {shape}")
    shape = tuple(int(n) for n in shape)
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
    return shape, spacing, percent_opacity, consolidation_fraction, ws


def _real(name: str, value: object) -> float:
    """``value`` as a float; TypeError naming ``name`` when it is not a real number."""
    if not is_real_number(value):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return float(value)


def _patient_and_pose(anatomy: Anatomy | None, pose: Pose | None, rng: np.random.Generator) -> tuple[Anatomy, Pose]:
    """A new patient in the reference pose, or a known patient in a new (random) pose."""
    if anatomy is None:
        return make_anatomy(rng), (Pose() if pose is None else pose)
    return anatomy, (Pose.random(rng) if pose is None else pose)


def _volume(hu: np.ndarray, spacing: tuple[float, float, float], info: ScanInfo | None) -> CTVolume:
    """The phantom's CT volume: canonical LPS, centred in-plane, its top slice at z = -100 mm."""
    Z, Y, X = hu.shape
    if info is None:
        info = ScanInfo(
            modality="CT", image_type=("ORIGINAL", "PRIMARY", "AXIAL"), kernel="STANDARD",
            manufacturer="chestct phantom", slice_thickness_mm=spacing[0], series_description="phantom chest CT",
        )
    origin = (-(X - 1) / 2 * spacing[2], -(Y - 1) / 2 * spacing[1], -(Z - 1) * spacing[0] - 100.0)
    return CTVolume(hu, spacing, origin, np.eye(3), info)
