"""Repairs of the classical lung mask: dense disease put back into the lungs.

Threshold-based lungs miss what disease made dense.  :func:`fill_holes_and_bays`
(step 5 of the classical mask, :mod:`imaging.scoring.lungs`) fills, on each axial
slice and for each lung, the holes of the outline and its lateral or dorsal
concavities closed on their outer side, never an abdominal organ's dome
(:func:`_organ_like`), and grows the filled parts through consolidation-like voxels
to the chest wall.  :func:`envelope_repair` (step 6) grows each lung in 3-D through
dense ground-glass and consolidation lying between the aerated lung and the rib cage
(:func:`_rib_cage`), out of the stretch between the lungs (:func:`_between_lungs`).
Every HU band and distance is in :mod:`imaging.scoring.constants`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from imaging.scoring import constants as C
from imaging.scoring.lung_grid import INPLANE
from imaging.scoring.lung_sides import LEFT, RIGHT

__all__ = ["fill_holes_and_bays", "fill_holes_except_domes", "envelope_repair"]


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


def fill_holes_except_domes(lungs: np.ndarray, hu: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Fill the holes of a lung mask slice by slice, except an abdominal organ's dome.

    The hole rule of :func:`fill_holes_and_bays` on its own: an axial slice through the top
    of the diaphragm dome shows the liver, spleen or stomach (partial volume of the dome
    cap) as a hole inside the lung outline, which stays out (:func:`_organ_like`); every
    other hole (vessels, bronchi, nodules, central consolidation) is filled.

    Parameters
    ----------
    lungs : (Z, Y, X) bool ndarray
    hu : (Z, Y, X) ndarray, HU, same grid
    spacing : (3,) float, mm

    Returns
    -------
    (Z, Y, X) bool ndarray
    """
    out = lungs.copy()
    first_air = _first_air(lungs)
    for z in np.flatnonzero(lungs.any(axis=(1, 2))):
        holes, n = ndi.label(ndi.binary_fill_holes(lungs[z]) & ~lungs[z])
        for i in range(1, n + 1):
            comp = holes == i
            if not _organ_like(hu, first_air, z, comp, spacing):
                out[z] |= comp
    return out


def fill_holes_and_bays(labels: np.ndarray, low: np.ndarray, body: np.ndarray,
                        spacing: Sequence[float]) -> np.ndarray:
    """Fill holes and lateral/dorsal outline concavities slice by slice (step 5 in the
    notes of :mod:`imaging.scoring.lungs`).

    Parameters
    ----------
    labels : (Z, Y, X) uint8 ndarray
        Right / left lungs (:func:`imaging.scoring.lung_sides.split_lungs`), working grid.
    low : (Z, Y, X) ndarray
        HU on the working grid.
    body : (Z, Y, X) bool ndarray
        The body (:func:`imaging.scoring.lung_grid.inside_air`).
    spacing : (3,) float
        Working-grid spacing (z, y, x), mm.

    Returns
    -------
    (Z, Y, X) uint8 ndarray
        ``labels`` with the filled holes, bays and their growth added.
    """
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
                grown = ndi.binary_dilation(seed, structure=INPLANE, iterations=steps, mask=allowed | seed)
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


def envelope_repair(labels: np.ndarray, low: np.ndarray, body: np.ndarray, spacing: Sequence[float], *,
                    within: np.ndarray | None = None) -> np.ndarray:
    """Step 6: disease between the aerated lung and the rib cage (notes of
    :mod:`imaging.scoring.lungs`).

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
        cage = ndi.binary_erosion(cage, structure=INPLANE, iterations=margin)
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
        near_ggo = ndi.binary_dilation((low >= g0) & (low <= g1), structure=INPLANE, iterations=k)
        near_con = ndi.binary_dilation((low >= c0) & (low <= c1), structure=INPLANE, iterations=k)
        dense |= between & near_ggo & near_con
    band = allowed & dense
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    for z in np.flatnonzero(band.any(axis=(1, 2))):
        band[z] = cv2.morphologyEx(band[z].astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(bool)
    trans = allowed & between
    bridge_steps = max(1, int(round(C.LUNG_ENVELOPE_BRIDGE_MM / syx)))
    bridge = ndi.binary_dilation(lungs, structure=INPLANE, iterations=bridge_steps, mask=trans | lungs) & trans
    seed = lungs | bridge
    st = ndi.generate_binary_structure(3, 1)
    steps = max(1, int(round(C.LUNG_ENVELOPE_GROW_MM / syx)))
    grown = ndi.binary_dilation(seed, structure=st, iterations=steps, mask=band | seed) & band
    near = ndi.binary_dilation(grown, structure=INPLANE, iterations=bridge_steps)
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
