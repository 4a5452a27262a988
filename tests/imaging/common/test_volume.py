import numpy as np
import pytest

from imaging.common.volume import CTVolume, ScanInfo


def _oblique_direction() -> np.ndarray:
    a = np.deg2rad(20)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


@pytest.mark.parametrize("spacing", [(2.5, 0.7, 0.7), (1.0, 1.0, 1.0), (5.0, 0.4, 0.9)])
@pytest.mark.parametrize("direction", [np.eye(3), np.diag([-1.0, 1.0, -1.0]), _oblique_direction()])
def test_sitk_round_trip_is_lossless(spacing, direction):
    rng = np.random.default_rng(0)
    hu = rng.integers(-1024, 2000, size=(5, 6, 7)).astype(np.int16)
    v = CTVolume(hu, spacing, (1.5, -2.0, 30.0), direction, ScanInfo(patient_id="P1"))
    back = CTVolume.from_sitk(v.to_sitk(), v.info)
    np.testing.assert_array_equal(back.hu, hu)
    assert back.hu.dtype == hu.dtype
    np.testing.assert_allclose(back.spacing_mm, spacing)
    np.testing.assert_allclose(back.origin_mm, v.origin_mm)
    np.testing.assert_allclose(back.direction, direction)
    assert back.info.patient_id == "P1"


def test_canonical_flips_to_lps_and_keeps_positions():
    hu = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    v = CTVolume(hu, (2.0, 1.0, 0.5), (10.0, 20.0, 30.0), np.diag([-1.0, 1.0, -1.0]))
    c = v.canonical()
    np.testing.assert_allclose(c.direction, np.eye(3))
    # the voxel at LPS position p has the same value in both
    for idx in [(0, 0, 0), (1, 2, 3), (0, 1, 2)]:
        p = v.index_to_lps(np.array(idx))
        cidx = np.rint((p - np.array(c.origin_mm)) / np.array([0.5, 1.0, 2.0]))[::-1].astype(int)
        assert c.hu[tuple(cidx)] == v.hu[idx]


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="3-D"):
        CTVolume(np.zeros((3, 3)), (1, 1, 1))
    with pytest.raises(ValueError, match="spacing_mm"):
        CTVolume(np.zeros((3, 3, 3)), (1, 0, 1))
    with pytest.raises(ValueError, match="orthonormal"):
        CTVolume(np.zeros((3, 3, 3)), (1, 1, 1), direction=np.ones((3, 3)))


@pytest.mark.parametrize("direction", [
    np.eye(3), np.diag([-1.0, 1.0, -1.0]),
    np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),  # sagittal-like stack
])
def test_array_canonical_order_matches_the_volume_canonical(direction):
    from imaging.common.volume import canonical_axes, from_canonical, to_canonical

    hu = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    v = CTVolume(hu, (2.0, 1.0, 0.5), (1.0, 2.0, 3.0), direction)
    perm, flips = canonical_axes(v.direction)
    np.testing.assert_array_equal(to_canonical(hu, perm, flips), v.canonical().hu)
    np.testing.assert_array_equal(from_canonical(to_canonical(hu, perm, flips), perm, flips), hu)
