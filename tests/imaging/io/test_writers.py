"""DICOM and NIfTI writers: valid headers, identical voxels and geometry on reading back."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless, RLELossless

import imaging
from imaging.phantom.make import make_phantom
from imaging.common.volume import CTVolume
from imaging.io.writers import write_dicom_series, write_localizer, write_nifti


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(shape=(24, 40, 48), spacing_mm=(10.0, 8.0, 7.5), percent_opacity=20.0,
                        rng=np.random.default_rng(0))


def _assert_same_volume(a: CTVolume, b: CTVolume) -> None:
    assert a.hu.dtype == b.hu.dtype == np.int16
    assert np.array_equal(a.hu, b.hu)
    assert np.allclose(a.spacing_mm, b.spacing_mm, atol=1e-5)
    assert np.allclose(a.origin_mm, b.origin_mm, atol=1e-4)
    assert np.allclose(a.direction, b.direction, atol=1e-6)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, JPEG2000Lossless])
def test_round_trip_through_load_scan(phantom, tmp_path: Path, syntax: str) -> None:
    files = write_dicom_series(phantom.volume, tmp_path / "s", patient_id="P01", transfer_syntax=syntax)
    assert [f.name for f in files[:2]] == ["0001.dcm", "0002.dcm"] and len(files) == 24
    back = imaging.load_scan(tmp_path / "s")
    _assert_same_volume(back, phantom.volume)
    assert back.info.patient_id == "P01"
    assert back.info.transfer_syntax == syntax


def test_round_trip_through_simpleitk(phantom, tmp_path: Path) -> None:
    import SimpleITK as sitk

    write_dicom_series(phantom.volume, tmp_path / "s", patient_id="P01")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "s")))
    image = reader.Execute()
    back = CTVolume.from_sitk(image)
    assert np.array_equal(back.hu.astype(np.int16), phantom.volume.hu)
    assert np.allclose(back.origin_mm, phantom.volume.origin_mm, atol=1e-4)
    assert np.allclose(back.spacing_mm, phantom.volume.spacing_mm, atol=1e-5)


@pytest.mark.parametrize("direction", [np.diag([-1.0, 1.0, 1.0]), np.diag([1.0, -1.0, -1.0])])
def test_non_canonical_geometry_reads_back_as_its_canonical_form(tmp_path: Path, direction: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    v = CTVolume(rng.integers(-1000, 400, (6, 10, 12)).astype(np.int16), (2.5, 0.8, 0.7), (12.0, -40.0, 300.0), direction)
    write_dicom_series(v, tmp_path / "s", patient_id="X")
    _assert_same_volume(imaging.load_scan(tmp_path / "s"), v.canonical())


def test_headers_are_ct_image_storage_with_expected_values(phantom, tmp_path: Path) -> None:
    files = write_dicom_series(phantom.volume, tmp_path / "s", patient_id="P07", study_date="2020-03-05",
                               series_number=3, series_description="CHEST 5.0", kernel="B30f", transfer_syntax=JPEG2000Lossless)
    ds = pydicom.dcmread(files[5])
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.file_meta.TransferSyntaxUID == JPEG2000Lossless
    assert ds.Modality == "CT" and ds.PatientID == "P07" and ds.StudyDate == "20200305"
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert float(ds.RescaleIntercept) == -1024 and float(ds.RescaleSlope) == 1
    assert ds.ConvolutionKernel == "B30f" and ds.SeriesNumber == 3 and ds.InstanceNumber == 6
    assert [float(x) for x in ds.PixelSpacing] == [8.0, 7.5] and float(ds.SliceThickness) == 10.0
    assert [float(x) for x in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert np.allclose([float(x) for x in ds.ImagePositionPatient], phantom.volume.index_to_lps([5, 0, 0]))
    assert ds.PatientName == "" and "PatientBirthDate" in ds and ds.PatientBirthDate == ""
    hu = ds.pixel_array.astype(np.int32) + int(ds.RescaleIntercept)
    assert np.array_equal(hu, phantom.volume.hu[5])
    pydicom.dcmread(files[0], force=False)  # a proper Part 10 file with preamble


def test_uids_deterministic_and_distinct(phantom, tmp_path: Path) -> None:
    def uids(folder: Path, **kw) -> tuple[str, str, str]:
        files = write_dicom_series(phantom.volume, folder, patient_id=kw.pop("patient_id", "P01"), **kw)
        ds = pydicom.dcmread(files[0], stop_before_pixels=True)
        return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID

    a = uids(tmp_path / "a")
    assert uids(tmp_path / "b") == a
    assert uids(tmp_path / "c", patient_id="P02")[0] != a[0]
    assert uids(tmp_path / "d", series_number=2)[1] != a[1]
    r1 = uids(tmp_path / "e", rng=np.random.default_rng(5))
    assert uids(tmp_path / "f", rng=np.random.default_rng(5)) == r1 and r1 != a
    files = sorted((tmp_path / "a").glob("*.dcm"))
    sop = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}
    assert len(sop) == len(files)


def test_out_of_range_hu_is_clipped(tmp_path: Path) -> None:
    v = CTVolume(np.array([[[-3000, -1024, 0, 3071, 4000]]] * 3, dtype=np.int16).reshape(3, 1, 5), (1.0, 1.0, 1.0))
    write_dicom_series(v, tmp_path / "s", patient_id="X")
    back = imaging.load_scan(tmp_path / "s")
    assert back.hu[0, 0].tolist() == [-1024, -1024, 0, 3071, 3071]


def test_float_hu_is_rounded(tmp_path: Path) -> None:
    v = CTVolume(np.full((3, 4, 4), -500.6, np.float32), (1.0, 1.0, 1.0))
    write_dicom_series(v, tmp_path / "s", patient_id="X")
    assert np.all(imaging.load_scan(tmp_path / "s").hu == -501)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(transfer_syntax="1.2.840.10008.1.2.4.50"), "transfer_syntax"),
        (dict(study_date="05/03/2020"), "study_date"),
        (dict(patient_id=""), "patient_id"),
        (dict(series_number=-1), "series_number"),
    ],
)
def test_bad_arguments_are_refused(phantom, tmp_path: Path, kwargs: dict, match: str) -> None:
    args = dict(patient_id="P01")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        write_dicom_series(phantom.volume, tmp_path / "s", **args)
    with pytest.raises(ValueError, match="CTVolume"):
        write_dicom_series(phantom.volume.hu, tmp_path / "s", patient_id="P01")  # type: ignore[arg-type]


def test_localizer_is_passed_over_by_the_series_chooser(phantom, tmp_path: Path) -> None:
    study = "1.2.826.0.1.3680043.8.498.1"
    write_localizer(phantom.volume, tmp_path / "loc", patient_id="P01", study_uid=study)
    write_dicom_series(phantom.volume, tmp_path / "ax", patient_id="P01", study_uid=study)
    ds = pydicom.dcmread(tmp_path / "loc" / "0001.dcm")
    assert "LOCALIZER" in ds.ImageType and ds.Rows == 24 and ds.Columns == 48
    catalog = imaging.find_series(tmp_path)
    (selection,) = catalog.studies
    assert selection.chosen is not None and selection.chosen.n_slices == 24
    assert any("localizer" in reason for reason in selection.reasons.values())


def test_nifti_volume_and_mask_round_trip(phantom, tmp_path: Path) -> None:
    import SimpleITK as sitk

    p = write_nifti(phantom.volume, tmp_path / "ct.nii.gz")
    back = CTVolume.from_sitk(sitk.ReadImage(str(p)))
    _assert_same_volume(back, phantom.volume)
    m = write_nifti(phantom.lungs, tmp_path / "lungs.nii", reference=phantom.volume)
    mask = sitk.ReadImage(str(m))
    assert mask.GetPixelIDTypeAsString() == "8-bit unsigned integer"
    assert np.array_equal(sitk.GetArrayFromImage(mask), phantom.lungs)
    assert np.allclose(mask.GetOrigin(), phantom.volume.origin_mm)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ct.nii.gz", "lungs.nii"]


def test_nifti_arguments_checked(phantom, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reference"):
        write_nifti(phantom.lungs, tmp_path / "m.nii.gz")
    with pytest.raises(ValueError, match="shape"):
        write_nifti(phantom.lungs[:-1], tmp_path / "m.nii.gz", reference=phantom.volume)
    with pytest.raises(ValueError, match=r"\.nii"):
        write_nifti(phantom.volume, tmp_path / "m.nrrd")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(kernel="STANDARD_KERNEL_B30F"), "kernel"),  # SH: at most 16 characters
        (dict(series_description="x" * 70), "series_description"),  # LO: at most 64
        (dict(study_time="9:30"), "study_time"),  # TM: HHMMSS
        (dict(study_time="253000"), "study_time"),
        (dict(image_type=("ORIGINAL", "PRIMARY", "axial")), "image_type"),  # CS: upper case
        (dict(study_uid="1.2.abc"), "study_uid"),
        (dict(series_uid="1.02.3"), "series_uid"),
        (dict(patient_id="A\\B"), "patient_id"),  # would read back as two values
        (dict(series_number=2**31), "series_number"),  # IS: 32-bit signed
        (dict(slice_thickness_mm=float("inf")), "slice_thickness_mm"),
    ],
)
def test_values_making_invalid_dicom_are_refused(tmp_path: Path, kwargs: dict, match: str) -> None:
    v = CTVolume(np.full((3, 4, 4), -1000, np.int16), (1.0, 1.0, 1.0))
    args = dict(patient_id="P01")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        write_dicom_series(v, tmp_path / "s", **args)
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir()), "nothing half-written"


def test_localizer_values_making_invalid_dicom_are_refused(tmp_path: Path) -> None:
    v = CTVolume(np.full((3, 4, 4), -1000, np.int16), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="study_uid"):
        write_localizer(v, tmp_path / "loc", patient_id="P01", study_uid="not a uid")
    with pytest.raises(ValueError, match="study_time"):
        write_localizer(v, tmp_path / "loc", patient_id="P01", study_uid="1.2.3", study_time="99")


def test_image_type_given_as_one_string_is_split_at_backslashes(tmp_path: Path) -> None:
    v = CTVolume(np.full((3, 4, 4), -1000, np.int16), (1.0, 1.0, 1.0))
    files = write_dicom_series(v, tmp_path / "s", patient_id="P01", image_type="ORIGINAL\\PRIMARY\\AXIAL")
    assert list(pydicom.dcmread(files[0]).ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]


def test_text_outside_latin1_is_written_as_utf8_not_question_marks(tmp_path: Path) -> None:
    # two Cyrillic patient IDs used to become the same '????????' (Latin-1 replacement characters)
    v = CTVolume(np.full((3, 4, 4), -1000, np.int16), (1.0, 1.0, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydicom only warns when it replaces characters
        files = write_dicom_series(v, tmp_path / "s", patient_id="Пациент1", series_description="Грудь КТ 肺")
    ds = pydicom.dcmread(files[0])
    assert ds.PatientID == "Пациент1" and ds.SeriesDescription == "Грудь КТ 肺"
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert imaging.load_scan(tmp_path / "s").info.patient_id == "Пациент1"
    latin = write_dicom_series(v, tmp_path / "l", patient_id="PÖ1")  # Latin-1 stays Latin-1
    assert pydicom.dcmread(latin[0]).SpecificCharacterSet == "ISO_IR 100"


def test_two_volumes_written_with_the_same_arguments_get_distinct_uids(phantom, tmp_path: Path) -> None:
    # a follow-up written with the baseline's patient and (default) date used to reuse the
    # baseline's SOP instance UIDs: the reader then dropped the follow-up as duplicate files
    later = phantom.follow_up(percent_opacity=5.0, rng=np.random.default_rng(1))
    a = write_dicom_series(phantom.volume, tmp_path / "P01" / "day0", patient_id="P01")
    b = write_dicom_series(later.volume, tmp_path / "P01" / "day7", patient_id="P01")
    uid = lambda f: pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID  # noqa: E731
    assert not {uid(f) for f in a} & {uid(f) for f in b}
    catalog = imaging.find_series(tmp_path)
    assert len(catalog.series) == 2 and not any(s.problems for s in catalog.series)


def test_nan_hu_is_refused_not_written_as_an_arbitrary_value(tmp_path: Path) -> None:
    hu = np.full((3, 4, 4), -500.0, np.float32)
    hu[1, 2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_dicom_series(CTVolume(hu, (1.0, 1.0, 1.0)), tmp_path / "s", patient_id="X")
    with pytest.raises(ValueError, match="NaN"):
        write_localizer(CTVolume(hu, (1.0, 1.0, 1.0)), tmp_path / "l", patient_id="X", study_uid="1.2.3")
