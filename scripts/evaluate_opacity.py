"""Validate the shipped opacity network: held-out COVID scans, LIDC (healthy), phantoms, speed.

Usage::

    python scripts/evaluate_opacity.py --out runs/eval_opacity.json

Sections (each skipped with a message when its data is missing):

* ``speed``: a 512 x 512 x 300 HU volume (LIDC slices repeated along z) through
  :func:`models.predict_lungs_and_opacity`; wall time and peak resident memory.
* ``lidc``: ``../shared/data/lidc_idri_0001`` (HU, no pneumonia): percent opacity of the
  predicted lungs, lung volume.
* ``covid_validation``: the held-out blocks (whole scans) of ``covid19_ct_slices`` recorded
  in the checkpoint: infection and lung Dice over all validation slices, per-scan
  infected-lung percent vs the expert masks, Pearson r.
* ``cip_ct64``: a real chest CT downsampled to 64 x 64 x 79 with an algorithmic whole-lung
  mask: lung Dice and percent opacity (HU input).
* ``phantoms``: :func:`imaging.phantom.make.make_phantom` volumes never used in training
  (seeds differ): ground-glass and consolidation volumes vs truth, lung Dice, for HU input
  and for the same volume converted to display images.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return float(2 * np.logical_and(a, b).sum() / s) if s else 1.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def evaluate_lidc_and_speed(path: Path, *, n_slices: int = 300) -> dict:
    """LIDC percent opacity and the speed of a 512 x 512 x ``n_slices`` volume."""
    from imaging import load_scan
    from models import load_model, predict_lungs_and_opacity

    vol = load_scan(path)
    hu = np.asarray(vol.hu)
    load_model()
    rss0 = _peak_rss_mb()
    t = time.perf_counter()
    lungs, opacity = predict_lungs_and_opacity(hu, spacing_mm=vol.spacing_mm)
    t_lidc = time.perf_counter() - t
    lung_n = int(lungs.sum())
    lidc = {
        "shape": list(hu.shape), "spacing_mm": [float(s) for s in vol.spacing_mm],
        "seconds": round(t_lidc, 2),
        "lung_volume_ml": round(lung_n * vol.voxel_volume_ml, 1),
        "percent_opacity": round(100.0 * int((opacity > 0).sum()) / max(lung_n, 1), 3),
        "percent_consolidation": round(100.0 * int((opacity == 2).sum()) / max(lung_n, 1), 3),
        "slices_with_opacity": int((opacity > 0).any(axis=(1, 2)).sum()),
    }
    big = np.resize(hu, (n_slices,) + hu.shape[1:]) if hu.shape[1:] == (512, 512) else None
    speed: dict = {}
    if big is not None:
        t = time.perf_counter()
        predict_lungs_and_opacity(big, spacing_mm=vol.spacing_mm)
        speed = {"shape": list(big.shape), "seconds": round(time.perf_counter() - t, 2),
                 "peak_rss_mb": round(_peak_rss_mb(), 0),
                 "peak_rss_before_mb": round(rss0, 0)}
    return {"lidc": lidc, "speed": speed}


def evaluate_covid(root: Path) -> dict:
    """Held-out COVID-19 scans (blocks recorded in the checkpoint)."""
    from scipy.stats import pearsonr

    from models import load_model, predict_classes
    from models.inference import rim_trim_steps, trim_extrapulmonary_rim
    from models.preprocess import display_to_hu_approx
    from models.data import block_indices, find_scan_blocks, load_covid_slices, split_blocks

    net = load_model()
    data = load_covid_slices(root)
    blocks = find_scan_blocks(data.images, data.lungs)
    _, val_b = split_blocks(blocks)
    recorded = net.checkpoint_info.get("training", {}).get("validation_blocks")
    if recorded is not None and list(recorded) != list(val_b):
        raise ValueError(f"validation blocks {val_b} differ from the checkpoint's {recorded}")
    per_scan = []
    inter_i = sum_i = inter_l = sum_l = inter_t = sum_t = 0
    slice_pred, slice_ref = [], []
    for b in val_b:
        idx = block_indices(blocks, [b])
        pred = predict_classes(data.images[idx], kind="display", model=net)
        pl, pi = pred > 0, pred == 2
        # the lesion as segment_opacity reports it (dense extrapulmonary rim trimmed)
        pt = trim_extrapulmonary_rim(pred, display_to_hu_approx(data.images[idx]),
                                     steps=rim_trim_steps(pred.shape[-2:], None))
        inter_t += int(np.logical_and(pt, data.infection[idx]).sum())
        sum_t += int(pt.sum() + data.infection[idx].sum())
        rl, ri = data.lungs[idx], data.infection[idx]
        inter_i += int(np.logical_and(pi, ri).sum()); sum_i += int(pi.sum() + ri.sum())
        inter_l += int(np.logical_and(pl, rl).sum()); sum_l += int(pl.sum() + rl.sum())
        per_scan.append({
            "block": int(b), "slices": [int(blocks[b][0]), int(blocks[b][1])],
            "infection_dice": round(_dice(pi, ri), 4), "lung_dice": round(_dice(pl, rl), 4),
            "pred_percent": round(100.0 * pi.sum() / max(pl.sum(), 1), 2),
            "expert_percent": round(100.0 * ri.sum() / max(rl.sum(), 1), 2),
        })
        slice_pred += list(100.0 * pi.sum((1, 2)) / np.maximum(pl.sum((1, 2)), 1))
        slice_ref += list(100.0 * ri.sum((1, 2)) / np.maximum(rl.sum((1, 2)), 1))
    r_scan = pearsonr([s["pred_percent"] for s in per_scan], [s["expert_percent"] for s in per_scan])
    r_slice = pearsonr(slice_pred, slice_ref)
    return {
        "validation_blocks": [int(b) for b in val_b],
        "n_slices": int(sum(blocks[b][1] - blocks[b][0] for b in val_b)),
        "infection_dice": round(2 * inter_i / max(sum_i, 1), 4),
        "infection_dice_rim_trimmed": round(2 * inter_t / max(sum_t, 1), 4),
        "lung_dice": round(2 * inter_l / max(sum_l, 1), 4),
        "pearson_r_per_scan": round(float(r_scan.statistic), 4),
        "pearson_r_per_slice": round(float(r_slice.statistic), 4),
        "per_scan": per_scan,
    }


def evaluate_cip(path: Path) -> dict:
    """Real chest CT downsampled to 64 x 64 x 79 (4.2 x 4.2 x 4.0 mm): lung Dice vs its mask."""
    import SimpleITK as sitk

    from models import predict_lungs_and_opacity

    img = sitk.ReadImage(str(path / "ct-64.nrrd"))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(path / "wholeLung-64.nrrd"))) > 0
    hu = sitk.GetArrayFromImage(img).astype(np.float32)
    spacing = tuple(float(v) for v in img.GetSpacing()[::-1])
    lungs, opacity = predict_lungs_and_opacity(hu, spacing_mm=spacing)
    return {"shape": list(hu.shape), "spacing_mm": list(spacing),
            "lung_dice": round(_dice(lungs, ref), 4),
            "percent_opacity": round(100.0 * int((opacity > 0).sum()) / max(int(lungs.sum()), 1), 2)}


def evaluate_phantoms(*, seeds: tuple[int, ...] = (101, 102, 103, 104),
                      percents: tuple[float, ...] = (0.0, 5.0, 15.0, 30.0)) -> dict:
    """Phantom volumes (never trained on): lesion volumes vs truth, HU and display input."""
    from imaging.phantom.make import make_phantom
    from models import predict_lungs_and_opacity
    from models.preprocess import hu_to_display

    rows = []
    for seed, pct in zip(seeds, percents):
        ph = make_phantom(shape=(60, 256, 256), spacing_mm=(5.0, 1.4, 1.4), percent_opacity=pct,
                          rng=np.random.default_rng(seed))
        hu = np.asarray(ph.volume.hu)
        ml = ph.volume.voxel_volume_ml
        truth_lungs = ph.lungs > 0
        row = {"seed": seed, "target_percent": pct,
               "truth_ggo_ml": round(int((ph.lesions == 1).sum()) * ml, 1),
               "truth_consolidation_ml": round(int((ph.lesions == 2).sum()) * ml, 1),
               "truth_lung_ml": round(int(truth_lungs.sum()) * ml, 1)}
        for kind, arr in (("hu", hu), ("display", hu_to_display(hu))):
            lungs, op = predict_lungs_and_opacity(arr, spacing_mm=ph.volume.spacing_mm, kind=kind)
            if lungs.shape != truth_lungs.shape:  # display images are 256 x 256: same grid
                raise ValueError(f"{kind} prediction shape {lungs.shape} != {truth_lungs.shape}")
            row[kind] = {
                "ggo_ml": round(int((op == 1).sum()) * ml, 1),
                "consolidation_ml": round(int((op == 2).sum()) * ml, 1),
                "lung_dice": round(_dice(lungs, truth_lungs), 4),
                "lesion_dice": round(_dice(op > 0, ph.lesions > 0), 4),
                "percent_opacity": round(100.0 * int((op > 0).sum()) / max(int(lungs.sum()), 1), 2),
            }
            for name in ("ggo", "consolidation"):
                truth = row[f"truth_{name}_ml"]
                if truth > 0:
                    row[kind][f"{name}_rel_error"] = round((row[kind][f"{name}_ml"] - truth) / truth, 3)
        row["truth_percent"] = round(100.0 * int((ph.lesions > 0).sum()) / max(int(truth_lungs.sum()), 1), 2)
        rows.append(row)
    return {"shape": [60, 256, 256], "spacing_mm": [5.0, 1.4, 1.4], "phantoms": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DEFAULT_DATA),
                        help="the shared data folder (default: ../shared/data beside the repository)")
    parser.add_argument("--weights", default=None, help="checkpoint (default: shipped)")
    parser.add_argument("--out", default="runs/eval_opacity.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lesion-threshold", type=float, default=None,
                        help="override the lesion threshold recorded in the weights")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["lidc", "covid", "phantoms", "cip"], help="sections to skip")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"argument --threads: must be >= 1, got {args.threads}")

    import torch

    from imaging.common.errors import ChestCTError
    from models import load_model

    torch.set_num_threads(args.threads)
    root = Path(args.data_root)
    results: dict = {"weights": args.weights or "models/weights/opacity_unet.pt",
                     "device": "cuda" if torch.cuda.is_available() else "cpu",
                     "threads": torch.get_num_threads()}
    try:
        net = load_model(args.weights)
        if args.weights is not None:  # make the default loader return this checkpoint
            from models import inference
            inference._CACHE[(str(inference.DEFAULT_WEIGHTS), str(next(net.parameters()).device))] = net
        if args.lesion_threshold is not None:
            if not 0.0 < args.lesion_threshold < 1.0:
                raise ValueError(f"--lesion-threshold must be in (0, 1), got {args.lesion_threshold}")
            entry = net.checkpoint_info.setdefault("inference", {})
            entry["lesion_threshold"] = args.lesion_threshold  # both kinds of input
            entry.pop("display_lesion_threshold", None)
        from models.inference import lesion_threshold

        results["lesion_threshold"] = lesion_threshold(net, "hu")
        results["display_lesion_threshold"] = lesion_threshold(net, "display")
        results["training"] = {k: v for k, v in net.checkpoint_info["training"].items()
                               if k in ("steps", "seconds", "device", "hardware", "synthetic_source")}
        def present(section: str, path: Path) -> bool:
            if section in args.skip:
                return False
            if not path.exists():
                print(f"evaluate_opacity: {section} skipped: {path} not found", file=sys.stderr, flush=True)
                results.setdefault("skipped", {})[section] = f"{path} not found"
                return False
            return True

        lidc = root / "lidc_idri_0001"
        if present("lidc", lidc):
            results.update(evaluate_lidc_and_speed(lidc))
            print("lidc", results["lidc"], "\nspeed", results["speed"], flush=True)
        covid = root / "covid19_ct_slices"
        if present("covid", covid):
            results["covid_validation"] = evaluate_covid(covid)
            print("covid", json.dumps({k: v for k, v in results["covid_validation"].items()
                                       if k != "per_scan"}), flush=True)
            for row in results["covid_validation"]["per_scan"]:
                print("  ", row, flush=True)
        cip = root / "cip_ct64"
        if present("cip", cip / "ct-64.nrrd"):
            results["cip_ct64"] = evaluate_cip(cip)
            print("cip_ct64", results["cip_ct64"], flush=True)
        if "phantoms" not in args.skip:
            results["phantoms"] = evaluate_phantoms()
            for row in results["phantoms"]["phantoms"]:
                print("phantom", row, flush=True)
    except (ChestCTError, FileNotFoundError, ValueError, ImportError) as exc:
        print(f"evaluate_opacity: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
