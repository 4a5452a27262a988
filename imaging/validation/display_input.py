"""The opacity network on display images exported the way other tools export them.

Public COVID-19 CT data sets ship 8-bit slices, not HU, and each exporter renders them its
own way.  This check makes such an export from a held-out real chest with known lesions
(:mod:`imaging.validation.real_anatomy`: lesions inserted into ``lidc_idri_0003``) and
compares the network on it with the network on the HU of the same slices:

1. insert lesions at an involvement level into the scan (the truth: lungs, ground-glass
   and consolidation);
2. take every ``every``-th slice that holds truth lung;
3. HU path: the network on the slice's HU in its own grid (``kind="hu"``, its pixel
   spacing);
4. display path: the slice rendered in a plain lung window without CLAHE
   (:func:`render_display`), cropped to the body and rotated by 90°
   (:func:`to_export`), the network on that (``kind="window"``: what a user with such an
   export should use, min-max and the training CLAHE first; the spacing of the rotated
   grid), and its masks put back onto the slice grid (:func:`from_export`);
5. infection Dice (the network's lesion against the inserted ground-glass and
   consolidation) and lung Dice, pooled over the slices, for both paths.

The target (issue 13): the display path's infection Dice within
:data:`DICE_TOLERANCE` of the HU path's.

torch and ``models`` are imported inside the functions only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from imaging.validation.metrics import PooledDice

__all__ = [
    "LUNG_WINDOW",
    "DICE_TOLERANCE",
    "DISPLAY_KIND",
    "render_display",
    "body_box",
    "to_export",
    "from_export",
    "export_spacing",
    "display_against_hu",
    "display_markdown",
]

#: The plain lung window of the export, (level, width) in HU: -1350..150 HU.
LUNG_WINDOW: tuple[float, float] = (-600.0, 1500.0)
#: Target: display infection Dice at most this far below (or above) the HU path's.
DICE_TOLERANCE: float = 0.05
#: The ``kind`` the display path reads the plain-window export with (no equalisation in
#: the export: the network gets the training min-max and CLAHE first).
DISPLAY_KIND: str = "window"

Box = tuple[slice, slice]


def render_display(hu_slice: np.ndarray, *, window: tuple[float, float] = LUNG_WINDOW) -> np.ndarray:
    """An 8-bit grey image of HU in a plain linear window (no equalisation, no CLAHE).

    Parameters
    ----------
    hu_slice : ndarray, HU
    window : (level, width), HU
        The grey levels run linearly from ``level - width / 2`` (0, black) to
        ``level + width / 2`` (255, white); densities outside are clipped.

    Returns
    -------
    uint8 ndarray, same shape

    Examples
    --------
    >>> render_display(np.array([-2000, -1350, -600, 150, 3000])).tolist()
    [0, 0, 128, 255, 255]
    """
    level, width = float(window[0]), float(window[1])
    if not width > 0:
        raise ValueError(f"window width must be > 0 HU, got {width!r}")
    low = level - width / 2.0
    grey = (np.asarray(hu_slice, dtype=np.float32) - low) / width * 255.0
    return np.round(np.clip(grey, 0.0, 255.0)).astype(np.uint8)


def body_box(hu_slice: np.ndarray, *, margin: int = 4) -> Box:
    """Bounding box of the body on an axial slice
    (:func:`imaging.phantom.real_lungs.body_mask`), with a margin.

    Parameters
    ----------
    hu_slice : (Y, X) ndarray, HU
    margin : int, pixels
        Added on every side (within the slice).

    Returns
    -------
    (rows, columns) : tuple of slices
        The whole slice when there is no body.

    Examples
    --------
    >>> hu = np.full((20, 30), -1000.0); hu[5:12, 8:20] = 40.0; hu[0, 0] = 40.0
    >>> body_box(hu, margin=2)
    (slice(3, 14, None), slice(6, 22, None))
    """
    from imaging.phantom.real_lungs import body_mask

    body = body_mask(np.asarray(hu_slice)[None])[0]
    if not body.any():
        return slice(0, hu_slice.shape[0]), slice(0, hu_slice.shape[1])
    rows, cols = ndi.find_objects(body.astype(np.uint8))[0]
    ny, nx = hu_slice.shape
    return (slice(max(rows.start - margin, 0), min(rows.stop + margin, ny)),
            slice(max(cols.start - margin, 0), min(cols.stop + margin, nx)))


def to_export(image: np.ndarray, box: Box) -> np.ndarray:
    """The export's geometry: ``image`` cropped to ``box`` and rotated by 90° (``np.rot90``)."""
    return np.ascontiguousarray(np.rot90(np.asarray(image)[box], k=1))


