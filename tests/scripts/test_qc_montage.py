"""The QC montage script renders PNGs for phantoms and for DICOM series."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("qc_montage", REPO / "scripts" / "qc_montage.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["qc_montage"] = module
    spec.loader.exec_module(module)
    return module


qc = _load()


def test_phantom_montage_png(tmp_path: Path) -> None:
    out = tmp_path / "p.png"
    assert qc.main(["--phantom", "20", "--shape", "24", "48", "48", "--spacing", "12", "7", "7", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["p.png"]


def test_dicom_folder_montages(tmp_path: Path) -> None:
    from imaging.phantom.make import make_phantom
    from imaging.io.writers import write_dicom_series

    p = make_phantom(shape=(24, 48, 48), spacing_mm=(12.0, 7.0, 7.0), rng=np.random.default_rng(0))
    write_dicom_series(p.volume, tmp_path / "in" / "study" / "series", patient_id="P01")
    assert qc.main([str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 0
    pngs = list((tmp_path / "out").glob("*.png"))
    assert len(pngs) == 1 and pngs[0].stat().st_size > 1000


def test_missing_input_is_an_error(tmp_path: Path, capsys) -> None:
    assert qc.main([str(tmp_path / "nothing"), "-o", str(tmp_path / "o.png")]) == 1
    assert "qc_montage:" in capsys.readouterr().err


def test_one_png_name_for_several_montages_is_a_usage_error(tmp_path: Path, capsys) -> None:
    """Several inputs with -o x.png made a folder named x.png; a phantom plus an input wrote
    the phantom to x.png and skipped the input ("File exists") with exit 0."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    for argv in ([str(tmp_path / "a"), str(tmp_path / "b")], ["--phantom", "5", str(tmp_path / "a")]):
        with pytest.raises(SystemExit) as exit_info:
            qc.main([*argv, "-o", str(tmp_path / "x.png")])
        assert exit_info.value.code == 2
        assert "is one PNG file, but 2 montages" in capsys.readouterr().err
        assert not (tmp_path / "x.png").exists()


def test_pixels_drawn_at_their_true_aspect_ratio(tmp_path: Path, monkeypatch) -> None:
    # non-square in-plane pixels (rows 1 mm apart, columns 2 mm): every panel's aspect is
    # (vertical spacing) / (horizontal spacing), axial included
    import matplotlib.pyplot as plt

    from imaging.common.volume import CTVolume

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figures.append(fig))
    volume = CTVolume(np.full((6, 10, 8), -800, np.int16), (3.0, 1.0, 2.0))
    qc.render_montage(volume, tmp_path / "m.png")
    (fig,) = figures
    aspects = [float(ax.get_aspect()) for ax in fig.axes[:5]]  # axial x3, coronal, sagittal
    assert aspects == pytest.approx([0.5, 0.5, 0.5, 1.5, 3.0])
