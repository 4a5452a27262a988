"""Time and peak memory per scoring stage (Linux /proc)."""

from __future__ import annotations

from imaging.validation.speed import WHOLE_SCORE, measure_stages, write_phantom_scan
from tests.conftest import shared_path


def test_every_stage_reports_time_and_peak_memory():
    result = measure_stages(shared_path("cip_ct64", "ct-64.nrrd"), opacity_method="density", repeats=2)
    assert result["shape"] == [79, 64, 64]
    stages = result["stages"]
    assert list(stages) == ["read", "lungs", "opacity (density bands)", "score given the lungs", WHOLE_SCORE]
    assert all(s["seconds"] >= 0 and s["peak_mb"] > 10 for s in stages.values())
    assert result["whole_peak_mb"] == max(s["peak_mb"] for s in stages.values())
    assert result["whole_seconds"] == round(stages["read"]["seconds"] + stages[WHOLE_SCORE]["seconds"], 3)
    assert result["opacity_method"] == "density"
    assert 2000 < result["lung_volume_ml"] < 8000


def test_phantom_scan_file(tmp_path):
    path, seconds = write_phantom_scan(tmp_path, 8, z_spacing_mm=2.5)
    assert path == tmp_path / "phantom_512x512x8.mha" and path.stat().st_size > 8 * 512 * 512 and seconds > 0
