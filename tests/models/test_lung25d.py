"""The 2.5-D lung and lesion network: inputs, labels, a resumable run, inference shape."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from imaging.phantom.make import make_phantom  # noqa: E402
from imaging.phantom.real_lungs import healthy_lungs  # noqa: E402
from models.lung25d import build_case, export_weights, load_lung25d, predict_classes25d, train_lung25d  # noqa: E402
from models.slices25d import IN_CHANNELS, PIXEL_MM, labels_of, neighbour_offset, volume_channels  # noqa: E402


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(shape=(24, 96, 96), spacing_mm=(5.0, 3.2, 3.2), percent_opacity=0.0,
                        rng=np.random.default_rng(2))


def test_channels_are_fixed_windows_on_the_grid(phantom):
    v = phantom.volume
    x = volume_channels(v.hu, v.spacing_mm)
    assert x.shape == (24, IN_CHANNELS, round(96 * 3.2 / PIXEL_MM), round(96 * 3.2 / PIXEL_MM))
    assert x.dtype == np.float16 and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    # the neighbours are the slices one offset away (5 mm slices: the next slice)
    assert neighbour_offset(5.0) == 1 and neighbour_offset(1.25) == 2 and neighbour_offset(0.625) == 4
    assert np.array_equal(x[5, 0], x[4, 1]) and np.array_equal(x[5, 2], x[6, 1])
    # air is 0 in the wide window, soft tissue mid-grey in the soft window
    assert float(x[12, 1, 0, 0]) == 0.0


def test_labels_keep_the_classes(phantom):
    lungs = phantom.lungs > 0
    ggo = np.zeros_like(lungs)
    ggo[10:12] = lungs[10:12]
    lab = labels_of(lungs, ggo, np.zeros_like(lungs), phantom.volume.spacing_mm)
    assert set(np.unique(lab)) <= {0, 1, 2} and (lab[10] == 2).any() and (lab[5] == 1).any()


def test_training_resumes_and_predicts_every_voxel(phantom, tmp_path):
    case = build_case(phantom.volume, healthy_lungs(phantom.volume), 20.0, seed=1, name="phantom 20%")
    assert {0, 1, 2, 3} >= set(np.unique(case.y)) and (case.y >= 2).any()
    ckpt = tmp_path / "lung25d.pt"
    first = train_lung25d([case], ckpt, minutes=0.01, batch=2, save_every_s=1e9, log=lambda m: None)
    assert ckpt.is_file() and first["step"] >= 1
    again = train_lung25d([case], ckpt, minutes=0.01, batch=2, log=lambda m: None)
    assert again["step"] >= first["step"]  # resumed: the planned time was already spent
    shipped = export_weights(ckpt, tmp_path / "lung25d.pt", training={"train_scans": ["phantom"]})
    assert "optimizer" not in torch.load(shipped, weights_only=False)
    net = load_lung25d(shipped)
    classes = predict_classes25d(net, phantom.volume.hu, phantom.volume.spacing_mm)
    assert classes.shape == phantom.volume.shape and classes.dtype == np.uint8 and classes.max() <= 3
