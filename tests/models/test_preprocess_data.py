"""hu_to_display, geometry helpers, the block split and the network shapes (no weights)."""

from __future__ import annotations

import numpy as np
import pytest

from models.data import (
    block_indices,
    find_scan_blocks,
    make_labels,
    split_blocks,
    synthetic_chest_slice,
)
from models.preprocess import (
    NET_SIZE,
    display_to_hu_approx,
    display_to_input,
    hu_to_display,
    square_geometry,
)


def _ramp(ny: int = 64, nx: int = 64) -> np.ndarray:
    return np.tile(np.linspace(-1400.0, 800.0, nx), (ny, 1))


@pytest.mark.parametrize("shape", [(64, 64), (3, 64, 64), (2, 100, 60)])
def test_hu_to_display_shape_dtype(shape):
    hu = np.random.default_rng(0).normal(-500, 300, size=shape)
    out = hu_to_display(hu)
    assert out.dtype == np.uint8
    assert out.shape == shape[:-2] + (NET_SIZE, NET_SIZE)


def test_hu_to_display_monotone_and_windowed():
    img = hu_to_display(_ramp()).astype(float)
    cols = img.mean(axis=0)
    # brighter to the right (higher HU), on average across the resized ramp
    assert cols[-20:].mean() > cols[128] > cols[:20].mean()
    # HU outside the display window are clipped: -1400 and -1250 look the same
    a = _ramp(); b = np.clip(a, -1250.0, 250.0)
    assert np.array_equal(hu_to_display(a), hu_to_display(b))


def test_hu_to_display_per_slice_minmax():
    # a shifted copy of a slice inside the window maps to the same image (min-max per slice)
    hu = np.random.default_rng(1).uniform(-1000, -200, size=(40, 40))
    assert np.array_equal(hu_to_display(hu), hu_to_display(hu + 300.0))


def test_hu_to_display_errors():
    with pytest.raises(ValueError, match="hu must be 2D"):
        hu_to_display(np.zeros(10))
    with pytest.raises(ValueError, match="window_hu"):
        hu_to_display(np.zeros((8, 8)), window_hu=(100.0, -100.0))


def test_square_geometry_keeps_aspect():
    (h, w), (top, left) = square_geometry((200, 100), (1.0, 1.0))
    assert (h, w, top, left) == (256, 128, 0, 64)
    (h, w), _ = square_geometry((100, 100), (2.0, 1.0))  # rows twice as far apart
    assert (h, w) == (256, 128)
    with pytest.raises(ValueError, match="spacing_yx_mm"):
        square_geometry((10, 10), (0.0, 1.0))


def test_display_helpers():
    img = np.arange(256, dtype=np.uint8)[None].repeat(64, 0)
    assert display_to_input(img).shape == (NET_SIZE, NET_SIZE)
    full = np.zeros((2, NET_SIZE, NET_SIZE), np.uint8)
    assert display_to_input(full) is not full and np.array_equal(display_to_input(full), full)
    hu = display_to_hu_approx(np.array([0, 255]))
    assert hu.tolist() == [-1250.0, 250.0]



def _plain_render(hu: np.ndarray) -> np.ndarray:
    """An 8-bit plain linear render of the display window (-1250..250 HU), no CLAHE."""
    return np.round((np.clip(hu, -1250.0, 250.0) + 1250.0) / 1500.0 * 255.0).astype(np.uint8)


def _plain_render_on_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """HU on the render's grey-level grid, spanning the whole window, and its plain render."""
    hu, _, _ = synthetic_chest_slice(np.random.default_rng(7), size=size, lesion="mixed")
    hu = -1250.0 + np.round((np.clip(hu, -1250.0, 250.0) + 1250.0) / 1500.0 * 255.0) * (1500.0 / 255.0)
    hu[0, 0], hu[-1, -1] = -1250.0, 250.0
    return hu, _plain_render(hu)


