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


class _WindowOracle(torch.nn.Module):
    """Per-pixel stand-in: lung where the centre slice is aerated, lesion where mid-grey."""

    multiple = 16

    def forward(self, x):
        c = x[:, 1]
        lung = (c < 0.35).float()
        lesion = ((c >= 0.35) & (c < 0.6)).float()
        return torch.stack([1 - lung - lesion, lung, lesion, 0 * c], dim=1)


def _reference(net, hu, spacing):
    """Whole volume at once: every slice's channels, the network, nearest back to the pixels."""
    from models.lung25d import _nearest_rows

    x = torch.from_numpy(volume_channels(hu, spacing).astype(np.float32))
    grid = net(x).argmax(dim=1).numpy().astype(np.uint8)
    rows, cols = _nearest_rows(hu.shape[1], grid.shape[1]), _nearest_rows(hu.shape[2], grid.shape[2])
    return grid[:, rows[:, None], cols[None, :]]


def test_streamed_prediction_matches_the_whole_volume_at_once(phantom):
    v = phantom.volume
    net = _WindowOracle()
    reference = _reference(net, v.hu, v.spacing_mm)
    streamed = predict_classes25d(net, v.hu, v.spacing_mm, batch=5)
    assert (streamed == reference).mean() > 0.9999  # the reference's inputs are float16, the stream's float32
    boxed = predict_classes25d(net, v.hu, v.spacing_mm, box=(10, 80, 5, 90))
    assert not boxed[:, :10].any() and not boxed[:, :, 90:].any()
    inside = (slice(None), slice(12, 78), slice(7, 88))  # away from the box's resampled edge
    assert (boxed[inside] == reference[inside]).mean() > 0.99


def test_thin_slices_are_run_every_z_step_and_filled_from_the_nearest(phantom):
    v = phantom.volume
    net = _WindowOracle()
    thin = (0.625, v.spacing_mm[1], v.spacing_mm[2])  # the same voxels called 0.625 mm apart
    every = predict_classes25d(net, v.hu, thin, z_step_mm=0.0)
    stepped = predict_classes25d(net, v.hu, thin, z_step_mm=1.25)  # every 2nd slice run
    assert np.array_equal(stepped[0::2], every[0::2])
    assert np.array_equal(stepped[1:-1:2], every[0:-2:2]) or np.array_equal(stepped[1:-1:2], every[2::2])
