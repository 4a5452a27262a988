"""chestct ``imaging``: read chest CT studies, score lung opacity, compare trial arms.

The public API is listed in ``__all__``; names are imported on first use so that
``import imaging`` stays fast and never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API: dict[str, str] = {
    # errors and data
    "ChestCTError": "imaging.common.errors",
    "NoDicomFoundError": "imaging.common.errors",
    "NotCTVolumeError": "imaging.common.errors",
    "IrregularSpacingError": "imaging.common.errors",
    "PixelDecodeError": "imaging.common.errors",
    "NotAChestError": "imaging.common.errors",
    "InvalidTableError": "imaging.common.errors",
    "InvalidArgumentError": "imaging.common.errors",
    "MissingInputError": "imaging.common.errors",
    "CTVolume": "imaging.common.volume",
    "ScanInfo": "imaging.common.volume",
    # reading (issue: foundation)
    "find_series": "imaging.io.series",
    "SeriesInfo": "imaging.io.series_info",
    "StudySelection": "imaging.io.series_info",
    "SeriesCatalog": "imaging.io.series",
    "SelectionRules": "imaging.io.selection",
    "load_scan": "imaging.io.load",
    # phantoms and writers
    "make_phantom": "imaging.phantom.make",
    "Phantom": "imaging.phantom.make",
    "write_dicom_series": "imaging.io.writers",
    "write_nifti": "imaging.io.writers",
    "write_localizer": "imaging.io.writers",
    # lungs, opacity and scores
    "segment_lungs": "imaging.scoring.lungs",
    "lung_zones": "imaging.scoring.lung_zones",
    "density_bands": "imaging.scoring.opacity",
    "score_scan": "imaging.scoring.scores",
    "ScanScore": "imaging.scoring.scan_score",
    # comparison and report
    "compare_arms": "imaging.trial.compare",
    "Comparison": "imaging.trial.comparison",
    "ResponseCriteria": "imaging.trial.response",
    "write_report": "imaging.trial.report",
    # batch
    "score_studies": "imaging.pipeline.batch",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'imaging' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
