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
    assert bench.main(["--data", str(tmp_path), "--slices", "0"]) == 2  # was a make_phantom traceback
    assert "--slices must be >= 8 each, got [0]" in capsys.readouterr().err


def test_evaluate_scripts_say_what_data_is_missing(tmp_path, capsys):
    """evaluate_opacity skipped every section silently (its data root was relative to the
    working folder) and wrote an empty result with exit 0; evaluate_lungs raised IndexError
    without the LIDC scan; evaluate_sample_trial took any method name and failed mid-run."""
    import pytest

    pytest.importorskip("torch")
    ev = _load("evaluate_opacity")
    assert ev.DEFAULT_DATA == REPO.parent / "shared" / "data"
    out = tmp_path / "eo.json"
    assert ev.main(["--data-root", str(tmp_path), "--skip", "phantoms", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    for section in ("lidc", "covid", "cip"):
        assert f"evaluate_opacity: {section} skipped: {tmp_path}" in err
    assert set(json.loads(out.read_text())["skipped"]) == {"lidc", "covid", "cip"}
    assert _load("evaluate_lungs").main(["--data", str(tmp_path), "--methods", "classical",
                                         "--skip", "cip", "phantoms", "abdomen"]) == 1
    assert "no DICOM series under" in capsys.readouterr().err
    trial = _load("evaluate_sample_trial")
    with pytest.raises(SystemExit) as exit_info:
        trial.main(["--lungs", "classic"])
    assert exit_info.value.code == 2 and "invalid choice: 'classic'" in capsys.readouterr().err
    assert trial.main(["--data", str(tmp_path), "--lungs", "classical", "--opacity", "density"]) == 1
    assert "truth.csv not found" in capsys.readouterr().err


def test_union_rim_erode_and_measure():
    import numpy as np
    import pytest

    pytest.importorskip("torch")
    from imaging.phantom.make import make_phantom

    rim = _load("evaluate_union_rim")
    lab = np.zeros((1, 9, 9), np.uint8)
    lab[0, 2:7, 2:7] = 2
    eroded = rim.erode_inplane(lab, 1.0, (1.0, 1.0))
    assert eroded[0, 4, 4] == 2 and eroded[0, 2, 2] == 0 and eroded.sum() < lab.sum()
    p = make_phantom(shape=(24, 96, 96), spacing_mm=(10.0, 3.5, 3.5), percent_opacity=0.0,
                     rng=np.random.default_rng(3))
    row = rim.measure(p.volume, 1.5, p.lungs)
    assert list(row) == ["classical", "union", "union-eroded"]
    dice = {k: float(v.rsplit("Dice ", 1)[1]) for k, v in row.items()}
    assert dice["classical"] > 0.9 and dice["union-eroded"] >= dice["union"]


def test_union_rim_argument_errors(capsys):
    """--erode-mm -1 ran silently without eroding; --severities -5 was a make_phantom traceback."""
    import pytest

    rim = _load("evaluate_union_rim")
    for argv, message in ((["--erode-mm", "-1"], "--erode-mm: must be > 0"),
                          (["--severities", "-5"], "--severities: percent opacity must be in 0..95"),
                          (["--seeds", "-1"], "--seeds: must be >= 0")):
        with pytest.raises(SystemExit) as exit_info:
            rim.main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
