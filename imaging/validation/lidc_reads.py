"""Radiologists' nodule outlines (LIDC-IDRI reads) against the toolkit's opacity labels.

Each LIDC-IDRI study comes with an XML file (``LidcReadMessage``) holding the reads of four
radiologists: one ``readingSession`` per reader, each with the nodules of 3 mm or more
that reader outlined (``unblindedReadNodule``; one ``roi`` per image: the image's
``imageSOP_UID``, ``inclusion`` TRUE, or FALSE for a hole, and ``edgeMap`` boundary pixels,
x = column and y = row of the original DICOM image).  Small nodules (one point, no
outline) and non-nodules are left out.  This module

1. parses the reads (:func:`parse_lidc_xml`);
2. rasterises each reader's outlines into a 3-D mask on the grid of the canonical volume
   :func:`imaging.io.load.load_scan` returns (:func:`reader_mask`): each outline is
   filled in its DICOM image (polygon plus the boundary pixels themselves, holes
   subtracted) and its pixels placed through the image's own geometry
   (ImagePositionPatient, ImageOrientationPatient, PixelSpacing) in patient LPS
   coordinates, then into the volume's index grid: no assumption about flips.  The image
   is the one whose SOPInstanceUID the outline names, else (copies of the series with
   regenerated SOP UIDs, as ``lidc_idri_0002`` and ``0003`` in ``../shared/data``) the
   axial image at the outline's ``imageZposition``;
3. keeps the consensus: voxels outlined by at least two readers (:func:`consensus_mask`);
4. compares the consensus nodules with the masks of the default
   :func:`imaging.scoring.scores.score_scan` (:func:`evaluate_reads`): the share of
   nodule voxels labelled opacity and inside the lungs, and the percent opacity outside
   the nodules (a near-healthy LIDC chest should score close to 0 there).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imaging.common.volume import CTVolume
from imaging.scoring.constants import HU_CONSOLIDATION_MAX, HU_GGO_MIN

__all__ = [
    "LidcRoi",
    "LidcNodule",
    "LidcReader",
    "LidcReads",
    "SliceGeometry",
    "parse_lidc_xml",
    "find_lidc_xml",
    "read_slice_geometry",
    "roi_pixels",
    "reader_mask",
    "outline_matches",
    "consensus_mask",
    "evaluate_reads",
    "evaluate_study",
    "lidc_reads_markdown",
]

#: Readers who must outline a voxel for it to count as nodule (the issue's "at least two").
MIN_READERS: int = 2
#: In-plane dilation (voxels) of the consensus nodules before "percent opacity outside them".
OUTSIDE_MARGIN_VOXELS: int = 2
#: HU below which a nodule voxel is lighter than the ground-glass band (never opacity).
HU_BELOW_GGO: float = HU_GGO_MIN
#: HU above which a nodule voxel is denser than the consolidation band (counted as vessel).
HU_ABOVE_CONSOLIDATION: float = HU_CONSOLIDATION_MAX


# ----------------------------------------------------------------------------- the reads


@dataclass(frozen=True)
class LidcRoi:
    """One outline of a nodule on one image.

    Attributes
    ----------
    sop_uid : str
        SOPInstanceUID of the image outlined on.
    z_mm : float
        ``imageZposition`` (patient z, mm) as the XML states it.
    inclusion : bool
        True: the outline bounds nodule; False: it bounds a hole to subtract.
    points : (N, 2) int ndarray
        Boundary pixels ``(x, y)``: x the column, y the row of the DICOM image.
    """

    sop_uid: str
    z_mm: float
    inclusion: bool
    points: np.ndarray


@dataclass(frozen=True)
class LidcNodule:
    """One nodule as one reader outlined it (its outlines on every image it spans)."""

    nodule_id: str
    rois: tuple[LidcRoi, ...]


@dataclass(frozen=True)
class LidcReader:
    """One radiologist's reading session: the nodules of 3 mm or more outlined."""

    reader_id: str
    nodules: tuple[LidcNodule, ...]


