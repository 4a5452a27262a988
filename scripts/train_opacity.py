"""Train the opacity U-Net (models/train.py) and write models/weights/opacity_unet.pt.

Usage::

    python scripts/train_opacity.py --minutes 40            # the shipped run (2 CPU cores)
    python scripts/train_opacity.py --steps 200 --out runs/smoke.pt   # fixed-length run
    python scripts/train_opacity.py --calibrate-only   # re-choose the lesion threshold

After training, the lesion threshold is calibrated on training-block slices and healthy
phantoms (models.train.calibrate_lesion_threshold) and stored in the checkpoint.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data/covid19_ct_slices")
    parser.add_argument("--out", default="models/weights/opacity_unet.pt")
    parser.add_argument("--log", default="runs/train_opacity.jsonl")
    parser.add_argument("--minutes", type=float, default=40.0, help="wall-clock budget")
    parser.add_argument("--steps", type=int, default=None, help="fixed step count instead")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--base", type=int, default=16)
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--synthetic-fraction", type=float, default=0.25)
    parser.add_argument("--synthetic-bank", type=int, default=160)
    parser.add_argument("--no-phantom", action="store_true", help="built-in synthetic only")
    parser.add_argument("--phantom-volumes", type=int, default=12)
    parser.add_argument("--phantom-lung-free", action="store_true",
                        help="also train on the phantoms' lung-free slices (neck, abdomen)")
    parser.add_argument("--phantom-table-shifts", default="0",
                        help="comma-separated Pose.dt per phantom (cycled), e.g. 0,0.25,-0.25")
    parser.add_argument("--phantom-severities", default="0,5,0,15,0,30",
                        help="percent opacity of each training phantom, comma-separated, cycled")
    parser.add_argument("--init", default=None, help="checkpoint to fine-tune from")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up steps")
    parser.add_argument("--lesion-class-weight", type=float, default=2.0)
    parser.add_argument("--lesion-dice-weight", type=float, default=1.0)
    parser.add_argument("--crop", type=int, default=160, help="training crop side (0: none)")
    parser.add_argument("--eval-every-s", type=float, default=600.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20260426)
    parser.add_argument("--limit", type=int, default=None, help="first N covid slices only")
    parser.add_argument("--calibrate-only", action="store_true",
                        help="only choose the lesion threshold of the checkpoint --out")
    parser.add_argument("--no-calibrate", action="store_true",
                        help="skip the lesion-threshold calibration after training")
    args = parser.parse_args(argv)

    import torch

    from models.train import TrainConfig, calibrate_lesion_threshold, train

    torch.set_num_threads(args.threads)
    if args.calibrate_only:
        try:
            entry = calibrate_lesion_threshold(args.out, data_root=args.data_root)
        except (FileNotFoundError, OSError, ValueError, ImportError) as exc:
            print(f"train_opacity: {exc}", file=sys.stderr)
            return 1
        print(f"lesion_threshold {entry['lesion_threshold']} written to {args.out}")
        return 0

    config = TrainConfig(
        data_root=args.data_root, out=args.out, log=args.log, minutes=args.minutes,
        steps=args.steps, batch=args.batch, lr=args.lr, base=args.base, levels=args.levels,
        synthetic_fraction=args.synthetic_fraction, synthetic_bank=args.synthetic_bank,
        use_phantom=not args.no_phantom, eval_every_s=args.eval_every_s,
        phantom_volumes=args.phantom_volumes, phantom_lung_free=args.phantom_lung_free,
        phantom_table_shifts=tuple(float(v) for v in args.phantom_table_shifts.split(",")),
        phantom_severities=tuple(float(v) for v in args.phantom_severities.split(",")),
        init=args.init, warmup=args.warmup, lesion_class_weight=args.lesion_class_weight,
        lesion_dice_weight=args.lesion_dice_weight,
        crop=args.crop or None,
        threads=args.threads, seed=args.seed, limit=args.limit,
    )
    try:
        summary = train(config, log=lambda line: print(line, flush=True))
        if not args.no_calibrate:
            summary["inference"] = calibrate_lesion_threshold(args.out, data_root=args.data_root)
    except (FileNotFoundError, OSError, ValueError, ImportError) as exc:
        print(f"train_opacity: {exc}", file=sys.stderr)
        return 1
    print(summary, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
