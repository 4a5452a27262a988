"""Evaluate lung segmentation and density scoring on real scans and known-truth phantoms.

Compares the lung methods (``classical_basic`` and ``classical`` always; ``hybrid`` and
``model`` when the opacity network's weights are installed) on:

* ``cip_ct64``: Dice against ``wholeLung-64.nrrd``; agreement of our lung thirds with the
  Chest Imaging Platform regions 9-14 of ``lm-64.nrrd`` (both ``height`` and ``volume``
  thirds);
* phantoms (:func:`imaging.make_phantom`) with peripheral disease at several severities:
  lung Dice, fraction of lesion voxels inside the lung mask, percent opacity measured vs
  truth (with our lungs, and with the true lungs to separate mask from density error);
* ``lidc_idri_0001``: lung volume, percent opacity, flags;
* ``dicom_variants/jpeg2000_abdomen``: must come out as not a chest;
* with ``--sample-trial``, the sample trial (``sample_data/``, phantoms with
  ``truth.csv``): density percent opacity vs truth per scan.

Usage::

    python scripts/evaluate_lungs.py [--data ../shared/data] [--methods classical hybrid]
        [--severities 0 10 30 60] [--seeds 2] [--skip lidc] [--sample-trial] [--json out.json]

Prints one Markdown table per data set, and a per-severity summary of the phantoms
(min..max over seeds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(none)"
    keys = list(rows[0])
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def eval_cip(data: Path, methods: list[str]) -> list[dict[str, Any]]:
    from imaging.io.load import load_scan
    from imaging.scoring.lungs import ZONE_NAMES, lung_zones, segment_lungs

    folder = data / "cip_ct64"
    v = load_scan(folder / "ct-64.nrrd")
    ref = load_scan(folder / "wholeLung-64.nrrd").hu > 0
    region = load_scan(folder / "lm-64.nrrd").hu.astype(np.int64) % 256
    cip = {9: "left_upper", 10: "left_middle", 11: "left_lower",
           12: "right_upper", 13: "right_middle", 14: "right_lower"}
    rows = []
    for method in methods:
        t = time.perf_counter()
        lab = segment_lungs(v, method=method)
        sec = time.perf_counter() - t
        row: dict[str, Any] = {"method": method, "dice": _dice(lab > 0, ref),
                               "volume_ml": np.count_nonzero(lab) * v.voxel_volume_ml,
                               "ref_volume_ml": np.count_nonzero(ref) * v.voxel_volume_ml}
        for thirds in ("height", "volume"):
            zones = lung_zones(lab, v, thirds=thirds)
            both = (region >= 9) & (region <= 14) & (zones > 0)
            ours = np.array([ZONE_NAMES[int(c)].rsplit("_", 1)[0] for c in zones[both]])
            theirs = np.array([cip[int(r)] for r in region[both]])
            row[f"thirds_agree_{thirds}"] = float((ours == theirs).mean())
        row["seconds"] = sec
        rows.append(row)
    return rows


def eval_phantoms(methods: list[str], severities: list[float], seeds: int) -> list[dict[str, Any]]:
    from imaging.scoring.lungs import segment_lungs
    from imaging.scoring.opacity import density_bands
    from imaging.phantom.make import make_phantom

    rows = []
    for sev in severities:
        for seed in range(seeds):
            p = make_phantom(percent_opacity=sev, consolidation_fraction=0.4,
                             rng=np.random.default_rng(1000 + seed))
            v = p.volume
            truth = density_bands(v.hu, p.lungs > 0, spacing_mm=v.spacing_mm)
            po_true_lungs = 100.0 * (truth.ggo_voxels + truth.consolidation_voxels) / truth.lung_voxels
            for method in methods:
                lab = segment_lungs(v, method=method)
                r = density_bands(v.hu, lab > 0, spacing_mm=v.spacing_mm)
                po = 100.0 * (r.ggo_voxels + r.consolidation_voxels) / max(1, r.lung_voxels)
                lesion = p.lesions > 0
                rows.append({
                    "method": method, "target_pct": sev, "seed": seed,
                    "truth_po": float(p.percent_opacity), "measured_po": po,
                    "po_error": po - float(p.percent_opacity),
                    "po_with_true_lungs": po_true_lungs,
                    "lung_dice": _dice(lab > 0, p.lungs > 0),
                    "lesion_in_mask": float((lab[lesion] > 0).mean()) if lesion.any() else float("nan"),
                })
    return rows


def eval_lidc(data: Path, methods: list[str]) -> list[dict[str, Any]]:
    from imaging.io.load import load_scan
    from imaging.scoring.scores import score_scan

    folder = data / "lidc_idri_0001"
    series = sorted(p for p in folder.rglob("*") if p.is_dir() and any(p.glob("*.dcm")))
    if not series:
        raise FileNotFoundError(f"no DICOM series under {folder} (skip it with --skip lidc)")
    v = load_scan(series[0])
    rows = []
    for method in methods:
        t = time.perf_counter()
        s = score_scan(v, lung_method=method, opacity_method="density")
        rows.append({"method": method, "lung_volume_ml": s.lung_volume_ml,
                     "right_ml": s.right_lung_volume_ml, "left_ml": s.left_lung_volume_ml,
                     "percent_opacity": s.percent_opacity, "percent_high_opacity": s.percent_high_opacity,
                     "flags": ";".join(s.quality_flags), "seconds": time.perf_counter() - t})
    return rows


def eval_sample(sample: Path, methods: list[str]) -> list[dict[str, Any]]:
    import pandas as pd

    from imaging.io.load import load_scan
    from imaging.scoring.scores import score_scan

    truth = pd.read_csv(sample / "truth.csv", dtype=str)
    errors: dict[str, list[float]] = {m: [] for m in methods}
    for row in truth.itertuples():
        v = load_scan(sample / "studies" / row.patient_id / row.study_uid)
        for method in methods:
            s = score_scan(v, lung_method=method, opacity_method="density")
            errors[method].append(s.percent_opacity - float(row.percent_opacity))
    rows = []
    for method, err in errors.items():
        e = np.asarray(err)
        rows.append({"method": method, "scans": int(e.size), "mean_po_error": float(e.mean()),
                     "max_abs_po_error": float(np.abs(e).max()),
                     "within_2_points": f"{int((np.abs(e) <= 2.0).sum())}/{e.size}"})
    return rows


def summarise_phantoms(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method and target severity: min..max over seeds of Dice, PO error, lesion kept."""
    out = []
    keys = sorted({(r["method"], r["target_pct"]) for r in rows}, key=lambda k: (str(k[0]), k[1]))
    rng = lambda v: f"{min(v):.3f}..{max(v):.3f}" if min(v) != max(v) else f"{v[0]:.3f}"  # noqa: E731
    for method, sev in keys:
        sel = [r for r in rows if r["method"] == method and r["target_pct"] == sev]
        out.append({"method": method, "target_pct": sev,
                    "lung_dice": rng([r["lung_dice"] for r in sel]),
                    "po_error": rng([r["po_error"] for r in sel]),
                    "lesion_in_mask": rng([r["lesion_in_mask"] for r in sel]) if sev > 0 else "-"})
    return out