@dataclass(frozen=True)
class LidcReads:
    """All reads of one series: the series and study UIDs the XML names, and the readers."""

    series_uid: str | None
    study_uid: str | None
    readers: tuple[LidcReader, ...]


def _strip_namespaces(root: ET.Element) -> ET.Element:
    """The tree with ``{namespace}`` removed from every tag (the reads use ``http://www.nih.gov``)."""
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def _text(element: ET.Element, tag: str) -> str | None:
    found = element.find(tag)
    return None if found is None or found.text is None else found.text.strip()


def _parse_roi(roi: ET.Element) -> LidcRoi:
    points = [(int(float(_text(edge, "xCoord") or "nan")), int(float(_text(edge, "yCoord") or "nan")))
              for edge in roi.findall("edgeMap")]
    return LidcRoi(
        sop_uid=_text(roi, "imageSOP_UID") or "",
        z_mm=float(_text(roi, "imageZposition") or "nan"),
        inclusion=(_text(roi, "inclusion") or "TRUE").upper() == "TRUE",
        points=np.asarray(points, dtype=np.int64).reshape(-1, 2),
    )


def _outlined(nodule: LidcNodule) -> bool:
    """A nodule of 3 mm or more: some outline has more than one boundary pixel."""
    return any(len(roi.points) > 1 for roi in nodule.rois)


def parse_lidc_xml(path: str | Path) -> LidcReads:
    """The reading sessions of a LIDC-IDRI XML file, outlined nodules only.

    Parameters
    ----------
    path : path-like
        A ``LidcReadMessage`` XML file (e.g. ``069.xml``).

    Returns
    -------
    LidcReads
        One :class:`LidcReader` per ``readingSession`` (in file order, a reader without
        outlined nodules included), each with its ``unblindedReadNodule`` elements that
        carry an outline; small nodules (a single point) and ``nonNodule`` are left out.

    Raises
    ------
    ValueError
        The file is not a ``LidcReadMessage``.
    """
    root = _strip_namespaces(ET.parse(path).getroot())
    if root.tag != "LidcReadMessage":
        raise ValueError(f"{path}: not a LIDC read message (root element {root.tag!r})")
    readers = []
    for number, session in enumerate(root.findall("readingSession"), start=1):
        nodules = [LidcNodule(_text(n, "noduleID") or f"nodule {i}", tuple(_parse_roi(r) for r in n.findall("roi")))
                   for i, n in enumerate(session.findall("unblindedReadNodule"), start=1)]
        reader_id = _text(session, "servicingRadiologistID") or f"reader {number}"
        readers.append(LidcReader(reader_id, tuple(n for n in nodules if _outlined(n))))
    header = root.find("ResponseHeader")
    return LidcReads(
        series_uid=None if header is None else _text(header, "SeriesInstanceUid"),
        study_uid=None if header is None else _text(header, "StudyInstanceUID"),
        readers=tuple(readers),
    )