def from_export(exported: np.ndarray, box: Box, shape: Sequence[int]) -> np.ndarray:
    """The inverse of :func:`to_export`: back onto the slice grid, zeros outside the crop.

    Parameters
    ----------
    exported : ndarray
        An array on the export's grid (e.g. a mask predicted on the exported image).
    box : (rows, columns) slices
        The crop :func:`to_export` used.
    shape : (Y, X) ints
        The slice's shape.

    Returns
    -------
    ndarray of ``exported``'s dtype, ``shape``
    """
    out = np.zeros(tuple(shape), dtype=np.asarray(exported).dtype)
    out[box] = np.rot90(exported, k=-1)
    return out


def export_spacing(spacing_yx_mm: Sequence[float]) -> tuple[float, float]:
    """Pixel spacing (mm) of the exported grid: the rotation swaps rows and columns."""
    return float(spacing_yx_mm[1]), float(spacing_yx_mm[0])


def _hu_path(hu_slice: np.ndarray, spacing_yx_mm: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Lungs and lesion of the network on the slice's HU, in its own grid."""
    from models import predict_lungs_and_opacity

    lungs, opacity = predict_lungs_and_opacity(hu_slice, spacing_mm=spacing_yx_mm, kind="hu")
    return lungs, opacity > 0


def _display_path(hu_slice: np.ndarray, spacing_yx_mm: Sequence[float], window: tuple[float, float],
                  use_spacing: bool) -> tuple[np.ndarray, np.ndarray]:
    """Lungs and lesion of the network on the exported display image, back on the slice grid."""
    from models import predict_lungs_and_opacity

    box = body_box(hu_slice)
    image = to_export(render_display(hu_slice, window=window), box)
    spacing = export_spacing(spacing_yx_mm) if use_spacing else None
    lungs, opacity = predict_lungs_and_opacity(image, spacing_mm=spacing, kind=DISPLAY_KIND)
    return from_export(lungs, box, hu_slice.shape), from_export(opacity > 0, box, hu_slice.shape)


def display_against_hu(scan_path: str | Path, *, levels_pct: Sequence[float] = (15.0, 30.0, 45.0), seed: int = 0,
                       every: int = 4, window: tuple[float, float] = LUNG_WINDOW,
                       use_spacing: bool = True) -> list[dict[str, Any]]:
    """Infection and lung Dice of the network on exported display slices and on their HU.

    Parameters
    ----------
    scan_path : path
        A near-healthy real chest (anything :func:`imaging.load_scan` reads).
    levels_pct : sequence of float, %
        Involvements of the inserted lesions (percent of the lung volume), a row each.
    seed : int
        Seed of the lesion placement
        (:func:`imaging.validation.real_anatomy.inserted_cases`).
    every : int
        Use every ``every``-th slice that holds truth lung.
    window : (level, width), HU
        The export's lung window (:func:`render_display`).
    use_spacing : bool
        Give the display path the exported grid's pixel spacing (True) or none (False,
        square pixels assumed, as for images without a header).

    Returns
    -------
    list of dict, one per level
        ``scan``, ``level`` (%), ``truth_pct`` (inserted involvement, %), ``slices``,
        ``kind`` (the display path's, :data:`DISPLAY_KIND`);
        Dice pooled over the slices: ``dice_hu`` and ``dice_display`` (the network's
        lesion against the inserted ground-glass and consolidation), ``diff``
        (display − HU), ``lung_dice_hu``, ``lung_dice_display``; ``lesion_vs_truth_hu`` and
        ``lesion_vs_truth_display`` (the network's lesion pixels over the inserted lesion
        pixels on these slices: below 1, lesion missed); ``seconds`` (the level's comparison).
    """
    from imaging.io.load import load_scan
    from imaging.validation.real_anatomy import inserted_cases

    if every < 1:
        raise ValueError(f"every must be >= 1, got {every!r}")
    volume = load_scan(scan_path).canonical()
    return [_level_row(Path(scan_path).name, level, case, every, window, use_spacing)
            for level, case in inserted_cases(volume, levels_pct, seed=seed)]


def _level_row(scan: str, level: float, case: Any, every: int, window: tuple[float, float],
               use_spacing: bool) -> dict[str, Any]:
    """One row of :func:`display_against_hu`: both paths on every ``every``-th lung slice of a case."""
    start = time.perf_counter()
    zs = np.flatnonzero(case.lungs.any(axis=(1, 2)))[::every]
    tally = _compare_paths(case, zs, window, use_spacing)
    dice_hu, dice_display = tally["hu"].value, tally["display"].value
    truth_px = max(tally["truth_px"], 1)
    return {"scan": scan, "level": level, "truth_pct": round(case.involvement_pct, 2),
            "slices": int(len(zs)), "kind": DISPLAY_KIND,
            "dice_hu": round(dice_hu, 4), "dice_display": round(dice_display, 4),
            "diff": round(dice_display - dice_hu, 4),
            "lung_dice_hu": round(tally["lung_hu"].value, 4),
            "lung_dice_display": round(tally["lung_display"].value, 4),
            "lesion_vs_truth_hu": round(tally["found_px_hu"] / truth_px, 3),
            "lesion_vs_truth_display": round(tally["found_px_display"] / truth_px, 3),
            "seconds": round(time.perf_counter() - start, 1)}


def _compare_paths(case: Any, zs: np.ndarray, window: tuple[float, float], use_spacing: bool) -> dict[str, Any]:
    """Both paths on the slices ``zs`` of a case: pooled infection and lung Dice, lesion pixels."""
    hu = np.asarray(case.volume.hu)
    spacing_yx = tuple(float(s) for s in case.volume.spacing_mm[1:])
    lesion = case.ggo | case.consolidation
    tally: dict[str, Any] = {name: PooledDice() for name in ("hu", "display", "lung_hu", "lung_display")}
    tally.update(truth_px=int(lesion[zs].sum()), found_px_hu=0, found_px_display=0)
    for z in zs:
        for kind, (lungs, found) in (("hu", _hu_path(hu[z], spacing_yx)),
                                     ("display", _display_path(hu[z], spacing_yx, window, use_spacing))):
            tally[kind].add(found, lesion[z])
            tally[f"lung_{kind}"].add(lungs, case.lungs[z])
            tally[f"found_px_{kind}"] += int(found.sum())
    return tally


def display_markdown(rows: Sequence[dict[str, Any]], *, tolerance: float = DICE_TOLERANCE) -> str:
    """The table of :func:`display_against_hu` rows with the target and whether each row meets it."""
    from imaging.validation.markdown import markdown_table

    table = [{"scan": r["scan"], "involvement %": r["level"], "slices": r["slices"],
              "infection Dice HU": r["dice_hu"], "infection Dice display": r["dice_display"],
              "display − HU": r["diff"], f"within ±{tolerance:g}": "yes" if abs(r["diff"]) <= tolerance else "no",
              "lung Dice HU": r["lung_dice_hu"], "lung Dice display": r["lung_dice_display"],
              "lesion / truth HU": r["lesion_vs_truth_hu"], "lesion / truth display": r["lesion_vs_truth_display"],
              "seconds": r["seconds"]} for r in rows]
    met = sum(abs(r["diff"]) <= tolerance for r in rows)
    window = f"level {LUNG_WINDOW[0]:g}, width {LUNG_WINDOW[1]:g} HU"
    kinds = sorted({str(r.get("kind", DISPLAY_KIND)) for r in rows}) or [DISPLAY_KIND]
    through = " / ".join(f"`kind=\"{k}\"`" for k in kinds)
    if kinds == ["window"]:
        through += " (per-slice min-max and the training CLAHE first)"
    return (f"**Display input from other exports**: slices of the held-out real chest with inserted lesions, "
            f"rendered in a plain lung window ({window}, no CLAHE), cropped to the body and rotated by 90°, "
            f"through {through}, against the same slices' HU through `kind=\"hu\"`.  Target: display "
            f"infection Dice within {tolerance:g} of the HU path — met on {met}/{len(rows)}.\n\n"
            + markdown_table(table, digits=3, column_digits={"involvement %": 0, "seconds": 0}))
