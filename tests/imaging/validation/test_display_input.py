"""Display input from other exports (imaging.validation.display_input): render, crop, rotate, back."""

from __future__ import annotations

import numpy as np
import pytest

from imaging.validation.display_input import (
    DISPLAY_KIND,
    body_box,
    display_against_hu,
    display_markdown,
    export_spacing,
    from_export,
    render_display,
    to_export,
)
from tests.conftest import shared_path


def _slice_with_body() -> np.ndarray:
    """A 40 x 56 slice of air with an off-centre body, a lung inside and a bright speck apart."""
    hu = np.full((40, 56), -1000.0, np.float32)
    hu[10:31, 14:47] = 40.0  # body
    hu[14:26, 18:28] = -850.0  # lung inside the body
    hu[1, 1] = 500.0  # a speck on the table, smaller than the body
    return hu


def test_body_box_is_the_largest_component_with_its_margin():
    assert body_box(_slice_with_body(), margin=3) == (slice(7, 34), slice(11, 50))
    assert body_box(_slice_with_body(), margin=20) == (slice(0, 40), slice(0, 56))  # clipped to the slice
    assert body_box(np.full((8, 9), -1000.0)) == (slice(0, 8), slice(0, 9))  # no body: the whole slice


def test_export_is_a_crop_turned_90_degrees_and_the_inverse_restores_it():
    rng = np.random.default_rng(0)
    image = rng.integers(1, 255, size=(40, 56)).astype(np.uint8)  # no zeros: "outside" is unambiguous
    box = body_box(_slice_with_body(), margin=3)
    exported = to_export(image, box)
    crop = image[box]
    assert exported.shape == (crop.shape[1], crop.shape[0])
    assert exported[0, 0] == crop[0, -1] and exported[-1, 0] == crop[0, 0]  # counter-clockwise
    back = from_export(exported, box, image.shape)
    inside = np.zeros(image.shape, bool)
    inside[box] = True
    assert back.dtype == image.dtype
    np.testing.assert_array_equal(back[inside], image[inside])
    assert not back[~inside].any()  # zeros outside the crop
    # a rotation the wrong way, or a transpose, does not come back
    assert not np.array_equal(np.rot90(exported, k=1), crop)
    assert not np.array_equal(exported.T, crop)


def test_a_mask_on_the_export_grid_lands_on_the_same_pixels():
    hu = _slice_with_body()
    lung = hu == -850.0
    box = body_box(hu)
    back = from_export(to_export(lung, box), box, hu.shape)
    np.testing.assert_array_equal(back, lung)


def test_render_is_a_linear_clipped_lung_window():
    hu = np.array([-3024, -1350, -975, -600, -225, 150, 151, 3071], np.int16)
    np.testing.assert_array_equal(render_display(hu), [0, 0, 64, 128, 191, 255, 255, 255])
    grey = render_display(np.linspace(-1350, 150, 200))
    assert grey.dtype == np.uint8 and (np.diff(grey.astype(int)) >= 0).all()
    np.testing.assert_array_equal(render_display(np.array([-1000.0, -500.0, 0.0]), window=(-500, 1000)),
                                  [0, 128, 255])
    with pytest.raises(ValueError, match="width"):
        render_display(hu, window=(-600, 0))


def test_export_spacing_swaps_rows_and_columns():
    assert export_spacing((0.7, 0.9)) == (0.9, 0.7)


def test_markdown_states_the_target_and_whether_it_is_met():
    row = {"scan": "s", "level": 30.0, "slices": 3, "dice_hu": 0.6, "dice_display": 0.57, "diff": -0.03,
           "lung_dice_hu": 0.9, "lung_dice_display": 0.9, "lesion_vs_truth_hu": 0.8,
           "lesion_vs_truth_display": 0.7, "seconds": 12.0}
    text = display_markdown([row, {**row, "dice_display": 0.4, "diff": -0.2}])
    assert "within 0.05 of the HU path — met on 1/2" in text
    # the plain-window export is read the way a user with such an export should read it
    assert DISPLAY_KIND == "window" and 'through `kind="window"`' in text
    assert 'through `kind="display"`' in display_markdown([{**row, "kind": "display"}])
    assert "| yes |" in text and "| no |" in text


@pytest.mark.slow
def test_display_against_hu_on_the_held_out_scan():
    pytest.importorskip("torch")
    scan = shared_path("lidc_idri_0003")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        [row] = display_against_hu(scan, levels_pct=[30.0], every=40)
    finally:
        torch.set_num_threads(threads)
    assert row["scan"] == "lidc_idri_0003" and row["level"] == 30.0 and 2 <= row["slices"] <= 4
    assert row["kind"] == "window"
    assert row["truth_pct"] == pytest.approx(30.0, abs=1.0)
    assert row["diff"] == pytest.approx(row["dice_display"] - row["dice_hu"], abs=1e-3)
    assert 0.0 <= row["dice_display"] <= 1.0 and row["dice_hu"] > 0.3
    # the export's geometry is undone: the lungs come back where they are on both paths
    assert row["lung_dice_hu"] > 0.8 and row["lung_dice_display"] > 0.8
