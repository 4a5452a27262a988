"""Training negatives for the 2.5-D network: gas under the diaphragm, sharp-kernel noise."""

from __future__ import annotations

import numpy as np
import pytest

from imaging.phantom.make import make_phantom
from models.augment25d import context_offset, gas_zone, insert_gas, sharpen_noise
from models.slices25d import labels_of, volume_channels


@pytest.fixture(scope="module")
def case():
    p = make_phantom(shape=(40, 96, 96), spacing_mm=(2.5, 3.2, 3.2), percent_opacity=0.0,
                     rng=np.random.default_rng(4))
    sp = p.volume.spacing_mm
    lungs = p.lungs > 0
    x = volume_channels(p.volume.hu, sp)
    y = labels_of(lungs, np.zeros_like(lungs), np.zeros_like(lungs), sp)
    return x, y


def test_gas_zone_lies_under_the_lungs_and_apart_from_them(case):
    x, y = case
    zone = gas_zone(x, y)
    assert zone is not None and context_offset(x) == 1 and zone.slice_mm == 2.5
    assert not (zone.allowed & (y > 0)).any()
    for z, r, c in zone.centres[:50]:
        column = y[:, r, c] > 0
        assert column.any() and z < np.argmax(column)  # under lung in its own column


def test_inserted_gas_is_dark_only_where_allowed(case):
    x, y = case
    zone = gas_zone(x, y)
    rng = np.random.default_rng(0)
    z, r, c = zone.centres[len(zone.centres) // 2]
    y0, x0 = max(0, r - 40), max(0, c - 40)
    crop = x[z, :, y0:y0 + 80, x0:x0 + 80].astype(np.float32)
    out = insert_gas(crop, zone, int(z), y0, x0, rng)
    changed = np.abs(out[1] - crop[1]) > 1e-3
    assert changed.any()
    assert not (changed & ~zone.allowed[z, y0:y0 + 80, x0:x0 + 80]).any()
    assert float(out[1][changed].min()) < 0.1  # gas: near -1000 HU in the wide window


def test_sharp_noise_keeps_the_windows(case):
    x, _ = case
    img = x[20].astype(np.float32)
    out = sharpen_noise(img, np.random.default_rng(1))
    assert out.shape == img.shape and out.min() >= 0.0 and out.max() <= 1.0
    assert 0.005 < float(np.std(out[1] - img[1])) < 0.1
