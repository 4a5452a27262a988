"""Fixed numbers of the phantom: the nominal HU of its tissues and the default work grid.

The HU are the mean values painted before texture, partial-volume blur and noise
(:mod:`imaging.phantom.body` for the body, :mod:`imaging.phantom.lungs` for the lungs and
their lesions); the work spacing is the finest grid on which the anatomy is painted before
it is upsampled to the requested matrix (:mod:`imaging.phantom.grid`).
"""

from __future__ import annotations

__all__ = ["PHANTOM_HU", "DEFAULT_WORK_SPACING_MM"]

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

#: Default finest spacing (z, y, x), mm, at which the anatomy is painted.
DEFAULT_WORK_SPACING_MM: tuple[float, float, float] = (2.5, 1.4, 1.4)
