"""Synthetic chest CT phantoms: HU per truth label, target severity, anatomy, follow-up."""

from __future__ import annotations

import numpy as np
import pytest

from imaging.phantom.make import PHANTOM_HU, Phantom, make_anatomy, make_phantom

SMALL = dict(shape=(48, 64, 64), spacing_mm=(6.0, 5.5, 5.5))


@pytest.fixture(scope="module")
def p30() -> Phantom:
    return make_phantom(percent_opacity=30.0, consolidation_fraction=0.3, rng=np.random.default_rng(3), **SMALL)


def test_dtypes_geometry_and_label_values(p30: Phantom) -> None:
    v = p30.volume
    assert v.hu.dtype == np.int16 and v.hu.shape == (48, 64, 64)
    assert v.spacing_mm == (6.0, 5.5, 5.5)
    assert np.array_equal(v.direction, np.eye(3))
    assert p30.lungs.dtype == np.uint8 and set(np.unique(p30.lungs)) == {0, 1, 2}
    assert p30.lesions.dtype == np.uint8 and set(np.unique(p30.lesions)) == {0, 1, 2}
    assert not np.any((p30.lesions > 0) & (p30.lungs == 0)), "lesions must lie inside the lungs"
    assert v.hu.min() >= -1024 and v.hu.max() <= 3071


def test_hu_inside_each_truth_label_matches_specification(p30: Phantom) -> None:
    hu = p30.volume.hu
    parenchyma = hu[(p30.lungs > 0) & (p30.lesions == 0)]
    ggo = hu[p30.lesions == 1]
    consolidation = hu[p30.lesions == 2]
    assert -900 < np.median(parenchyma) < -780
    assert -700 < np.median(ggo) < -300
    q25, q75 = np.percentile(ggo, [25, 75])
    assert q25 > -760 and q75 < -250
    assert -100 < np.median(consolidation) < 50
    # vessels stay visible through ground-glass: some GGO voxels far denser than its median
    assert np.percentile(ggo, 99.5) > np.median(ggo) + 150
    # outside the reconstruction circle (corner) and the body
    assert hu[:, 0, 0].max() == -1024
    assert hu[:, 2, 32].mean() < -950  # anterior air in front of the chest


