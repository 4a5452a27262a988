"""The score of one scan: :class:`ScanScore`, its zone columns and zone severity scores.

:class:`ScanScore` is what :func:`imaging.scoring.scores.score_scan` returns: lung,
ground-glass, consolidation and opacity volumes (mL) and percents, the per-zone
percents of the six zones (:data:`ZONES`) and the ventral / dorsal halves
(:data:`HALVES`), the zone scores :func:`severity_score` (Chaganti 0-4) and
:func:`visual_score` (0-5), lung HU statistics, band percents, settings and quality
flags; :meth:`ScanScore.as_dict` flattens it into one table row (the columns of
``scores.csv``).  :func:`not_a_chest_score` is the flagged score of a scan without
lungs: NaN / None, never a silent 0 %.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from imaging.common.environment import software_version
from imaging.common.volume import CTVolume, ScanInfo
from imaging.scoring import constants as C

__all__ = ["ScanScore", "ZONES", "HALVES", "severity_score", "visual_score", "not_a_chest_score"]

#: The six scoring zones, in table order.
ZONES: tuple[str, ...] = tuple(f"{lung}_{third}" for lung in ("right", "left")
                               for third in ("upper", "middle", "lower"))
#: Ventral / dorsal halves of each lung.
HALVES: tuple[str, ...] = tuple(f"{lung}_{half}" for lung in ("right", "left")
                                for half in ("ventral", "dorsal"))


def _band_score(percent: float, bounds: Sequence[float]) -> int | None:
    if percent is None or not math.isfinite(percent):
        return None
    if percent < 0 or percent > 100 + 1e-9:
        raise ValueError(f"percent must be within 0-100, got {percent}")
    return int(np.searchsorted(np.asarray(bounds, dtype=float), percent, side="left"))


def severity_score(percent: float) -> int | None:
    """Chaganti et al. zone severity 0-4 from the percent of the zone affected.

    0: below 1 % (:data:`imaging.scoring.constants.CHAGANTI_MIN_AFFECTED_PCT`; the scale's
    lowest affected band is 1-25 %); 1: up to 25 %; 2: up to 50 %; 3: up to 75 %;
    4: above 75 % (upper bounds inclusive,
    :data:`imaging.scoring.constants.CHAGANTI_SEVERITY_BOUNDS_PCT`).  NaN gives None.

    Examples
    --------
    >>> [severity_score(p) for p in (0, 0.1, 1, 25, 25.1, 80, 100)]
    [0, 0, 1, 1, 2, 4, 4]
    """
    score = _band_score(percent, C.CHAGANTI_SEVERITY_BOUNDS_PCT)
    return 0 if score is not None and percent < C.CHAGANTI_MIN_AFFECTED_PCT else score


def visual_score(percent: float) -> int | None:
    """Visual CT severity score 0-5 from the percent of the zone affected.

    0: 0 %; 1: < 5 %; 2: 5-25 %; 3: 25-50 %; 4: 50-75 %; 5: > 75 % (upper bounds
    inclusive, :data:`imaging.scoring.constants.VISUAL_SCORE_BOUNDS_PCT`).  NaN gives None.

    Examples
    --------
    >>> [visual_score(p) for p in (0, 3, 10, 40, 60, 90)]
    [0, 1, 2, 3, 4, 5]
    """
    return _band_score(percent, C.VISUAL_SCORE_BOUNDS_PCT)


@dataclass(frozen=True, eq=False)
class ScanScore:
    """Opacity scores of one CT scan.  ``as_dict()`` gives one flat table row.

    Volumes are in mL, percents are percent of the total lung volume (zone percents:
    of that zone's volume).  Zone values are also attributes:
    ``percent_opacity_<zone>``, ``severity_score_<zone>``, ``visual_score_<zone>`` for
    each zone of :data:`ZONES`, and ``percent_opacity_<half>`` for :data:`HALVES`.
    """

    info: ScanInfo
    lung_volume_ml: float
    right_lung_volume_ml: float
    left_lung_volume_ml: float
    ggo_volume_ml: float
    consolidation_volume_ml: float
    opacity_volume_ml: float
    percent_opacity: float
    percent_high_opacity: float
    percent_ggo: float
    percent_consolidation: float
    zone_percent_opacity: dict[str, float]
    half_percent_opacity: dict[str, float]
    severity_score_total: int | None
    visual_score_total: int | None
    lung_hu_mean: float
    lung_hu_sd: float
    lung_hu_p10: float
    lung_hu_p50: float
    lung_hu_p90: float
    aeration_percent: dict[str, float]
    band_percent: dict[str, float]
    density_percent_opacity: float
    density_percent_high_opacity: float
    density_percent_ggo: float
    density_percent_consolidation: float
    opacity_method: str
    lung_method: str
    settings: dict[str, Any]
    software_version: str
    quality_flags: tuple[str, ...] = ()
    masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __getattr__(self, name: str) -> Any:
        # zone accessors: percent_opacity_<zone|half>, severity_score_<zone>, visual_score_<zone>
        if name.startswith("percent_opacity_"):
            key = name[len("percent_opacity_"):]
            if key in ZONES:
                return self.zone_percent_opacity.get(key, float("nan"))
            if key in HALVES:
                return self.half_percent_opacity.get(key, float("nan"))
        if name.startswith("severity_score_") and name[len("severity_score_"):] in ZONES:
            return severity_score(self.zone_percent_opacity.get(name[len("severity_score_"):], float("nan")))
        if name.startswith("visual_score_") and name[len("visual_score_"):] in ZONES:
            return visual_score(self.zone_percent_opacity.get(name[len("visual_score_"):], float("nan")))
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def as_dict(self) -> dict[str, Any]:
        """One flat row: ScanInfo fields, scalars, zones, bands; ``settings`` as JSON,
        ``quality_flags`` joined with ``;``; masks are not included."""
        row: dict[str, Any] = dict(self.info.as_dict())
        skip = {"info", "zone_percent_opacity", "half_percent_opacity", "aeration_percent",
                "band_percent", "settings", "quality_flags", "masks"}
        for f in fields(self):
            if f.name in skip:
                continue
            row[f.name] = getattr(self, f.name)
            if f.name == "percent_consolidation":
                for zone in ZONES:
                    row[f"percent_opacity_{zone}"] = getattr(self, f"percent_opacity_{zone}")
                for half in HALVES:
                    row[f"percent_opacity_{half}"] = getattr(self, f"percent_opacity_{half}")
                for zone in ZONES:
                    row[f"severity_score_{zone}"] = getattr(self, f"severity_score_{zone}")
                for zone in ZONES:
                    row[f"visual_score_{zone}"] = getattr(self, f"visual_score_{zone}")
        for name, value in self.aeration_percent.items():
            row[f"aeration_percent_{name}"] = value
        for name, value in self.band_percent.items():
            row[f"density_band_percent_{name}"] = value
        row["quality_flags"] = ";".join(self.quality_flags)
        row["settings"] = json.dumps(self.settings, sort_keys=True)
        return row



def not_a_chest_score(volume: CTVolume, labels: np.ndarray | None, lung_ml: float, flags: list[str],
                      settings: dict[str, Any], lung_method: str, right_ml: float) -> ScanScore:
    """The flagged score of a scan without lungs: volumes of the lungs found, NaN / None
    for every percent and score.

    Parameters
    ----------
    volume : CTVolume
        The scan (for its :class:`ScanInfo`).
    labels : (Z, Y, X) uint8 ndarray or None
        The lungs found, kept as the ``lungs`` mask; None: keep no masks.
    lung_ml, right_ml : float
        Volumes of the lungs found and of the right lung among them, mL.
    flags : list of str
        Quality flags (``"not_a_chest"`` among them).
    settings : dict
        Settings to record.
    lung_method : str
        The lung method that ran (or ``"given"``).

    Returns
    -------
    ScanScore
        ``opacity_method`` ``"none"``.
    """
    nan = float("nan")
    return ScanScore(
        info=volume.info,
        lung_volume_ml=lung_ml,
        right_lung_volume_ml=right_ml,
        left_lung_volume_ml=lung_ml - right_ml,
        ggo_volume_ml=nan, consolidation_volume_ml=nan, opacity_volume_ml=nan,
        percent_opacity=nan, percent_high_opacity=nan, percent_ggo=nan, percent_consolidation=nan,
        zone_percent_opacity={z: nan for z in ZONES}, half_percent_opacity={h: nan for h in HALVES},
        severity_score_total=None, visual_score_total=None,
        lung_hu_mean=nan, lung_hu_sd=nan, lung_hu_p10=nan, lung_hu_p50=nan, lung_hu_p90=nan,
        aeration_percent={k: nan for k in C.AERATION_BANDS_HU},
        band_percent={k: nan for k in C.LCTA_BANDS_HU},
        density_percent_opacity=nan, density_percent_high_opacity=nan,
        density_percent_ggo=nan, density_percent_consolidation=nan,
        opacity_method="none", lung_method=lung_method, settings=settings,
        software_version=software_version(), quality_flags=tuple(flags),
        masks={} if labels is None else {"lungs": labels},
    )
