"""Lung segmentation (right / left) and lung zones, in the input volume's geometry.

Methods (``segment_lungs(method=...)``):

``"classical"`` (what ``method="auto"`` runs, :data:`AUTO_METHOD`)
    A threshold-and-shape pipeline computed at about 2 mm spacing
    (:data:`imaging.scoring.constants.LUNG_WORKING_SPACING_MM`) and upsampled to the input grid:

    1. air-like voxels (< ``HU_LUNG_THRESHOLD``) that do not touch the in-plane image
       border on their axial slice (removes outside air, the field-of-view circle, the
       air under the table);
    2. 3-D components of at least ``LUNG_MIN_COMPONENT_ML``; gas-only components below
       the lungs (bowel gas) are dropped;
    3. the trachea is found on the upper slices (a small round air component near the
       midline) and the airway is grown from it with explosion control
       (``HU_AIRWAY_START`` lowered towards ``HU_AIRWAY_MIN`` until it stays under
       ``AIRWAY_MAX_ML``), dilated by one voxel and removed: trachea and main bronchi
       are not lung;
    4. the lungs are separated where they touch (erosion until two components appear,
       then a distance-ordered flood back into the mask); right = smaller patient x;
       when both parts lie on one side of the body's midline they are one lung
       (pneumonectomy, collapse) and are labelled whole by that side;
    5. dense disease is put back: on each axial slice and for each lung, holes are
       filled (vessels, nodules, central consolidation) and concavities of the outline
       (convex hull minus lung, bone excluded) are filled when they lie laterally, or
       dorsally (``LUNG_REPAIR_DORSAL_MEDIAL_FRACTION``), and the hull chord closing
       them lies on their outer side (consolidation against the costal pleura,
       dependent collapse); the filled parts then grow up to ``LUNG_REPAIR_GROW_MM``
       through consolidation-like voxels (``HU_REPAIR_GROW_BAND``) to reach the chest
       wall.  Medial / ventral bays (heart, hilum, spine, mediastinum) are never filled,
       nor a hole or bay under the lung's air whose median is organ-dense
       (``HU_ABDOMINAL_ORGAN_MIN``: the diaphragm dome seen through an axial slice) or
       that is airless with a share of fat (``DOME_AIRLESS_FRACTION``,
       ``DOME_FAT_FRACTION``, ``HU_FAT_BAND``: spleen or liver with the fat round it);
    6. envelope repair: disease lying between the aerated lung and the rib cage (a
       crescent against a convex chest wall is no concavity of the outline, and the
       consolidated costophrenic recess has no air at all) is grown into in 3-D, at
       most ``LUNG_ENVELOPE_GROW_MM``, through dense ground-glass
       (``HU_ENVELOPE_GGO_BAND``) and consolidation-like (``HU_REPAIR_GROW_BAND``)
       voxels, crossing at most ``LUNG_ENVELOPE_BRIDGE_MM`` of the partial-volume layer
       between them (and through the partial-volume layer between a lesion's
       ground-glass halo and its consolidated core, ``LUNG_ENVELOPE_PV_LAYER_MM``),
       staying ``LUNG_ENVELOPE_CAGE_MARGIN_MM`` inside the per-slice convex hull of
       the lung and the bone near it (``LUNG_ENVELOPE_RIB_DISTANCE_MM``: ribs, spine,
       sternum; not the shoulder girdle), never above the lung apex, and out of the
       image rows' stretch between the two lungs (mediastinum, heart); slivers thinner than
       ``2 * LUNG_ENVELOPE_MIN_THICKNESS_MM`` (intercostal partial volume) and
       components under ``LUNG_ENVELOPE_MIN_ML`` are dropped.  Fat-range voxels
       (-150..-60 HU) are never crossed far: that is what keeps the heart, the
       mediastinal fat and the chest wall out.

    Known limits (README ``scoring``): consolidation against the heart or mediastinum
    (between the lungs), disease reaching more than 25 mm from aerated lung, and the
    fat-range partial-volume rim of lesions are still missed; percent opacity is
    underestimated on severe phantoms (README table).

``"classical_basic"``
    Steps 1-5 only (the classical method before the envelope repair; kept for
    comparison).

``"hybrid"``
    Steps 1-6, where step 6 may also enter the stretch between the lungs (heart,
    mediastinum) wherever the learned lung mask of
    :func:`models.inference.predict_lungs_and_opacity` says lung; HU bands, rib cage,
    distance and size rules unchanged, the classical boundary kept everywhere else (the
    learned mask alone leaks into the body on real scans; letting it also admit
    fat-range HU raised lidc_idri_0001 to PO 5 %).  Needs torch and the weights.

``"model"``
    The lung mask of :func:`models.inference.predict_lungs_and_opacity` (a 2-D U-Net,
    see the model card), split into right / left by step 4 above.  Imported lazily.

Zones (:func:`lung_zones`): for each lung, upper / middle / lower thirds of its
cranio-caudal extent (slice index in canonical orientation), and ventral / dorsal halves
of its antero-posterior extent on each slice.

Evaluation: README section ``scoring`` and ``scripts/evaluate_lungs.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from imaging.scoring import constants as C
from imaging.common.volume import CTVolume, canonical_axes, from_canonical, to_canonical

__all__ = [
    "segment_lungs",
    "lung_zones",
    "split_lungs",
    "union_with_learned",
    "check_finite_hu",
    "body_midline_x",
    "LUNG_METHODS",
    "AUTO_METHOD",
    "ZONE_CODES",
    "ZONE_NAMES",
    "RIGHT",
    "LEFT",
]

#: Label values of :func:`segment_lungs`.
RIGHT: int = 1
LEFT: int = 2

_LUNGS = ("right", "left")
_THIRDS = ("upper", "middle", "lower")
_HALVES = ("ventral", "dorsal")

#: Zone label value -> name, e.g. ``1 -> "right_upper_ventral"``.  Value =
#: ``1 + 6 * (lung - 1) + 2 * third + half`` with third 0/1/2 = upper/middle/lower and
#: half 0/1 = ventral/dorsal.
ZONE_NAMES: dict[int, str] = {
    1 + 6 * li + 2 * ti + hi: f"{lung}_{third}_{half}"
    for li, lung in enumerate(_LUNGS)
    for ti, third in enumerate(_THIRDS)
    for hi, half in enumerate(_HALVES)
}
#: Zone name -> label value (inverse of :data:`ZONE_NAMES`).
ZONE_CODES: dict[str, int] = {name: code for code, name in ZONE_NAMES.items()}

#: Accepted values of ``segment_lungs(method=...)``.
LUNG_METHODS: tuple[str, ...] = ("auto", "classical", "classical_basic", "model", "hybrid", "union")
_METHODS = LUNG_METHODS
#: What ``method="auto"`` runs (measured best, README section ``scoring``).
AUTO_METHOD: str = "classical"


# ----------------------------------------------------------------------------- geometry
def _block_mean(a: np.ndarray, factors: Sequence[int]) -> np.ndarray:
    """Mean over non-overlapping blocks (edge-replicated to whole blocks), float32.

    In-plane by OpenCV area interpolation slice by slice (exact block means for whole
    factors, ~5x faster than a NumPy reshape-mean), then along z.
    """
    import cv2

    fz, fy, fx = factors
    if fz == fy == fx == 1:
        return a.astype(np.float32, copy=False)
    z, y, x = a.shape
    ny, nx = -(-y // fy), -(-x // fx)
    out = np.empty((z, ny, nx), dtype=np.float32)
    for k in range(z):
        sl = a[k].astype(np.float32)
        if ny * fy != y or nx * fx != x:
            sl = cv2.copyMakeBorder(sl, 0, ny * fy - y, 0, nx * fx - x, cv2.BORDER_REPLICATE)
        out[k] = cv2.resize(sl, (nx, ny), interpolation=cv2.INTER_AREA) if (fy, fx) != (1, 1) else sl
    if fz > 1:
        nz = -(-z // fz)
        if nz * fz != z:
            out = np.concatenate([out, np.repeat(out[-1:], nz * fz - z, axis=0)])
        out = out.reshape(nz, fz, ny, nx).mean(axis=1)
    return out


def _upsample_labels(lab: np.ndarray, factors: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    out = lab
    for axis, f in enumerate(factors):
        if f > 1:
            out = np.repeat(out, f, axis=axis)
    return np.ascontiguousarray(out[: shape[0], : shape[1], : shape[2]])


def _working_factors(spacing_mm: Sequence[float], target_mm: float) -> tuple[int, int, int]:
    return tuple(max(1, int(np.floor(target_mm / s + 0.5))) for s in spacing_mm)  # type: ignore[return-value]


# ----------------------------------------------------------------------------- pipeline
_INPLANE = np.zeros((3, 3, 3), dtype=bool)
_INPLANE[1] = ndi.generate_binary_structure(2, 1)


def _inside_air(low: np.ndarray, threshold_hu: float) -> tuple[np.ndarray, np.ndarray]:
    """Air inside the body (per-slice components not touching the in-plane border) and body."""
    air = low < threshold_hu
    lab, n = ndi.label(air, structure=_INPLANE)
    border = np.zeros(n + 1, dtype=bool)
    border[np.unique(lab[:, [0, -1], :])] = True
    border[np.unique(lab[:, :, [0, -1]])] = True
    border[0] = False
    outside = border[lab]
    return air & ~outside, ~outside


def _find_trachea(inside: np.ndarray, body: np.ndarray, spacing: Sequence[float]) -> np.ndarray | None:
    """Seed voxels of the trachea: a small, roundish air component near the body midline
    on one of the upper slices (searched top-down over the upper 40 % of the air extent)."""
    zs = np.flatnonzero(inside.any(axis=(1, 2)))
    if zs.size == 0:
        return None
    px_mm2 = spacing[1] * spacing[2]
    z_top, z_bot = zs[-1], zs[0]
    z_stop = z_top - int(0.4 * (z_top - z_bot + 1))
    for z in range(z_top, max(z_stop, z_bot) - 1, -1):
        lab, n = ndi.label(inside[z])
        if n == 0:
            continue
        bx = np.flatnonzero(body[z].any(axis=0))
        if bx.size == 0:
            continue
        mid_x = 0.5 * (bx[0] + bx[-1])
        half_w = 0.5 * (bx[-1] - bx[0] + 1)
        objs = ndi.find_objects(lab)
        for i, sl in enumerate(objs, start=1):
            comp = lab[sl] == i
            area_mm2 = comp.sum() * px_mm2
            if not 80.0 <= area_mm2 <= 800.0:  # trachea: 10-32 mm diameter
                continue
            h = (sl[0].stop - sl[0].start) * spacing[1]
            w = (sl[1].stop - sl[1].start) * spacing[2]
            if max(h, w) > 3.0 * min(h, w) or max(h, w) > 40.0:
                continue
            cx = 0.5 * (sl[1].start + sl[1].stop - 1)
            if abs(cx - mid_x) > 0.2 * half_w:
                continue
            seed = np.zeros_like(inside)
            seed[z][lab == i] = True
            return seed
    return None


def _grow_airway(low: np.ndarray, candidates: np.ndarray, seed: np.ndarray, voxel_ml: float) -> np.ndarray | None:
    """Airway lumen grown from ``seed`` with explosion control, or None when it always leaks."""
    t = C.HU_AIRWAY_START
    while t >= C.HU_AIRWAY_MIN:
        mask = candidates & (low < t)
        lab, _ = ndi.label(mask, structure=ndi.generate_binary_structure(3, 1))
        ids = np.unique(lab[seed & mask])
        ids = ids[ids > 0]
        if ids.size == 0:
            return None
        airway = np.isin(lab, ids)
        if airway.sum() * voxel_ml <= C.AIRWAY_MAX_ML:
            return airway
        t -= 15.0
    return None


def split_lungs(mask: np.ndarray, *, spacing_mm: Sequence[float], midline_x: float | None = None) -> np.ndarray:
    """Split a (canonical) lung mask into right (1) and left (2) lungs.

    Parameters
    ----------
    mask : (Z, Y, X) bool ndarray
        Both lungs, canonical orientation (column index increases towards the patient's
        left).
    spacing_mm : (3,) float
        Voxel spacing (z, y, x), mm.
    midline_x : float, optional
        Column (canonical x index) of the body's sagittal midline.  When given and the
        two parts found both have their centre on the same side of it, the mask is one
        lung (pneumonectomy, a collapsed or unseen lung: its parts are lobes or halves,
        not right and left) and is labelled whole as the lung of that side.

    Returns
    -------
    (Z, Y, X) uint8 ndarray
        0 background, 1 right lung, 2 left lung.  Components smaller than
        ``LUNG_MIN_COMPONENT_ML / 10`` are dropped.

    Notes
    -----
    When the two largest components are both substantial they are the lungs.  Otherwise
    the mask is eroded (up to 8 times) until it falls into two substantial parts, which
    are then flooded back into the mask in order of distance.  If that fails (a single
    lung, or lungs fused over a long stretch) the mask is cut at the sagittal plane
    through its centre of mass, unless ``midline_x`` shows it to be one lung.

    Examples
    --------
    >>> m = np.zeros((4, 10, 20), bool); m[:, 2:8, 2:9] = True; m[:, 2:8, 11:18] = True
    >>> lab = split_lungs(m, spacing_mm=(5.0, 10.0, 10.0))
    >>> int(lab[0, 4, 3]), int(lab[0, 4, 15])
    (1, 2)
    >>> one = np.zeros((4, 10, 20), bool); one[:, 2:8, 11:18] = True   # a left lung alone
    >>> np.unique(split_lungs(one, spacing_mm=(5.0, 10.0, 10.0), midline_x=9.5)).tolist()
    [0, 2]
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise ValueError(f"mask must be a 3-D (z, y, x) array, got shape {mask.shape}")
    if midline_x is not None and not np.isfinite(midline_x):
        raise ValueError(f"midline_x must be a finite column index or None, got {midline_x!r}")
    voxel_ml = float(np.prod(spacing_mm)) / 1000.0
    out = np.zeros(mask.shape, dtype=np.uint8)
    if not mask.any():
        return out
    lab, n = ndi.label(mask)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    order = np.argsort(sizes)[::-1]
    min_vox = max(1, int(C.LUNG_MIN_COMPONENT_ML / 10.0 / voxel_ml))
    keep = [i for i in order if sizes[i] >= min_vox]
    if not keep:
        return out
    xs = np.arange(mask.shape[2])

    def x_centre(m: np.ndarray) -> float:
        return float((m.sum(axis=(0, 1)) * xs).sum() / max(m.sum(), 1))

    big = sizes[keep[0]]
    if len(keep) >= 2 and sizes[keep[1]] >= 0.15 * big:
        a, b = lab == keep[0], lab == keep[1]
        xa, xb = x_centre(a), x_centre(b)
        right, left = (a, b) if xa < xb else (b, a)
        rest = keep[2:]
    else:
        main = lab == keep[0]
        parts = _erosion_split(main, big)
        if parts is None:
            xc = x_centre(main)
            right = main & (xs[None, None, :] < xc)
            left = main & ~right
        else:
            right, left = parts
        rest = keep[1:]
    if midline_x is not None and right.any() and left.any():
        xr, xl = x_centre(right), x_centre(left)
        if (xr < midline_x) == (xl < midline_x):  # both parts on one side: one lung
            one, none = right | left, np.zeros_like(right)
            right, left = (one, none) if xr < midline_x else (none, one)
    out[right] = RIGHT
    out[left] = LEFT
    if rest:
        xr, xl = x_centre(out == RIGHT), x_centre(out == LEFT)
        if (out == LEFT).any() and (out == RIGHT).any():
            mid = 0.5 * (xr + xl)
        else:
            mid = mask.shape[2] / 2 if midline_x is None else midline_x
        for i in rest:
            comp = lab == i
            out[comp] = RIGHT if x_centre(comp) < mid else LEFT
    return out


