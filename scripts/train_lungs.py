"""Train the 2.5-D lung and lesion network on real anatomy with inserted lesions.

Usage::

    python scripts/train_lungs.py --minutes 50                       # train (or resume) 50 min
    python scripts/train_lungs.py --minutes 50 --train lidc_idri_0001 lidc_idri_0002

Cases: each training scan of ``../shared/data`` (near-healthy, see its README) gets its
reference lungs (:func:`imaging.phantom.real_lungs.healthy_lungs`) and lesions at each
``--levels`` involvement (:func:`imaging.phantom.hybrid.insert_lesions`); the arrays are
cached under ``--cache`` so a resumed run does not rebuild them.  The checkpoint
(``--checkpoint``) holds the optimiser too: running the same command again resumes.
Keep at least one real scan out of ``--train`` for validation
(``scripts/validate.py real-anatomy --lung-weights CHECKPOINT``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


def build_cases(data: Path, scans: list[str], levels: list[float], cache: Path) -> list:
    """Training cases, built once and cached as ``.npz`` files."""
    from imaging import load_scan
    from imaging.phantom.hybrid import prepare_scan
    from imaging.phantom.real_lungs import healthy_lungs
    from models.lung25d import CaseArrays, build_case

    cache.mkdir(parents=True, exist_ok=True)
    cases = []
    for scan in scans:
        volume = lungs = context = None
        for i, level in enumerate(levels):
            path = cache / f"{scan}_{level:g}.npz"
            if not path.is_file():
                if volume is None:
                    volume = load_scan(data / scan)
                    lungs = healthy_lungs(volume)
                    context = prepare_scan(volume, lungs)
                case = build_case(volume, lungs, level, seed=1000 + 17 * i, name=f"{scan} {level:g}%",
                                  context=context)
                tmp = path.with_name(path.stem + ".tmp.npz")
                np.savez(tmp, x=case.x, y=case.y)
                tmp.replace(path)
                print(f"built {path.name}: {case.x.shape}", flush=True)
            with np.load(path) as f:
                cases.append(CaseArrays(f"{scan} {level:g}%", f["x"], f["y"]))
    return cases


def add_gas_zones(cases: list) -> None:
    """Where each case may get gas under the diaphragm (one zone per scan: its lungs are the same
    at every level)."""
    from models.augment25d import gas_zone

    zones: dict[str, object] = {}
    for case in cases:
        scan = case.name.split()[0]
        if scan not in zones:
            zones[scan] = gas_zone(case.x, case.y)
            n = 0 if zones[scan] is None else int(zones[scan].allowed.sum())
            print(f"gas zone of {scan}: {n} voxels", flush=True)
        case.zone = zones[scan]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--train", nargs="+", default=["lidc_idri_0001", "lidc_idri_0002"])
    parser.add_argument("--levels", nargs="+", type=float, default=[0.0, 10.0, 25.0, 40.0, 55.0])
    parser.add_argument("--minutes", type=float, default=50.0, help="wall time planned for the whole run")
    parser.add_argument("--checkpoint", type=Path, default=REPO / "runs" / "lung25d.pt")
    parser.add_argument("--cache", type=Path, default=REPO / "runs" / "lung25d_cases")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--init", type=Path, default=None,
                        help="start a new run from these weights (fine-tuning), e.g. runs/lung25d.pt")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    parser.add_argument("--no-gas", action="store_true", help="no gas pockets inserted under the diaphragm")
    parser.add_argument("--export", type=Path, default=None,
                        help="after training, write the weights to ship (no optimiser), e.g. models/weights/lung25d.pt")
    args = parser.parse_args(argv)
    import torch

    from models.lung25d import train_lung25d

    torch.set_num_threads(args.threads)
    t = time.monotonic()
    cases = build_cases(args.data, args.train, args.levels, args.cache)
    if not args.no_gas:
        add_gas_zones(cases)
    print(f"{len(cases)} cases, {sum(c.x.shape[0] for c in cases)} slices ({time.monotonic() - t:.0f} s)", flush=True)
    args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    state = train_lung25d(cases, args.checkpoint, minutes=args.minutes, batch=args.batch,
                          lr=args.lr, init=args.init, log=lambda m: print(m, flush=True))
    print(f"done: step {state['step']}, {state['trained_s'] / 60:.1f} min -> {args.checkpoint}")
    if args.export is not None:
        from models.lung25d import export_weights

        summary = {"train_scans": args.train, "levels_pct": args.levels, "batch": args.batch,
                   "gas_pockets": not args.no_gas, "init": None if args.init is None else args.init.name,
                   "cases": len(cases), "slices": int(sum(c.x.shape[0] for c in cases))}
        print(f"weights -> {export_weights(args.checkpoint, args.export, training=summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
