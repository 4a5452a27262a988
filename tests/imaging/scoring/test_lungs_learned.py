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


class _LesionOracle(_Oracle):
    """Also calls dense lung lesion: consolidation where the centre slice is -300..+150 HU
    *inside* an aerated neighbourhood is beyond an oracle, so it labels by HU only: lung
    below -700 HU, ground-glass -700..-300, consolidation above; background where the
    wide-window slice is not lung-like (outside the chest it still says lung for air)."""

    def forward(self, x):
        hu = x[:, 1] * 1424.0 - 1024.0
        lung = (hu < -700).float()
        ggo = ((hu >= -700) & (hu < -300)).float()
        return torch.stack([1 - lung - ggo, lung, ggo, 0 * lung], dim=1) * 10


def test_learned_segmentation_opacity_lies_inside_its_lungs():
    from imaging.scoring.lungs_learned import learned_segmentation
    from imaging.scoring.opacity import CONSOLIDATION, GGO

    phantom = make_phantom(percent_opacity=20.0, rng=np.random.default_rng(4))
    seg = learned_segmentation(phantom.volume, network=_LesionOracle().eval())
    assert seg.lungs.shape == seg.opacity.shape == phantom.volume.shape
    assert set(np.unique(seg.opacity)) <= {0, GGO, CONSOLIDATION}
    assert not (seg.opacity & (seg.lungs == 0)).any()
    assert (seg.opacity == GGO).sum() > 0 and seg.weights == "given network"


def test_learned_segmentation_returns_the_volume_geometry():
    from imaging.common.volume import CTVolume
    from imaging.scoring.lungs_learned import learned_segmentation

    phantom = make_phantom(percent_opacity=10.0, rng=np.random.default_rng(6))
    net = _LesionOracle().eval()
    canonical = learned_segmentation(phantom.volume, network=net)
    v = phantom.volume
    flipped = CTVolume(v.hu[::-1].copy(), v.spacing_mm,
                       direction=np.asarray(v.direction) @ np.diag([1.0, 1.0, -1.0]))  # index z runs down
    seg = learned_segmentation(flipped, network=net)
    np.testing.assert_array_equal(seg.lungs[::-1] > 0, canonical.lungs > 0)
    np.testing.assert_array_equal(seg.opacity[::-1], canonical.opacity)


def test_score_scan_scores_a_given_learned_pass():
    from imaging.scoring.lungs_learned import LearnedSegmentation
    from imaging.scoring.scores import score_scan

    phantom = make_phantom(percent_opacity=25.0, rng=np.random.default_rng(7))
    seg = LearnedSegmentation(phantom.lungs, np.where(phantom.lungs > 0, phantom.lesions, 0).astype(np.uint8), "truth")
    score = score_scan(phantom.volume, lung_method="learned", opacity_method="learned", learned=seg)
    truth = 100.0 * np.count_nonzero(seg.opacity) / np.count_nonzero(seg.lungs)
    assert score.percent_opacity == pytest.approx(truth, rel=1e-9)
    assert score.lung_method == "learned" and score.opacity_method == "learned"
    assert score.settings["learned_weights"] == "truth"
    density = score_scan(phantom.volume, lung_method="learned", opacity_method="density", learned=seg)
    assert density.lung_volume_ml == pytest.approx(score.lung_volume_ml)
    with pytest.raises(ValueError, match="differs from volume shape"):
        score_scan(phantom.volume, lung_method="learned",
                   learned=LearnedSegmentation(seg.lungs[1:], seg.opacity[1:], "truth"))


def test_gas_below_the_lungs_is_dropped_even_when_the_network_calls_it_lung():
    phantom = make_phantom(percent_opacity=0.0, rng=np.random.default_rng(3))
    hu = phantom.volume.hu.copy()
    truth = phantom.lungs > 0
    zs = np.flatnonzero(truth.any(axis=(1, 2)))
    assert zs[0] >= 4, "the phantom needs slices under its lungs"
    body = np.nonzero(hu[zs[0] - 2] > -300)
    cy, cx = int(np.median(body[0])), int(np.percentile(body[1], 70))  # under the left lung
    stomach = (slice(0, zs[0] - 1), slice(cy - 10, cy + 10), slice(cx - 10, cx + 10))
    hu[stomach] = -1000  # a gas bubble under the left lung, apart from it
    assert hu[stomach].size > 0.02 * truth.sum(), "big enough to pass the component-size rule"
    labels = learned_lungs_canonical(hu, phantom.volume.spacing_mm, network=_Oracle().eval())
    assert not labels[stomach].any()
    lungs = labels > 0
    assert 2 * (lungs & truth).sum() / (lungs.sum() + truth.sum()) > 0.9


def test_opacity_from_classes_counts_contrast_enhanced_lesion_not_vessels_or_aerated_edges(monkeypatch):
    import imaging.scoring.lungs_learned as lungs_learned
    from imaging.scoring.lungs_learned import opacity_from_classes
    from imaging.scoring.opacity import CONSOLIDATION, GGO

    # four 12 x 12 mm blocks at 1 mm pixels: enhanced lesion, ground-glass, aerated edge, vessel
    hu = np.repeat(np.array([120, -500, -800, 100], np.float32), 12)[None, None, :].repeat(12, axis=1)
    classes = np.repeat(np.array([3, 2, 2, 1], np.uint8), 12)[None, None, :].repeat(12, axis=1)
    got = opacity_from_classes(classes, hu, np.ones(hu.shape, bool), (1.0, 1.0, 1.0))[0, 6, 6::12].tolist()
    assert got == [CONSOLIDATION, GGO, 0, 0]
    strand = np.zeros((1, 20, 20), np.uint8)
    strand[0, :, 10] = 3  # a lesion call one pixel wide along a vessel
    args = (strand, np.full(strand.shape, -400.0), np.ones(strand.shape, bool), (1.0, 1.0, 1.0))
    monkeypatch.setattr(lungs_learned, "LESION_OPENING_MM", 0.0)  # the default: kept
    assert opacity_from_classes(*args).sum() == 20 * GGO
    monkeypatch.setattr(lungs_learned, "LESION_OPENING_MM", 2.5)  # with an opening: taken away
    assert not opacity_from_classes(*args).any()
