"""The QC picture: overlays drawn where the voxels they outline are shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imaging.pipeline import qc


def _rendered_axes(tmp_path, monkeypatch, hu, **kwargs):
    """The axes of the figure :func:`qc.render_qc` saves (axial panels, then coronal)."""
    from matplotlib.figure import Figure

    saved = []
    real_savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (saved.append(self), real_savefig(self, *a, **k))[1])
    qc.render_qc(tmp_path / "qc.png", hu, **kwargs)
    return saved[0].axes


def _outline_bounds(ax) -> np.ndarray:
    """(x min, x max, y min, y max) of the contour lines drawn on ``ax``, data coordinates."""
    paths = [p for coll in ax.collections for p in (coll.get_paths() if hasattr(coll, "get_paths") else [])]
    v = np.concatenate([p.vertices for p in paths if len(p.vertices)])
    return np.array([v[:, 0].min(), v[:, 0].max(), v[:, 1].min(), v[:, 1].max()])


def test_lung_outline_lies_on_the_outlined_pixels(tmp_path, monkeypatch):
    # imshow puts pixel (row r, column c) at data (c, r) for either origin (axial panels:
    # "upper", coronal: "lower"); the outline of a block of pixels must run along that
    # block's edges (± half a pixel), not mirrored or shifted.
    hu = np.full((12, 20, 16), -1000.0)
    lungs = np.zeros(hu.shape, np.uint8)
    z0, z1, r0, r1, c0, c1 = 1, 5, 2, 6, 3, 8  # an off-centre block: flips and shifts are visible
    lungs[z0:z1 + 1, r0:r1 + 1, c0:c1 + 1] = 1
    axes = _rendered_axes(tmp_path, monkeypatch, hu, spacing_mm=(1.0, 1.0, 1.0), lungs=lungs)
    for ax in axes[:-1]:  # axial: rows are y
        assert _outline_bounds(ax) == pytest.approx([c0 - 0.5, c1 + 0.5, r0 - 0.5, r1 + 0.5])
    assert _outline_bounds(axes[-1]) == pytest.approx([c0 - 0.5, c1 + 0.5, z0 - 0.5, z1 + 0.5])  # coronal: rows are z


def test_render_qc_writes_png_with_axial_and_coronal_panels(tmp_path):
    hu = np.full((12, 20, 16), -1000, np.int16)
    lungs = np.zeros(hu.shape, np.uint8)
    lungs[2:10, 4:14, 2:7] = 1
    lungs[2:10, 4:14, 9:14] = 2
    hu[lungs > 0] = -850
    path = qc.render_qc(tmp_path / "qc.png", hu, spacing_mm=(3.0, 1.0, 1.0), lungs=lungs, title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_panel_titles_give_the_patient_position_of_each_slice(tmp_path, monkeypatch):
    # the index counts from the most inferior slice, but a series is often stored head first
    # (LIDC-IDRI): the title must also give the position a viewer shows for that slice
    from matplotlib.figure import Figure

    saved = []
    real_savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (saved.append(self), real_savefig(self, *a, **k))[1])
    hu = np.full((10, 8, 6), -1000, np.int16)
    lungs = np.zeros(hu.shape, np.uint8)
    lungs[1:10, 2:6, 1:5] = 1  # rows 2..5: centre row 4 (3.5 rounded to even)
    qc.render_qc(tmp_path / "qc.png", hu, spacing_mm=(2.5, 1.0, 1.0), lungs=lungs,
                 origin_mm=(-3.0, 10.0, -340.0))
    titles = [ax.get_title() for ax in saved[0].axes]
    # axial 3 and 7 (30 % / 70 % of lung slices 1..9): z = -340 + 2.5 k; coronal row 4: y = 10 + 4
    assert titles == ["axial 3  (z -332.5 mm)", "axial 7  (z -322.5 mm)", "coronal 4  (y 14.0 mm)"]


def test_qc_picture_is_a_png_and_checks_shapes(tmp_path: Path) -> None:
    from imaging.pipeline.qc import render_qc

    hu = np.full((10, 20, 20), -850, np.int16)
    lungs = np.zeros(hu.shape, np.uint8)
    lungs[2:8, 4:16, 2:9], lungs[2:8, 4:16, 11:18] = 1, 2
    opacity = np.zeros_like(lungs)
    opacity[5, 6:10, 3:7] = 2
    path = render_qc(tmp_path / "qc.png", hu, spacing_mm=(3, 1, 1), lungs=lungs, opacity=opacity)
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="opacity shape"):
        render_qc(tmp_path / "x.png", hu, spacing_mm=(3, 1, 1), lungs=lungs, opacity=opacity[:5])


def test_thumbnail_keeps_the_aspect_of_the_picture(tmp_path):
    from PIL import Image

    Image.new("RGB", (800, 300), (10, 20, 30)).save(tmp_path / "big.png")
    path = qc.write_thumbnail(tmp_path / "big.png", tmp_path / "thumb.png")
    with Image.open(path) as thumb:
        assert thumb.size == (qc.THUMBNAIL_WIDTH_PX, 75) and thumb.format == "PNG"
