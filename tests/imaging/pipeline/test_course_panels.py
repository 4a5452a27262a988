"""The course panels of one scan: fixed lung levels, lung window, outlines, orientation."""

from __future__ import annotations

import numpy as np
import pytest

from imaging.pipeline.course_panels import (COURSE_WINDOW_HU, PANEL_NAMES, PANEL_PX, course_levels, course_panels,
                                            read_course_panels, write_course_panels)

CYAN, GREEN, YELLOW, RED = (0, 230, 255), (60, 230, 60), (255, 215, 0), (255, 30, 30)


def _chest(shape=(31, 40, 40)):
    """Right lung (label 1) in the image's left half, left lung (2) in the right half, lungs in z 1..29;
    ground-glass in the right lung's front, consolidation in the left lung's back, upper slices only."""
    hu = np.full(shape, 40, np.int16)
    lungs = np.zeros(shape, np.uint8)
    lungs[1:30, 8:32, 4:18] = 1
    lungs[1:30, 8:32, 22:36] = 2
    hu[lungs > 0] = -850
    opacity = np.zeros(shape, np.uint8)
    opacity[20:30, 8:14, 6:16] = 1
    opacity[20:30, 16:32, 24:34] = 2
    return hu, lungs, opacity


def _has(rgb, colour, rows=slice(None), cols=slice(None)):
    return bool(np.all(rgb[rows, cols] == colour, axis=-1).any())


def test_levels_are_fixed_fractions_of_the_lungs_z_extent():
    hu, lungs, _ = _chest()
    levels = course_levels(hu.shape, lungs)
    # lungs in z 1..29 (28 slices between first and last): 1 + 28 * (5/6, 1/2, 1/6)
    assert levels == {"upper": 24, "middle": 15, "lower": 6, "coronal": 20}
    assert course_levels(hu.shape, None) == {"upper": 25, "middle": 15, "lower": 5, "coronal": 20}


def test_panels_show_right_lung_on_the_left_head_at_top_and_colour_each_opacity_kind():
    hu, lungs, opacity = _chest()
    panels = course_panels(hu, (2.0, 0.8, 0.8), lungs=lungs, opacity=opacity)
    assert tuple(panels.images) == PANEL_NAMES
    upper, lower, coronal = panels.images["upper"], panels.images["lower"], panels.images["coronal"]
    assert upper.dtype == np.uint8 and upper.shape == (40, 40, 3)
    assert _has(upper, CYAN, cols=slice(0, 20)) and not _has(upper, CYAN, cols=slice(20, 40))  # right lung: image left
    assert _has(upper, GREEN, cols=slice(20, 40)) and not _has(upper, GREEN, cols=slice(0, 20))
    assert _has(upper, YELLOW, rows=slice(0, 20)) and not _has(upper, YELLOW, rows=slice(20, 40))  # anterior on top
    assert _has(upper, RED, rows=slice(20, 40), cols=slice(20, 40))
    assert not _has(lower, YELLOW) and not _has(lower, RED)  # the opacity lies in the upper lungs only
    assert coronal.shape == (31, 40, 3)
    assert _has(coronal, RED, rows=slice(0, 12)) and not _has(coronal, RED, rows=slice(15, 31))  # head at the top
    assert _has(coronal, CYAN, cols=slice(0, 20))
    # lung window: air black, soft tissue near the top of the window
    lo, hi = COURSE_WINDOW_HU
    assert upper[0, 0, 0] == round((40 - lo) / (hi - lo) * 255)
    assert panels.pixel_mm["upper"] == pytest.approx([0.8, 0.8]) and panels.pixel_mm["coronal"] == pytest.approx([2.0, 0.8])


def test_big_slices_are_shrunk_to_the_panel_size_with_their_pixel_size():
    hu = np.full((50, 512, 600), -1000, np.int16)
    lungs = np.zeros(hu.shape, np.uint8)
    lungs[5:45, 100:400, 100:500] = 1
    panels = course_panels(hu, (5.0, 0.7, 0.7), lungs=lungs)
    assert panels.images["middle"].shape == (256, 200, 3)  # 512 / 2, 600 / 3
    assert panels.pixel_mm["middle"] == pytest.approx([1.4, 2.1])
    assert panels.images["coronal"].shape == (50, 200, 3) and panels.pixel_mm["coronal"] == pytest.approx([5.0, 2.1])
    assert max(max(p.shape[:2]) for p in panels.images.values()) <= PANEL_PX
    assert _has(panels.images["middle"], CYAN)  # the outline survives the shrinking


def test_panels_file_round_trip(tmp_path):
    hu, lungs, opacity = _chest()
    panels = course_panels(hu, (2.0, 0.8, 0.8), lungs=lungs, opacity=opacity)
    write_course_panels(tmp_path / "p.npz", panels)
    again = read_course_panels(tmp_path / "p.npz")
    assert again.levels == panels.levels
    for name in PANEL_NAMES:
        assert np.array_equal(again.images[name], panels.images[name])
        assert np.array_equal(again.pixel_mm[name], panels.pixel_mm[name])


def test_mismatched_masks_are_refused():
    hu, lungs, _ = _chest()
    with pytest.raises(ValueError, match="lungs shape"):
        course_panels(hu, (1, 1, 1), lungs=lungs[:-1])