def test_body_contains_soft_tissue_fat_and_bone(p30: Phantom) -> None:
    hu = p30.volume.hu
    mid = hu[p30.volume.shape[0] // 2]
    assert np.count_nonzero((mid > 200) & (mid < 1500)) > 10, "ribs, spine and sternum"
    assert np.count_nonzero((mid > 20) & (mid < 80)) > 100, "muscle, heart, vessels"
    assert np.count_nonzero((mid > -150) & (mid < -60)) > 50, "fat"


@pytest.fixture(scope="module")
def anatomy():
    return make_anatomy(np.random.default_rng(123))


@pytest.mark.parametrize("target", [0.0, 2.0, 10.0, 25.0, 40.0, 60.0])
def test_achieved_percent_opacity_close_to_target(target: float, anatomy) -> None:
    p = make_phantom(percent_opacity=target, anatomy=anatomy, rng=np.random.default_rng(int(target)), **SMALL)
    assert abs(p.percent_opacity - target) < 0.5
    if target == 0:
        assert p.lesion_volume_ml == 0.0


@pytest.mark.parametrize("target", [5.0, 35.0, 60.0])
def test_percent_opacity_close_to_target_when_upsampled(target: float, anatomy) -> None:
    # a work grid coarser than the matrix exercises the upsampling path
    p = make_phantom(shape=(36, 96, 96), spacing_mm=(8.0, 3.6, 3.6), percent_opacity=target, anatomy=anatomy,
                     work_spacing_mm=(12.0, 6.0, 6.0), rng=np.random.default_rng(7))
    assert abs(p.percent_opacity - target) < 1.5


def test_truth_volumes_add_up(p30: Phantom) -> None:
    assert p30.lung_volume_ml == pytest.approx(p30.right_lung_volume_ml + p30.left_lung_volume_ml)
    lesion = p30.ggo_volume_ml + p30.consolidation_volume_ml
    assert 100 * lesion / p30.lung_volume_ml == pytest.approx(p30.percent_opacity)
    assert p30.consolidation_volume_ml / lesion == pytest.approx(0.3, abs=0.05)
    truth = p30.truth()
    assert truth["percent_opacity"] == pytest.approx(p30.percent_opacity, abs=1e-4)
    assert all(isinstance(v, float) for v in truth.values())


def test_lungs_realistic_right_larger_and_on_low_x(p30: Phantom) -> None:
    assert 2000 < p30.lung_volume_ml < 7000
    assert p30.right_lung_volume_ml > p30.left_lung_volume_ml
    x = np.arange(p30.volume.shape[2])
    right_x = (np.any(p30.lungs == 1, axis=(0, 1)) * x).sum() / np.any(p30.lungs == 1, axis=(0, 1)).sum()
    left_x = (np.any(p30.lungs == 2, axis=(0, 1)) * x).sum() / np.any(p30.lungs == 2, axis=(0, 1)).sum()
    assert right_x < left_x, "patient right is at low x in LPS"
    # apex to diaphragm: lungs absent in the lowest and highest slices
    per_slice = np.count_nonzero(p30.lungs, axis=(1, 2))
    assert per_slice[0] == 0 and per_slice[-1] == 0 and per_slice.max() > 0


def test_trachea_is_air_but_not_lung() -> None:
    p = make_phantom(shape=(60, 96, 96), spacing_mm=(5.0, 3.6, 3.6), rng=np.random.default_rng(1))
    top = p.volume.shape[0] - 3
    column = p.volume.hu[top, 40:60, 44:52]  # midline, in front of the spine
    assert column.min() < -900
    air_not_lung = (p.volume.hu[top] < -900) & (p.lungs[top] == 0)
    body_rows = slice(20, 76)
    assert np.count_nonzero(air_not_lung[body_rows, 40:56]) > 0


def test_disease_is_bilateral_lower_posterior_and_peripheral() -> None:
    p = make_phantom(shape=(60, 96, 96), spacing_mm=(5.0, 3.6, 3.6), percent_opacity=15.0,
                     rng=np.random.default_rng(11))
    les, lungs = p.lesions > 0, p.lungs
    assert np.count_nonzero(les & (lungs == 1)) > 0 and np.count_nonzero(les & (lungs == 2)) > 0
    z = np.flatnonzero(np.any(lungs, axis=(1, 2)))
    z_mid = (z[0] + z[-1]) // 2
    frac = lambda region: np.count_nonzero(les[region]) / max(np.count_nonzero(lungs[region]), 1)  # noqa: E731
    assert frac(np.s_[: z_mid]) > frac(np.s_[z_mid:])
    y = np.flatnonzero(np.any(lungs, axis=(0, 2)))
    y_mid = (y[0] + y[-1]) // 2
    assert frac(np.s_[:, y_mid:]) > frac(np.s_[:, :y_mid]), "posterior (high y) predominant"
    from scipy import ndimage as ndi

    depth = ndi.distance_transform_edt(lungs > 0, sampling=p.volume.spacing_mm)
    assert np.median(depth[les]) < np.median(depth[(lungs > 0) & ~les]), "subpleural predominant"
    n_foci = ndi.label(les)[1]
    assert n_foci >= 3, "multifocal"


def test_consolidation_has_air_bronchograms() -> None:
    p = make_phantom(shape=(60, 128, 128), spacing_mm=(5.0, 2.7, 2.7), percent_opacity=50.0,
                     consolidation_fraction=0.7, noise_hu=5.0, rng=np.random.default_rng(2))
    cons = p.volume.hu[p.lesions == 2]
    assert np.count_nonzero(cons < -500) > 5


def test_crazy_paving_adds_septal_lines(anatomy) -> None:
    kw = dict(percent_opacity=40.0, consolidation_fraction=0.0, noise_hu=0.0, anatomy=anatomy, **SMALL)
    plain = make_phantom(rng=np.random.default_rng(5), **kw)
    paved = make_phantom(crazy_paving=True, rng=np.random.default_rng(5), **kw)
    assert np.array_equal(plain.lesions, paved.lesions)
    assert paved.volume.hu[paved.lesions == 1].mean() > plain.volume.hu[plain.lesions == 1].mean() + 5


def test_follow_up_same_patient_lesions_shrink_in_place(p30: Phantom) -> None:
    later = p30.follow_up(percent_opacity=10.0, rng=np.random.default_rng(9))
    assert later.anatomy is p30.anatomy
    assert later.pose != p30.pose
    assert abs(later.percent_opacity - 10.0) < 0.5
    assert abs(later.lung_volume_ml - p30.lung_volume_ml) / p30.lung_volume_ml < 0.15
    assert not np.array_equal(later.volume.hu, p30.volume.hu)
    same_pose = p30.follow_up(percent_opacity=10.0, rng=np.random.default_rng(9), pose=p30.pose)
    assert np.array_equal(same_pose.lungs, p30.lungs)
    assert not np.any((same_pose.lesions > 0) & (p30.lesions == 0)), "shrinking lesions stay inside the old ones"


def test_deterministic_for_a_seed() -> None:
    a = make_phantom(percent_opacity=20.0, rng=np.random.default_rng(42), **SMALL)
    b = make_phantom(percent_opacity=20.0, rng=np.random.default_rng(42), **SMALL)
    assert np.array_equal(a.volume.hu, b.volume.hu) and np.array_equal(a.lesions, b.lesions)


def test_phantom_hu_table_consistent_with_bands() -> None:
    from imaging.scoring.constants import HU_GGO_MAX, HU_GGO_MIN

    assert HU_GGO_MIN <= PHANTOM_HU["ggo_min"] < PHANTOM_HU["ggo_max"] <= HU_GGO_MAX
    assert -100 <= PHANTOM_HU["consolidation"] <= 50


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(percent_opacity=120.0), "percent_opacity"),
        (dict(percent_opacity=-1.0), "percent_opacity"),
        (dict(consolidation_fraction=1.5), "consolidation_fraction"),
        (dict(shape=(4, 64, 64)), "shape"),
        (dict(spacing_mm=(0.0, 1.0, 1.0)), "spacing_mm"),
        (dict(noise_hu=-3.0), "noise_hu"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, match: str) -> None:
    args = dict(SMALL, rng=np.random.default_rng(0))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_phantom(**args)


