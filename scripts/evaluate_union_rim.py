"""Why ``lung_method="union"`` scores phantoms well: the learned mask's rim.

Compares, on phantoms (healthy and diseased, known truth) and on ``lidc_idri_0001``
(a real chest without pneumonia), density-band percent opacity and lung Dice for

* ``classical`` lungs (the default),
* ``union`` (classical plus the learned lung voxels connected to it),
* ``union-eroded`` (the same with the learned mask eroded in-plane by ``--erode-mm``
  first, which removes its one-voxel rim of chest wall).

Usage::

    python scripts/evaluate_union_rim.py [--data ../shared/data] [--erode-mm 1.5]
        [--severities 0 10 30 60] [--seeds 2]

Needs torch and the shipped weights (``models/``).  About 1 min on 2 cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def erode_inplane(labels: np.ndarray, radius_mm: float, spacing_yx: tuple[float, float]) -> np.ndarray:
    """Labels eroded slice by slice with an elliptical disk of ``radius_mm``."""
    import cv2

    from imaging.scoring.opacity import disk_kernel

    kernel = disk_kernel(radius_mm, spacing_yx)
    out = labels.copy()
    for z in np.flatnonzero(labels.any(axis=(1, 2))):
        out[z] = np.where(cv2.erode((labels[z] > 0).astype(np.uint8), kernel) > 0, labels[z], 0)
    return out


def measure(volume, erode_mm: float, truth: np.ndarray | None = None) -> dict[str, str]:
    """PO (and Dice against ``truth``) for the three lung masks of one volume."""
    from imaging.scoring.lungs import segment_lungs, union_with_learned
    from imaging.scoring.opacity import density_bands

    classical = segment_lungs(volume, method="classical")
    learned = segment_lungs(volume, method="model")
    masks = {"classical": classical, "union": union_with_learned(classical, learned),
             "union-eroded": union_with_learned(
                 classical, erode_inplane(learned, erode_mm, tuple(volume.spacing_mm[1:])))}
    row = {}
    for name, lab in masks.items():
        r = density_bands(volume.hu, lab > 0, spacing_mm=volume.spacing_mm)
        po = 100.0 * (r.ggo_voxels + r.consolidation_voxels) / max(1, r.lung_voxels)
        cell = f"PO {po:.2f} %, {r.lung_voxels * volume.voxel_volume_ml / 1000:.2f} L"
        if truth is not None:
            a, b = lab > 0, truth > 0
            cell += f", Dice {2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b)):.3f}"
        row[name] = cell
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--erode-mm", type=float, default=1.5)
    parser.add_argument("--severities", nargs="+", type=float, default=[0, 10, 30, 60])
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.erode_mm > 0:
        parser.error(f"argument --erode-mm: must be > 0, got {args.erode_mm}")
    if args.seeds < 0:
        parser.error(f"argument --seeds: must be >= 0, got {args.seeds}")
    if not all(0 <= s <= 95 for s in args.severities):
        parser.error(f"argument --severities: percent opacity must be in 0..95, got {args.severities}")

    from imaging.io.load import load_scan
    from imaging.phantom.make import make_phantom

    print("| case | truth PO % | classical | union | union-eroded |\n|---|---|---|---|---|")
    for sev in args.severities:
        for seed in range(args.seeds):
            p = make_phantom(percent_opacity=sev, consolidation_fraction=0.4,
                             rng=np.random.default_rng(1000 + seed))
            row = measure(p.volume, args.erode_mm, p.lungs)
            print(f"| phantom {sev:g} % seed {1000 + seed} | {p.percent_opacity:.1f} | "
                  + " | ".join(row.values()) + " |", flush=True)
    lidc = args.data / "lidc_idri_0001"
    series = sorted(q for q in lidc.rglob("*") if q.is_dir() and any(q.glob("*.dcm"))) if lidc.is_dir() else []
    if series:
        row = measure(load_scan(series[0]), args.erode_mm)
        print("| lidc_idri_0001 | (none; < 1 % expected) | " + " | ".join(row.values()) + " |")
    else:
        print(f"(lidc_idri_0001 not found under {args.data}: skipped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
