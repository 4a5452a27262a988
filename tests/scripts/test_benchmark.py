"""The benchmark script's per-stage measurement, on the small real scan (fast)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import shared_path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "benchmark.py"


def _load():
    spec = importlib.util.spec_from_file_location("chestct_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_stage_run_reports_time_and_peak_memory_of_every_stage(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load()
    assert bench.main(["--_stages", str(shared_path("cip_ct64", "ct-64.nrrd")), "--opacity", "density"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["shape"] == [79, 64, 64]
    stages = result["stages"]
    assert {"read", "lungs", "opacity (density bands)", "score_scan (lungs + opacity + scores)"} <= set(stages)
    assert all(s["seconds"] >= 0 and s["peak_mb"] > 10 for s in stages.values())
    assert result["whole_peak_mb"] == max(s["peak_mb"] for s in stages.values())
    assert 2000 < result["lung_volume_ml"] < 8000
    table = bench.render({"machine": "test", "scans": {"cip_ct64 (real)": result}})
    assert "**whole score (read + score_scan, opacity: density)**" in table


def test_a_relative_scan_path_reaches_the_child_as_an_absolute_one(tmp_path, monkeypatch) -> None:
    """The stage child runs in the repository folder: a relative --lidc path was read there."""
    import subprocess

    bench = _load()
    seen = {}

    def fake_run(cmd, **kwargs):
        seen["cmd"], seen["cwd"] = cmd, kwargs.get("cwd")
        return subprocess.CompletedProcess(cmd, 0, stdout='{"ok": 1}\n', stderr="")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    assert bench._child(Path("data/scan"), "density") == {"ok": 1}
    assert seen["cmd"][seen["cmd"].index("--_stages") + 1] == str(tmp_path / "data" / "scan")


def test_workers_below_one_is_refused_before_measuring(capsys) -> None:
    """--workers 0 failed in score_studies only after the stage measurements (minutes)."""
    with pytest.raises(SystemExit) as exit_info:
        _load().main(["--workers", "0", "--no-lungmask"])
    assert exit_info.value.code == 2 and "--workers: must be >= 1, got 0" in capsys.readouterr().err
