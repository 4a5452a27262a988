"""Scoring against truth on lesions inserted into a chest (imaging.validation.real_anatomy)."""

from __future__ import annotations

import numpy as np
import pytest

from imaging.phantom.make import make_phantom
from imaging.phantom.real_lungs import healthy_lungs
from imaging.validation.real_anatomy import evaluate_scan, render_truth_review, summarise_real_anatomy


@pytest.fixture(scope="module")
def rows():
    healthy = make_phantom(percent_opacity=0.0, rng=np.random.default_rng(5))
    return evaluate_scan(healthy.volume, "phantom", involvements=(0.0, 20.0), seed=2)


def test_each_level_is_scored_against_its_truth(rows):
    assert [r["involvement_pct"] for r in rows] == [0.0, 20.0]
    healthy, diseased = rows
    assert healthy["truth_po"] == 0.0 and np.isnan(healthy["lesion_inside_pct"])
    assert diseased["truth_po"] == pytest.approx(20.0, abs=0.5)
    assert diseased["po_error"] == pytest.approx(diseased["po"] - diseased["truth_po"])
    assert 0.5 < diseased["lung_dice"] <= 1.0 and 0.0 <= diseased["lesion_inside_pct"] <= 100.0
    assert healthy["po"] < diseased["po"]


def test_summary_has_one_row_per_level(rows):
    summary = summarise_real_anatomy(rows)
    assert [s["involvement %"] for s in summary] == [0.0, 20.0]
    assert summary[1]["mean PO error (points)"] == pytest.approx(rows[1]["po_error"])
    assert summary[0]["within ±2"] in ("0/1", "1/1")


def test_learned_lungs_are_used_when_given():
    healthy = make_phantom(percent_opacity=0.0, rng=np.random.default_rng(5))
    calls = []

    def lung_fn(volume):
        calls.append(volume.shape)
        return (healthy_lungs(volume)).astype(np.uint8)  # one label: scored whole

    rows = evaluate_scan(healthy.volume, "phantom", involvements=(10.0,), lung_fn=lung_fn)
    # the threshold lungs of the diseased volume leave its consolidation out
    assert calls == [healthy.volume.shape] and 0.9 < rows[0]["lung_dice"] < 1.0


def test_truth_review_picture(tmp_path):
    healthy = make_phantom(percent_opacity=0.0, rng=np.random.default_rng(5))
    path = render_truth_review(tmp_path / "review.png", healthy.volume, healthy.lungs > 0,
                               other=healthy.lungs > 0, title="phantom")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