def eval_abdomen(data: Path) -> list[dict[str, Any]]:
    from imaging.scoring.scores import score_scan

    s = score_scan(data / "dicom_variants" / "jpeg2000_abdomen", on_not_chest="flag")
    return [{"lung_volume_ml": s.lung_volume_ml, "flags": ";".join(s.quality_flags),
             "percent_opacity": s.percent_opacity}]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--methods", nargs="+", default=None,
                        choices=["classical", "classical_basic", "hybrid", "model"],
                        help="lung methods (default: classical_basic and classical, plus hybrid and "
                             "model when the model weights exist)")
    parser.add_argument("--severities", nargs="+", type=float, default=[0, 10, 20, 30, 45, 60])
    parser.add_argument("--seeds", type=int, default=2, help="phantoms per severity")
    parser.add_argument("--skip", nargs="*", default=[], choices=["cip", "phantoms", "lidc", "abdomen"])
    parser.add_argument("--sample-trial", nargs="?", type=Path, const=DEFAULT_SAMPLE, default=None,
                        metavar="FOLDER", help="also score the sample trial against its truth.csv "
                        "(default folder: sample_data/; 36 scans, about 1 minute per lung method)")
    parser.add_argument("--json", type=Path, default=None, help="also write all rows as JSON")
    args = parser.parse_args(argv)

    from imaging.common.errors import ChestCTError
    from imaging.scoring.lungs import model_available

    methods = args.methods or (["classical_basic", "classical"]
                               + (["hybrid", "model"] if model_available() else []))
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        if "cip" not in args.skip:
            results["cip_ct64"] = eval_cip(args.data, methods)
        if "phantoms" not in args.skip:
            results["phantoms"] = eval_phantoms(methods, args.severities, args.seeds)
            results["phantoms_summary"] = summarise_phantoms(results["phantoms"])
        if "lidc" not in args.skip:
            results["lidc_idri_0001"] = eval_lidc(args.data, methods)
        if "abdomen" not in args.skip:
            results["jpeg2000_abdomen"] = eval_abdomen(args.data)
        if args.sample_trial is not None:
            results["sample_trial"] = eval_sample(args.sample_trial, methods)
    except (ChestCTError, OSError) as exc:
        print(f"evaluate_lungs: {exc}", file=sys.stderr)
        return 1
    for name, rows in results.items():
        print(f"\n### {name}\n\n{_table(rows)}")
    if args.json is not None:
        from imaging.common.files import atomic_write_json

        atomic_write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
