"""Scoring measured on real anatomy with known truth: lesions inserted into real chests.

Each near-healthy real scan (the LIDC-IDRI studies in ``../shared/data``) gets reference
lungs (:func:`imaging.phantom.real_lungs.healthy_lungs`, reviewed on the QC pictures this
module writes) and COVID-19-like lesions at several involvements
(:func:`imaging.phantom.hybrid.insert_lesions`).  The toolkit's score is then compared with
the truth: percent opacity error (points), lung Dice, the share of inserted lesion inside
the lung mask, and of the lesion that lies against the heart, mediastinum or diaphragm.

At 0 % involvement the truth percent opacity is 0 by construction, though the scans hold
small real nodules (a few tenths of a point at most on these scans).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imaging.common.volume import CTVolume
from imaging.phantom.hybrid import HybridCase, insert_lesions, prepare_scan
from imaging.phantom.real_lungs import healthy_lungs
from imaging.validation.metrics import dice

__all__ = [
    "REAL_ANATOMY_SCANS",
    "INVOLVEMENTS_PCT",
    "inserted_cases",
    "evaluate_case",
    "evaluate_scan",
    "summarise_real_anatomy",
    "render_truth_review",
    "learned_lungs",
    "load_network",
]

#: The near-healthy real scans of ``../shared/data`` that lesions are inserted into.
REAL_ANATOMY_SCANS: tuple[str, ...] = ("lidc_idri_0001", "lidc_idri_0002", "lidc_idri_0003")
#: Involvement levels (percent of the lung volume) of the validation.
INVOLVEMENTS_PCT: tuple[float, ...] = (0.0, 5.0, 15.0, 30.0, 45.0, 60.0)


def evaluate_case(case: HybridCase, *, lung_method: str = "auto", opacity_method: str = "auto",
                  lung_fn: Callable[[CTVolume], np.ndarray] | None = None, learned: Any = None) -> dict[str, Any]:
    """Score one case with :func:`imaging.score_scan` and compare with its truth.

    ``lung_fn``, when given, returns lung labels (0 / 1 right / 2 left) for the volume
    (e.g. a learned lung mask), which the score then uses instead of ``lung_method``.
    ``learned``: a pass of the 2.5-D network over the case
    (:func:`imaging.scoring.lungs_learned.learned_segmentation`) for the ``"learned"`` methods.

    Returns
    -------
    dict
        ``truth_po`` and ``po`` (percent opacity), ``po_error`` (points), ``lung_dice``,
        ``lung_ml`` / ``truth_lung_ml``, ``lesion_inside_pct`` (inserted lesion inside the
        lung mask), ``juxta_inside_pct`` (the part against heart, mediastinum and
        diaphragm), ``flags``.
    """
    from imaging.scoring.scores import score_scan

    if lung_fn is not None:
        score = score_scan(case.volume, lung_labels=lung_fn(case.volume), opacity_method=opacity_method,
                           learned=learned)
    else:
        score = score_scan(case.volume, lung_method=lung_method, opacity_method=opacity_method, learned=learned)
    lungs = np.asarray(score.masks["lungs"]) > 0
    lesion = case.ggo | case.consolidation
    ml = case.volume.voxel_volume_ml
    return {
        "truth_po": case.involvement_pct,
        "po": float(score.percent_opacity),
        "po_error": float(score.percent_opacity) - case.involvement_pct,
        "lung_dice": dice(lungs, case.lungs),
        "lung_ml": float(lungs.sum() * ml),
        "truth_lung_ml": float(case.lungs.sum() * ml),
        "lesion_inside_pct": _inside(lesion, lungs),
        "juxta_inside_pct": _inside(case.juxta_organ, lungs),
        "flags": ";".join(score.quality_flags),
        "lung_method_run": score.lung_method,
        "opacity_method_run": score.opacity_method,
    }


def _inside(part: np.ndarray, mask: np.ndarray) -> float:
    """Percent of ``part`` inside ``mask`` (NaN when ``part`` is empty)."""
    n = int(part.sum())
    return float(100.0 * (part & mask).sum() / n) if n else float("nan")


def inserted_cases(volume: CTVolume, involvements: Sequence[float] = INVOLVEMENTS_PCT, *, seed: int = 0,
                   lungs: np.ndarray | None = None) -> Iterator[tuple[float, HybridCase]]:
    """The scan with lesions inserted at each involvement, one case at a time.

    Parameters
    ----------
    volume : CTVolume
        A near-healthy canonical chest CT.
    involvements : sequence of float
        Percent of the lungs turned into lesion.
    seed : int
        Seed of the lesion placement, offset by the level (``seed + round(10 * level)``),
        so that every check inserts the same lesions at a level.
    lungs : ndarray of bool, optional
        Reviewed reference lungs; computed with :func:`healthy_lungs` when not given.

    Yields
    ------
    (level, case) : (float, HybridCase)
    """
    lungs = healthy_lungs(volume) if lungs is None else lungs
    context = prepare_scan(volume, lungs)
    for level in involvements:
        yield float(level), insert_lesions(volume, lungs, level, rng=seed + int(round(level * 10)), context=context)


def evaluate_scan(volume: CTVolume, name: str, *, involvements: Sequence[float] = INVOLVEMENTS_PCT,
                  seed: int = 0, lungs: np.ndarray | None = None, opacity_methods: Sequence[str] | None = None,
                  network: Any = None, **score_options: Any) -> list[dict[str, Any]]:
    """Insert lesions at each involvement into one real scan and evaluate the score.

    Parameters
    ----------
    volume : CTVolume
        A near-healthy canonical chest CT.
    name : str
        The scan's name in the result rows.
    involvements : sequence of float, optional
        Percent of the lungs turned into lesion.
    seed : int, optional
        Seed of the lesion placement (the same for every involvement level, offset by it).
    lungs : ndarray of bool, optional
        Reviewed reference lungs; computed with :func:`healthy_lungs` when not given.
    opacity_methods : sequence of str, optional
        Score each case with each of these opacity methods (a row each, ``"opacity"``
        naming it) instead of ``score_options["opacity_method"]``.
    network : torch.nn.Module, optional
        The 2.5-D network for the ``"learned"`` methods (default: the shipped weights); it
        runs once per case however many methods use it.
    **score_options
        ``lung_method`` / ``opacity_method`` / ``lung_fn`` for :func:`evaluate_case`.
    """
    methods = list(opacity_methods) if opacity_methods else [score_options.pop("opacity_method", "auto")]
    score_options.pop("opacity_method", None)
    needs_network = score_options.get("lung_method") == "learned" or "learned" in methods
    rows = []
    for level, case in inserted_cases(volume, involvements, seed=seed, lungs=lungs):
        learned = None
        if needs_network:
            from imaging.scoring.lungs_learned import learned_segmentation

            learned = learned_segmentation(case.volume, network=network)
        for method in methods:
            rows.append({"scan": name, "involvement_pct": float(level), "opacity": method,
                         **evaluate_case(case, opacity_method=method, learned=learned, **score_options)})
    return rows


def summarise_real_anatomy(rows: Sequence[dict[str, Any]], *, limit_points: float = 2.0) -> list[dict[str, Any]]:
    """One row per involvement level: mean and worst PO error, Dice, lesion inside the lungs."""
    out = []
    for level in sorted({r["involvement_pct"] for r in rows}):
        cell = [r for r in rows if r["involvement_pct"] == level]
        errors = np.array([r["po_error"] for r in cell])
        juxta = [r["juxta_inside_pct"] for r in cell if np.isfinite(r["juxta_inside_pct"])]
        out.append({
            "involvement %": level,
            "scans": len(cell),
            "mean PO error (points)": float(errors.mean()),
            "worst PO error (points)": float(errors[np.argmax(np.abs(errors))]),
            f"within ±{limit_points:g}": f"{int((np.abs(errors) <= limit_points).sum())}/{len(cell)}",
            "lung Dice (min)": float(min(r["lung_dice"] for r in cell)),
            "lesion inside lungs % (min)": float(np.nanmin([r["lesion_inside_pct"] for r in cell]))
            if level > 0 else float("nan"),
            "juxta-organ lesion inside % (min)": float(min(juxta)) if juxta else float("nan"),
        })
    return out


def render_truth_review(path: str | Path, volume: CTVolume, lungs: np.ndarray, *,
                        other: np.ndarray | None = None, title: str = "") -> Path:
    """A review picture of reference lungs: bases, hila and apices, a coronal and a sagittal view.

    Eight panels in a lung window: axial slices at 3, 10, 25, 50, 75 and 95 % of the lungs'
    height (slice 0 inferior), a coronal slice through the lungs' centre and a sagittal
    slice through the right lung; the reference lungs outlined in cyan and, when given,
    another mask (e.g. the toolkit's lungs) in red.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hu, sp = volume.hu, volume.spacing_mm
    zs = np.flatnonzero(lungs.any(axis=(1, 2)))
    fig, axes = plt.subplots(2, 4, figsize=(16, 8.5))
    panels = [("axial", int(zs[0] + f * (zs[-1] - zs[0])), f) for f in (0.03, 0.10, 0.25, 0.50, 0.75, 0.95)]
    for ax, (_, z, f) in zip(axes.ravel(), panels):
        _panel(ax, hu[z], lungs[z], None if other is None else other[z], 1.0, f"axial z={z} ({f:.0%} of height)")
    y = int(np.nonzero(lungs)[1].mean())
    x = int(np.percentile(np.nonzero(lungs)[2], 25))
    _panel(axes[1, 2], hu[::-1, y, :], lungs[::-1, y, :], None if other is None else other[::-1, y, :],
           sp[0] / sp[2], f"coronal row {y}")
    _panel(axes[1, 3], hu[::-1, :, x], lungs[::-1, :, x], None if other is None else other[::-1, :, x],
           sp[0] / sp[1], f"sagittal column {x}")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return path


def _panel(ax: Any, image: np.ndarray, lungs: np.ndarray, other: np.ndarray | None, aspect: float, title: str) -> None:
    ax.imshow(np.clip(image, -1200, 300), cmap="gray", aspect=aspect)
    if lungs.any():
        ax.contour(lungs, [0.5], colors="cyan", linewidths=0.7)
    if other is not None and other.any():
        ax.contour(other, [0.5], colors="red", linewidths=0.7)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def learned_lungs(checkpoint: str | Path) -> Callable[[CTVolume], np.ndarray]:
    """A ``lung_fn`` for :func:`evaluate_case`: the lungs of a 2.5-D network checkpoint
    (:func:`imaging.scoring.lungs_learned.learned_lungs_canonical`).

    The volumes of these cases are canonical (as :func:`imaging.load_scan` returns them).
    """
    from imaging.scoring.lungs_learned import learned_lungs_canonical

    net = load_network(checkpoint)

    def lung_fn(volume: CTVolume) -> np.ndarray:
        return learned_lungs_canonical(volume.hu, volume.spacing_mm, network=net)

    return lung_fn


def load_network(checkpoint: str | Path) -> Any:
    """The 2.5-D network of a checkpoint or of exported weights (imports torch)."""
    from models.lung25d import load_lung25d

    return load_lung25d(checkpoint)
