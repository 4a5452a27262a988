"""A tiny synthetic chest with a known answer, shared by the lung / opacity / score tests.

Two -850 HU ellipsoid lungs in a 40 HU elliptical body surrounded by air, a trachea
with main bronchi (-1000 HU) above them, optional consolidation (-20 HU sphere) against
the right lung's lateral chest wall and optional ground-glass (-550 HU) in the left lung,
plus a bowel-gas pocket below the lungs.  Anisotropic spacing, noise from ``rng``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imaging.common.volume import CTVolume


@dataclass
class Toy:
    volume: CTVolume
    lungs: np.ndarray  # 0 / 1 right / 2 left (truth, lesions included)
    lesions: np.ndarray  # 0 / 1 GGO / 2 consolidation
    airway: np.ndarray  # bool


def make_toy(*, rng: np.random.Generator, consolidation: bool = True, ggo: bool = False,
             noise_hu: float = 15.0, spacing_mm: tuple[float, float, float] = (5.0, 3.0, 3.0)) -> Toy:
    shape = (26, 64, 84)
    z, y, x = np.indices(shape, dtype=np.float32)
    body = ((y - 32) / 28) ** 2 + ((x - 42) / 40) ** 2 <= 1.0
    hu = np.where(body, 40.0, -1000.0).astype(np.float32)
    lungs = np.zeros(shape, np.uint8)
    # patient's right = low x index (LPS)
    for lab, cx in ((1, 24.0), (2, 60.0)):
        ell = ((z - 11) / 9.0) ** 2 + ((y - 33) / 17.0) ** 2 + ((x - cx) / 13.0) ** 2 <= 1.0
        lungs[ell] = lab
    hu[lungs > 0] = -850.0
    airway = np.zeros(shape, bool)
    airway |= (((y - 26) / 3.0) ** 2 + ((x - 42) / 3.0) ** 2 <= 1.0) & (z >= 17)
    for cx in (27.0, 57.0):  # main bronchi from the carina into each lung
        t = np.clip((x - 42) / (cx - 42), 0, 1)
        zz, yy = 17 - 3 * t, 26 + 5 * t
        airway |= ((z - zz) ** 2 + (y - yy) ** 2 <= 4.0) & (t > 0) & (t < 1)
    airway &= lungs == 0
    hu[airway] = -1000.0
    lesions = np.zeros(shape, np.uint8)
    if consolidation:
        blob = ((z - 11) / 2.2) ** 2 + ((y - 36) / 5.0) ** 2 + ((x - 14.5) / 5.0) ** 2 <= 1.0
        blob &= lungs == 1
        lesions[blob] = 2
        hu[blob] = -20.0
    if ggo:
        patch = ((z - 9) / 2.5) ** 2 + ((y - 30) / 6.0) ** 2 + ((x - 62) / 6.0) ** 2 <= 1.0
        patch &= lungs == 2
        lesions[patch] = 1
        hu[patch] = -550.0
    gas = ((z - 1) / 1.2) ** 2 + ((y - 30) / 5.0) ** 2 + ((x - 50) / 6.0) ** 2 <= 1.0
    hu[gas & (lungs == 0)] = -1000.0
    hu = hu + rng.normal(0.0, noise_hu, shape).astype(np.float32)
    vol = CTVolume(np.round(hu).astype(np.int16), spacing_mm)
    return Toy(volume=vol, lungs=lungs, lesions=lesions, airway=airway)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))
