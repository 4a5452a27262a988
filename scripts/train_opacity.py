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
from pathlib import Path

DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "covid19_ct_slices"


def _number(kind: type, low: float, what: str):
    """argparse type: a ``kind`` number >= ``low`` (exit 2 with a clear message otherwise)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not value >= low:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    return parse


def _float_list(text: str) -> tuple[float, ...]:
    """argparse type: comma-separated numbers, e.g. ``0,0.25,-0.25``."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers such as 0,5,15, got {text!r}") from None
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(DEFAULT_DATA_ROOT))
    parser.add_argument("--out", default="models/weights/opacity_unet.pt")
    parser.add_argument("--log", default="runs/train_opacity.jsonl")
    positive = _number(int, 1, "an integer >= 1")
    parser.add_argument("--minutes", type=_number(float, 1e-9, "a number > 0"), default=40.0,
                        help="wall-clock budget")
    parser.add_argument("--steps", type=positive, default=None, help="fixed step count instead")
    parser.add_argument("--batch", type=positive, default=16)
    parser.add_argument("--lr", type=_number(float, 1e-12, "a number > 0"), default=3e-3)
    parser.add_argument("--base", type=positive, default=16)
    parser.add_argument("--levels", type=positive, default=4)
    parser.add_argument("--synthetic-fraction", type=_number(float, 0.0, "a number in [0, 1]"), default=0.25)
    parser.add_argument("--synthetic-bank", type=positive, default=160)
    parser.add_argument("--no-phantom", action="store_true", help="built-in synthetic only")
    parser.add_argument("--phantom-volumes", type=positive, default=12)
    parser.add_argument("--phantom-lung-free", action="store_true",
                        help="also train on the phantoms' lung-free slices (neck, abdomen)")
    parser.add_argument("--phantom-table-shifts", type=_float_list, default=(0.0,),
                        help="comma-separated Pose.dt per phantom (cycled), e.g. 0,0.25,-0.25")
    parser.add_argument("--phantom-severities", type=_float_list, default=(0.0, 5.0, 0.0, 15.0, 0.0, 30.0),
                        help="percent opacity of each training phantom, comma-separated, cycled")
    parser.add_argument("--init", default=None, help="checkpoint to fine-tune from")
    parser.add_argument("--warmup", type=int, default=100, help="warm-up steps")
    parser.add_argument("--lesion-class-weight", type=float, default=2.0)
    parser.add_argument("--lesion-dice-weight", type=float, default=1.0)
    parser.add_argument("--crop", type=_number(int, 0, "an integer >= 0"), default=160,
                        help="training crop side (0: none)")
    parser.add_argument("--eval-every-s", type=float, default=600.0)
    parser.add_argument("--threads", type=positive, default=2)
    parser.add_argument("--seed", type=int, default=20260426)
    parser.add_argument("--limit", type=positive, default=None, help="first N covid slices only")
    parser.add_argument("--calibrate-only", action="store_true",
                        help="only choose the lesion threshold of the checkpoint --out")
    parser.add_argument("--no-calibrate", action="store_true",
                        help="skip the lesion-threshold calibration after training")
    args = parser.parse_args(argv)
    if args.synthetic_fraction > 1:
        parser.error(f"argument --synthetic-fraction: must be a number in [0, 1], got {args.synthetic_fraction}")

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
        phantom_table_shifts=args.phantom_table_shifts, phantom_severities=args.phantom_severities,
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
