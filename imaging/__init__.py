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
    "ChestCTError": "imaging.errors",
    "NoDicomFoundError": "imaging.errors",
    "NotCTVolumeError": "imaging.errors",
    "IrregularSpacingError": "imaging.errors",
    "PixelDecodeError": "imaging.errors",
    "NotAChestError": "imaging.errors",
    "InvalidTableError": "imaging.errors",
    "InvalidArgumentError": "imaging.errors",
    "MissingInputError": "imaging.errors",
    "CTVolume": "imaging.volume",
    "ScanInfo": "imaging.volume",
    # reading (issue: foundation)
    "find_series": "imaging.dicom",
    "SeriesInfo": "imaging.dicom",
    "StudySelection": "imaging.dicom",
    "SeriesCatalog": "imaging.dicom",
    "SelectionRules": "imaging.dicom",
    "load_scan": "imaging.io",
    # phantoms and writers
    "make_phantom": "imaging.phantom",
    "Phantom": "imaging.phantom",
    "write_dicom_series": "imaging.writers",
    "write_nifti": "imaging.writers",
    "write_localizer": "imaging.writers",
    # lungs, opacity and scores
    "segment_lungs": "imaging.lungs",
    "lung_zones": "imaging.lungs",
    "density_bands": "imaging.opacity",
    "score_scan": "imaging.scores",
    "ScanScore": "imaging.scores",
    # comparison and report
    "compare_arms": "imaging.compare",
    "Comparison": "imaging.compare",
    "ResponseCriteria": "imaging.compare",
    "write_report": "imaging.report",
    # batch
    "score_studies": "imaging.batch",
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
