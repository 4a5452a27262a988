"""DICOM SEG of the masks: frames on the source slices, and no identifier or free text of the sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.mark.parametrize("flip", [False, True])
def test_dicom_seg_frames_follow_the_source_slices(tmp_path: Path, flip: bool) -> None:
    import highdicom as hd
    import pydicom

    from imaging.pipeline.dicomseg import SegSegment, write_dicom_seg
    from imaging.common.volume import CTVolume, ScanInfo
    from tests.imaging.batch_helpers import chest_hu, write_series

    hu = chest_hu((6, 20, 24), opacity_fraction=0.3)
    files = write_series(tmp_path / "src", patient_id="P1", study_key="s", series_key="a", study_date="20200101", hu=hu)
    first = pydicom.dcmread(files[0])
    volume = CTVolume(hu, (3.0, 2.0, 2.0), tuple(float(v) for v in first.ImagePositionPatient), np.eye(3),
                      ScanInfo(series_uid=first.SeriesInstanceUID))
    lung, opacity = hu < -500, (hu > -500) & (hu < 0)
    if flip:  # the same voxels stored head-first and right-left mirrored: the SEG must not change
        volume = CTVolume(hu[::-1, :, ::-1].copy(), volume.spacing_mm, tuple(volume.index_to_lps([5, 0, 23])),
                          np.diag([-1.0, 1.0, -1.0]), volume.info)
        lung, opacity = lung[::-1, :, ::-1], opacity[::-1, :, ::-1]
    write_dicom_seg(tmp_path / "seg.dcm", volume, files,
                    [SegSegment("Right lung", lung, "right_lung"), SegSegment("Opacity", opacity, "lesion")],
                    software_version="test", patient_id="anon-1")
    seg = hd.seg.Segmentation.from_dataset(pydicom.dcmread(tmp_path / "seg.dcm"))
    uids = [pydicom.dcmread(f).SOPInstanceUID for f in files]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1, 2])
    assert np.array_equal(pixels[..., 0].astype(bool), hu < -500)
    assert np.array_equal(pixels[..., 1].astype(bool), (hu > -500) & (hu < 0))
    assert str(seg.PatientName) == "" and seg.PatientBirthDate == "" and seg.PatientID == "anon-1"


def _seg_from_altered_sources(tmp_path: Path, top: dict[str, str], nested: dict[str, list]) -> tuple[bytes, Any]:
    """Write a SEG from a synthetic series whose files carry the attributes ``top`` and the
    sequences ``nested`` (keyword -> items); return its bytes and the first source dataset."""
    import pydicom

    from imaging.pipeline.dicomseg import SegSegment, write_dicom_seg
    from imaging.common.volume import CTVolume, ScanInfo
    from tests.imaging.batch_helpers import chest_hu, write_series

    hu = chest_hu((4, 12, 12))
    files = write_series(tmp_path / "src", patient_id="P1", study_key="s", series_key="a", study_date="20200101", hu=hu)
    for f in files:
        ds = pydicom.dcmread(f)
        for keyword, value in {**top, **nested}.items():
            setattr(ds, keyword, value)
        ds.save_as(f)
    first = pydicom.dcmread(files[0])
    volume = CTVolume(hu, (3.0, 2.0, 2.0), tuple(float(v) for v in first.ImagePositionPatient), np.eye(3),
                      ScanInfo(series_uid=first.SeriesInstanceUID))
    write_dicom_seg(tmp_path / "seg.dcm", volume, files, [SegSegment("Lungs", hu < -500, "lung")],
                    software_version="test", patient_id="anon-1")
    return (tmp_path / "seg.dcm").read_bytes(), first


def _item(**attributes: str) -> Any:
    import pydicom

    item = pydicom.Dataset()
    for keyword, value in attributes.items():
        setattr(item, keyword, value)
    return item


def test_dicom_seg_clears_identifiers_in_nested_sequences(tmp_path: Path) -> None:
    import pydicom

    identifying = {"InstitutionName": "St Example Hospital", "InstitutionAddress": "1 Example Road",
                   "StationName": "CTSTATION7", "OperatorsName": "Oper^Olga", "PerformingPhysicianName": "Perf^Paul"}
    blob, _ = _seg_from_altered_sources(tmp_path, identifying, {"ContributingEquipmentSequence": [
        _item(Manufacturer="X", InstitutionName="St Nested Hospital", OperatorsName="Nested^Nora")]})
    for value in [*identifying.values(), "St Nested Hospital", "Nested^Nora", "Doe^Janet", "19450317", "Smith^Referrer"]:
        assert value.encode() not in blob, value
    assert pydicom.dcmread(tmp_path / "seg.dcm").Modality == "SEG"


def test_dicom_seg_drops_the_source_scanner_serial_number(tmp_path: Path) -> None:
    # highdicom copies it into ContributingEquipmentSequence, where it was left
    import pydicom

    blob, _ = _seg_from_altered_sources(tmp_path, {"DeviceSerialNumber": "SN-4242"}, {})
    assert b"SN-4242" not in blob
    assert pydicom.dcmread(tmp_path / "seg.dcm").DeviceSerialNumber == "0"  # the SEG's own (Type 1) value


def test_dicom_seg_drops_free_text_copied_from_the_sources(tmp_path: Path) -> None:
    """Descriptions and comments often carry names: none may reach the SEG, at any depth."""
    import highdicom as hd
    import pydicom

    from imaging.pipeline.dicomseg import SEG_SERIES_DESCRIPTION

    free_text = {
        "StudyDescription": "CT CHEST DOE JANE", "SeriesDescription": "AXIAL DOE JANE 2", "PatientComments": "Jane likes tea",
        "ImageComments": "scanned by Dr Roe", "StudyComments": "DOE JANE follow-up", "RequestedProcedureDescription": "CT Doe",
        "PerformedProcedureStepDescription": "PPS Doe Jane", "AdmittingDiagnosesDescription": "covid Jane Doe",
        "AdditionalPatientHistory": "Doe history", "MedicalAlerts": "Doe alert", "Occupation": "DoeJob",
        "ReasonForVisit": "Doe visit", "ProtocolName": "Doe protocol", "StudyID": "DOEJ77",
        "ConsultingPhysicianName": "Consult^Connie", "RequestingService": "Doe service",
        "ClinicalTrialSiteName": "Doe site", "ClinicalTrialSubjectID": "DOE-SUBJ",
        "IssuerOfClinicalTrialSubjectID": "Doe registry",  # listed nowhere: dropped as text copied from the source
    }
    blob, first = _seg_from_altered_sources(tmp_path, free_text, {
        # nested: a referenced procedure step, and equipment with its own description
        "ReferencedPerformedProcedureStepSequence": [
            _item(ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.3", ReferencedSOPInstanceUID="1.2.3.4")],
        "ContributingEquipmentSequence": [
            _item(Manufacturer="X", ContributionDescription="installed for Doe Jane",
                  StudyDescription="nested Doe Jane study")],
    })
    for value in [*free_text.values(), "installed for Doe Jane", "nested Doe Jane study"]:
        assert value.encode() not in blob, value
    for secret in (b"DOE", b"Doe", b"Jane", b"JANE", b"Consult"):
        assert secret not in blob, secret
    seg = pydicom.dcmread(tmp_path / "seg.dcm")
    assert seg.SeriesDescription == SEG_SERIES_DESCRIPTION
    assert seg.StudyID == "" and "StudyID" in seg  # Type 2: kept, emptied
    assert seg.PatientID == "anon-1" and seg.StudyInstanceUID == first.StudyInstanceUID and seg.StudyDate == "20200101"
    hd.seg.Segmentation.from_dataset(seg)  # still a valid SEG for highdicom


def test_dicom_seg_drops_the_last_menstrual_date(tmp_path: Path) -> None:
    # highdicom copies it from the sources' Patient Study module (LIDC-IDRI files carry one);
    # a health-related date of the patient, not among what the SEG keeps (imaging/dicomseg.py)
    import pydicom

    blob, _ = _seg_from_altered_sources(tmp_path, {"LastMenstrualDate": "19990817"}, {})
    assert b"19990817" not in blob
    assert "LastMenstrualDate" not in pydicom.dcmread(tmp_path / "seg.dcm")