def test_rng_must_be_a_generator() -> None:
    with pytest.raises(TypeError, match="rng"):
        make_phantom(rng=42, **SMALL)  # type: ignore[arg-type]


def test_follow_up_keeps_image_formation_options() -> None:
    # a baseline without the reconstruction circle or on a custom work grid is followed up
    # the same way: only the disease (and pose/noise) may change between visits
    p = make_phantom(shape=(16, 32, 32), spacing_mm=(12.0, 5.0, 5.0), percent_opacity=10.0, fov_circle=False,
                     work_spacing_mm=(12.0, 8.0, 8.0), rng=np.random.default_rng(0))
    later = p.follow_up(percent_opacity=10.0, rng=np.random.default_rng(1), pose=p.pose)
    assert later.fov_circle is False and later.work_spacing_mm == (12.0, 8.0, 8.0)
    assert later.volume.hu[:, 0, 0].max() > -1024, "corner outside the circle must stay unmasked"
    assert np.array_equal(later.lungs, p.lungs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(shape=(16.6, 32, 32)), ValueError, "shape"),  # was silently truncated to 16
        (dict(percent_opacity="5"), TypeError, "percent_opacity"),
        (dict(consolidation_fraction=None), TypeError, "consolidation_fraction"),
        (dict(anatomy="patient"), TypeError, "anatomy"),
        (dict(pose=(0.0, 0.0, 0.0, 1.0)), TypeError, "pose"),
        (dict(work_spacing_mm=(float("inf"), 1.0, 1.0)), ValueError, "work_spacing_mm"),
    ],
)
def test_bad_argument_types_are_refused_naming_the_argument(kwargs: dict, error: type, match: str) -> None:
    args = dict(shape=(16, 32, 32), spacing_mm=(12.0, 8.0, 8.0), rng=np.random.default_rng(0))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        make_phantom(**args)


@pytest.mark.parametrize("rng", [42, None, np.random.RandomState(0)])
def test_follow_up_refuses_a_bad_rng_naming_it(rng) -> None:
    p = make_phantom(shape=(16, 32, 32), spacing_mm=(12.0, 8.0, 8.0), rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        p.follow_up(percent_opacity=5.0, rng=rng)
