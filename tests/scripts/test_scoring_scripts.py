"""scripts/evaluate_lungs.py and scripts/benchmark_scoring.py: arguments and a fast run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from tests.conftest import shared_path

REPO = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_evaluate_lungs_on_cip(tmp_path, capsys):
    data = shared_path("cip_ct64").parent
    ev = _load("evaluate_lungs")
    out = tmp_path / "eval.json"
    assert ev.main(["--data", str(data), "--methods", "classical", "--skip", "phantoms", "lidc",
                    "abdomen", "--json", str(out)]) == 0
    assert "### cip_ct64" in capsys.readouterr().out
    rows = json.loads(out.read_text())["cip_ct64"]
    assert rows[0]["method"] == "classical" and rows[0]["dice"] >= 0.95


def test_benchmark_scoring_argument_errors(tmp_path, capsys):
    bench = _load("benchmark_scoring")
    assert bench.main(["--repeats", "0"]) == 2
    assert bench.main(["--data", str(tmp_path), "--slices"]) == 1
    assert "nothing to measure" in capsys.readouterr().err
