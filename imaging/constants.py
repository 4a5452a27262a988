"""Named Hounsfield-unit thresholds and score bands, each cited to its source.

Every threshold used anywhere in the toolkit lives here, so that results can record
exactly which settings produced them and a reader can check each against its paper.
All values in HU unless stated otherwise.
"""

from __future__ import annotations

__all__ = [
    "HU_AIR",
    "HU_WATER",
    "HU_LUNG_THRESHOLD",
    "HU_GGO_MIN",
    "HU_GGO_MAX",
    "HU_CONSOLIDATION_MIN",
    "HU_CONSOLIDATION_MAX",
    "HU_HIGH_OPACITY_MIN",
    "HU_OPACITY_MIN",
    "LCTA_BANDS_HU",
    "AERATION_BANDS_HU",
    "CHAGANTI_SEVERITY_BOUNDS_PCT",
    "VISUAL_SCORE_BOUNDS_PCT",
    "DISPLAY_WINDOW_HU",
]

#: Air, HU (definition of the Hounsfield scale).
HU_AIR: float = -1000.0
#: Water, HU (definition of the Hounsfield scale).
HU_WATER: float = 0.0

#: Voxels below this are air-like candidates for lung parenchyma when building the
#: initial lung mask (classical lung segmentation, e.g. Hu, Hoffman & Reinhardt,
#: IEEE TMI 2001 use an optimal threshold near -400 to -500 HU).
HU_LUNG_THRESHOLD: float = -400.0

#: Ground-glass opacity band, HU: "ground-glass opacity (-700 to -300 HU)"
#: (Chaganti et al., Radiology: AI 2020, PMC7392373; also the infiltrated band of
#: 3D Slicer Lung CT Analyzer, -750..-400).
HU_GGO_MIN: float = -700.0
HU_GGO_MAX: float = -300.0

#: Consolidation band, HU (the "collapsed" band of 3D Slicer Lung CT Analyzer,
#: -400..0, extended to +50 to include dense consolidation, as in issue text and
#: Chaganti et al. who count high opacity from -200 HU).
HU_CONSOLIDATION_MIN: float = -300.0
HU_CONSOLIDATION_MAX: float = 50.0

#: Any opacity: lesion voxels denser than this are "opacity" for density-band PO.
HU_OPACITY_MIN: float = HU_GGO_MIN

#: High opacity (PHO): lesion voxels denser than -200 HU (Chaganti et al., 2020).
HU_HIGH_OPACITY_MIN: float = -200.0

#: 3D Slicer Lung CT Analyzer default density bands, HU (Lung CT Analyzer extension
#: for 3D Slicer, Bauer et al.; defaults from its documentation; ../shared/DESIGN.md).
LCTA_BANDS_HU: dict[str, tuple[float, float]] = {
    "emphysema": (-1050.0, -950.0),
    "inflated": (-950.0, -750.0),
    "infiltrated": (-750.0, -400.0),
    "collapsed": (-400.0, 0.0),
    "vessels": (0.0, 3000.0),
}

#: Aeration bands, HU (Gattinoni et al., Am J Respir Crit Care Med 2001;
#: used in COVID-19 quantitative CT by Lanza et al., Radiology 2020).
AERATION_BANDS_HU: dict[str, tuple[float, float]] = {
    "hyperinflated": (-1000.0, -900.0),
    "well_aerated": (-900.0, -500.0),
    "poorly_aerated": (-500.0, -100.0),
    "non_aerated": (-100.0, 100.0),
}

#: Chaganti et al. 2020 lobe/zone severity 0-4 by percent of the zone affected:
#: 0 = 0 %, 1 = 1-25 %, 2 = 26-50 %, 3 = 51-75 %, 4 = 76-100 %.  Upper bounds, %.
CHAGANTI_SEVERITY_BOUNDS_PCT: tuple[float, ...] = (0.0, 25.0, 50.0, 75.0, 100.0)

#: Visual CT severity score 0-5 per lobe/zone (Shu et al. 2020; Pan et al. 2020):
#: 0 = 0 %, 1 = <5 %, 2 = 5-25 %, 3 = 26-49 %, 4 = 50-75 %, 5 = >75 %.  Upper bounds, %.
VISUAL_SCORE_BOUNDS_PCT: tuple[float, ...] = (0.0, 5.0, 25.0, 50.0, 75.0, 100.0)

#: HU window in which half of the COVID-19 CT source volumes were already stored as
#: 8-bit images (Ma et al., Med Phys 2021, Zenodo 3757476): used to map HU into the
#: display range the opacity network was trained on.
DISPLAY_WINDOW_HU: tuple[float, float] = (-1250.0, 250.0)
