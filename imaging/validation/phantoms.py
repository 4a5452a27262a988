"""Phantoms at several severities scored against their known truth.

:func:`imaging.phantom.make.make_phantom` makes a chest with peripheral, posterior,
lower-zone disease and returns its true lungs and lesions.  :func:`score_phantoms`
measures, for each lung method, severity and seed: lung Dice, the fraction of lesion
voxels kept inside the lung mask, and the density-band percent opacity against the
truth, both with our lungs and with the true lungs (which separates the mask's error from
the density bands' own).  :func:`summarise_by_severity` condenses the rows to
min..max over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imaging.phantom.make import make_phantom
from imaging.scoring.lungs import segment_lungs
from imaging.scoring.opacity import density_bands
from imaging.validation.metrics import dice, value_range

__all__ = ["PHANTOM_SEED_BASE", "score_phantoms", "summarise_by_severity"]

#: Seed of the first phantom of each severity; the next seeds follow (1000, 1001, ...).
PHANTOM_SEED_BASE = 1000

#: Share of the disease that is consolidation in the phantoms (the rest is ground-glass).
CONSOLIDATION_FRACTION = 0.4


def _percent_opacity(bands: Any) -> float:
    return 100.0 * (bands.ggo_voxels + bands.consolidation_voxels) / max(1, bands.lung_voxels)


def score_phantoms(methods: Sequence[str], severities: Sequence[float], seeds: int) -> list[dict[str, Any]]:
    """Score ``seeds`` phantoms per severity with each lung method, against the truth.

    Parameters
    ----------
    methods : sequence of str
        ``lung_method`` values of :func:`imaging.scoring.lungs.segment_lungs`.
    severities : sequence of float
        Target percent opacity of the phantoms (%).
    seeds : int
        Phantoms per severity (seeds :data:`PHANTOM_SEED_BASE` + 0, 1, ...).

    Returns
    -------
    list of dict
        One row per (severity, seed, method): ``method``, ``target_pct``, ``seed``,
        ``truth_po`` and ``measured_po`` (%), ``po_error`` (points), ``po_with_true_lungs``
        (%), ``lung_dice``, ``lesion_in_mask`` (fraction; NaN without lesions).
    """
    rows = []
    for sev in severities:
        for seed in range(seeds):
            p = make_phantom(percent_opacity=sev, consolidation_fraction=CONSOLIDATION_FRACTION,
                             rng=np.random.default_rng(PHANTOM_SEED_BASE + seed))
            v = p.volume
            truth = density_bands(v.hu, p.lungs > 0, spacing_mm=v.spacing_mm)
            po_true_lungs = 100.0 * (truth.ggo_voxels + truth.consolidation_voxels) / truth.lung_voxels
            lesion = p.lesions > 0
            for method in methods:
                lab = segment_lungs(v, method=method)
                po = _percent_opacity(density_bands(v.hu, lab > 0, spacing_mm=v.spacing_mm))
                rows.append({
                    "method": method, "target_pct": sev, "seed": seed,
                    "truth_po": float(p.percent_opacity), "measured_po": po,
                    "po_error": po - float(p.percent_opacity),
                    "po_with_true_lungs": po_true_lungs,
                    "lung_dice": dice(lab > 0, p.lungs > 0),
                    "lesion_in_mask": float((lab[lesion] > 0).mean()) if lesion.any() else float("nan"),
                })
    return rows


def summarise_by_severity(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method and target severity: min..max over seeds of Dice, PO error, lesion kept.

    ``rows`` are those of :func:`score_phantoms`; the values are strings (``"a..b"``),
    ``lesion_in_mask`` is ``"-"`` for healthy phantoms.
    """
    out = []
    keys = sorted({(r["method"], r["target_pct"]) for r in rows}, key=lambda k: (str(k[0]), k[1]))
    for method, sev in keys:
        sel = [r for r in rows if r["method"] == method and r["target_pct"] == sev]
        out.append({"method": method, "target_pct": sev,
                    "lung_dice": value_range([r["lung_dice"] for r in sel]),
                    "po_error": value_range([r["po_error"] for r in sel]),
                    "lesion_in_mask": value_range([r["lesion_in_mask"] for r in sel]) if sev > 0 else "-"})
    return out
