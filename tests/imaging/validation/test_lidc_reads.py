"""LIDC read XML: parsing, rasterising onto the canonical volume, consensus, evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from imaging.io.load import load_scan
from imaging.validation import lidc_reads as lr
from tests.conftest import shared_path
from tests.imaging.dicom_synth import AXIAL, write_series

NS = "http://www.nih.gov"


def _roi(uid: str, points: list[tuple[int, int]], inclusion: bool = True, z: float = 0.0) -> str:
    edges = "".join(f"<edgeMap><xCoord>{x}</xCoord><yCoord>{y}</yCoord></edgeMap>" for x, y in points)
    return (f"<roi><imageZposition>{z}</imageZposition><imageSOP_UID>{uid}</imageSOP_UID>"
            f"<inclusion>{'TRUE' if inclusion else 'FALSE'}</inclusion>{edges}</roi>")


def _nodule(nodule_id: str, rois: str) -> str:
    return f"<unblindedReadNodule><noduleID>{nodule_id}</noduleID><characteristics/>{rois}</unblindedReadNodule>"


def _session(reader: str, body: str) -> str:
    return (f"<readingSession><annotationVersion>3.12</annotationVersion>"
            f"<servicingRadiologistID>{reader}</servicingRadiologistID>{body}</readingSession>")


def _square(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _write_xml(path: Path, series_uid: str, sessions: list[str]) -> Path:
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<LidcReadMessage xmlns="{NS}">'
                    f"<ResponseHeader><SeriesInstanceUid>{series_uid}</SeriesInstanceUid></ResponseHeader>"
                    + "".join(sessions) + "</LidcReadMessage>")
    return path


def _series(folder: Path, iop=AXIAL, spacing: float = 2.5) -> tuple[list[str], str]:
    """An 8 x 8 x 5 series (HU - intercept = 100 k + 10 row + column: every pixel unique); SOP UIDs."""
    paths, _, _, series_uid = write_series(folder, n=5, rows=8, cols=8, iop=iop, spacing=spacing)
    return [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths], series_uid


@pytest.fixture
def study(tmp_path: Path) -> tuple[Path, list[str]]:
    """Three readers on a synthetic series: two overlapping squares on slice 2, one small nodule."""
    folder = tmp_path / "study" / "series"
    uids, series_uid = _series(folder)
    sessions = [
        _session("A", _nodule("n1", _roi(uids[2], _square(1, 1, 4, 4))) + _nodule("n2", _roi(uids[4], [(6, 6)]))),
        _session("B", _nodule("n1", _roi(uids[2], _square(2, 2, 5, 5)) + _roi(uids[3], _square(2, 2, 5, 5))
                              + _roi(uids[3], _square(3, 3, 4, 4), inclusion=False))
                 + "<nonNodule><nonNoduleID>x</nonNoduleID><locus><xCoord>1</xCoord><yCoord>1</yCoord></locus>"
                   "</nonNodule>"),
        _session("C", _nodule("n9", _roi(uids[1], [(3, 3)]))),
    ]
    _write_xml(folder / "001.xml", series_uid, sessions)
    return tmp_path / "study", uids


def test_parse_keeps_outlined_nodules_and_holes(study):
    folder, uids = study
    reads = lr.parse_lidc_xml(lr.find_lidc_xml(folder))
    assert [r.reader_id for r in reads.readers] == ["A", "B", "C"]
    assert [len(r.nodules) for r in reads.readers] == [1, 1, 0]  # single points left out
    rois = reads.readers[1].nodules[0].rois
    assert [r.inclusion for r in rois] == [True, True, False]
    assert rois[0].sop_uid == uids[2] and rois[0].points.tolist() == [[2, 2], [5, 2], [5, 5], [2, 5]]


def test_roi_pixels_fill_the_polygon_and_its_boundary():
    roi = lr.LidcRoi("x", 0.0, True, np.array(_square(1, 2, 4, 6)))
    mask = lr.roi_pixels(roi, (8, 8))
    expected = np.zeros((8, 8), bool)
    expected[2:7, 1:5] = True  # rows y 2..6, columns x 1..4
    assert np.array_equal(mask, expected)


def _check_voxels_match_pixels(volume, mask: np.ndarray, expected: dict[int, set[tuple[int, int]]]) -> None:
    """Every masked voxel's HU names the DICOM (slice, row, column) it came from."""
    raw = np.asarray(volume.hu[mask], dtype=np.int64) + 1024
    found: dict[int, set[tuple[int, int]]] = {}
    for value in raw:
        found.setdefault(int(value // 100), set()).add((int(value % 100 // 10), int(value % 10)))
    assert found == expected


@pytest.mark.parametrize("iop", [AXIAL, (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0), (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)])
@pytest.mark.parametrize("spacing", [2.5, -2.5])
def test_reader_mask_lands_on_the_outlined_pixels_in_any_orientation(tmp_path, iop, spacing):
    uids, _ = _series(tmp_path / "s", iop=iop, spacing=spacing)
    volume = load_scan(tmp_path / "s")
    slices = lr.read_slice_geometry(tmp_path / "s")
    nodule = lr.LidcNodule("n", (lr.LidcRoi(uids[1], 0.0, True, np.array(_square(1, 2, 3, 3))),
                                 lr.LidcRoi(uids[3], 0.0, True, np.array([(6, 0), (7, 0)]))))
    mask = lr.reader_mask(lr.LidcReader("A", (nodule,)), slices, volume)
    rows1 = {(r, c) for r in (2, 3) for c in (1, 2, 3)}
    _check_voxels_match_pixels(volume, mask, {1: rows1, 3: {(0, 6), (0, 7)}})


def test_holes_are_subtracted_and_consensus_needs_two_readers(study):
    folder, uids = study
    xml = lr.find_lidc_xml(folder)
    reads = lr.parse_lidc_xml(xml)
    volume = load_scan(xml.parent)
    slices = lr.read_slice_geometry(xml.parent)
    masks = [lr.reader_mask(r, slices, volume) for r in reads.readers]
    b_slice3 = {(r, c) for r in range(2, 6) for c in range(2, 6)} - {(r, c) for r in (3, 4) for c in (3, 4)}
    _check_voxels_match_pixels(volume, masks[1], {2: {(r, c) for r in range(2, 6) for c in range(2, 6)},
                                                 3: b_slice3})
    consensus = lr.consensus_mask(masks)
    _check_voxels_match_pixels(volume, consensus, {2: {(r, c) for r in range(2, 5) for c in range(2, 5)}})
    assert lr.outline_matches(reads, slices) == {"uid": 4, "z": 0, "none": 0}


def test_an_outline_with_an_unknown_sop_uid_is_placed_by_its_z(tmp_path):
    """Copies of LIDC series with regenerated SOP UIDs: the outline's imageZposition finds the image."""
    uids, _ = _series(tmp_path / "s")  # slice k at z = -100 + 2.5 k
    volume = load_scan(tmp_path / "s")
    slices = lr.read_slice_geometry(tmp_path / "s")
    by_z = lr.LidcRoi("1.2.3.4", -95.0, True, np.array(_square(1, 1, 2, 2)))
    lost = lr.LidcRoi("1.2.3.5", -96.2, True, np.array(_square(5, 5, 6, 6)))
    reader = lr.LidcReader("A", (lr.LidcNodule("n", (by_z, lost)),))
    _check_voxels_match_pixels(volume, lr.reader_mask(reader, slices, volume), {2: {(1, 1), (1, 2), (2, 1), (2, 2)}})
    assert lr.outline_matches(lr.LidcReads(None, None, (reader,)), slices) == {"uid": 0, "z": 1, "none": 1}


def test_evaluate_reads_counts_labelled_voxels_and_opacity_outside(study):
    folder, _ = study
    xml = lr.find_lidc_xml(folder)
    reads = lr.parse_lidc_xml(xml)
    volume = load_scan(xml.parent)
    slices = lr.read_slice_geometry(xml.parent)
    masks = [lr.reader_mask(r, slices, volume) for r in reads.readers]
    consensus = lr.consensus_mask(masks)
    lungs = np.ones(volume.shape, np.uint8)
    opacity = np.zeros(volume.shape, np.uint8)
    opacity[np.nonzero(consensus)[0][0]] = 1  # the nodule's whole slice: all 9 voxels + 55 around
    opacity[0, 0, 0] = 2  # one voxel far away
    summary, nodules = lr.evaluate_reads(volume, masks, {"lungs": lungs, "opacity": opacity}, margin_voxels=0)
    assert summary["nodules"] == 1 and summary["opacity_pct"] == 100.0 and summary["in_lungs_pct"] == 100.0
    outside = lungs.astype(bool) & ~consensus
    assert summary["po_outside_pct"] == pytest.approx(100 * 56 / outside.sum())
    dilated, _ = lr.evaluate_reads(volume, masks, {"lungs": lungs, "opacity": opacity})  # 2 voxels in-plane
    assert dilated["po_outside_pct"] == pytest.approx(100 * (64 - 49 + 1) / (lungs.size - 49))
    assert nodules[0]["readers"] == 2 and nodules[0]["opacity_pct"] == 100.0
    assert nodules[0]["volume_ml"] == pytest.approx(9 * volume.voxel_volume_ml)
    markdown = lr.lidc_reads_markdown([{"study": "s", "xml": xml.name, "nodules_per_reader": [1, 1, 0], "po": 1.0,
                                        "outlines_by": {"uid": 4, "z": 0, "none": 0}, "flags": "", **summary,
                                        "nodule_rows": nodules}])
    assert "| s | 001.xml (1, 1, 0) | 4 / 0 / 0 | 1 |" in markdown


def test_not_a_read_message_and_no_xml(tmp_path):
    (tmp_path / "other.xml").write_text("<root/>")
    with pytest.raises(ValueError, match="not a LIDC read message"):
        lr.parse_lidc_xml(tmp_path / "other.xml")
    with pytest.raises(FileNotFoundError):
        lr.find_lidc_xml(tmp_path)


def test_lidc_idri_0001_reads_give_a_solid_nodule_inside_the_body():
    from scipy import ndimage as ndi

    folder = shared_path("lidc_idri_0001")
    xml = lr.find_lidc_xml(folder)
    assert xml.name == "069.xml"
    reads = lr.parse_lidc_xml(xml)
    assert len(reads.readers) == 4
    volume = load_scan(xml.parent)
    slices = lr.read_slice_geometry(xml.parent)
    masks = [lr.reader_mask(r, slices, volume) for r in reads.readers]
    assert lr.outline_matches(reads, slices)["none"] == 0
    # placing the outlines by z alone (as for copies with regenerated SOP UIDs) gives the same masks
    by_z = {f"not-{uid}": geometry for uid, geometry in slices.items()}
    assert all(np.array_equal(m, lr.reader_mask(r, by_z, volume)) for m, r in zip(masks, reads.readers))
    consensus = lr.consensus_mask(masks)
    labels, n = ndi.label(consensus, structure=np.ones((3, 3, 3), bool))
    assert n >= 1
    biggest = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    assert volume.hu[biggest].mean() > -700
    z, y, x = (int(round(c)) for c in np.argwhere(biggest).mean(axis=0))
    body = ndi.binary_fill_holes(volume.hu[z] > -500)
    assert body[y, x]
