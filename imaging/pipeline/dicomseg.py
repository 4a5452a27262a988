"""Masks as a DICOM Segmentation (highdicom) that a PACS viewer shows over the original series.

The masks live in the volume's (canonical) geometry; a DICOM SEG must instead follow
the frames of the source images.  :func:`masks_on_source_grid` maps each pixel of each
source slice to the nearest voxel of the volume through the patient coordinates (exact
for a volume read from that series, whatever flips or permutations the reader applied),
so the SEG frames line up with the original slices.

Privacy (always, with or without pseudonymisation): highdicom copies the patient and
study modules from the source images, and their acquisition equipment into the
ContributingEquipmentSequence.  In the SEG we write

* the identifying attributes (patient name, birth date, other IDs, physicians,
  operators, institution, station, accession number) are removed or emptied at any
  depth (nested sequences included), as is the source scanner's serial number;
* free-text descriptive attributes (study/series/procedure descriptions, protocol name,
  any ``...Comments``, patient history, diagnoses, reasons for visit, ...), which often
  quote names, are removed at any depth, and every other text value (VR LO, LT, ST, UT,
  UC, SH, PN) copied unchanged from the sources' top level is removed too (emptied where
  the SEG must carry it, e.g. StudyID), whatever its name;
* what remains from the sources is the patient ID (replaced by the pseudonym when one is
  given), coded or numeric values (sex, age, size, weight), the study date and time, and
  the UIDs: the SEG references the source series by its UIDs, which is how viewers
  (OHIF, 3D Slicer, PACS) attach it to the images.  Its own SeriesDescription is the
  fixed :data:`SEG_SERIES_DESCRIPTION`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imaging.common.errors import ChestCTError
from imaging.common.volume import CTVolume

__all__ = [
    "SegSegment", "masks_on_source_grid", "write_dicom_seg", "clear_identifiers", "PHI_ATTRIBUTES_CLEARED",
    "FREE_TEXT_ATTRIBUTES_REMOVED", "SEG_SERIES_DESCRIPTION",
]

#: SeriesDescription of every SEG we write (never derived from the source series).
SEG_SERIES_DESCRIPTION = "chestct lungs and opacity"

#: Identifying attributes cleared in every SEG we write, at any depth (highdicom copies
#: them from the sources, also into nested sequences such as ContributingEquipmentSequence).
PHI_ATTRIBUTES_CLEARED: tuple[str, ...] = (
    "PatientName", "PatientBirthDate", "PatientBirthTime", "OtherPatientIDs", "OtherPatientNames",
    "OtherPatientIDsSequence", "PatientAddress", "PatientTelephoneNumbers", "PatientMotherBirthName",
    "ReferringPhysicianName", "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
    "PerformingPhysicianName", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy", "OperatorsName",
    "AccessionNumber",
    "LastMenstrualDate",  # a health-related date of the patient (Patient Study module)
)


#: Free-text descriptive attributes removed from every SEG we write, at any depth (they
#: often quote patient or staff names); any keyword ending in ``Comments`` is removed too.
#: The SEG's own top-level SeriesDescription is set afterwards to :data:`SEG_SERIES_DESCRIPTION`.
FREE_TEXT_ATTRIBUTES_REMOVED: tuple[str, ...] = (
    "StudyDescription", "SeriesDescription", "ProtocolName", "RequestedProcedureDescription",
    "PerformedProcedureStepDescription", "ScheduledProcedureStepDescription", "ProcedureStepLabel",
    "AdmittingDiagnosesDescription", "AdditionalPatientHistory", "MedicalAlerts", "Allergies", "Occupation",
    "ReasonForVisit", "ReasonForTheRequestedProcedure", "ServiceEpisodeDescription", "PatientState",
    "RequestingService", "RequestingPhysician", "ConsultingPhysicianName", "ResponsiblePerson",
    "ResponsibleOrganization", "ContributionDescription", "DerivationDescription", "AcquisitionDeviceProcessingDescription",
    "ClinicalTrialSponsorName", "ClinicalTrialProtocolName", "ClinicalTrialSiteName", "ClinicalTrialSubjectID",
    "ClinicalTrialSubjectReadingID", "ClinicalTrialTimePointDescription", "ClinicalTrialProtocolEthicsCommitteeName",
    "PatientSpeciesDescription", "PatientBreedDescription", "StrainDescription", "StrainAdditionalInformation",
    "AdmissionID", "ServiceEpisodeID", "IssuerOfPatientID",
)

#: Type-2 attributes of the SEG (present, may be empty): emptied at the top level, not removed.
_TYPE2_KEPT_EMPTY = frozenset({
    "PatientName", "PatientBirthDate", "ReferringPhysicianName", "StudyID", "AccessionNumber",
})

#: Top-level text attributes the SEG takes from our arguments (or the pseudonym), never dropped.
_WRITTEN_BY_US = frozenset({
    "PatientID", "Manufacturer", "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions", "SeriesDescription",
})

#: Text value representations: a value of these copied unchanged from a source is removed.
_TEXT_VRS = frozenset({"LO", "LT", "ST", "UT", "UC", "SH", "PN"})


#: Removed below the top level only: highdicom copies the source scanner's serial number into
#: ContributingEquipmentSequence (the DICOM de-identification profile removes it); the SEG's
#: own top-level DeviceSerialNumber is ours.
_NESTED_REMOVED = frozenset({"DeviceSerialNumber"})


def _is_removed(keyword: str, *, nested: bool = False) -> bool:
    return (keyword in PHI_ATTRIBUTES_CLEARED or keyword in FREE_TEXT_ATTRIBUTES_REMOVED or keyword.endswith("Comments")
            or (nested and keyword in _NESTED_REMOVED))


def clear_identifiers(ds: "object", *, nested: bool = False) -> None:
    """Remove identifying and free-text attributes from ``ds`` and every sequence item below it.

    Removes :data:`PHI_ATTRIBUTES_CLEARED`, :data:`FREE_TEXT_ATTRIBUTES_REMOVED`, any
    ``...Comments`` attribute and, in sequence items, the source scanner's DeviceSerialNumber;
    at the top level the SEG's Type-2 attributes among them
    (patient name, birth date, referring physician, study ID, accession number) are kept
    with an empty value instead.
    """
    for elem in list(ds):  # type: ignore[attr-defined]
        if _is_removed(elem.keyword, nested=nested):
            if not nested and elem.keyword in _TYPE2_KEPT_EMPTY:
                elem.value = ""
            else:
                del ds[elem.tag]  # type: ignore[index]
        elif elem.VR == "SQ":
            for item in elem.value or ():
                clear_identifiers(item, nested=True)


def _drop_source_text(seg_ds: "object", source: "object") -> None:
    """Remove top-level text values of ``seg_ds`` copied unchanged from ``source`` (PatientID aside).

    Catches whatever free text highdicom copies from the source's patient and study
    modules under a name not listed in :data:`FREE_TEXT_ATTRIBUTES_REMOVED`.
    """
    for elem in list(seg_ds):  # type: ignore[attr-defined]
        if elem.VR not in _TEXT_VRS or elem.keyword in _WRITTEN_BY_US or elem.value in (None, ""):
            continue
        theirs = source.get(elem.tag)  # type: ignore[attr-defined]
        if theirs is None or str(theirs.value) != str(elem.value):
            continue
        if elem.keyword in _TYPE2_KEPT_EMPTY:
            elem.value = ""
        else:
            del seg_ds[elem.tag]  # type: ignore[index]


@dataclass(frozen=True)
class SegSegment:
    """One segment of a SEG.

    Attributes
    ----------
    label : str
        Shown in viewers, e.g. ``"Right lung"``.
    mask : (Z, Y, X) bool ndarray
        In the volume's geometry.
    kind : str
        ``"right_lung"``, ``"left_lung"``, ``"lung"`` or ``"lesion"`` (chooses the codes).
    """

    label: str
    mask: np.ndarray
    kind: str = "lesion"


def _codes(kind: str):  # -> (category, type)
    from pydicom.sr.coding import Code
    from pydicom.sr.codedict import codes

    anatomical = codes.SCT.AnatomicalStructure
    abnormal = Code("49755003", "SCT", "Morphologically Abnormal Structure")
    types = {
        "right_lung": (anatomical, Code("3341006", "SCT", "Right lung")),
        "left_lung": (anatomical, Code("44029006", "SCT", "Left lung")),
        "lung": (anatomical, codes.SCT.Lung),
        "lesion": (abnormal, codes.SCT.Lesion),
    }
    if kind not in types:
        raise ValueError(f"kind must be one of {sorted(types)}, got {kind!r}")
    return types[kind]


def masks_on_source_grid(volume: CTVolume, masks: np.ndarray, datasets: Sequence["object"]) -> np.ndarray:
    """Sample volume-geometry masks on the pixel grid of each source slice.

    Parameters
    ----------
    volume : CTVolume
        Gives the geometry of ``masks``.
    masks : (Z, Y, X, S) ndarray
        ``S`` masks in the volume's geometry.
    datasets : sequence of pydicom Dataset
        Single-frame source images (ImagePositionPatient, ImageOrientationPatient,
        PixelSpacing, Rows, Columns are used).

    Returns
    -------
    (N, Rows, Columns, S) ndarray
        Same dtype as ``masks``; pixels outside the volume are 0.
    """
    masks = np.asarray(masks)
    if masks.ndim != 4 or masks.shape[:3] != volume.shape:
        raise ValueError(f"masks must be (Z, Y, X, S) with (Z, Y, X) = {volume.shape}, got {masks.shape}")
    origin = np.asarray(volume.origin_mm, np.float64)
    direction = volume.direction
    spacing_xyz = np.asarray(volume.spacing_mm[::-1], np.float64)
    shape_xyz = np.asarray(volume.shape[::-1])
    frames = []
    for ds in datasets:
        rows, cols = int(ds.Rows), int(ds.Columns)
        ipp = np.asarray([float(v) for v in ds.ImagePositionPatient])
        iop = np.asarray([float(v) for v in ds.ImageOrientationPatient])
        row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
        # LPS of pixel (r, c) = ipp + c * col_spacing * iop[:3] + r * row_spacing * iop[3:]
        to_index = lambda v: (v @ direction) / spacing_xyz  # noqa: E731  (LPS offset -> index xyz)
        start = to_index(ipp - origin)
        step_r = to_index(row_spacing * iop[3:])
        step_c = to_index(col_spacing * iop[:3])
        r = np.arange(rows)[:, None, None]
        c = np.arange(cols)[None, :, None]
        idx = np.rint(start + r * step_r + c * step_c).astype(np.int64)  # (rows, cols, 3) xyz
        inside = np.all((idx >= 0) & (idx < shape_xyz), axis=-1)
        frame = np.zeros((rows, cols, masks.shape[3]), masks.dtype)
        sel = idx[inside]
        frame[inside] = masks[sel[:, 2], sel[:, 1], sel[:, 0]]
        frames.append(frame)
    return np.stack(frames) if frames else np.zeros((0, 0, 0, masks.shape[3]), masks.dtype)


#: Type-2 Patient and General Study attributes that highdicom copies from the source
#: images into the SEG; missing ones are added empty (as the standard allows) in memory.
_TYPE2_SOURCE_ATTRIBUTES: tuple[str, ...] = (
    "PatientName", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber",
)


def write_dicom_seg(path: str | os.PathLike[str], volume: CTVolume, source_files: Sequence[str | os.PathLike[str]],
                    segments: Sequence[SegSegment], *, software_version: str, patient_id: str | None = None,
                    series_number: int = 9901) -> Path:
    """Write the segments as one binary DICOM SEG referencing the source series.

    Parameters
    ----------
    path : path-like
        File to write (callers wanting atomicity pass a temporary path).
    volume : CTVolume
        The volume the masks were computed on (read from ``source_files``).
    source_files : sequence of path-like
        The DICOM files of the series (single-frame images).
    segments : sequence of SegSegment
        At least one; masks in ``volume``'s geometry.
    software_version : str
        Recorded in the SEG (SoftwareVersions).
    patient_id : str, optional
        Replaces the PatientID copied from the sources (use the pseudonym).
    series_number : int
        SeriesNumber of the new SEG series.

    Raises
    ------
    ChestCTError
        The sources are multi-frame (not supported here; the NIfTI masks remain).
    """
    import highdicom as hd
    import pydicom

    if not segments:
        raise ValueError("segments must hold at least one SegSegment, got none")
    if not source_files:
        raise ValueError("source_files must list the series' DICOM files, got none")
    datasets = [pydicom.dcmread(os.fspath(f), stop_before_pixels=True) for f in source_files]
    for ds in datasets:  # real exports often omit these; highdicom copies them into the SEG
        for keyword in _TYPE2_SOURCE_ATTRIBUTES:
            if keyword not in ds:
                setattr(ds, keyword, "")
    if any(int(getattr(ds, "NumberOfFrames", 1) or 1) > 1 for ds in datasets):
        raise ChestCTError(f"DICOM SEG over multi-frame sources is not supported (series {volume.info.series_uid}); "
                           "use the NIfTI masks")
    stack = np.stack([np.asarray(s.mask, bool) for s in segments], axis=-1)
    pixels = masks_on_source_grid(volume, stack, datasets).astype(np.uint8)
    algorithm = hd.AlgorithmIdentificationSequence(
        name="chestct", version=software_version, family=pydicom.sr.codedict.codes.DCM.ArtificialIntelligence)
    descriptions = []
    for number, seg in enumerate(segments, start=1):
        category, prop = _codes(seg.kind)
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=seg.label[:64], segmented_property_category=category,
            segmented_property_type=prop, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm))
    seg_ds = hd.seg.Segmentation(
        source_images=datasets, pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=hd.UID(), series_number=series_number, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="chestct", manufacturer_model_name="chestct", software_versions=software_version,
        device_serial_number="0", series_description=SEG_SERIES_DESCRIPTION,
        omit_empty_frames=bool(pixels.any()))
    clear_identifiers(seg_ds)
    _drop_source_text(seg_ds, datasets[0])
    seg_ds.SeriesDescription = SEG_SERIES_DESCRIPTION
    if patient_id is not None:
        seg_ds.PatientID = patient_id
    out = Path(path)
    seg_ds.save_as(out)
    return out
