"""Render mid-slice montages of a CT volume (and optional masks) to PNG for a visual check.

Usage
-----
    python scripts/qc_montage.py SCAN [SCAN ...] -o qc/           # DICOM folders, NIfTI, NRRD
    python scripts/qc_montage.py --phantom 30 -o qc/phantom.png    # a fresh phantom at 30 %
    python scripts/qc_montage.py sample_data/studies -o qc/        # every series found

Series that are not volumes (scouts) are reported on stderr and skipped; the exit
status is 1 only when nothing could be rendered. Each montage shows axial slices at 25/50/75 % of the lung height (or of the scan), a
coronal and a sagittal mid-slice, in a lung window (W 1500, L -600) beside a
mediastinal window (W 400, L 40); truth or predicted masks, when given, are drawn as
contours (lungs: cyan, ground-glass: yellow, consolidation: red).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["render_montage", "main"]

_LUNG_WINDOW = (-1350.0, 150.0)
_MEDIASTINAL_WINDOW = (-160.0, 240.0)


def _window(img: np.ndarray, lo_hi: tuple[float, float]) -> np.ndarray:
    lo, hi = lo_hi
    return np.clip((img.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)


def render_montage(
    volume: "object",
    path: str | Path,
    *,
    lungs: np.ndarray | None = None,
    lesions: np.ndarray | None = None,
    title: str | None = None,
) -> Path:
    """Write a PNG montage of ``volume`` (a :class:`imaging.CTVolume`).

    Parameters
    ----------
    volume : CTVolume
        Canonical orientation expected (slice 0 inferior); others are reoriented.
    path : str or Path
        PNG to write (atomically); parent folders are created.
    lungs, lesions : (Z, Y, X) ndarray, optional
        Masks in the volume's geometry, drawn as contours.
    title : str, optional

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imaging.common.files import atomic_write

    canon = volume.canonical()  # type: ignore[attr-defined]
    if canon is not volume and (lungs is not None or lesions is not None):
        raise ValueError("masks can only be drawn on a volume already in canonical orientation")
    hu = canon.hu
    Z, Y, X = hu.shape
    sz, sy, sx = canon.spacing_mm
    if lungs is not None and np.any(lungs):
        zs = np.flatnonzero(np.any(lungs, axis=(1, 2)))
        z_lo, z_hi = zs[0], zs[-1]
    else:
        z_lo, z_hi = 0, Z - 1
    axial = [int(round(z_lo + f * (z_hi - z_lo))) for f in (0.25, 0.5, 0.75)]
    yc, xc = Y // 2, X // 2
    if lungs is not None and np.any(lungs):
        ys = np.flatnonzero(np.any(lungs, axis=(0, 2)))
        yc = int((ys[0] + ys[-1]) // 2)

    def cut(arr: np.ndarray, kind: str, idx: int) -> np.ndarray:
        if kind == "axial":
            return arr[idx]
        if kind == "coronal":
            return arr[::-1, idx, :]
        return arr[::-1, :, idx]

    views = [("axial", z) for z in axial] + [("coronal", yc), ("sagittal", xc)]
    fig, axes = plt.subplots(2, len(views), figsize=(3.2 * len(views), 6.6), squeeze=False)
    for col, (kind, idx) in enumerate(views):
        aspect = sy / sx if kind == "axial" else sz / (sx if kind == "coronal" else sy)  # pixel height / width
        for row, win in enumerate((_LUNG_WINDOW, _MEDIASTINAL_WINDOW)):
            ax = axes[row, col]
            ax.imshow(_window(cut(hu, kind, idx), win), cmap="gray", vmin=0, vmax=1, aspect=aspect, interpolation="nearest")
            if row == 0:
                for mask, levels, color in ((lungs, [0.5], "cyan"), (lesions, [0.5], "yellow"), (lesions, [1.5], "red")):
                    if mask is not None:
                        m = cut(np.asarray(mask), kind, idx).astype(np.float32)
                        if m.max() > levels[0]:
                            ax.contour(m, levels=levels, colors=color, linewidths=0.6)
            ax.set_title(f"{kind} {idx}" + (" (lung W)" if row == 0 else " (mediastinal W)"), fontsize=8)
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)
    return out


def _read(path: Path) -> "object":
    """A canonical CTVolume from a DICOM series folder, NIfTI, NRRD or MetaImage file."""
    from imaging.io.load import load_scan

    return load_scan(path)


def _series_folders(root: Path) -> list[Path]:
    """Folders under ``root`` that directly hold .dcm files (or ``root`` itself)."""
    if not root.is_dir():
        return [root]
    found = sorted({p.parent for p in root.rglob("*.dcm")})
    return found or [root]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", type=Path, help="DICOM series folders (or a root holding several), NIfTI or NRRD files")
    parser.add_argument("-o", "--out", type=Path, required=True, help="PNG file (one input) or folder")
    parser.add_argument("--phantom", type=float, metavar="PERCENT", help="render a fresh phantom with this percent opacity")
    parser.add_argument("--shape", type=int, nargs=3, default=(60, 128, 128), metavar=("Z", "Y", "X"))
    parser.add_argument("--spacing", type=float, nargs=3, default=(5.0, 2.7, 2.7), metavar=("DZ", "DY", "DX"))
    parser.add_argument("--crazy-paving", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from imaging.common.errors import ChestCTError

    if args.phantom is None and not args.inputs:
        parser.error("give at least one input, or --phantom PERCENT")
    folders = [f for i in args.inputs for f in _series_folders(i)]
    n_montages = len(folders) + (args.phantom is not None)
    if args.out.suffix.lower() == ".png" and n_montages > 1:
        parser.error(f"-o {args.out} is one PNG file, but {n_montages} montages are to be written "
                     "(series found under the inputs, and the phantom): give a folder")
    written, failed = 0, 0
    if args.phantom is not None:
        from imaging.phantom.make import make_phantom

        try:
            p = make_phantom(shape=tuple(args.shape), spacing_mm=tuple(args.spacing), percent_opacity=args.phantom,
                             crazy_paving=args.crazy_paving, rng=np.random.default_rng(args.seed))
            out = args.out if args.out.suffix.lower() == ".png" else args.out / f"phantom_{args.phantom:g}.png"
            title = f"phantom target {args.phantom:g} %, truth {p.percent_opacity:.2f} %"
            print(render_montage(p.volume, out, lungs=p.lungs, lesions=p.lesions, title=title))
            written += 1
        except (OSError, ValueError) as exc:
            print(f"qc_montage: {exc}", file=sys.stderr)
            return 1
    single = len(folders) == 1 and args.phantom is None and args.out.suffix.lower() == ".png"
    for folder in folders:
        # one montage per series; a series that is not a volume (a scout) is reported and skipped
        try:
            vol = _read(folder)
            # <patient>_<study tail>_<series tail>.png: short, unique enough, sortable
            name = "_".join(part[-10:] for part in folder.parts[-3:]).replace(".", "-") + ".png"
            print(render_montage(vol, args.out if single else args.out / name, title=str(folder)))
            written += 1
        except (ChestCTError, OSError, ValueError, RuntimeError) as exc:
            print(f"qc_montage: skipped {folder}: {exc}", file=sys.stderr)
            failed += 1
    return 0 if written and not (failed and single) else 1


if __name__ == "__main__":
    raise SystemExit(main())
