"""Phantoms scored against their truth, and the per-severity summary."""

from __future__ import annotations

import math

from imaging.validation.phantoms import score_phantoms, summarise_by_severity


def test_one_phantom_scored_against_its_truth():
    rows = score_phantoms(["classical"], [20.0], 1)
    assert len(rows) == 1
    row = rows[0]
    assert (row["method"], row["target_pct"], row["seed"]) == ("classical", 20.0, 0)
    assert abs(row["truth_po"] - 20.0) < 1.0
    assert math.isclose(row["po_error"], row["measured_po"] - row["truth_po"])
    assert abs(row["po_with_true_lungs"] - row["truth_po"]) < 3.0
    assert row["lung_dice"] > 0.9 and 0.5 < row["lesion_in_mask"] <= 1.0


def test_summary_gives_ranges_over_seeds():
    rows = [{"method": "m", "target_pct": sev, "seed": seed, "lung_dice": 0.9 + seed / 100,
             "po_error": -1.0 - seed, "lesion_in_mask": math.nan if sev == 0 else 0.8}
            for sev in (10.0, 0.0) for seed in (0, 1)]
    summary = summarise_by_severity(rows)
    assert [(r["target_pct"], r["lung_dice"], r["po_error"], r["lesion_in_mask"]) for r in summary] == [
        (0.0, "0.900..0.910", "-2.000..-1.000", "-"), (10.0, "0.900..0.910", "-2.000..-1.000", "0.800")]
