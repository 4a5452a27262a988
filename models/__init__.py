"""chestct ``models``: the opacity segmentation network, its shipped weights and inference.

torch is imported on first use of :func:`segment_opacity`, never at ``import models``.

Modules
-------
inference
    :func:`segment_opacity` and :func:`predict_lungs_and_opacity`: the method, step by step.
checkpoint
    The shipped weights, loading a checkpoint onto a device, its lesion threshold.
prediction
    Network classes per voxel (background, lung, lesion) for HU or display slices.
postprocess
    Classes checked against the HU, and the lesion split into ground-glass / consolidation.
network
    The 2-D U-Net.
preprocess
    HU or display slices to the network's input.
data, train
    Training data and the training run (``scripts/train_opacity.py``).
"""

from __future__ import annotations

import importlib
from typing import Any

_API: dict[str, str] = {
    "segment_opacity": "models.inference",
    "load_model": "models.checkpoint",
    "predict_lungs_and_opacity": "models.inference",
    "predict_classes": "models.prediction",
    "split_lesion_by_density": "models.postprocess",
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
