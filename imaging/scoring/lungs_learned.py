"""Lungs by a 2.5-D network trained on real anatomy (:mod:`models.lung25d`), for validation.

Not a ``segment_lungs`` method yet: its first weights missed the shipping rule of
``docs/decisions.md`` (see ``docs/model.md``, "The 2.5-D lung network").  Validation runs
it from a checkpoint (``scripts/validate.py real-anatomy --lung-weights CKPT``).

The network labels every voxel as background, lung, ground-glass or consolidation from
fixed HU windows of the slice and its neighbours; its lungs are the three non-background
classes, so consolidated lung against the heart and the diaphragm is lung.  The mask is
cleaned by three rules and split into right and left:

1. only voxels inside the patient count (:func:`imaging.scoring.lung_chest.patient_interior`:
   not the air of the table, not outside the body);
2. components smaller than :data:`MIN_COMPONENT_FRACTION` of the largest are dropped;
3. holes enclosed by lung in a slice are filled (vessels, bronchi, nodules);
4. right / left by :func:`imaging.scoring.lung_sides.split_lungs`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from imaging.scoring import constants as C
from imaging.scoring.lung_chest import patient_interior
from imaging.scoring.lung_sides import split_lungs

__all__ = ["learned_lungs_canonical", "MIN_COMPONENT_FRACTION"]

#: Components of the network's lungs smaller than this fraction of the largest are dropped.
MIN_COMPONENT_FRACTION: float = 0.01


def learned_lungs_canonical(hu: np.ndarray, spacing: Sequence[float], *, network: object) -> np.ndarray:
    """Right (1) and left (2) lungs of a canonical volume by a 2.5-D network.

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        Canonical volume in HU.
    spacing : (3,) float
        Voxel spacing (z, y, x), mm.
    network : torch.nn.Module
        The network of a checkpoint (:func:`models.lung25d.load_lung25d`).

    Returns
    -------
    (Z, Y, X) uint8 ndarray
    """
    from models.lung25d import predict_classes25d  # lazy: torch

    spacing = tuple(float(s) for s in spacing)
    lungs = predict_classes25d(network, hu, spacing) > 0
    lungs &= patient_interior(hu, C.HU_LUNG_THRESHOLD, spacing)  # not the table, not outside air
    labels, n = ndi.label(lungs)
    if n:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        lungs = np.isin(labels, np.flatnonzero(sizes >= MIN_COMPONENT_FRACTION * sizes.max()))
    for z in np.flatnonzero(lungs.any(axis=(1, 2))):
        lungs[z] = ndi.binary_fill_holes(lungs[z])
    return split_lungs(lungs, spacing_mm=spacing)