def find_lidc_xml(folder: str | Path) -> Path:
    """The LIDC read XML of a study: inside ``folder`` (any depth), else directly beside it.

    Raises
    ------
    FileNotFoundError
        No ``LidcReadMessage`` XML file inside or beside ``folder``.
    """
    folder = Path(folder)
    candidates = sorted(folder.rglob("*.xml")) + sorted(folder.parent.glob(f"{folder.name}*.xml"))
    for path in candidates:
        try:
            if _strip_namespaces(ET.parse(path).getroot()).tag == "LidcReadMessage":
                return path
        except ET.ParseError:
            continue
    raise FileNotFoundError(f"no LIDC read XML (LidcReadMessage) inside or beside {folder}")


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class SliceGeometry:
    """Where a DICOM image's pixels lie in the patient (LPS, mm).

    Pixel (row r, column c) lies at ``position + c * column_mm * row_dir + r * row_mm * col_dir``
    (DICOM PS3.3 C.7.6.2.1.1).
    """

    position: np.ndarray
    row_dir: np.ndarray
    col_dir: np.ndarray
    row_mm: float
    column_mm: float
    shape: tuple[int, int]

    def to_lps(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(N, 3) LPS positions (mm) of pixels ``(rows[i], cols[i])``."""
        r = np.asarray(rows, dtype=np.float64)[:, None]
        c = np.asarray(cols, dtype=np.float64)[:, None]
        return self.position + c * self.column_mm * self.row_dir + r * self.row_mm * self.col_dir


def read_slice_geometry(series_folder: str | Path) -> dict[str, SliceGeometry]:
    """SOPInstanceUID -> :class:`SliceGeometry` of every DICOM image in a folder (headers only)."""
    import pydicom

    out: dict[str, SliceGeometry] = {}
    for path in sorted(Path(series_folder).iterdir()):
        if not path.is_file() or path.suffix.lower() == ".xml":
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:
            continue
        if "ImagePositionPatient" not in ds or "SOPInstanceUID" not in ds:
            continue
        iop = np.asarray(ds.ImageOrientationPatient, dtype=np.float64)
        row_mm, column_mm = (float(v) for v in ds.PixelSpacing)
        out[str(ds.SOPInstanceUID)] = SliceGeometry(
            np.asarray(ds.ImagePositionPatient, dtype=np.float64), iop[:3], iop[3:],
            row_mm, column_mm, (int(ds.Rows), int(ds.Columns)))
    return out


def _lps_to_index(lps: np.ndarray, volume: CTVolume) -> np.ndarray:
    """(N, 3) continuous (z, y, x) indices of LPS positions in the volume's grid."""
    d = np.asarray(volume.direction, dtype=np.float64)
    ijk = (np.asarray(lps, dtype=np.float64) - np.asarray(volume.origin_mm)) @ d  # = D^T (p - o)
    return (ijk / np.array(volume.spacing_mm[::-1]))[:, ::-1]


# ----------------------------------------------------------------------------- rasterising


def roi_pixels(roi: LidcRoi, shape: tuple[int, int]) -> np.ndarray:
    """(rows, cols) bool mask of one outline on its image: the polygon and its boundary pixels."""
    from skimage.draw import polygon

    mask = np.zeros(shape, dtype=bool)
    x, y = roi.points[:, 0], roi.points[:, 1]
    if len(roi.points) >= 3:
        rr, cc = polygon(y, x, shape)
        mask[rr, cc] = True
    inside = (y >= 0) & (y < shape[0]) & (x >= 0) & (x < shape[1])
    mask[y[inside], x[inside]] = True
    return mask


class _ImageLookup:
    """Which image of the series an outline was drawn on: its SOPInstanceUID, else its z.

    Some copies of the LIDC-IDRI series carry regenerated SOPInstanceUIDs (the series and
    study UIDs kept), so an outline whose ``imageSOP_UID`` is not in the series is placed
    on the axial image whose ImagePositionPatient z equals its ``imageZposition`` (within
    a quarter of the slice gap, 0.1 mm for a single image).
    """

    def __init__(self, slices: Mapping[str, SliceGeometry]) -> None:
        self.slices = slices
        axial = [u for u, g in slices.items() if abs(float(np.cross(g.row_dir, g.col_dir)[2])) > 0.99]
        self.uids = axial
        self.z = np.array([slices[u].position[2] for u in axial], dtype=np.float64)
        gaps = np.diff(np.unique(self.z))
        self.tolerance_mm = 0.25 * float(gaps.min()) if gaps.size else 0.1

    def find(self, roi: LidcRoi) -> tuple[str | None, str]:
        """(SOP UID or None, how: ``"uid"``, ``"z"`` or ``"none"``)."""
        if roi.sop_uid in self.slices:
            return roi.sop_uid, "uid"
        if self.z.size and np.isfinite(roi.z_mm):
            i = int(np.argmin(np.abs(self.z - roi.z_mm)))
            if abs(self.z[i] - roi.z_mm) <= self.tolerance_mm:
                return self.uids[i], "z"
        return None, "none"


def _nodule_images(nodule: LidcNodule, lookup: _ImageLookup) -> dict[str, np.ndarray]:
    """Per image (SOP UID) the nodule's pixels, holes subtracted (outlines on no image left out)."""
    included: dict[str, np.ndarray] = {}
    holes: dict[str, np.ndarray] = {}
    for roi in nodule.rois:
        uid, _ = lookup.find(roi)
        if uid is None:
            continue
        target = included if roi.inclusion else holes
        pixels = roi_pixels(roi, lookup.slices[uid].shape)
        target[uid] = target[uid] | pixels if uid in target else pixels
    for uid, hole in holes.items():
        if uid in included:
            included[uid] &= ~hole
    return included


def _place(mask: np.ndarray, pixels: np.ndarray, geometry: SliceGeometry, volume: CTVolume) -> None:
    """Set the volume voxels of an image's pixels (nearest voxel; off-grid pixels raise)."""
    rows, cols = np.nonzero(pixels)
    index = _lps_to_index(geometry.to_lps(rows, cols), volume)
    nearest = np.rint(index).astype(np.int64)
    if np.abs(index - nearest).max(initial=0.0) > 0.25:
        raise ValueError("an outlined image does not lie on the volume's grid (is it another series?)")
    if ((nearest < 0) | (nearest >= np.array(volume.shape))).any():
        raise ValueError("an outline lies outside the volume")
    mask[nearest[:, 0], nearest[:, 1], nearest[:, 2]] = True


def reader_mask(reader: LidcReader, slices: Mapping[str, SliceGeometry], volume: CTVolume) -> np.ndarray:
    """(Z, Y, X) bool mask of every nodule one reader outlined, on the volume's grid.

    Parameters
    ----------
    reader : LidcReader
    slices : mapping
        SOPInstanceUID -> :class:`SliceGeometry` of the series (:func:`read_slice_geometry`).
        An outline is placed on the image its ``imageSOP_UID`` names, else on the axial
        image at its ``imageZposition``; outlines on neither are left out
        (:func:`outline_matches` counts them).
    volume : CTVolume
        The series as :func:`imaging.io.load.load_scan` returned it (any orientation:
        pixels are placed through patient coordinates).

    Raises
    ------
    ValueError
        An outlined image is not on the volume's grid.
    """
    lookup = _ImageLookup(slices)
    mask = np.zeros(volume.shape, dtype=bool)
    for nodule in reader.nodules:
        for uid, pixels in _nodule_images(nodule, lookup).items():
            _place(mask, pixels, slices[uid], volume)
    return mask


def outline_matches(reads: LidcReads, slices: Mapping[str, SliceGeometry]) -> dict[str, int]:
    """How the outlines found their image: ``{"uid": n, "z": n, "none": n}`` (``none``: left out)."""
    lookup = _ImageLookup(slices)
    counts = {"uid": 0, "z": 0, "none": 0}
    for reader in reads.readers:
        for nodule in reader.nodules:
            for roi in nodule.rois:
                counts[lookup.find(roi)[1]] += 1
    return counts


def consensus_mask(masks: Sequence[np.ndarray], min_readers: int = MIN_READERS) -> np.ndarray:
    """Voxels inside at least ``min_readers`` of the readers' masks."""
    if not masks:
        raise ValueError("no reader masks")
    count = np.sum([np.asarray(m, dtype=np.uint8) for m in masks], axis=0)
    return count >= int(min_readers)


# ----------------------------------------------------------------------------- evaluation


def _percent(part: np.ndarray, whole: np.ndarray) -> float:
    """100 * |part & whole| / |whole| (NaN for an empty ``whole``)."""
    n = int(whole.sum())
    return float(100.0 * (part & whole).sum() / n) if n else float("nan")


def _nodule_rows(volume: CTVolume, masks: Sequence[np.ndarray], consensus: np.ndarray,
                 opacity: np.ndarray, lungs: np.ndarray) -> list[dict[str, Any]]:
    """One row per consensus component (26-connected): size, HU, labels, readers.

    ``below_ggo_pct`` / ``above_consolidation_pct``: nodule voxels lighter than the
    ground-glass band / denser than the consolidation band (never opacity by density);
    ``band_unlabelled_pct``: voxels inside the bands yet not labelled (removed by the
    vessel suppression's shape rule, or outside the lung mask).
    """
    from scipy import ndimage as ndi

    labels, n = ndi.label(consensus, structure=np.ones((3, 3, 3), dtype=bool))
    rows = []
    for number, box in enumerate(ndi.find_objects(labels), start=1):
        part = labels[box] == number
        hu = np.asarray(volume.hu[box], dtype=np.float64)[part]
        in_band = (hu >= HU_BELOW_GGO) & (hu <= HU_ABOVE_CONSOLIDATION)
        centre = [int(round(c.start + m)) for c, m in zip(box, np.argwhere(part).mean(axis=0))]
        rows.append({
            "nodule": number,
            "centre (z, y, x)": tuple(centre),
            "readers": sum(bool((np.asarray(m[box])[part]).any()) for m in masks),
            "volume_ml": float(part.sum() * volume.voxel_volume_ml),
            "mean_hu": float(hu.mean()),
            "below_ggo_pct": float(100.0 * (hu < HU_BELOW_GGO).mean()),
            "above_consolidation_pct": float(100.0 * (hu > HU_ABOVE_CONSOLIDATION).mean()),
            "band_unlabelled_pct": float(100.0 * (in_band & ~opacity[box][part]).mean()),
            "opacity_pct": _percent(opacity[box], part),
            "in_lungs_pct": _percent(lungs[box], part),
        })
    return rows


def evaluate_reads(volume: CTVolume, masks: Sequence[np.ndarray], score_masks: Mapping[str, np.ndarray], *,
                   min_readers: int = MIN_READERS,
                   margin_voxels: int = OUTSIDE_MARGIN_VOXELS) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Compare the readers' consensus nodules with a score's lung and opacity masks.

    Parameters
    ----------
    volume : CTVolume
        The scan scored.
    masks : sequence of (Z, Y, X) bool ndarray
        One mask per reader (:func:`reader_mask`).
    score_masks : mapping
        ``"lungs"`` and ``"opacity"`` label masks (> 0: inside) of
        :attr:`~imaging.scoring.scan_score.ScanScore.masks`.
    min_readers : int
        Readers needed for a consensus voxel.
    margin_voxels : int
        In-plane dilation of the consensus before measuring the opacity outside it.

    Returns
    -------
    summary : dict
        ``nodules``, ``consensus_ml``, ``opacity_pct`` and ``in_lungs_pct`` (of the
        consensus voxels), ``po_masks`` (percent opacity of the masks) and
        ``po_outside_pct`` (opacity / lung outside the dilated consensus), percents.
    nodules : list of dict
        One row per consensus nodule (:func:`_nodule_rows`).
    """
    from scipy import ndimage as ndi

    lungs = np.asarray(score_masks["lungs"]) > 0
    opacity = (np.asarray(score_masks["opacity"]) > 0) & lungs
    consensus = consensus_mask(masks, min_readers)
    near = consensus
    if consensus.any() and margin_voxels > 0:  # (scipy: iterations=0 would dilate until nothing changes)
        near = ndi.binary_dilation(consensus, structure=np.ones((1, 3, 3), dtype=bool), iterations=margin_voxels)
    nodules = _nodule_rows(volume, masks, consensus, opacity, lungs)
    summary = {
        "readers": len(masks),
        "nodules": len(nodules),
        "consensus_ml": float(consensus.sum() * volume.voxel_volume_ml),
        "opacity_pct": _percent(opacity, consensus),
        "in_lungs_pct": _percent(lungs, consensus),
        "po_masks": _percent(opacity, lungs),
        "po_outside_pct": _percent(opacity, lungs & ~near),
    }
    return summary, nodules


def evaluate_study(folder: str | Path, name: str | None = None, *, min_readers: int = MIN_READERS,
                   **score_options: Any) -> dict[str, Any]:
    """Read, rasterise and score one LIDC-IDRI study: its read XML against ``score_scan``.

    Parameters
    ----------
    folder : path-like
        The study folder (e.g. ``../shared/data/lidc_idri_0001``); the XML is found inside
        it (:func:`find_lidc_xml`) and the series read is the folder holding the XML.
    name : str, optional
        The study's name in the results (default: the folder's name).
    min_readers : int
        Readers needed for a consensus voxel.
    **score_options
        Passed to :func:`imaging.scoring.scores.score_scan` (default: its defaults).

    Returns
    -------
    dict
        ``study``, ``xml``, ``nodules_per_reader``, ``outlines_by`` (:func:`outline_matches`), ``po`` (the
        score's percent opacity), ``flags``, the :func:`evaluate_reads` summary and
        ``nodule_rows``.
    """
    from imaging.io.load import load_scan
    from imaging.scoring.scores import score_scan

    folder = Path(folder)
    xml = find_lidc_xml(folder)
    reads = parse_lidc_xml(xml)
    volume = load_scan(xml.parent)
    if reads.series_uid and volume.info.series_uid and reads.series_uid != volume.info.series_uid:
        raise ValueError(f"{xml} reads series {reads.series_uid}, the folder holds {volume.info.series_uid}")
    slices = read_slice_geometry(xml.parent)
    masks = [reader_mask(reader, slices, volume) for reader in reads.readers]
    score = score_scan(volume, **score_options)
    summary, nodules = evaluate_reads(volume, masks, score.masks, min_readers=min_readers)
    return {
        "study": name or folder.name,
        "xml": xml.name,
        "min_readers": int(min_readers),
        "nodules_per_reader": [len(r.nodules) for r in reads.readers],
        "outlines_by": outline_matches(reads, slices),
        "po": float(score.percent_opacity),
        "flags": ";".join(score.quality_flags),
        **summary,
        "nodule_rows": nodules,
    }


# ----------------------------------------------------------------------------- report


def lidc_reads_markdown(studies: Sequence[Mapping[str, Any]], *, target_labelled_pct: float = 80.0,
                        target_po_outside: float = 1.0) -> str:
    """Two Markdown tables: one row per study, then one row per consensus nodule."""
    from imaging.validation.markdown import markdown_table

    summary = [{
        "study": s["study"],
        "reads (nodules per reader)": f"{s['xml']} ({', '.join(str(n) for n in s['nodules_per_reader'])})",
        "outlines placed by UID / z / not": "{uid} / {z} / {none}".format(**s["outlines_by"]),
        "consensus nodules": s["nodules"],
        "consensus mL": s["consensus_ml"],
        f"labelled opacity % (goal ≥ {target_labelled_pct:g})": s["opacity_pct"],
        "inside lung mask %": s["in_lungs_pct"],
        "PO of the scan %": s["po"],
        f"PO outside the nodules % (goal < {target_po_outside:g})": s["po_outside_pct"],
        "flags": s["flags"] or "—",
    } for s in studies]
    nodules = [{
        "study": s["study"],
        "nodule": n["nodule"],
        "centre (z, y, x)": ", ".join(str(v) for v in n["centre (z, y, x)"]),
        "readers": n["readers"],
        "volume mL": n["volume_ml"],
        "mean HU": n["mean_hu"],
        "% < -700 HU": n["below_ggo_pct"],
        "% > +50 HU": n["above_consolidation_pct"],
        "% in -700..+50 HU, not labelled": n["band_unlabelled_pct"],
        "labelled opacity %": n["opacity_pct"],
        "inside lung mask %": n["in_lungs_pct"],
    } for s in studies for n in s["nodule_rows"]]
    digits = {"consensus mL": 2, "volume mL": 3, "mean HU": 0, "consensus nodules": None, "nodule": None,
              "readers": None}
    least = studies[0].get("min_readers", MIN_READERS) if studies else MIN_READERS
    return (f"**Voxels outlined by at least {least} readers, against the default score's masks**\n\n"
            + markdown_table(summary, digits=1, column_digits=digits)
            + "\n\n**Each consensus nodule** (centre: voxel of the canonical volume, slice 0 inferior)\n\n"
            + markdown_table(nodules, digits=1, column_digits=digits))
