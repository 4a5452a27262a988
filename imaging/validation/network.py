"""The opacity network (``models``) against held-out and known-truth data, and its speed.

* :func:`network_on_real_scan`: a real HU chest without pneumonia (``lidc_idri_0001``):
  lung volume and percent opacity (should be near 0), and the time and peak memory of a
  512 × 512 × 300 volume made of its slices;
* :func:`network_on_held_out_covid`: the held-out scans (whole-scan blocks recorded in the
  checkpoint) of ``covid19_ct_slices``: infection and lung Dice pooled over the slices,
  per-scan infected-lung percent against the expert masks, Pearson r;
* :func:`network_on_cip_ct64`: a real chest with a whole-lung mask: lung Dice;
* :func:`network_on_phantoms`: phantoms never used in training: ground-glass and
  consolidation volumes against the truth, for HU input and display-image input.

torch and ``models`` are imported inside the functions only: ``import imaging.validation``
never loads torch.  :func:`use_network` loads the weights and returns what they record.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from imaging.validation.metrics import PooledDice, dice, percent

__all__ = ["use_network", "network_on_real_scan", "network_on_held_out_covid", "network_on_cip_ct64",
           "network_on_phantoms"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def use_network(weights: str | Path | None = None, *, threads: int | None = None,
                lesion_threshold: float | None = None) -> dict[str, Any]:
    """Load the weights as the default network and describe them.

    Parameters
    ----------
    weights : path or None
        A checkpoint; None: the shipped ``models/weights/opacity_unet.pt``.  Another
        checkpoint becomes the one every ``models`` function uses by default.
    threads : int or None
        torch CPU threads (None: torch's default).
    lesion_threshold : float in (0, 1) or None
        Override the lesion threshold recorded in the weights (both kinds of input).

    Returns
    -------
    dict
        ``weights``, ``device``, ``threads``, ``lesion_threshold``,
        ``display_lesion_threshold`` and ``training`` (steps, seconds, device, hardware).
    """
    import torch

    from models import checkpoint, load_model

    if threads is not None:
        torch.set_num_threads(threads)
    net = load_model(weights)
    if weights is not None:  # make the default loader return this checkpoint
        checkpoint._CACHE[(str(checkpoint.DEFAULT_WEIGHTS), str(next(net.parameters()).device))] = net
    if lesion_threshold is not None:
        if not 0.0 < lesion_threshold < 1.0:
            raise ValueError(f"--lesion-threshold must be in (0, 1), got {lesion_threshold}")
        entry = net.checkpoint_info.setdefault("inference", {})
        entry["lesion_threshold"] = lesion_threshold  # both kinds of input
        entry.pop("display_lesion_threshold", None)
    return {"weights": str(weights or "models/weights/opacity_unet.pt"),
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "threads": torch.get_num_threads(),
            "lesion_threshold": checkpoint.lesion_threshold(net, "hu"),
            "display_lesion_threshold": checkpoint.lesion_threshold(net, "display"),
            "training": {k: v for k, v in net.checkpoint_info["training"].items()
                         if k in ("steps", "seconds", "device", "hardware", "synthetic_source")}}


def network_on_real_scan(path: str | Path, *, n_slices: int = 300) -> dict[str, Any]:
    """The network on a real chest (``path``: anything :func:`imaging.io.load.load_scan` reads).

    Returns
    -------
    dict
        ``lidc``: shape, spacing (mm), seconds, lung volume (mL), percent opacity and
        consolidation (%), slices with opacity; ``speed``: the same scan's slices repeated
        to ``n_slices`` (512 × 512 scans only, else empty): shape, seconds, peak resident
        memory (MB) before and after.
    """
    from imaging.io.load import load_scan
    from models import load_model, predict_lungs_and_opacity

    vol = load_scan(path)
    hu = np.asarray(vol.hu)
    load_model()
    rss0 = _peak_rss_mb()
    start = time.perf_counter()
    lungs, opacity = predict_lungs_and_opacity(hu, spacing_mm=vol.spacing_mm)
    seconds = time.perf_counter() - start
    lung_n = int(lungs.sum())
    lidc = {
        "shape": list(hu.shape), "spacing_mm": [float(s) for s in vol.spacing_mm],
        "seconds": round(seconds, 2),
        "lung_volume_ml": round(lung_n * vol.voxel_volume_ml, 1),
        "percent_opacity": round(percent(int((opacity > 0).sum()), lung_n), 3),
        "percent_consolidation": round(percent(int((opacity == 2).sum()), lung_n), 3),
        "slices_with_opacity": int((opacity > 0).any(axis=(1, 2)).sum()),
    }
    speed: dict[str, Any] = {}
    if hu.shape[1:] == (512, 512):
        big = np.resize(hu, (n_slices,) + hu.shape[1:])
        start = time.perf_counter()
        predict_lungs_and_opacity(big, spacing_mm=vol.spacing_mm)
        speed = {"shape": list(big.shape), "seconds": round(time.perf_counter() - start, 2),
                 "peak_rss_mb": round(_peak_rss_mb(), 0), "peak_rss_before_mb": round(rss0, 0)}
    return {"lidc": lidc, "speed": speed}


def _held_out_blocks(net: Any, blocks: list[tuple[int, int]]) -> list[int]:
    from models.data import split_blocks

    _, val_b = split_blocks(blocks)
    recorded = net.checkpoint_info.get("training", {}).get("validation_blocks")
    if recorded is not None and list(recorded) != list(val_b):
        raise ValueError(f"validation blocks {val_b} differ from the checkpoint's {recorded}")
    return val_b


def network_on_held_out_covid(root: str | Path) -> dict[str, Any]:
    """Held-out COVID-19 scans of ``covid19_ct_slices`` (display images, expert masks).

    Returns
    -------
    dict
        ``validation_blocks``, ``n_slices``; Dice pooled over all held-out slices:
        ``infection_dice``, ``infection_dice_rim_trimmed`` (the lesion as
        :func:`models.segment_opacity` reports it), ``lung_dice``; ``pearson_r_per_scan``
        and ``pearson_r_per_slice`` of the infected-lung percent; ``per_scan`` rows.
    """
    from scipy.stats import pearsonr

    from models import load_model, predict_classes
    from models.data import block_indices, find_scan_blocks, load_covid_slices
    from models.postprocess import rim_trim_steps, trim_extrapulmonary_rim
    from models.preprocess import display_to_hu_approx

    net = load_model()
    data = load_covid_slices(root)
    blocks = find_scan_blocks(data.images, data.lungs)
    val_b = _held_out_blocks(net, blocks)
    infection, trimmed, lung = PooledDice(), PooledDice(), PooledDice()
    per_scan, slice_pred, slice_ref = [], [], []
    for b in val_b:
        idx = block_indices(blocks, [b])
        pred = predict_classes(data.images[idx], kind="display", model=net)
        pl, pi = pred > 0, pred == 2
        pt = trim_extrapulmonary_rim(pred, display_to_hu_approx(data.images[idx]),
                                     steps=rim_trim_steps(pred.shape[-2:], None))
        rl, ri = data.lungs[idx], data.infection[idx]
        trimmed.add(pt, ri)
        infection.add(pi, ri)
        lung.add(pl, rl)
        per_scan.append({
            "block": int(b), "slices": [int(blocks[b][0]), int(blocks[b][1])],
            "infection_dice": round(dice(pi, ri), 4), "lung_dice": round(dice(pl, rl), 4),
            "pred_percent": round(percent(pi.sum(), pl.sum()), 2),
            "expert_percent": round(percent(ri.sum(), rl.sum()), 2),
        })
        slice_pred += list(100.0 * pi.sum((1, 2)) / np.maximum(pl.sum((1, 2)), 1))
        slice_ref += list(100.0 * ri.sum((1, 2)) / np.maximum(rl.sum((1, 2)), 1))
    r_scan = pearsonr([s["pred_percent"] for s in per_scan], [s["expert_percent"] for s in per_scan])
    return {
        "validation_blocks": [int(b) for b in val_b],
        "n_slices": int(sum(blocks[b][1] - blocks[b][0] for b in val_b)),
        "infection_dice": round(infection.value, 4),
        "infection_dice_rim_trimmed": round(trimmed.value, 4),
        "lung_dice": round(lung.value, 4),
        "pearson_r_per_scan": round(float(r_scan.statistic), 4),
        "pearson_r_per_slice": round(float(pearsonr(slice_pred, slice_ref).statistic), 4),
        "per_scan": per_scan,
    }


def network_on_cip_ct64(folder: str | Path) -> dict[str, Any]:
    """A real chest CT downsampled to 64 × 64 × 79 (4.2 × 4.2 × 4.0 mm): lung Dice vs its mask."""
    import SimpleITK as sitk

    from models import predict_lungs_and_opacity

    folder = Path(folder)
    img = sitk.ReadImage(str(folder / "ct-64.nrrd"))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "wholeLung-64.nrrd"))) > 0
    hu = sitk.GetArrayFromImage(img).astype(np.float32)
    spacing = tuple(float(v) for v in img.GetSpacing()[::-1])
    lungs, opacity = predict_lungs_and_opacity(hu, spacing_mm=spacing)
    return {"shape": list(hu.shape), "spacing_mm": list(spacing),
            "lung_dice": round(dice(lungs, ref), 4),
            "percent_opacity": round(percent(int((opacity > 0).sum()), int(lungs.sum())), 2)}


#: Phantom grid of :func:`network_on_phantoms`: (Z, Y, X) voxels and spacing (mm).
PHANTOM_SHAPE = (60, 256, 256)
PHANTOM_SPACING_MM = (5.0, 1.4, 1.4)


def _network_row(arr: np.ndarray, kind: str, phantom: Any, truth: dict[str, float]) -> dict[str, Any]:
    from models import predict_lungs_and_opacity

    ml = phantom.volume.voxel_volume_ml
    lungs, op = predict_lungs_and_opacity(arr, spacing_mm=phantom.volume.spacing_mm, kind=kind)
    if lungs.shape != phantom.lungs.shape:  # display images are 256 x 256: same grid
        raise ValueError(f"{kind} prediction shape {lungs.shape} != {phantom.lungs.shape}")
    row: dict[str, Any] = {
        "ggo_ml": round(int((op == 1).sum()) * ml, 1),
        "consolidation_ml": round(int((op == 2).sum()) * ml, 1),
        "lung_dice": round(dice(lungs, phantom.lungs > 0), 4),
        "lesion_dice": round(dice(op > 0, phantom.lesions > 0), 4),
        "percent_opacity": round(percent(int((op > 0).sum()), int(lungs.sum())), 2),
    }
    for name in ("ggo", "consolidation"):
        if truth[name] > 0:
            row[f"{name}_rel_error"] = round((row[f"{name}_ml"] - truth[name]) / truth[name], 3)
    return row


def network_on_phantoms(*, seeds: tuple[int, ...] = (101, 102, 103, 104),
                        percents: tuple[float, ...] = (0.0, 5.0, 15.0, 30.0)) -> dict[str, Any]:
    """Phantoms (never trained on, one per seed and percent): lesion volumes vs truth.

    Returns
    -------
    dict
        ``shape``, ``spacing_mm`` and ``phantoms``: one row per phantom with the true
        ground-glass, consolidation and lung volumes (mL), and for ``hu`` and ``display``
        input the measured volumes, their relative errors, lung and lesion Dice and
        percent opacity (%).
    """
    from imaging.phantom.make import make_phantom
    from models.preprocess import hu_to_display

    rows = []
    for seed, pct in zip(seeds, percents):
        ph = make_phantom(shape=PHANTOM_SHAPE, spacing_mm=PHANTOM_SPACING_MM, percent_opacity=pct,
                          rng=np.random.default_rng(seed))
        hu = np.asarray(ph.volume.hu)
        ml = ph.volume.voxel_volume_ml
        row: dict[str, Any] = {"seed": seed, "target_percent": pct,
                               "truth_ggo_ml": round(int((ph.lesions == 1).sum()) * ml, 1),
                               "truth_consolidation_ml": round(int((ph.lesions == 2).sum()) * ml, 1),
                               "truth_lung_ml": round(int((ph.lungs > 0).sum()) * ml, 1)}
        truth = {"ggo": row["truth_ggo_ml"], "consolidation": row["truth_consolidation_ml"]}
        for kind, arr in (("hu", hu), ("display", hu_to_display(hu))):
            row[kind] = _network_row(arr, kind, ph, truth)
        row["truth_percent"] = round(percent(int((ph.lesions > 0).sum()), int((ph.lungs > 0).sum())), 2)
        rows.append(row)
    return {"shape": list(PHANTOM_SHAPE), "spacing_mm": list(PHANTOM_SPACING_MM), "phantoms": rows}
