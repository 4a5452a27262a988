"""chestct ``models``: the opacity segmentation network, its shipped weights and inference.

torch is imported on first use of :func:`segment_opacity`, never at ``import models``.
"""

from __future__ import annotations

import importlib
from typing import Any

_API: dict[str, str] = {
    "segment_opacity": "models.inference",
    "load_model": "models.inference",
    "predict_lungs_and_opacity": "models.inference",
    "predict_classes": "models.inference",
    "split_lesion_by_density": "models.inference",
    "UNet2D": "models.network",
    "hu_to_display": "models.preprocess",
}

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
