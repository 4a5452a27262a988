"""Calibration of the lesion decision thresholds of a trained checkpoint.

The network calls a lung pixel lesion when ``p(lesion) / (p(lung) + p(lesion))`` reaches
a threshold.  :func:`calibrate_lesion_threshold` chooses it on training data and healthy
phantoms only (never the held-out scans), one threshold for HU input and one for 8-bit
display input, and records them in the checkpoint, where
:func:`models.checkpoint.lesion_threshold` reads them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.checkpoint import save_checkpoint
from models.data import block_indices, load_covid_slices

__all__ = ["calibrate_lesion_threshold", "dice", "THRESHOLD_GRID", "HEALTHY_MAX_PCT"]


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice coefficient of two boolean masks (1.0 when both are empty)."""
    s = pred.sum() + ref.sum()
    return float(2 * np.logical_and(pred, ref).sum() / s) if s else 1.0


#: Thresholds tried by :func:`calibrate_lesion_threshold`.
THRESHOLD_GRID: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
#: Largest opacity, % of lung, allowed on healthy phantoms when calibrating.
HEALTHY_MAX_PCT: float = 0.5


def calibrate_lesion_threshold(
    checkpoint: str | Path,
    *,
    data_root: str | Path = "../shared/data/covid19_ct_slices",
    n_train_slices: int = 240,
    phantom_seeds: tuple[int, ...] = (201, 202, 203, 204),
    log: Callable[[str], None] = print,
) -> dict:
    """Choose the lesion thresholds from TRAINING data and healthy phantoms; store them.

    Rule for HU input (fixed before looking at any validation result): among
    :data:`THRESHOLD_GRID`, keep the thresholds whose predicted opacity on healthy
    phantoms (``phantom_seeds``, 60 x 256 x 256 at 5 x 1.4 x 1.4 mm, not used in
    training or evaluation) stays under :data:`HEALTHY_MAX_PCT` % of the lungs, and
    pick the one with the best infection Dice on ``n_train_slices`` evenly spaced slices
    of the training blocks. When none qualifies, the largest threshold is taken.
    Display input (``kind="display"``) gets its own threshold, the best training Dice
    alone: the healthy-phantom limit is a check on HU input.  The held-out COVID scans
    and the LIDC scan are not used.

    Parameters
    ----------
    checkpoint : path
        Checkpoint written by :func:`models.train.train`; rewritten atomically with
        ``checkpoint["inference"] = {"lesion_threshold": t_hu,
        "display_lesion_threshold": t_display, "calibration": ...}``.

    Returns
    -------
    dict
        The ``inference`` entry written.
    """
    import torch

    from imaging.phantom.make import make_phantom
    from models.checkpoint import load_model
    from models.prediction import iter_probabilities

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    net = load_model(checkpoint)
    info = ckpt["training"]
    blocks = [tuple(b) for b in info["blocks"]]
    tr = block_indices(blocks, info["train_blocks"])
    pick = tr[np.linspace(0, len(tr) - 1, n_train_slices).round().astype(int)]
    data = load_covid_slices(data_root)
    images, inf = data.images[pick], data.infection[pick]
    phantoms = [make_phantom(shape=(60, 256, 256), spacing_mm=(5.0, 1.4, 1.4),
                             percent_opacity=0.0, rng=np.random.default_rng(s))
                for s in phantom_seeds]
    def probs(arr, kind, spacing_yx):
        pl, q = [], []
        for _, p_lung, q_lesion in iter_probabilities(arr, kind=kind, spacing_yx_mm=spacing_yx,
                                                      model=net):
            pl.append(p_lung >= 0.5)
            q.append(q_lesion)
        return np.concatenate(pl), np.concatenate(q)

    train_lung, train_q = probs(images, "display", None)
    ph_probs = [probs(np.asarray(ph.volume.hu), "hu", tuple(ph.volume.spacing_mm[1:]))
                for ph in phantoms]
    rows = []
    for t in THRESHOLD_GRID:
        dice_t = dice(train_lung & (train_q >= t), inf)
        healthy = [100.0 * (lu & (q >= t)).sum() / max(1, lu.sum()) for lu, q in ph_probs]
        rows.append({"threshold": t, "train_infection_dice": round(dice_t, 4),
                     "healthy_phantom_opacity_pct": round(float(np.mean(healthy)), 3)})
        log(json.dumps(rows[-1]))
    ok = [r for r in rows if r["healthy_phantom_opacity_pct"] < HEALTHY_MAX_PCT]
    best = max(ok, key=lambda r: r["train_infection_dice"]) if ok else rows[-1]
    # display input (8-bit slices as public data sets ship them) is never a healthy HU
    # phantom: its threshold is the best training Dice alone
    best_display = max(rows, key=lambda r: r["train_infection_dice"])
    entry = {"lesion_threshold": best["threshold"],
             "display_lesion_threshold": best_display["threshold"],
             "calibration": {"rule": f"HU input: best train-block infection Dice with healthy-phantom "
                                     f"opacity < {HEALTHY_MAX_PCT} % (else the largest threshold); "
                                     "display input: best train-block infection Dice",
                             "train_slices": int(n_train_slices),
                             "phantom_seeds": list(phantom_seeds), "grid": rows}}
    ckpt["inference"] = entry
    save_checkpoint(ckpt, checkpoint)
    from models import checkpoint as loaded  # the rewritten file must be read again

    loaded._CACHE.clear()
    return entry
