"""Lungs of a 2.5-D network, cleaned and split (imaging.scoring.lungs_learned)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from imaging.phantom.make import make_phantom  # noqa: E402
from imaging.scoring.lungs_learned import learned_lungs_canonical  # noqa: E402


class _Oracle(torch.nn.Module):
    """Stands in for the network: 'lung' wherever the centre slice is aerated, and one
    stray aerated patch outside the body is what the cleaning must drop."""

    multiple = 16

    def forward(self, x):
        centre = x[:, 1]  # wide window: 0 = -1024 HU
        lung = (centre < 0.35).float()  # below about -525 HU
        logits = torch.stack([1 - lung, lung, 0 * lung, 0 * lung], dim=1)
        return logits * 10


def test_learned_lungs_keep_to_the_patient_and_split_sides():
    phantom = make_phantom(percent_opacity=0.0, rng=np.random.default_rng(3))
    labels = learned_lungs_canonical(phantom.volume.hu, phantom.volume.spacing_mm, network=_Oracle().eval())
    assert labels.shape == phantom.volume.shape and set(np.unique(labels)) <= {0, 1, 2}
    truth = phantom.lungs > 0
    lungs = labels > 0
    # the outside air and the air under the table are 'lung' for the oracle: all dropped
    assert 2 * (lungs & truth).sum() / (lungs.sum() + truth.sum()) > 0.9
    assert np.nonzero(labels == 1)[2].mean() < np.nonzero(labels == 2)[2].mean()  # right = patient's right