def _erosion_split(main: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    st = ndi.generate_binary_structure(3, 1)
    box = ndi.find_objects(main.astype(np.uint8))[0]
    sub = main[box]
    eroded = sub
    for it in range(1, 9):
        eroded = ndi.binary_erosion(eroded, structure=st)
        lab, n = ndi.label(eroded)
        if n < 2:
            if n == 0:
                return None
            continue
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        a_id, b_id = np.argsort(sizes)[::-1][:2]
        if sizes[b_id] < 0.15 * sizes[a_id]:
            continue
        # flood the two cores back into the mask, one voxel layer at a time
        marks = np.zeros(sub.shape, dtype=np.uint8)
        marks[lab == a_id] = 1
        marks[lab == b_id] = 2
        for _ in range(it + 2):
            free = sub & (marks == 0)
            if not free.any():
                break
            grow_a = ndi.binary_dilation(marks == 1, structure=st) & free
            grow_b = ndi.binary_dilation(marks == 2, structure=st) & free & ~grow_a
            marks[grow_a] = 1
            marks[grow_b] = 2
        xs = np.arange(sub.shape[2])
        a = marks == 1
        b = marks == 2
        xa = (a.sum(axis=(0, 1)) * xs).sum() / max(a.sum(), 1)
        xb = (b.sum(axis=(0, 1)) * xs).sum() / max(b.sum(), 1)
        left_over = sub & (marks == 0)  # small bits cut off by erosion: nearer side
        if left_over.any():
            side_a = np.broadcast_to(np.abs(xs - xa) <= np.abs(xs - xb), sub.shape)
            a = a | (left_over & side_a)
            b = b | (left_over & ~side_a)
        full_a = np.zeros(main.shape, dtype=bool)
        full_b = np.zeros(main.shape, dtype=bool)
        full_a[box] = a
        full_b[box] = b
        return (full_a, full_b) if xa < xb else (full_b, full_a)
    return None


def _body_midline_x(body: np.ndarray, lungs: np.ndarray) -> float | None:
    """Column of the body's sagittal midline: the median, over the slices holding lung,
    of the centre of the body's extent on the image rows that hold lung (the table below
    left out); slices where that extent touches the image's side edges are skipped (body
    cut by the field of view).  None when no slice qualifies."""
    centres = []
    for z in np.flatnonzero(lungs.any(axis=(1, 2))):
        rows = lungs[z].any(axis=1)
        cols = np.flatnonzero(body[z][rows].any(axis=0))
        if cols.size and cols[0] > 0 and cols[-1] < body.shape[2] - 1:
            centres.append(0.5 * (cols[0] + cols[-1]))
    return float(np.median(centres)) if centres else None


def body_midline_x(hu: np.ndarray, lungs: np.ndarray, *, spacing_mm: Sequence[float]) -> float | None:
    """Column of the body's sagittal midline in a canonical volume (for :func:`split_lungs`).

    Parameters
    ----------
    hu : (Z, Y, X) ndarray
        CT in HU, canonical orientation.
    lungs : (Z, Y, X) bool ndarray
        Lung voxels (both lungs, any labels > 0).
    spacing_mm : (3,) float
        Voxel spacing (z, y, x), mm.

    Returns
    -------
    float or None
        Column index, found as in the classical lung mask (body = all but the air
        touching the image edge, at ``LUNG_WORKING_SPACING_MM``); None when the body is
        cut by the image's side edges on every lung slice.

    Examples
    --------
    >>> hu = np.full((4, 20, 40), -1000, np.int16); hu[:, 2:18, 5:31] = 40
    >>> body_midline_x(hu, hu > 0, spacing_mm=(1.0, 1.0, 1.0))
    17.5
    """
    factors = _working_factors(spacing_mm, C.LUNG_WORKING_SPACING_MM)
    low = _block_mean(hu, factors)
    _, body = _inside_air(low, C.HU_LUNG_THRESHOLD)
    mid = _body_midline_x(body, _block_mean(np.asarray(lungs, dtype=bool), factors) >= 0.5)
    return None if mid is None else (mid + 0.5) * factors[2] - 0.5


def _body_radius(body: np.ndarray) -> np.ndarray:
    """Per slice, each voxel's distance from the body centre in units of the body's
    half-width / half-depth (0 at the centre, about 1 at the skin), float32."""
    out = np.zeros(body.shape, dtype=np.float32)
    yy, xx = np.mgrid[0 : body.shape[1], 0 : body.shape[2]].astype(np.float32)
    for z in range(body.shape[0]):
        rows = np.flatnonzero(body[z].any(axis=1))
        cols = np.flatnonzero(body[z].any(axis=0))
        if rows.size == 0:
            continue
        cy, cx = 0.5 * (rows[0] + rows[-1]), 0.5 * (cols[0] + cols[-1])
        hy, hx = max(1.0, 0.5 * (rows[-1] - rows[0])), max(1.0, 0.5 * (cols[-1] - cols[0]))
        out[z] = np.hypot((yy - cy) / hy, (xx - cx) / hx)
    return out


def _first_air(labels: np.ndarray) -> np.ndarray:
    """Per (y, x) column, the lowest slice holding lung (slice count when none)."""
    any_air = labels > 0
    return np.where(any_air.any(axis=0), np.argmax(any_air, axis=0), labels.shape[0])


def _organ_like(low: np.ndarray, first_air: np.ndarray, z: int, comp: np.ndarray,
                spacing: Sequence[float]) -> bool:
    """A hole or bay ``comp`` of slice ``z`` that is an abdominal organ's dome, not lung.

    Mostly under the lung's air (``first_air``, :func:`_first_air`), and the footprint over
    the slab from 5 mm below up to this slice (the dome cap itself is partial volume) is
    organ-dense (``HU_ABDOMINAL_ORGAN_MIN``), or airless with a share of fat
    (``DOME_AIRLESS_FRACTION``, ``DOME_FAT_FRACTION``: an organ dome with its fat; lung
    holds no fat, and consolidation keeps some air or ground-glass).
    """
    if (z < first_air)[comp].mean() <= 0.5:
        return False
    k_below = max(1, int(round(5.0 / spacing[0])))
    slab = low[max(0, z - k_below) : z + 1][:, comp]
    if np.median(slab) >= C.HU_ABDOMINAL_ORGAN_MIN:
        return True
    airless = float((slab >= C.HU_CONSOLIDATION_MIN).mean())
    fat = float(((slab >= C.HU_FAT_BAND[0]) & (slab <= C.HU_FAT_BAND[1])).mean())
    return airless >= C.DOME_AIRLESS_FRACTION and fat >= C.DOME_FAT_FRACTION


def _repair(labels: np.ndarray, low: np.ndarray, body: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Fill holes and lateral/dorsal outline concavities slice by slice (see module notes)."""
    import cv2

    out = labels.copy()
    not_bone = (low < C.HU_BONE_MIN) & body
    min_px = max(4, int(100.0 / (spacing[1] * spacing[2])))  # ignore concavities < 1 cm²
    radius = _body_radius(body)
    # an axial slice through the top of the diaphragm dome shows liver/spleen as a hole
    # or bay inside the lung outline: never filled (_organ_like)
    first_air = _first_air(labels)
    rim_kernel = np.ones((3, 3), dtype=np.uint8)

    def organ_like(z: int, comp: np.ndarray) -> bool:
        return _organ_like(low, first_air, z, comp, spacing)

    added = np.zeros(labels.shape, dtype=bool)
    for z in np.flatnonzero(labels.any(axis=(1, 2))):
        for lung in (RIGHT, LEFT):
            m = (labels[z] == lung).astype(np.uint8)
            if m.sum() < min_px:
                continue
            free = (out[z] == 0) | (out[z] == lung)
            contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            filled = np.zeros_like(m)
            cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
            keep = m.astype(bool)
            # holes: vessels, nodules, central consolidation (not the dome top)
            holes = (filled.astype(bool) & ~keep & free).astype(np.uint8)
            n, cl = cv2.connectedComponents(holes, connectivity=4)
            for i in range(1, n):
                comp = cl == i
                if not organ_like(z, comp):
                    keep |= comp
            hull_img = np.zeros_like(m)
            cv2.fillConvexPoly(hull_img, cv2.convexHull(np.vstack(contours)), 1)
            conc = (hull_img.astype(bool) & ~filled.astype(bool) & not_bone[z] & free).astype(np.uint8)
            n, cl, stats, cent = cv2.connectedComponentsWithStats(conc, connectivity=4)
            if n > 1:
                # Two rules, both required.  (1) Lateral / dorsal: the concavity is
                # displaced laterally or dorsally from the lung's centre (medial and
                # ventral bays hold the heart, hilum, spine, mediastinum).  (2) Chord:
                # disease against the chest wall has lung wrapped round it on the inside,
                # so the hull chord closing the concavity lies farther from the body
                # centre than the concavity itself; an organ seen in a crescent of lung
                # (the diaphragm dome) is closed on its central side.
                ys, xs = np.nonzero(m)
                cy, cx = ys.mean(), xs.mean()
                w = xs.max() - xs.min() + 1
                h = ys.max() - ys.min() + 1
                side = -1.0 if lung == RIGHT else 1.0
                rad = radius[z]
                rim = hull_img.astype(bool) & ~cv2.erode(hull_img, rim_kernel).astype(bool)
                for i in range(1, n):
                    if stats[i, cv2.CC_STAT_AREA] < min_px:
                        continue
                    lateral = side * (cent[i][0] - cx)
                    dorsal = cent[i][1] - cy
                    if not (lateral > 0.1 * w or (dorsal > 0.1 * h and lateral > -C.LUNG_REPAIR_DORSAL_MEDIAL_FRACTION * w)):
                        continue
                    comp = cl == i
                    chord = comp & rim
                    if chord.any() and rad[chord].mean() > rad[comp].mean() and not organ_like(z, comp):
                        keep |= comp
                        added[z] |= comp
            out[z][keep & free] = lung
    if C.LUNG_REPAIR_GROW_MM > 0 and added.any():
        steps = max(1, int(round(C.LUNG_REPAIR_GROW_MM / min(spacing[1], spacing[2]))))
        allowed = (out == 0) & body & (low >= C.HU_REPAIR_GROW_BAND[0]) & (low <= C.HU_REPAIR_GROW_BAND[1])
        for lung in (RIGHT, LEFT):
            seed = added & (out == lung)
            if seed.any():
                grown = ndi.binary_dilation(seed, structure=_INPLANE, iterations=steps, mask=allowed | seed)
                out[grown & allowed] = lung
                allowed &= ~grown
    return out


def _rib_cage(low: np.ndarray, body: np.ndarray, lungs: np.ndarray, slices: np.ndarray,
              spacing: Sequence[float]) -> np.ndarray:
    """Per axial slice in ``slices``, the convex hull of the lungs and of the bone voxels
    within ``LUNG_ENVELOPE_RIB_DISTANCE_MM`` of them (ribs, spine, sternum hug the lung;
    clavicles, scapulae and humeri lie farther out): the thoracic cage."""
    import cv2

    bone = (low >= C.HU_BONE_MIN) & body
    out = np.zeros(low.shape, dtype=bool)
    img = np.zeros(low.shape[1:], dtype=np.uint8)
    syx = float(min(spacing[1], spacing[2]))
    for z in np.flatnonzero(slices):
        near = lungs[z]
        if near.any() and bone[z].any():
            dist = cv2.distanceTransform((~lungs[z]).astype(np.uint8), cv2.DIST_L2, 5) * syx
            near = near | (bone[z] & (dist <= C.LUNG_ENVELOPE_RIB_DISTANCE_MM))
        pts = np.argwhere(near)
        if len(pts) < 3:
            continue
        img[:] = 0
        cv2.fillConvexPoly(img, cv2.convexHull(pts[:, ::-1].astype(np.int32)), 1)
        out[z] = img.astype(bool)
    return out


def _between_lungs(labels: np.ndarray) -> np.ndarray:
    """Voxels lying, on their own image row, between the right lung's medial edge and the
    left lung's medial edge (the mediastinum and heart wherever both lungs are present)."""
    x = labels.shape[2]
    xs = np.arange(x)
    r, l = labels == RIGHT, labels == LEFT
    r_any, l_any = r.any(axis=2), l.any(axis=2)
    xr = np.where(r_any, x - 1 - np.argmax(r[:, :, ::-1], axis=2), -1)
    xl = np.where(l_any, np.argmax(l, axis=2), x)
    return (xs > xr[..., None]) & (xs < xl[..., None]) & (r_any & l_any)[..., None]


def _open_inplane(mask: np.ndarray, radius_mm: float, spacing_yx: float) -> np.ndarray:
    """Slice-by-slice opening with a disk of ``radius_mm`` (Euclidean distance maps)."""
    import cv2

    out = mask.copy()
    for z in np.flatnonzero(mask.any(axis=(1, 2))):
        core = cv2.distanceTransform(mask[z].astype(np.uint8), cv2.DIST_L2, 5) * spacing_yx > radius_mm
        if not core.any():
            out[z] = False
            continue
        back = cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, 5) * spacing_yx
        out[z] &= back <= radius_mm + 0.5 * spacing_yx
    return out


def _envelope_repair(labels: np.ndarray, low: np.ndarray, body: np.ndarray, spacing: Sequence[float], *,
                     within: np.ndarray | None = None) -> np.ndarray:
    """Step 6: disease between the aerated lung and the rib cage (see module notes).

    Grows each lung (3-D, at most ``LUNG_ENVELOPE_GROW_MM``) through dense-GGO and
    consolidation-like voxels (``HU_ENVELOPE_GGO_BAND``, ``HU_REPAIR_GROW_BAND``; the
    partial-volume layer between them crossed for at most ``LUNG_ENVELOPE_BRIDGE_MM``)
    that lie inside the rib cage (``LUNG_ENVELOPE_CAGE_MARGIN_MM`` inside the hull of the
    lung and the bone near it, :func:`_rib_cage`)
    and not between the lungs on their image row (mediastinum, heart).  Slivers thinner
    than ``2 * LUNG_ENVELOPE_MIN_THICKNESS_MM`` and components under
    ``LUNG_ENVELOPE_MIN_ML`` are dropped.  ``within`` (the learned lung, method
    ``"hybrid"``) lifts the between-the-lungs exclusion where the learned mask says lung
    (consolidation against the heart or mediastinum).
    """
    import cv2

    lungs = labels > 0
    if not lungs.any():
        return labels
    syx = float(min(spacing[1], spacing[2]))
    # never above the apex; down to LUNG_ENVELOPE_GROW_MM below the lowest air (an
    # airless consolidated costophrenic recess)
    zs = np.flatnonzero(lungs.any(axis=(1, 2)))
    reach = np.zeros(lungs.shape[0], dtype=bool)
    reach[max(0, zs[0] - int(round(C.LUNG_ENVELOPE_GROW_MM / spacing[0]))) : zs[-1] + 1] = True
    k = int(round(C.LUNG_ENVELOPE_RIB_Z_MM / spacing[0]))
    near_lungs = ndi.maximum_filter1d(lungs, size=2 * k + 1, axis=0) if k > 0 else lungs
    cage = _rib_cage(low, body, near_lungs, reach, spacing)
    margin = int(round(C.LUNG_ENVELOPE_CAGE_MARGIN_MM / syx))
    if margin > 0:
        cage = ndi.binary_erosion(cage, structure=_INPLANE, iterations=margin)
    outside_mediastinum = ~_between_lungs(labels)
    if within is not None:
        outside_mediastinum |= within
    allowed = cage & body & ~lungs & outside_mediastinum
    g0, g1 = C.HU_ENVELOPE_GGO_BAND
    c0, c1 = C.HU_REPAIR_GROW_BAND
    dense = ((low >= g0) & (low <= g1)) | ((low >= c0) & (low <= c1))
    between = (low > g1) & (low < c0)  # partial volume between the bands (and fat)
    # the partial-volume layer between a lesion's ground-glass halo and its consolidated
    # core: "between" voxels within LUNG_ENVELOPE_PV_LAYER_MM of both bands are crossed
    if C.LUNG_ENVELOPE_PV_LAYER_MM > 0:
        k = max(1, int(round(C.LUNG_ENVELOPE_PV_LAYER_MM / syx)))
        near_ggo = ndi.binary_dilation((low >= g0) & (low <= g1), structure=_INPLANE, iterations=k)
        near_con = ndi.binary_dilation((low >= c0) & (low <= c1), structure=_INPLANE, iterations=k)
        dense |= between & near_ggo & near_con
    band = allowed & dense
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    for z in np.flatnonzero(band.any(axis=(1, 2))):
        band[z] = cv2.morphologyEx(band[z].astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
    trans = allowed & between
    bridge_steps = max(1, int(round(C.LUNG_ENVELOPE_BRIDGE_MM / syx)))
    bridge = ndi.binary_dilation(lungs, structure=_INPLANE, iterations=bridge_steps, mask=trans | lungs) & trans
    seed = lungs | bridge
    st = ndi.generate_binary_structure(3, 1)
    steps = max(1, int(round(C.LUNG_ENVELOPE_GROW_MM / syx)))
    grown = ndi.binary_dilation(seed, structure=st, iterations=steps, mask=band | seed) & band
    near = ndi.binary_dilation(grown, structure=_INPLANE, iterations=bridge_steps)
    add = grown | (bridge & near)
    if C.LUNG_ENVELOPE_MIN_THICKNESS_MM > 0:
        add = _open_inplane(add, C.LUNG_ENVELOPE_MIN_THICKNESS_MM, syx)
    if not add.any():
        return labels
    comp, n = ndi.label(add, structure=st)
    sizes = np.bincount(comp.ravel()) * (float(np.prod(spacing)) / 1000.0)
    sizes[0] = 0.0
    add = (sizes >= C.LUNG_ENVELOPE_MIN_ML)[comp]
    if not add.any():
        return labels
    # each added voxel joins the nearest lung
    _, idx = ndi.distance_transform_edt(~lungs, sampling=spacing, return_indices=True)
    out = labels.copy()
    out[add] = labels[tuple(i[add] for i in idx)]
    return out


def _classical_canonical(hu: np.ndarray, spacing: Sequence[float], *, threshold_hu: float,
                         working_spacing_mm: float, envelope: bool = True,
                         learned: np.ndarray | None = None) -> np.ndarray:
    factors = _working_factors(spacing, working_spacing_mm)
    low = _block_mean(hu, factors)
    ls = tuple(s * f for s, f in zip(spacing, factors))
    voxel_ml = float(np.prod(ls)) / 1000.0
    inside, body = _inside_air(low, threshold_hu)
    lab, n = ndi.label(inside)
    if n == 0:
        return np.zeros(hu.shape, dtype=np.uint8)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    min_vox = C.LUNG_MIN_COMPONENT_ML / voxel_ml
    ids = np.flatnonzero(sizes >= min_vox)
    if ids.size == 0:
        return np.zeros(hu.shape, dtype=np.uint8)
    # bowel gas: a component lying wholly below the top of the largest component's lower
    # third and almost pure gas (mean < HU_GAS_MAX) is not lung
    largest = int(np.argmax(sizes))
    objs = ndi.find_objects(lab)
    zl = objs[largest - 1][0]
    z_low_third = zl.start + (zl.stop - zl.start) / 3.0
    means = ndi.mean(low, lab, ids)
    keep_ids = [int(i) for i, mu in zip(ids, means)
                if i == largest or not (objs[i - 1][0].stop <= z_low_third and mu < C.HU_GAS_MAX)]
    cand = np.isin(lab, keep_ids)
    seed = _find_trachea(cand, body, ls)
    if seed is not None:
        airway = _grow_airway(low, cand, seed, voxel_ml)
        if airway is not None:
            cand &= ~ndi.binary_dilation(airway, structure=ndi.generate_binary_structure(3, 1))
    labels = split_lungs(cand, spacing_mm=ls, midline_x=_body_midline_x(body, cand))
    labels = _repair(labels, low, body, ls)
    if envelope:
        within = None if learned is None else _block_mean(learned.astype(np.float32), factors) >= 0.5
        labels = _envelope_repair(labels, low, body, ls, within=within)
    return _upsample_labels(labels, factors, hu.shape)


def _model_canonical(hu: np.ndarray, spacing: Sequence[float], *, working_spacing_mm: float) -> np.ndarray:
    from models.inference import predict_lungs_and_opacity  # lazy: torch

    mask, _ = predict_lungs_and_opacity(hu, spacing_mm=tuple(spacing))
    mask = np.asarray(mask, dtype=bool)
    factors = _working_factors(spacing, working_spacing_mm)
    low = _block_mean(mask.astype(np.float32), factors) >= 0.5
    ls = tuple(s * f for s, f in zip(spacing, factors))
    midline = body_midline_x(hu, mask, spacing_mm=spacing) if low.any() else None
    lab = _upsample_labels(split_lungs(low, spacing_mm=ls, midline_x=None if midline is None
                                       else (midline + 0.5) / factors[2] - 0.5), factors, hu.shape)
    out = np.where(mask, lab, 0).astype(np.uint8)
    # model voxels whose low-res block fell outside: side of the sagittal midline
    orphan = mask & (out == 0)
    if orphan.any():
        xs = np.arange(hu.shape[2])
        r, l = out == RIGHT, out == LEFT
        xr = (r.sum(axis=(0, 1)) * xs).sum() / max(r.sum(), 1)
        xl = (l.sum(axis=(0, 1)) * xs).sum() / max(l.sum(), 1)
        if r.any() and l.any():
            mid = 0.5 * (xr + xl)
        else:  # one lung: the body's midline when known
            mid = hu.shape[2] / 2 if midline is None else midline
        side = np.where(xs < mid, RIGHT, LEFT).astype(np.uint8)
        out[orphan] = np.broadcast_to(side, hu.shape)[orphan]
    return out


def check_finite_hu(volume: CTVolume) -> None:
    """Raise :class:`~imaging.common.errors.NotCTVolumeError` when ``volume.hu`` holds NaN or
    infinite voxels (a reader or resampler fault): they would silently drop out of the
    lung mask and the percents instead of being scored.

    Parameters
    ----------
    volume : CTVolume
        Integer volumes pass without a look; float ones are checked voxel by voxel.

    Raises
    ------
    NotCTVolumeError
        With the count of non-finite voxels and the (z, y, x) index of the first.

    Examples
    --------
    >>> hu = np.zeros((2, 3, 3), np.float32); hu[1, 2, 0] = np.nan
    >>> check_finite_hu(CTVolume(hu, (1.0, 1.0, 1.0)))
    Traceback (most recent call last):
    ...
    imaging.common.errors.NotCTVolumeError: volume.hu holds 1 NaN / infinite voxel(s) (first at z, y, x = 1, 2, 0): fill them (e.g. with -1024 HU, air) before scoring
    """
    hu = volume.hu
    if not np.issubdtype(hu.dtype, np.floating) or np.isfinite(hu).all():
        return
    from imaging.common.errors import NotCTVolumeError

    bad = ~np.isfinite(hu)
    first = ", ".join(str(int(i)) for i in np.unravel_index(int(np.argmax(bad)), hu.shape))
    raise NotCTVolumeError(
        f"volume.hu holds {int(np.count_nonzero(bad))} NaN / infinite voxel(s) (first at z, y, x = {first}): "
        "fill them (e.g. with -1024 HU, air) before scoring")


def model_available() -> bool:
    """True when the learned lung/opacity model and its weights can be used."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("models")
    if spec is None or spec.origin is None or importlib.util.find_spec("models.inference") is None:
        return False
    weights = Path(spec.origin).resolve().parent / "weights" / "opacity_unet.pt"
    return weights.is_file()


def segment_lungs(
    volume: CTVolume,
    *,
    method: str = "auto",
    threshold_hu: float = C.HU_LUNG_THRESHOLD,
    working_spacing_mm: float = C.LUNG_WORKING_SPACING_MM,
) -> np.ndarray:
    """Right and left lungs of a CT volume, in the volume's own geometry.

    Parameters
    ----------
    volume : CTVolume
        Chest CT in HU, any orientation (handled internally in canonical LPS order).
    method : {"auto", "classical", "classical_basic", "model", "hybrid", "union"}
        ``"union"`` is the classical mask plus the learned lung voxels connected to it
        (:func:`union_with_learned`).  ``"auto"`` runs :data:`AUTO_METHOD` (``"classical"``), the method measured best
        on the evaluation data (README section ``scoring``); ``"classical_basic"`` is
        the classical pipeline without the envelope repair (step 6).  ``"model"`` and
        ``"hybrid"`` need the ``models`` weights and torch (see the module notes).
    threshold_hu : float
        Air-like threshold for the initial mask, HU (``HU_LUNG_THRESHOLD``).
    working_spacing_mm : float
        Approximate spacing at which the classical mask is computed, mm.

    Returns
    -------
    (Z, Y, X) uint8 ndarray
        Same shape as ``volume.hu``: 0 background, 1 right lung, 2 left lung.  All zero
        when no lung is found (the caller decides whether that is an error; see
        :func:`imaging.scoring.scores.score_scan`).

    Examples
    --------
    >>> hu = np.full((12, 40, 60), 40, np.int16)          # soft-tissue body
    >>> hu[:, :, :2] = hu[:, :, -2:] = -1000               # outside air
    >>> hu[2:10, 8:32, 8:26] = -850; hu[2:10, 8:32, 34:52] = -850
    >>> lab = segment_lungs(CTVolume(hu, (5.0, 5.0, 5.0)))
    >>> int(lab[5, 20, 15]), int(lab[5, 20, 45]), int(lab[0, 0, 0])
    (1, 2, 0)
    """
    if not isinstance(volume, CTVolume):
        raise TypeError(f"volume must be a CTVolume, got {type(volume).__name__}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    if not np.isfinite(threshold_hu):
        raise ValueError(f"threshold_hu must be finite, got {threshold_hu}")
    if not working_spacing_mm > 0:
        raise ValueError(f"working_spacing_mm must be > 0, got {working_spacing_mm}")
    check_finite_hu(volume)
    perm, flips = canonical_axes(volume.direction)
    hu = np.ascontiguousarray(to_canonical(volume.hu, perm, flips))
    spacing = tuple(volume.spacing_mm[p] for p in perm)
    if method == "auto":
        method = AUTO_METHOD
    if method == "model":
        lab = _model_canonical(hu, spacing, working_spacing_mm=working_spacing_mm)
    elif method == "hybrid":
        from models.inference import predict_lungs_and_opacity  # lazy: torch

        learned, _ = predict_lungs_and_opacity(hu, spacing_mm=tuple(spacing))
        lab = _classical_canonical(hu, spacing, threshold_hu=threshold_hu,
                                   working_spacing_mm=working_spacing_mm,
                                   learned=np.asarray(learned, dtype=bool))
    else:
        lab = _classical_canonical(hu, spacing, threshold_hu=threshold_hu,
                                   working_spacing_mm=working_spacing_mm,
                                   envelope=method in ("classical", "union"))
        if method == "union":
            lab = union_with_learned(lab, _model_canonical(hu, spacing, working_spacing_mm=working_spacing_mm))
    return from_canonical(lab, perm, flips)


def union_with_learned(classical: np.ndarray, learned: np.ndarray) -> np.ndarray:
    """The classical lung labels plus the learned lung voxels connected to them.

    Parameters
    ----------
    classical, learned : (Z, Y, X) uint8 ndarray
        Lung labels (0 / 1 right / 2 left) of the classical and the learned method.

    Returns
    -------
    (Z, Y, X) uint8 ndarray
        ``classical`` where it is lung; elsewhere the learned label of every 3-D
        connected component of the learned mask that touches the classical lungs.
        Learned components detached from the classical lungs (bowel gas, neck: the
        network's known false positives) are dropped.

    Examples
    --------
    >>> c = np.zeros((1, 1, 8), np.uint8); c[0, 0, 1:3] = 1
    >>> m = np.zeros_like(c); m[0, 0, 2:5] = 1; m[0, 0, 7] = 2
    >>> union_with_learned(c, m)[0, 0].tolist()
    [0, 1, 1, 1, 1, 0, 0, 0]
    """
    if classical.shape != learned.shape:
        raise ValueError(f"classical {classical.shape} and learned {learned.shape} shapes differ")
    components, _ = ndi.label(learned > 0)
    touching = np.unique(components[(classical > 0) & (components > 0)])
    extra = np.isin(components, touching[touching > 0]) & (classical == 0)
    out = classical.copy()
    out[extra] = learned[extra]
    return out


def lung_zones(labels: np.ndarray, volume: CTVolume, *, thirds: str = "height") -> np.ndarray:
    """Zone labels: upper / middle / lower thirds and ventral / dorsal halves of each lung.

    Parameters
    ----------
    labels : (Z, Y, X) uint8 ndarray
        Output of :func:`segment_lungs` (0 / 1 right / 2 left) in ``volume``'s geometry.
    volume : CTVolume
        The volume (for its orientation and shape).
    thirds : {"height", "volume"}
        ``"height"`` (default): each lung's own cranio-caudal extent in three equal
        heights.  ``"volume"``: two axial cut planes shared by both lungs that split the
        total lung volume in three equal parts (the Chest Imaging Platform convention of
        ``lm-64.nrrd`` regions 9-14).

    Returns
    -------
    (Z, Y, X) uint8 ndarray
        0 outside the lungs, else a code of :data:`ZONE_NAMES`
        (``1 + 6*(lung-1) + 2*third + half``; third 0 upper, 1 middle, 2 lower; half 0
        ventral, 1 dorsal).

    Notes
    -----
    Thirds split each lung's cranio-caudal extent (first to last slice containing it, in
    canonical orientation) into three equal heights; ventral / dorsal split each slice of
    each lung at the middle of its antero-posterior extent on that slice.  Use
    ``zones // 2`` style groupings via :data:`ZONE_NAMES` for 6-zone scores.

    Examples
    --------
    >>> lab = np.zeros((6, 4, 4), np.uint8); lab[:, :, :2] = 1; lab[:, :, 2:] = 2
    >>> z = lung_zones(lab, CTVolume(np.zeros((6, 4, 4), np.int16), (1, 1, 1)))
    >>> ZONE_NAMES[int(z[5, 0, 0])], ZONE_NAMES[int(z[0, 3, 3])]
    ('right_upper_ventral', 'left_lower_dorsal')
    """
    labels = np.asarray(labels)
    if not isinstance(volume, CTVolume):
        raise TypeError(f"volume must be a CTVolume, got {type(volume).__name__}")
    if thirds not in ("height", "volume"):
        raise ValueError(f"thirds must be 'height' or 'volume', got {thirds!r}")
    if labels.shape != volume.shape:
        raise ValueError(f"labels shape {labels.shape} differs from volume shape {volume.shape}")
    perm, flips = canonical_axes(volume.direction)
    lab = to_canonical(labels, perm, flips)
    out = np.zeros(lab.shape, dtype=np.uint8)
    per_slice = (lab > 0).sum(axis=(1, 2)).astype(np.float64)
    total = per_slice.sum()
    # volume fraction below each slice's centre (0 at the base, 1 at the apex)
    vol_frac = (np.cumsum(per_slice) - 0.5 * per_slice) / total if total else per_slice
    for li, lung in enumerate((RIGHT, LEFT)):
        m = lab == lung
        zs = np.flatnonzero(m.any(axis=(1, 2)))
        if zs.size == 0:
            continue
        z0, z1 = zs[0], zs[-1] + 1
        height = z1 - z0
        for z in zs:
            frac = (z - z0 + 0.5) / height if thirds == "height" else vol_frac[z]
            third = 0 if frac >= 2 / 3 else (1 if frac >= 1 / 3 else 2)
            rows = np.flatnonzero(m[z].any(axis=1))
            y_mid = 0.5 * (rows[0] + rows[-1] + 1)
            half = (np.arange(lab.shape[1]) >= y_mid).astype(np.uint8)[:, None]
            code = (1 + 6 * li + 2 * third + half).astype(np.uint8)
            out[z][m[z]] = np.broadcast_to(code, m[z].shape)[m[z]]
    return from_canonical(out, perm, flips)
