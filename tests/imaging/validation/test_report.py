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


def test_network_text():
    text = network_markdown({"weights": "w.pt", "skipped": {"covid": "x not found"}})
    assert "Weights `w.pt`" in text and "| covid: skipped | x not found |" in text


def _series(name, same_hu=True, diff=0.0, workers=0.0):
    reader = {"median_seconds": 0.1, "min_seconds": 0.1, "peak_mib": 70.0, "worker_peak_mib": workers,
              "shape": [4, 16, 16], "dtype": "int16"}
    return {"name": name, "files": 4, "transfer_syntax": "JPEG-LS Lossless", "shape": [4, 16, 16], "ratio": 0.5,
            "readers": {"load_scan": reader, "sitk": dict(reader, median_seconds=0.2, dtype="int32")},
            "same_grid": True, "same_hu": same_hu, "max_abs_diff_hu": diff}


def test_reading_one_row_per_series():
    text = reading_markdown({"repeats": 5, "series": [_series("a"), _series("b", False, 2.0, workers=50.0)],
                             "skipped": {"c": "absent"},
                             "header_scan": {"files": 60, "studies": 50, "scan_seconds": 0.1, "ms_per_file": 1.6,
                                             "write_seconds": 0.3}})
    assert "median of 5 runs per reader" in text
    assert "| a | JPEG-LS Lossless | 4 × 16 × 16 | 4 | 0.10 | 0.20 | 0.50 | 70 | 70 | yes |" in text
    assert "| b |" in text and "**no** (max \\|Δ\\| 2 HU)" in text
    assert "Voxel types: load_scan int16; SimpleITK int32." in text
    assert "b 50 MiB" in text and "Not measured: c (absent)." in text
    assert "find_series over 60 files (50 studies)" in text
