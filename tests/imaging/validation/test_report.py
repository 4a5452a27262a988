"""The Markdown of each kind of result."""

from __future__ import annotations

from imaging.validation.report import lungs_markdown, network_markdown, reading_markdown, stages_markdown


def _scan(opacity="density"):
    stage = {"seconds": 1.0, "peak_mb": 100.0}
    return {"shape": [79, 64, 64], "opacity_method": opacity, "whole_seconds": 2.0, "whole_peak_mb": 100.0,
            "stages": {"read": stage, "lungs": stage, "score given the lungs": stage,
                       "score_scan (lungs + opacity + scores)": stage}}


def test_stage_table_and_growth():
    text = stages_markdown({"machine": "test", "scans": {"cip_ct64 (real)": _scan()},
                            "lungmask_skipped": "no environment"})
    assert "**whole score (read + score_scan, opacity: density)**" in text
    assert "lungmask R231: not measured (no environment)." in text
    assert "| cip_ct64 (real) | 79 | 1.00 | 1.00 | 2.00 | 2.53 | 100 |" in text


def test_lungs_tables_leave_the_raw_phantom_rows_out():
    text = lungs_markdown({"phantoms": [{"seed": 99}], "phantoms_summary": [{"method": "m"}],
                           "other": [{"x": 1.0}]})
    assert "| 99 |" not in text and "**Phantoms**" in text and "**other**:" in text


def test_network_and_reading_text():
    text = network_markdown({"weights": "w.pt", "skipped": {"covid": "x not found"}})
    assert "Weights `w.pt`" in text and "| covid: skipped | x not found |" in text
    reader = {"median_seconds": 0.1, "min_seconds": 0.1, "peak_mib": 70.0, "shape": [4, 16, 16], "dtype": "int16"}
    text = reading_markdown({"series": "s", "files": 4, "repeats": 1, "ratio": 0.5,
                             "readers": {"load_scan": reader, "sitk": reader}})
    assert "| load_scan |" in text and "(4, 16, 16)" in text and "ratio load_scan / SimpleITK" in text