@pytest.mark.parametrize("size", [256, 320])
def test_display_to_input_equalise_brings_plain_renders_to_the_hu_appearance(size):
    """A plain-window export (``kind="window"``) must reach the network as its HU would.

    Used as they were, plain renders were barely read (infection Dice 0.06-0.16 against
    0.52-0.66 on the HU); with the min-max + CLAHE of equalise=True, 0.32-0.46.
    """
    hu, plain = _plain_render_on_grid(size)
    out = display_to_input(plain, equalise=True)
    assert np.array_equal(out, hu_to_display(hu))
    # the equalisation is not a no-op: local contrast in the lungs is stretched
    import cv2
    plain256 = plain if size == NET_SIZE else cv2.resize(plain, (NET_SIZE, NET_SIZE), interpolation=cv2.INTER_CUBIC)
    assert np.abs(out.astype(int) - plain256.astype(int)).mean() > 10
    # a stack of renders at another contrast (a narrower plain window) is equalised per slice too
    dim = (plain // 2 + 60).astype(np.uint8)
    both = display_to_input(np.stack([plain, dim]), equalise=True)
    assert both.shape == (2, NET_SIZE, NET_SIZE) and np.array_equal(both[0], out)
    assert int(both[1].max()) - int(both[1].min()) > 200


def test_display_to_input_default_uses_images_as_they_are():
    """kind="display" images are equalised already: a second CLAHE ruined phantom renders
    (41 % opacity on a healthy phantom), so by default only the size is adapted."""
    _, plain = _plain_render_on_grid(NET_SIZE)
    equalised = hu_to_display(np.random.default_rng(3).normal(-600, 300, size=(NET_SIZE, NET_SIZE)))
    for image in (plain, equalised):
        out = display_to_input(image)
        assert out is not image and out.dtype == np.uint8 and np.array_equal(out, image)
    stack = np.stack([plain, equalised])
    assert np.array_equal(display_to_input(stack), stack)
    # another size: resized (cubic) into the square, padded with the darkest value
    import cv2
    wide = np.ascontiguousarray(plain[:128])
    out = display_to_input(wide)
    assert out.shape == (NET_SIZE, NET_SIZE)
    r = cv2.resize(wide, (NET_SIZE, NET_SIZE // 2), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_array_equal(out[64:192], r)
    assert (out[:64] == r.min()).all() and (out[192:] == r.min()).all()
    assert not np.array_equal(display_to_input(wide, equalise=True), out)


@pytest.mark.parametrize("equalise", [False, True])
def test_display_to_input_constant_slice_only_resized(equalise):
    flat = np.full((40, 60), 90, np.uint8)
    out = display_to_input(flat, equalise=equalise)
    assert out.shape == (NET_SIZE, NET_SIZE) and np.unique(out).tolist() == [90]


def test_predict_and_segment_accept_kind_window_and_name_the_three_kinds():
    """``kind="window"``: the display path with the training min-max + CLAHE first, the
    display lesion threshold; an unknown kind is refused with a message naming all three."""
    pytest.importorskip("torch")
    from models import load_model, predict_classes, predict_lungs_and_opacity, segment_opacity
    from models.checkpoint import lesion_threshold
    from models.prediction import iter_probabilities

    net = load_model()
    assert lesion_threshold(net, "window") == lesion_threshold(net, "display")
    _, plain = _plain_render_on_grid(NET_SIZE)
    window = predict_classes(plain, kind="window", model=net)
    # the same as equalising first and reading the result as display input
    assert np.array_equal(window, predict_classes(display_to_input(plain, equalise=True), kind="display", model=net))
    assert window.shape == plain.shape and set(np.unique(window)) <= {0, 1, 2}
    small = plain[::4, ::4]
    labels = segment_opacity(small, kind="window", spacing_mm=(0.8, 0.8))
    lungs, opacity = predict_lungs_and_opacity(small, kind="window", spacing_mm=(0.8, 0.8))
    assert labels.shape == lungs.shape == opacity.shape == small.shape
    assert np.array_equal(labels, opacity) and not (opacity.astype(bool) & ~lungs).any()
    # 8-bit checks apply to window input too
    with pytest.raises(ValueError, match="RGB"):
        segment_opacity(np.zeros((64, 64, 3), np.uint8), kind="window")
    with pytest.raises(ValueError, match="0-255"):
        predict_classes(np.full((8, 8), -1000, np.int16), kind="window", model=net)
    three = "kind must be 'hu', 'display' or 'window', got 'png'"
    for call in (lambda: segment_opacity(small, kind="png"),
                 lambda: predict_lungs_and_opacity(small, kind="png"),
                 lambda: predict_classes(small, kind="png", model=net),
                 lambda: lesion_threshold(net, "png"),
                 lambda: next(iter_probabilities(small[None], kind="png", spacing_yx_mm=None, model=net))):
        with pytest.raises(ValueError, match=three):
            call()


def _fake_series(lengths, rng):
    """Blocks of slices whose lung masks move between blocks (as scans differ)."""
    images, lungs = [], []
    for k, n in enumerate(lengths):
        y0 = 4 + 10 * (k % 3)
        x0 = 4 + 12 * (k % 2)
        for i in range(n):
            m = np.zeros((48, 48), bool)
            m[y0:y0 + 14, x0 + i % 2: x0 + 20] = True
            lungs.append(m)
            images.append((m * 100 + rng.integers(0, 5, (48, 48))).astype(np.uint8))
    return np.stack(images), np.stack(lungs)


def test_find_scan_blocks_and_split_never_mix():
    rng = np.random.default_rng(0)
    lengths = [12, 8, 3, 10, 9, 15, 7, 11]
    images, lungs = _fake_series(lengths, rng)
    blocks = find_scan_blocks(images, lungs)
    # the 3-slice block (slices 20-22) is merged into the next one, which then starts
    # at 20; the other boundaries are found exactly
    starts = np.cumsum([0] + lengths)[:-1].tolist()
    expected_starts = [s for s in starts if s != starts[3]]
    assert [b[0] for b in blocks] == expected_starts
    assert blocks[-1][1] == len(images)
    train, val = split_blocks(blocks, n_validation=2)
    assert set(train).isdisjoint(val) and sorted(train + val) == list(range(len(blocks)))
    tr, va = block_indices(blocks, train), block_indices(blocks, val)
    assert set(tr.tolist()).isdisjoint(va.tolist())
    assert len(tr) + len(va) == len(images)
    # every validation block is whole: all its slices are validation slices
    for b in val:
        assert set(range(*blocks[b])) <= set(va.tolist())


def test_split_blocks_errors():
    with pytest.raises(ValueError, match="n_validation"):
        split_blocks([(0, 5), (5, 9)], n_validation=2)


def test_make_labels_and_synthetic_slice():
    hu, lungs, les = synthetic_chest_slice(np.random.default_rng(3), size=96, lesion="mixed")
    assert hu.shape == lungs.shape == les.shape == (96, 96)
    assert set(np.unique(les)) <= {0, 1, 2} and les.any()
    assert not (les.astype(bool) & ~lungs).any()
    assert hu[lungs & (les == 0)].mean() < -500
    lab = make_labels(lungs, les > 0)
    assert lab.dtype == np.uint8 and set(np.unique(lab)) <= {0, 1, 2}
    with pytest.raises(ValueError, match="lesion must be"):
        synthetic_chest_slice(np.random.default_rng(0), lesion="tumour")


def test_network_shapes():
    torch = pytest.importorskip("torch")
    from models.network import UNet2D

    net = UNet2D(base=4, levels=3).eval()
    with torch.inference_mode():
        out = net(torch.zeros(2, 1, 32, 48))
    assert out.shape == (2, 3, 32, 48)
    with pytest.raises(ValueError, match="levels"):
        UNet2D(levels=1)


def test_phantom_slices_lung_free_negatives():
    pytest.importorskip("imaging.phantom.make")
    from models.data import phantom_slices

    kw = dict(n_volumes=2, shape=(12, 48, 48), spacing_mm=(20.0, 6.0, 6.0),
              percent_opacity=(0.0, 20.0), table_shifts=(0.25, -0.25))
    hu, lungs, les = phantom_slices(np.random.default_rng(0), lung_free=True, **kw)
    assert hu.shape == lungs.shape == les.shape == (24, 48, 48)
    has_lung = lungs.any(axis=(1, 2))
    assert (~has_lung).sum() >= 4  # abdomen (shift +) and neck (shift -) slices kept
    assert not les[~has_lung].any() and not (les.astype(bool) & ~lungs).any()
    hu2, lungs2, _ = phantom_slices(np.random.default_rng(0), lung_free=False, **kw)
    assert lungs2.any(axis=(1, 2)).all() and len(hu2) == int(has_lung.sum())
    with pytest.raises(ValueError, match="n_volumes"):
        phantom_slices(np.random.default_rng(0), n_volumes=0)
