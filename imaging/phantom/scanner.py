"""Image formation of the phantom: what the scanner adds to the painted HU.

The work-grid HU are blurred for partial volume (the scanner's point spread), linearly
upsampled to the requested matrix (:func:`imaging.phantom.grid.upsample`), given white
noise correlated in-plane like a reconstruction kernel, clipped to the CT range
(-1024..3071 HU), set to -1024 HU outside the reconstruction circle when asked, and
rounded to int16 (:func:`form_image`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from imaging.phantom.grid import WorkGrid, upsample

__all__ = ["form_image", "default_noise_hu"]


def default_noise_hu(slice_spacing_mm: float) -> float:
    """Image noise for a slice spacing: ``25 / sqrt(mm)`` HU (thicker slices are less noisy), 6-35."""
    return float(np.clip(25.0 / np.sqrt(slice_spacing_mm), 6.0, 35.0))


def _to_full_matrix(hu: np.ndarray, g: WorkGrid) -> np.ndarray:
    """Work-grid values upsampled linearly to the whole requested matrix."""
    if g.shape == g.full_shape:
        return hu
    full_all = tuple(slice(0, n) for n in g.full_shape)
    work_all = tuple(slice(0, n) for n in g.shape)
    return upsample(hu, g.shape, work_all, g.full_shape, full_all)


def _add_noise(hu: np.ndarray, noise_hu: float, rng: np.random.Generator) -> None:
    """Add white noise of standard deviation ``noise_hu``, correlated in-plane (in place)."""
    if not noise_hu > 0:
        return
    noise = rng.standard_normal(hu.shape, dtype=np.float32)
    sig = 0.8
    ndi.gaussian_filter1d(noise, sig, axis=1, output=noise)
    ndi.gaussian_filter1d(noise, sig, axis=2, output=noise)
    noise *= noise_hu * 2.0 * np.sqrt(np.pi) * sig
    hu += noise


def _outside_reconstruction_circle(g: WorkGrid) -> np.ndarray:
    """(Y, X) bool: pixels outside the circle inscribed in the smaller in-plane extent."""
    _, Y, X = g.full_shape
    _, sy, sx = g.full_spacing_mm
    yy = (np.arange(Y) - (Y - 1) / 2) * sy
    xx = (np.arange(X) - (X - 1) / 2) * sx
    return (yy[:, None] ** 2 + xx[None, :] ** 2) > g.scale_mm**2


def form_image(hu: np.ndarray, g: WorkGrid, *, noise_hu: float, fov_circle: bool,
               rng: np.random.Generator) -> np.ndarray:
    """The scanner's image of the painted work-grid HU.

    Parameters
    ----------
    hu : float32 ndarray of ``g.shape``, HU
        Painted phantom; blurred in place.
    g : WorkGrid
    noise_hu : float
        Standard deviation of the image noise, HU (0: none, nothing drawn from ``rng``).
    fov_circle : bool
        Set voxels outside the reconstruction circle to -1024 HU.
    rng : numpy.random.Generator
        Source of the noise.

    Returns
    -------
    int16 ndarray of ``g.full_shape``, HU
    """
    ndi.gaussian_filter(hu, (0.45, 0.6, 0.6), output=hu)  # partial volume (point spread)
    hu = _to_full_matrix(hu, g)
    _add_noise(hu, noise_hu, rng)
    np.clip(hu, -1024, 3071, out=hu)
    if fov_circle:
        hu[:, _outside_reconstruction_circle(g)] = -1024.0
    return np.rint(hu).astype(np.int16)
