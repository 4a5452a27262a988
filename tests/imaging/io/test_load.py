"""load_scan: synthetic edge cases written with pydicom into tmp_path, and real data."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from imaging.io.series import find_series
from imaging.common.errors import IrregularSpacingError, NoDicomFoundError, NotCTVolumeError, PixelDecodeError
from imaging.io.load import load_scan
from imaging.common.volume import CTVolume
from tests.conftest import shared_path
from tests.imaging.dicom_synth import AXIAL, CORONAL, SAGITTAL, known_raw, make_dataset, write_series

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_plain_series_reads_hu_spacing_and_geometry(tmp_path):
    _, raw, study, series = write_series(tmp_path / "s", n=6, spacing=2.5, z0=-100.0)
    v = load_scan(tmp_path / "s")
    assert isinstance(v, CTVolume)
    assert v.hu.dtype == np.int16
    np.testing.assert_array_equal(v.hu, raw - 1024)
    np.testing.assert_allclose(v.spacing_mm, (2.5, 0.7, 0.8))
    np.testing.assert_allclose(v.origin_mm, (0.0, 0.0, -100.0))
    np.testing.assert_allclose(v.direction, np.eye(3))
    assert v.info.series_uid == series and v.info.study_uid == study
    assert v.info.patient_id == "P1" and v.info.study_date == "2020-01-01"
    assert v.info.kernel == "STANDARD" and v.info.modality == "CT"
    assert "Anon" not in repr(v.info)


def test_shuffled_files_are_ordered_by_position_not_name_or_instance(tmp_path):
    names = ["c.dcm", "a.dcm", "e.dcm", "b.dcm", "d.dcm"]
    _, raw, _, _ = write_series(tmp_path / "s", n=5, names=names)
    v = load_scan(tmp_path / "s")
    np.testing.assert_array_equal(v.hu, raw - 1024)


def test_descending_stack_is_returned_inferior_first(tmp_path):
    # slice k written at z = +100 - 2.5 k: first file is the most superior
    positions = [(0.0, 0.0, 100.0 - 2.5 * k) for k in range(5)]
    _, raw, _, _ = write_series(tmp_path / "s", n=5, positions=positions)
    v = load_scan(tmp_path / "s")
    np.testing.assert_array_equal(v.hu, raw[::-1] - 1024)
    assert v.origin_mm[2] == pytest.approx(90.0)
    np.testing.assert_allclose(v.direction, np.eye(3))


@pytest.mark.parametrize("iop", [CORONAL, SAGITTAL])
def test_non_axial_stacks_come_back_canonical_with_positions_kept(tmp_path, iop):
    unique = np.arange(4 * 16 * 16, dtype=np.int16).reshape(4, 16, 16)
    paths, raw, _, _ = write_series(tmp_path / "s", n=4, iop=iop, spacing=3.0, z0=10.0, raw=unique)
    v = load_scan(tmp_path / "s")
    np.testing.assert_allclose(np.abs(v.direction), np.eye(3), atol=1e-9)
    assert np.all(np.diag(v.direction) > 0)
    # the voxel stored at slice 2, row 3, column 5 must sit where the header says
    ds = pydicom.dcmread(paths[2])
    row, col = np.array(iop[:3]), np.array(iop[3:])
    expected = np.array(ds.ImagePositionPatient, float) + 5 * 0.8 * row + 3 * 0.7 * col
    value = int(raw[2, 3, 5]) - 1024
    hits = np.argwhere(v.hu == value)
    assert len(hits) == 1
    np.testing.assert_allclose(v.index_to_lps(hits[0]), expected, atol=1e-6)


def test_missing_slice_is_refused_with_the_gap(tmp_path):
    paths, _, _, _ = write_series(tmp_path / "s", n=6, spacing=2.5, z0=0.0)
    paths[3].unlink()
    with pytest.raises(IrregularSpacingError, match=r"gap of 5\.00 mm between slices at 5\.00 and 10\.00 mm"):
        load_scan(tmp_path / "s")


def test_missing_slice_error_names_the_files_on_either_side_of_the_gap(tmp_path):
    # the gap was given in mm only: finding the missing file in an export meant opening headers
    paths, _, _, _ = write_series(tmp_path / "s", n=6, spacing=2.5, z0=0.0)
    paths[3].unlink()
    with pytest.raises(IrregularSpacingError, match=r"missing\? \(between IM0002\.dcm and IM0004\.dcm\)"):
        load_scan(tmp_path / "s")


def test_copy_of_the_same_instance_is_ignored(tmp_path):
    paths, raw, _, _ = write_series(tmp_path / "s", n=5)
    shutil.copy(paths[2], tmp_path / "s" / "copy.dcm")
    v = load_scan(tmp_path / "s")
    np.testing.assert_array_equal(v.hu, raw - 1024)
    assert any("duplicate file" in n for n in v.info.notes)


def test_truncated_copy_beside_a_complete_copy_of_the_same_instance_is_the_one_ignored(tmp_path):
    # an interrupted earlier copy ("a/", first in walk order) used to be kept and the complete
    # copy ignored, so the whole series was refused as truncated
    paths, raw, _, _ = write_series(tmp_path / "b", n=5)
    (tmp_path / "a").mkdir()
    data = paths[2].read_bytes()
    (tmp_path / "a" / paths[2].name).write_bytes(data[: len(data) - 40])
    v = load_scan(tmp_path)
    np.testing.assert_array_equal(v.hu, raw - 1024)
    assert any("duplicate file(s) of the same instance ignored: a/IM0002.dcm" in n for n in v.info.notes)


def test_duplicate_position_identical_pixels_dropped_different_pixels_refused(tmp_path):
    paths, raw, study, series = write_series(tmp_path / "s", n=5)
    ds = pydicom.dcmread(paths[2])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(tmp_path / "s" / "same_pixels.dcm")
    v = load_scan(tmp_path / "s")
    assert v.shape == (5, 16, 16)
    assert any("identical pixels dropped" in n for n in v.info.notes)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PixelData = (raw[2] + 7).astype("<i2").tobytes()
    ds.save_as(tmp_path / "s" / "other_pixels.dcm")
    (tmp_path / "s" / "same_pixels.dcm").unlink()
    with pytest.raises(NotCTVolumeError, match="same position .* different pixels"):
        load_scan(tmp_path / "s")


def test_duplicate_position_files_are_decoded_once(tmp_path, monkeypatch):
    import imaging.io.load as io_mod

    paths, raw, _, _ = write_series(tmp_path / "s", n=5)
    ds = pydicom.dcmread(paths[2])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(tmp_path / "s" / "same_pixels.dcm")
    calls: list = []
    real = io_mod._read_frames
    monkeypatch.setattr(io_mod, "_read_frames", lambda h: calls.append(h.path) or real(h))
    v = load_scan(tmp_path / "s")
    np.testing.assert_array_equal(v.hu, raw - 1024)
    assert len(calls) == len(set(calls)), f"files decoded more than once: {sorted(map(str, calls))}"


def test_two_series_in_one_folder_are_never_merged(tmp_path):
    study = generate_uid()
    _, thin, _, thin_uid = write_series(tmp_path / "mix", n=25, spacing=1.0, thickness=1.0, study_uid=study,
                                        names=[f"a{k}.dcm" for k in range(25)], series_number=2)
    _, thick, _, thick_uid = write_series(tmp_path / "mix", n=21, spacing=5.0, thickness=5.0, study_uid=study,
                                          names=[f"b{k}.dcm" for k in range(21)], series_number=3)
    v = load_scan(tmp_path / "mix")
    assert v.info.series_uid == thin_uid and v.shape == (25, 16, 16)
    w = load_scan(tmp_path / "mix", series_uid=thick_uid)
    assert w.shape == (21, 16, 16) and w.spacing_mm[0] == pytest.approx(5.0)
    with pytest.raises(KeyError, match="not found"):
        load_scan(tmp_path / "mix", series_uid="1.2.3")


def test_localizer_among_axial_slices_is_set_aside(tmp_path):
    _, raw, study, series = write_series(tmp_path / "s", n=5)
    scout = make_dataset(np.zeros((16, 16), np.int16), position=(0, 0, 0), iop=CORONAL, study_uid=study,
                         series_uid=series, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    scout.save_as(tmp_path / "s" / "scout.dcm", enforce_file_format=True)
    v = load_scan(tmp_path / "s")
    np.testing.assert_array_equal(v.hu, raw - 1024)
    assert any("localizer" in n for n in v.info.notes)


def test_rescale_slope_two_stays_int16_and_fractional_gives_float32(tmp_path):
    _, raw, _, _ = write_series(tmp_path / "two", slope=2.0, intercept=-1000.0)
    v = load_scan(tmp_path / "two")
    assert v.hu.dtype == np.int16
    np.testing.assert_array_equal(v.hu, raw.astype(np.int32) * 2 - 1000)
    _, raw, _, _ = write_series(tmp_path / "half", slope=0.5, intercept=-1024.0)
    w = load_scan(tmp_path / "half")
    assert w.hu.dtype == np.float32
    np.testing.assert_allclose(w.hu, raw * 0.5 - 1024)


def test_rescale_varying_per_slice_is_applied_per_slice(tmp_path):
    intercepts = [-1024, -1000, -1024, -900, -1024]

    def edit(ds, k):
        ds.RescaleIntercept = intercepts[k]

    _, raw, _, _ = write_series(tmp_path / "s", edit=edit)
    v = load_scan(tmp_path / "s")
    np.testing.assert_array_equal(v.hu, raw + np.array(intercepts, np.int16)[:, None, None])
    assert any("vary per slice" in n for n in v.info.notes)


def test_hu_beyond_int16_falls_back_to_float32(tmp_path):
    raw = known_raw(5, 16, 16)
    raw[2, 0, 0] = 32000
    _, _, _, _ = write_series(tmp_path / "s", raw=raw, intercept=1000.0)
    v = load_scan(tmp_path / "s")
    assert v.hu.dtype == np.float32 and v.hu[2, 0, 0] == 33000


def test_gantry_tilt_is_resampled_onto_an_orthogonal_grid(tmp_path):
    tilt = np.deg2rad(15)
    iop = (1.0, 0.0, 0.0, 0.0, np.cos(tilt), np.sin(tilt))
    n, rows, cols, dy, dx, step = 8, 16, 16, 0.8, 0.7, 2.0
    col = np.array(iop[3:])
    positions = [(0.0, 0.0, step * k) for k in range(n)]  # table moves along z, slices tilted
    # a linear field f(P) = 3 x + 2 y + 5 z (HU), exact under linear interpolation
    raw = np.empty((n, rows, cols), np.int16)
    for k in range(n):
        j, i = np.mgrid[0:rows, 0:cols]
        p = np.array(positions[k])[:, None, None] + col[:, None, None] * (j * dy)[None] + np.array([1.0, 0, 0])[:, None, None] * (i * dx)[None]
        raw[k] = np.rint(3 * p[0] + 2 * p[1] + 5 * p[2])
    write_series(tmp_path / "s", n=n, raw=raw, positions=positions, iop=iop, intercept=0.0, pixel_spacing=(dy, dx))
    cat = find_series(tmp_path / "s")
    assert any("gantry tilt" in p for p in cat.series[0].problems)
    assert cat.series[0].tilt_deg == pytest.approx(15.0, abs=0.01)
    v = load_scan(tmp_path / "s")
    assert v.hu.dtype == np.float32
    np.testing.assert_allclose(v.direction, np.eye(3), atol=1e-9)
    assert any("gantry tilt" in n for n in v.info.notes)
    # interior voxels carry the field value of their own patient position
    idx = np.argwhere(v.hu > -1e9)
    lps = v.index_to_lps(idx)
    inside = (lps[:, 2] > 4) & (lps[:, 2] < (n - 1) * step - 4) & (lps[:, 1] > 1) & (lps[:, 1] < 9)
    expected = 3 * lps[inside, 0] + 2 * lps[inside, 1] + 5 * lps[inside, 2]
    got = v.hu[tuple(idx[inside].T)]
    np.testing.assert_allclose(got, expected, atol=1.0)


def test_mixed_image_sizes_are_refused(tmp_path):
    _, _, study, series = write_series(tmp_path / "s", n=5)
    odd = make_dataset(np.zeros((8, 8), np.int16), position=(0, 0, 50.0), study_uid=study, series_uid=series)
    odd.save_as(tmp_path / "s" / "odd.dcm", enforce_file_format=True)
    with pytest.raises(NotCTVolumeError, match="mixed image sizes: 16x16 \\(5 files\\), 8x8 \\(1 files\\)"):
        load_scan(tmp_path / "s")


def test_mixed_pixel_spacings_are_refused(tmp_path):
    def edit(ds, k):
        if k == 2:
            ds.PixelSpacing = [0.9, 0.9]

    write_series(tmp_path / "s", n=5, edit=edit)
    with pytest.raises(NotCTVolumeError, match=r"mixed pixel spacings: 0\.7x0\.8 mm \(4 files\), 0\.9x0\.9 mm \(1 files\)"):
        load_scan(tmp_path / "s")


def test_negative_spacing_between_slices_is_ignored_with_a_note(tmp_path):
    def edit(ds, k):
        ds.SpacingBetweenSlices = -2.5

    write_series(tmp_path / "s", edit=edit)
    v = load_scan(tmp_path / "s")
    assert v.spacing_mm[0] == pytest.approx(2.5)
    assert any("SpacingBetweenSlices is negative" in n for n in v.info.notes)


def test_private_tags_do_not_break_reading(tmp_path):
    def edit(ds, k):
        block = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
        block.add_new(0x10, "OB", b"\x00\xff" * 33)
        block.add_new(0x11, "UN", b"junk" * 5)
        seq_item = pydicom.Dataset()
        seq_item.add_new(0x00191010, "LO", "inner")
        ds.add_new(0x00191020, "SQ", [seq_item])

    _, raw, _, _ = write_series(tmp_path / "s", edit=edit)
    np.testing.assert_array_equal(load_scan(tmp_path / "s").hu, raw - 1024)


@pytest.mark.parametrize(
    "syntax, size",
    [
        (pydicom.uid.RLELossless, 16),
        (pydicom.uid.JPEG2000Lossless, 32),
        (pydicom.uid.JPEGLSLossless, 16),
        (pydicom.uid.DeflatedExplicitVRLittleEndian, 16),
        (pydicom.uid.ImplicitVRLittleEndian, 16),
    ],
)
def test_compressed_and_other_syntaxes_decode(tmp_path, syntax, size):
    from pydicom.pixels import get_encoder

    if syntax.is_compressed and not get_encoder(syntax).is_available:
        pytest.skip(f"no encoder installed to write {syntax.name} test data")
    if syntax == pydicom.uid.ImplicitVRLittleEndian:
        def edit(ds, k):
            ds.file_meta.TransferSyntaxUID = syntax
        _, raw, _, _ = write_series(tmp_path / "s", rows=size, cols=size, edit=edit)
    else:
        _, raw, _, _ = write_series(tmp_path / "s", rows=size, cols=size, transfer_syntax=syntax)
    v = load_scan(tmp_path / "s")
    assert v.info.transfer_syntax == syntax
    np.testing.assert_array_equal(v.hu, raw - 1024)


def test_explicit_big_endian_goes_through_pydicom(tmp_path):
    raw = known_raw(4, 16, 16)

    def edit(ds, k):
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
        ds.PixelData = raw[k].astype(">i2").tobytes()

    write_series(tmp_path / "s", n=4, raw=raw, edit=edit)
    v = load_scan(tmp_path / "s")
    np.testing.assert_array_equal(v.hu, raw - 1024)
    assert v.info.transfer_syntax == pydicom.uid.ExplicitVRBigEndian


def test_truncated_file_is_reported_and_refused_by_name(tmp_path):
    paths, _, _, _ = write_series(tmp_path / "s")
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[:-100])
    cat = find_series(tmp_path / "s")
    assert any("truncated" in p and paths[1].name in p for p in cat.series[0].blocking)
    with pytest.raises(PixelDecodeError, match=paths[1].name):
        load_scan(tmp_path / "s")


def test_file_deleted_after_the_scan_is_named_as_vanished(tmp_path):
    paths, _, _, _ = write_series(tmp_path / "s")
    series = find_series(tmp_path / "s").series[0]
    paths[2].unlink()  # e.g. an export folder cleaned while the batch runs
    with pytest.raises(PixelDecodeError, match=f"{paths[2].name}: file vanished"):
        load_scan(series)


def test_file_cut_inside_the_header_is_skipped_as_unreadable(tmp_path):
    paths, _, _, _ = write_series(tmp_path / "s", n=6, z0=0.0)
    paths[5].write_bytes(paths[5].read_bytes()[:300])
    cat = find_series(tmp_path / "s")
    assert [s.path.name for s in cat.skipped_files] == [paths[5].name]
    assert cat.series[0].n_slices == 5
    assert load_scan(tmp_path / "s").shape == (5, 16, 16)


def _enhanced_ct(raw: np.ndarray, positions, *, intercepts) -> pydicom.Dataset:
    ds = make_dataset(raw[0], position=positions[0], study_uid=generate_uid(), series_uid=generate_uid())
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    for name in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "RescaleSlope", "RescaleIntercept", "SliceThickness"):
        delattr(ds, name)
    ds.NumberOfFrames = len(raw)
    shared = pydicom.Dataset()
    orient, measures = pydicom.Dataset(), pydicom.Dataset()
    orient.ImageOrientationPatient = list(AXIAL)
    measures.PixelSpacing = [0.7, 0.8]
    measures.SliceThickness = 2.5
    shared.PlaneOrientationSequence = [orient]
    shared.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for k, pos in enumerate(positions):
        item, plane, lut = pydicom.Dataset(), pydicom.Dataset(), pydicom.Dataset()
        plane.ImagePositionPatient = list(pos)
        lut.RescaleSlope, lut.RescaleIntercept, lut.RescaleType = 1, intercepts[k], "HU"
        item.PlanePositionSequence = [plane]
        item.PixelValueTransformationSequence = [lut]
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.PixelData = np.ascontiguousarray(raw, "<i2").tobytes()
    return ds


@pytest.mark.parametrize("compress", [False, True])
def test_enhanced_multiframe_ct_reads_like_a_series(tmp_path, compress):
    raw = known_raw(4, 16, 16)
    positions = [(0.0, 0.0, 3.0 * k) for k in (2, 0, 3, 1)]  # frames stored out of order
    intercepts = [-1024, -1000, -1024, -1024]
    ds = _enhanced_ct(raw, positions, intercepts=intercepts)
    if compress:
        ds.compress(pydicom.uid.RLELossless)
    ds.save_as(tmp_path / "enhanced.dcm", enforce_file_format=True)
    cat = find_series(tmp_path)
    assert cat.series[0].n_slices == 4 and cat.series[0].slice_spacing_mm == pytest.approx(3.0)
    v = load_scan(tmp_path / "enhanced.dcm")
    expected = (raw.astype(np.int32) + np.array(intercepts)[:, None, None])[[1, 3, 0, 2]]
    np.testing.assert_array_equal(v.hu, expected)
    assert v.spacing_mm == pytest.approx((3.0, 0.7, 0.8))


def test_enhanced_multiframe_per_frame_rescale_is_checked_like_single_frames(tmp_path):
    raw = known_raw(4, 8, 8)
    positions = [(0.0, 0.0, 3.0 * k) for k in range(4)]
    cases = {"slope0": "frame 3: RescaleSlope is 0", "nointercept": "RescaleIntercept missing in 1 of 4 frames"}
    for name, message in cases.items():
        ds = _enhanced_ct(raw, positions, intercepts=[-1024] * 4)
        lut = ds.PerFrameFunctionalGroupsSequence[2].PixelValueTransformationSequence[0]
        if name == "slope0":
            lut.RescaleSlope = 0
        else:
            del lut.RescaleIntercept
        ds.save_as(tmp_path / f"{name}.dcm", enforce_file_format=True)
        with pytest.raises(NotCTVolumeError, match=f"{name}.dcm.*{message}"):
            load_scan(tmp_path / f"{name}.dcm")
    ds = _enhanced_ct(raw, positions, intercepts=[-1024] * 4)
    for item in ds.PerFrameFunctionalGroupsSequence:
        del item.PixelValueTransformationSequence
    (tmp_path / "all").mkdir()
    ds.save_as(tmp_path / "all" / "none.dcm", enforce_file_format=True)
    v = load_scan(tmp_path / "all" / "none.dcm")  # missing in every frame: stored values taken as HU, noted
    np.testing.assert_array_equal(v.hu, raw)
    assert "RescaleIntercept missing: stored values taken as HU" in v.info.notes


def test_enhanced_multiframe_with_a_frame_in_another_orientation_is_refused_not_cut_short(tmp_path):
    raw = known_raw(5, 8, 8)
    ds = _enhanced_ct(raw, [(0.0, 0.0, 3.0 * k) for k in range(5)], intercepts=[-1024] * 5)
    orient = pydicom.Dataset()
    orient.ImageOrientationPatient = list(CORONAL)
    ds.PerFrameFunctionalGroupsSequence[2].PlaneOrientationSequence = [orient]
    ds.save_as(tmp_path / "mixed.dcm", enforce_file_format=True)
    series = find_series(tmp_path).series[0]
    assert series.n_slices == 5 and series.blocking  # the frames after the odd one were dropped before
    with pytest.raises(NotCTVolumeError, match=r"mixed orientations in multi-frame file mixed\.dcm.*frame 3"):
        load_scan(tmp_path / "mixed.dcm")


def test_enhanced_multiframe_missing_a_frame_position_names_the_file_and_frame(tmp_path):
    raw = known_raw(4, 8, 8)
    ds = _enhanced_ct(raw, [(0.0, 0.0, 3.0 * k) for k in (3, 1, 0, 2)], intercepts=[-1024] * 4)
    del ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence
    ds.save_as(tmp_path / "nopos.dcm", enforce_file_format=True)
    with pytest.raises(NotCTVolumeError, match=r"ImagePositionPatient missing in 1 slice\(s\): nopos\.dcm frame 2"):
        load_scan(tmp_path / "nopos.dcm")


def test_modality_other_than_ct_and_short_series_are_refused(tmp_path):
    write_series(tmp_path / "mr", modality="MR")
    with pytest.raises(NotCTVolumeError, match="modality MR, not CT"):
        load_scan(tmp_path / "mr")
    write_series(tmp_path / "two", n=2)
    with pytest.raises(NotCTVolumeError, match="2 slice\\(s\\), fewer than min_slices=3"):
        load_scan(tmp_path / "two")
    assert load_scan(tmp_path / "two", min_slices=2).shape == (2, 16, 16)


def test_folder_without_dicom_raises_no_dicom_found(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(NoDicomFoundError, match="no DICOM image series found"):
        load_scan(tmp_path)
    with pytest.raises(NoDicomFoundError, match="does not exist"):
        load_scan(tmp_path / "nope")


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_image_files_read_through_simpleitk_canonical(tmp_path, suffix):
    import SimpleITK as sitk

    hu = known_raw(4, 5, 6) - 1000
    flipped = CTVolume(hu, (2.0, 0.5, 0.6), (10.0, 20.0, 30.0), np.diag([-1.0, 1.0, -1.0]))
    path = tmp_path / f"ct{suffix}"
    sitk.WriteImage(flipped.to_sitk(), str(path))
    v = load_scan(path)
    assert v.hu.dtype == np.int16
    np.testing.assert_allclose(v.direction, np.eye(3))
    np.testing.assert_array_equal(v.hu, hu[::-1, :, ::-1])
    np.testing.assert_allclose(v.index_to_lps([0, 0, 0]), flipped.index_to_lps([3, 0, 5]))


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_truncated_nifti_is_refused_naming_the_file(tmp_path, suffix):
    # ITK's NIfTI reader zero-fills a file that ends early instead of failing.
    import SimpleITK as sitk

    hu = known_raw(4, 5, 6) - 1000
    whole = tmp_path / f"whole{suffix}"
    sitk.WriteImage(CTVolume(hu, (2.0, 0.5, 0.6)).to_sitk(), str(whole))
    np.testing.assert_array_equal(load_scan(whole).hu, hu)
    data = whole.read_bytes()
    cut = tmp_path / f"cut ü{suffix}"
    cut.write_bytes(data[: len(data) - 40])
    with pytest.raises(PixelDecodeError, match=r"cut ü\.nii.*truncated"):
        load_scan(cut)


# ----------------------------------------------------------------------------- real data


def _lidc_series_folder():
    root = shared_path("lidc_idri_0001")
    return next(p for p in root.rglob("*") if p.is_dir() and any(p.glob("*.dcm")))


def test_lidc_reads_like_simpleitk_series_reader():
    import SimpleITK as sitk

    folder = _lidc_series_folder()
    v = load_scan(folder)
    assert v.shape == (133, 512, 512)
    np.testing.assert_allclose(v.spacing_mm, (2.5, 0.703125, 0.703125))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    ref = CTVolume.from_sitk(reader.Execute()).canonical()
    np.testing.assert_array_equal(v.hu, ref.hu)
    np.testing.assert_allclose(v.origin_mm, ref.origin_mm, atol=1e-4)
    np.testing.assert_allclose(v.direction, ref.direction, atol=1e-6)
    assert v.hu.dtype == np.int16
    # air in the trachea (upper chest, slice 124 of 133 counted from the feet, lumen
    # centred near row 217, column 233): close to -1000 HU
    trachea = v.hu[124, 214:221, 230:237]
    assert -1010 < float(np.median(trachea)) < -950
    assert v.index_to_lps([124, 217, 233])[2] > v.index_to_lps([0, 217, 233])[2]  # slice 124 is superior
    assert v.info.patient_id == "LIDC-IDRI-0001" and v.info.kernel == "STANDARD"


def test_lidc_study_folder_loads_the_chosen_series():
    cat = find_series(shared_path("lidc_idri_0001"))
    v = load_scan(shared_path("lidc_idri_0001"))
    assert v.shape == (133, 512, 512)
    assert v.info.series_uid == cat.studies[0].chosen.series_uid
    w = load_scan(cat.studies[0].chosen)
    np.testing.assert_array_equal(v.hu, w.hu)
    with pytest.raises(ValueError, match="differs from the SeriesInfo"):
        load_scan(cat.studies[0].chosen, series_uid="1.2.3")


def test_cip_ct64_dicom_equals_nrrd():
    dicom = load_scan(shared_path("cip_ct64", "ct-64Dicom"))
    nrrd = load_scan(shared_path("cip_ct64", "ct-64.nrrd"))
    assert dicom.shape == nrrd.shape == (79, 64, 64)
    np.testing.assert_array_equal(dicom.hu, nrrd.hu)
    np.testing.assert_allclose(dicom.spacing_mm, nrrd.spacing_mm, atol=1e-4)
    np.testing.assert_allclose(dicom.origin_mm, nrrd.origin_mm, atol=1e-3)
    np.testing.assert_allclose(dicom.direction, nrrd.direction, atol=1e-6)


def test_jpeg2000_abdomen_decodes():
    v = load_scan(shared_path("dicom_variants", "jpeg2000_abdomen"))
    assert v.shape == (20, 512, 512)
    assert v.info.transfer_syntax == "1.2.840.10008.1.2.4.90"
    assert v.hu.min() >= -1024 and v.hu.max() > 500  # bone present, air at -1024
    assert any("SeriesInstanceUID missing" in n for n in v.info.notes)


def test_minimal_headers_and_two_slices_have_documented_outcomes():
    for name in ("minimal_headers", "two_slices_512"):
        with pytest.raises(NotCTVolumeError, match="2 slice\\(s\\), fewer than min_slices=3: too short to be a volume"):
            load_scan(shared_path("dicom_variants", name))
    v = load_scan(shared_path("dicom_variants", "minimal_headers"), min_slices=2)
    assert v.shape == (2, 512, 512) and v.spacing_mm == pytest.approx((1.0, 0.625, 0.625))
    assert "Modality missing: assumed CT" in v.info.notes
    assert v.info.patient_id is None and v.info.study_date is None


def test_file_cut_before_pixel_data_blocks_the_series(tmp_path):
    paths, _, _, _ = write_series(tmp_path / "s", n=5)
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: data.index(b"\xe0\x7f\x10\x00")])
    (s,) = find_series(tmp_path / "s").series
    assert any("truncated" in b for b in s.blocking)
    with pytest.raises(PixelDecodeError, match=paths[2].name):
        load_scan(tmp_path / "s")


def _jpeg2000_series_with_truncated_slice(folder):
    from pydicom.pixels import get_encoder

    if not get_encoder(pydicom.uid.JPEG2000Lossless).is_available:
        pytest.skip("no JPEG 2000 encoder installed to write the test data")
    paths, *_ = write_series(folder, n=4, rows=32, cols=32, transfer_syntax=pydicom.uid.JPEG2000Lossless)
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[:-60])
    return paths[2], len(data) - 60


def test_truncated_jpeg2000_slice_is_reported_as_truncated_not_as_missing_decoder(tmp_path):
    import warnings

    from imaging.io.headers import read_header
    from imaging.io.load import _read_frames

    path, size = _jpeg2000_series_with_truncated_slice(tmp_path / "s")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        catalog = find_series(tmp_path, rules=None)
        with pytest.raises(PixelDecodeError, match=rf"s/{path.name} \(file is truncated \({size} bytes") as err:
            load_scan(tmp_path, min_slices=3)
        with pytest.raises(PixelDecodeError, match=rf"file is truncated \({size} bytes\)") as direct:
            _read_frames(read_header(path, size))  # the decoder's own error, past the header check
    assert "install" not in str(err.value) and "install" not in str(direct.value)
    assert not [w for w in caught if "End of file" in str(w.message)]
    (series,) = catalog.series
    assert any("truncated" in p for p in series.problems)


def test_header_read_warning_is_recorded_as_a_problem_of_the_file(tmp_path):
    """pydicom's "End of file reached before delimiter" becomes a problem, never console noise."""
    import warnings

    paths, *_ = write_series(tmp_path / "s", n=4)
    data = paths[1].read_bytes()
    # cut the file inside an undefined-length element placed before PixelData (the fast
    # reader hands such a file to pydicom, which then runs out of file looking for its end)
    pixel_tag = data.index(b"\xe0\x7f\x10\x00OB") if b"\xe0\x7f\x10\x00OB" in data else data.index(b"\xe0\x7f\x10\x00OW")
    private = b")\x00\x10\x00LO\x0c\x00CHESTCT TEST" + b")\x00\x20\x10OB\x00\x00\xff\xff\xff\xff" + b"\x01" * 40
    paths[1].write_bytes(data[:pixel_tag] + private)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        catalog = find_series(tmp_path)
    assert not [w for w in caught if "End of file" in str(w.message)]
    (skipped,) = catalog.skipped_files  # not "DICOM without an image": pydicom lost the header
    assert skipped.path == paths[1] and skipped.reason.startswith(f"truncated DICOM file ({paths[1].stat().st_size} bytes)")


def test_load_scan_of_none_says_no_series_was_chosen():
    from imaging.common.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match=r"no series was given.*\.chosen.* is None.*\.reasons"):
        load_scan(None)
    with pytest.raises(TypeError, match="source must be a path or a SeriesInfo, got int"):
        load_scan(3)

