"""A synthetic whole-body PET/CT attenuation CT with its truth, for the lung-mask tests.

:func:`make_whole_body` puts a chest phantom (:func:`imaging.phantom.make.make_phantom`,
its own table removed) in the middle of a 1 m long, low-dose, 4 mm volume and paints
round it what a PET/CT attenuation scan holds and a chest CT does not:

* abdomen and pelvis below the chest (fat rim, soft tissue, spine, iliac wings) with
  bowel gas: a transverse-colon tube just under the diaphragm, rectal gas, small pockets;
* neck and head above it: the trachea continued into the larynx, the pharynx and the
  nasal cavity (open at the nostrils), maxillary, frontal and sphenoid sinuses, skull,
  face bones, brain;
* arms down beside the trunk (fat, muscle, humerus / forearm bones), the right one
  touching the trunk, the left one 8 mm away except at the shoulder, from the pelvis
  to the shoulders;
* a hollow carbon-fibre table on every slice, 430 mm wide: a closed shell (3 mm walls of
  600 HU composite drawn at 4 x 4 subpixels, so they read -350..+80 HU, median -140, after
  partial volume and blur) round 2-4 cm of air (60 mL a slice), its curved top touching
  the patient's back and the arms;
* correlated noise (about 30 HU) and the scanner's 540 mm reconstruction circle.

The truth: the phantom's lungs (1 right, 2 left) and masks of the air that is not lung
(``table_air``, ``head_air``: sinuses, nasal cavity, pharynx, larynx and the trachea
above the chest, ``bowel_gas``), and the slice range of the chest phantom.
Canonical LPS orientation: slice 0 inferior (feet), row 0 anterior, column 0 the
patient's right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from imaging.common.volume import CTVolume
from imaging.phantom.make import make_phantom

__all__ = ["WholeBody", "make_whole_body"]

#: Matrix and spacing of the whole-body volume: 250 slices of 4 mm (1 m), 200 x 200
#: pixels of 2.7 mm (540 mm field of view).
SHAPE = (250, 200, 200)
SPACING_MM = (4.0, 2.7, 2.7)
#: The chest phantom's slices (75 x 4 mm = 300 mm) start here.
CHEST_Z0 = 110
CHEST_SHAPE = (75, 140, 140)
#: Offsets (rows, columns) of the chest phantom's matrix in the whole-body matrix: its
#: trunk centred left-right, its back on the table top.
CHEST_OFFSET = (22, 30)
#: Table: top row of the shell on the midline, half width and height (mm), wall (mm), and
#: the nominal HU of its carbon-fibre composite (its 3 mm wall reads lower on 2.7 mm pixels).
TABLE_TOP_ROW = 140
TABLE_HALF_WIDTH_MM = 215.0
TABLE_HEIGHT_MM = 36.0
TABLE_WALL_MM = 3.0
TABLE_HU = 600.0
NOISE_HU = 30.0


@dataclass
class WholeBody:
    """The volume and its truth (canonical arrays of ``volume.shape``)."""

    volume: CTVolume
    lungs: np.ndarray  # uint8 0 / 1 right / 2 left
    table_air: np.ndarray  # bool: the air inside the table's shell
    head_air: np.ndarray  # bool: sinuses, nasal cavity, pharynx, larynx, trachea above the chest
    bowel_gas: np.ndarray  # bool
    chest_slices: slice  # the chest phantom's slices

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.volume.spacing_mm)) / 1000.0

    @property
    def lung_ml(self) -> float:
        return float(np.count_nonzero(self.lungs)) * self.voxel_ml


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Row and column mm of the in-plane pixel centres from the matrix centre."""
    n = SHAPE[1]
    c = (np.arange(n) - (n - 1) / 2.0) * SPACING_MM[1]
    return c[:, None], c[None, :]


def _ellipse(y, x, cy, cx, ry, rx) -> np.ndarray:
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def _table_top_mm(x: np.ndarray | float) -> np.ndarray | float:
    """Row mm (from the matrix centre) of the table's upper surface at column mm ``x``."""
    top0 = (TABLE_TOP_ROW - (SHAPE[1] - 1) / 2.0) * SPACING_MM[1]
    return top0 - 12.0 * (np.asarray(x) / TABLE_HALF_WIDTH_MM) ** 2


def _table() -> tuple[np.ndarray, np.ndarray]:
    """Fractions of each pixel (one slice, 4 x 4 subpixels) covered by the table's shell
    and by the air inside it: its partial volume."""
    s = 4
    n = SHAPE[1]
    c = (np.arange(n * s) - (n * s - 1) / 2.0) * SPACING_MM[1] / s
    y, x = c[:, None], c[None, :]
    # a cradle: the top rises 12 mm towards the sides, the bottom is flat
    top = _table_top_mm(x)
    bottom = _table_top_mm(0.0) + TABLE_HEIGHT_MM
    outer = (y >= top) & (y <= bottom) & (np.abs(x) <= TABLE_HALF_WIDTH_MM)
    w = TABLE_WALL_MM
    inner = (y >= top + w) & (y <= bottom - w) & (np.abs(x) <= TABLE_HALF_WIDTH_MM - w)
    shell = outer & ~inner

    def down(m: np.ndarray) -> np.ndarray:
        return m.reshape(n, s, n, s).mean(axis=(1, 3))

    frac_shell, frac_air = down(shell.astype(np.float32)), down(inner.astype(np.float32))
    return frac_shell, frac_air


def _paint_abdomen(hu: np.ndarray, gas: np.ndarray, outline: np.ndarray, y, x) -> None:
    """Slices below the chest: the chest's lowest body outline, fat rim, soft tissue,
    spine, iliac wings, bowel gas pockets (anterior, supine)."""
    inner = ndi.binary_erosion(outline, iterations=5)  # ~14 mm fat
    ys, xs = np.nonzero(outline)
    cy_mm = (ys.mean() - (SHAPE[1] - 1) / 2) * SPACING_MM[1]
    cx_mm = (xs.mean() - (SHAPE[2] - 1) / 2) * SPACING_MM[2]
    back_mm = (ys.max() - (SHAPE[1] - 1) / 2) * SPACING_MM[1]
    for k in range(CHEST_Z0):
        sl = hu[k]
        sl[outline] = -100.0
        sl[inner] = 40.0
        sl[_ellipse(y, x, back_mm - 45, cx_mm, 17, 20)] = 280.0  # vertebral body
        sl[_ellipse(y, x, back_mm - 45, cx_mm, 12, 15)] = 180.0
        if k < 45:  # pelvis: iliac wings
            for side in (-1, 1):
                wing = _ellipse(y, x, back_mm - 55, cx_mm + side * 95, 45, 22) & ~_ellipse(
                    y, x, back_mm - 55, cx_mm + side * 95, 38, 15)
                sl[wing & (y > cy_mm - 30)] = 600.0
    # bowel gas (centres in mm from the matrix centre, z in slices, semi-axes mm / slices)
    zz = np.arange(SHAPE[0])[:, None, None]
    pockets = [
        # transverse colon: a 3 cm tube across the upper abdomen, just under the chest
        ((cy_mm - 45, cx_mm, CHEST_Z0 - 6), (16, 120, 4.0)),
        ((cy_mm - 30, cx_mm - 80, 80), (18, 18, 8.0)),  # ascending colon
        ((cy_mm - 30, cx_mm + 85, 70), (15, 16, 10.0)),  # descending colon
        ((cy_mm - 50, cx_mm + 20, 60), (10, 25, 3.0)),  # small-bowel loop
        ((cy_mm - 20, cx_mm - 20, 45), (8, 10, 2.0)),
        ((back_mm - 80, cx_mm, 14), (20, 22, 5.0)),  # rectum
    ]
    for (py, px, pz), (ry, rx, rz) in pockets:
        ell = (((zz - pz) / rz) ** 2 + ((y[None] - py) / ry) ** 2 + ((x[None] - px) / rx) ** 2) <= 1.0
        ell[CHEST_Z0:] = False
        hu[ell] = -1000.0
        gas |= ell


def _paint_neck_and_head(hu: np.ndarray, head_air: np.ndarray, trachea_yx: tuple[float, float],
                         back_mm: float, y, x, *, glottis_open: bool) -> None:
    """Slices above the chest: neck with the airway (closed for 8 mm at the glottis
    unless ``glottis_open``), head with sinuses, nasal cavity, skull, face bones and
    brain."""
    ty, tx = trachea_yx
    z_top = CHEST_Z0 + CHEST_SHAPE[0]
    neck_cy = ty + 30.0  # trachea ~ 25 mm behind the front of the neck
    head_cy = back_mm - 100.0  # back of the head 5 mm above the table top
    for k in range(z_top, SHAPE[0]):
        sl = hu[k]
        air = np.zeros(sl.shape, dtype=bool)
        if k < z_top + 25:  # neck, 100 mm
            neck = _ellipse(y, x, neck_cy, tx, 55, 62)
            sl[neck] = -90.0
            sl[_ellipse(y, x, neck_cy, tx, 46, 53)] = 45.0
            sl[_ellipse(y, x, neck_cy + 25, tx, 10, 11)] = 300.0  # cervical vertebra
            if k < z_top + 12:  # trachea and larynx
                if glottis_open or k < z_top + 10:
                    air |= _ellipse(y, x, ty, tx, 8, 8)
            else:  # oropharynx: flattened, behind the tongue
                air |= _ellipse(y, x, ty + 6, tx, 6, 13)
        else:  # head, from the chin up (160 mm)
            j = k - (z_top + 25)
            sl[_ellipse(y, x, head_cy, tx, 98, 75)] = -80.0
            sl[_ellipse(y, x, head_cy, tx, 92, 69)] = 40.0
            if j >= 18:  # cranium: bone rim, brain
                sl[_ellipse(y, x, head_cy, tx, 92, 69)] = 700.0
                sl[_ellipse(y, x, head_cy, tx, 85, 62)] = 35.0
            else:  # mandible / maxilla: an anterior arch of bone
                arch = _ellipse(y, x, head_cy - 35, tx, 55, 50) & ~_ellipse(y, x, head_cy - 35, tx, 48, 43)
                sl[arch & (y < head_cy - 20)] = 650.0
            if j < 5:  # nasopharynx joins the oropharynx
                air |= _ellipse(y, x, ty + 6, tx, 8, 14)
            if 2 <= j < 14:  # nasal cavity, nasopharynx to the nose (open at the nostrils on j < 4)
                cavity = (np.abs(x - tx) <= 9) & (np.abs(x - tx) > 1.5) & (y < head_cy - 20) & (y > head_cy - 98)
                if j >= 4:
                    cavity &= y > head_cy - 92
                air |= cavity
                air |= _ellipse(y, x, head_cy - 20, tx, 10, 14)  # choanae / nasopharynx
            if 4 <= j < 13:  # maxillary sinuses
                air |= _ellipse(y, x, head_cy - 55, tx - 25, 16, 12) | _ellipse(y, x, head_cy - 55, tx + 25, 16, 12)
            if 14 <= j < 18:  # sphenoid sinus
                air |= _ellipse(y, x, head_cy - 15, tx, 10, 12)
            if 22 <= j < 26:  # frontal sinus
                air |= _ellipse(y, x, head_cy - 80, tx, 5, 12)
        sl[air] = -1000.0
        head_air[k] = air & (sl == -1000.0)


def _paint_arms(hu: np.ndarray, trunk_half_width_mm: float, cx_mm: float, y, x) -> None:
    """Arms down from the pelvis (slice 40) to the shoulders: the right one touching the
    trunk, the left one 8 mm away except on the shoulder slices."""
    z_top = CHEST_Z0 + CHEST_SHAPE[0]
    for k in range(40, z_top):
        shoulder = k >= z_top - 8
        ry, rx = 50.0, 42.0
        for side, gap in ((-1, -2.0), (1, 8.0)):
            g = -2.0 if shoulder else gap
            ax = cx_mm + side * (trunk_half_width_mm + g + rx)
            cy = float(_table_top_mm(ax)) - ry  # resting on the table
            sl = hu[k]
            arm = _ellipse(y, x, cy, ax, ry, rx)
            free = arm & (sl < -500)
            sl[free] = -90.0
            muscle = _ellipse(y, x, cy, ax, ry - 6, rx - 6) & free
            sl[muscle] = 45.0
            if k >= 100:  # humerus
                sl[_ellipse(y, x, cy, ax, 11, 11) & free] = 900.0
                sl[_ellipse(y, x, cy, ax, 7, 7) & free] = 80.0
            else:  # forearm: radius and ulna
                for dx in (-12.0, 12.0):
                    sl[_ellipse(y, x, cy, ax + dx, 7, 7) & free] = 800.0


def _trachea_mm(hu: np.ndarray, body: np.ndarray) -> tuple[float, float]:
    """Row and column mm (from the matrix centre) of the trachea on the chest's top slice:
    the air component inside the body nearest its centre, in whole-body pixels."""
    lab, n = ndi.label((hu < -900) & body)
    by, bx = ndi.center_of_mass(body)
    cents = ndi.center_of_mass(lab > 0, lab, range(1, n + 1))
    ty, tx = min(cents, key=lambda c: (c[0] - by) ** 2 + (c[1] - bx) ** 2)
    m = (SHAPE[1] - 1) / 2
    return (ty + CHEST_OFFSET[0] - m) * SPACING_MM[1], (tx + CHEST_OFFSET[1] - m) * SPACING_MM[2]


def _chest(rng: np.random.Generator):
    """The chest phantom without its table: HU, lungs, the body outline per slice."""
    p = make_phantom(shape=CHEST_SHAPE, spacing_mm=SPACING_MM, rng=rng, fov_circle=False, noise_hu=NOISE_HU)
    hu = p.volume.hu.astype(np.float32)
    body = np.zeros(hu.shape, dtype=bool)
    for k in range(hu.shape[0]):
        lab, _ = ndi.label(ndi.binary_opening(hu[k] > -500, iterations=2))
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        body[k] = ndi.binary_fill_holes(lab == int(np.argmax(sizes)))
    return hu, p.lungs, body


def make_whole_body(rng: np.random.Generator, *, glottis_open: bool = True) -> WholeBody:
    """A whole-body PET/CT attenuation CT (module notes) and its truth.

    Parameters
    ----------
    rng : numpy.random.Generator
        Chest phantom (anatomy, texture, noise) and the noise of the rest.
    glottis_open : bool
        Air all the way from the trachea to the nasal cavity (quiet breathing); False
        closes the larynx for two slices, so the head's air is apart from the lungs'.

    Returns
    -------
    WholeBody
    """
    y, x = _grid()
    oy, ox = CHEST_OFFSET
    cz = slice(CHEST_Z0, CHEST_Z0 + CHEST_SHAPE[0])
    cy_sl, cx_sl = slice(oy, oy + CHEST_SHAPE[1]), slice(ox, ox + CHEST_SHAPE[2])
    chest_hu, chest_lungs, chest_body = _chest(rng)
    hu = np.full(SHAPE, -1000.0, dtype=np.float32)
    lungs = np.zeros(SHAPE, dtype=np.uint8)
    lungs[cz, cy_sl, cx_sl] = chest_lungs
    body_c = np.zeros(SHAPE, dtype=bool)
    body_c[cz, cy_sl, cx_sl] = chest_body
    # the trunk's geometry from the chest phantom
    ys, xs = np.nonzero(body_c[CHEST_Z0])
    n = SHAPE[1]
    back_mm = (ys.max() - (n - 1) / 2) * SPACING_MM[1]
    cx_mm = (0.5 * (xs.min() + xs.max()) - (n - 1) / 2) * SPACING_MM[2]
    half_w = 0.5 * (xs.max() - xs.min() + 1) * SPACING_MM[2]
    trachea_yx = _trachea_mm(chest_hu[-1], chest_body[-1])
    bowel_gas = np.zeros(SHAPE, dtype=bool)
    head_air = np.zeros(SHAPE, dtype=bool)
    _paint_abdomen(hu, bowel_gas, body_c[CHEST_Z0], y, x)
    _paint_neck_and_head(hu, head_air, trachea_yx, back_mm, y, x, glottis_open=glottis_open)
    _paint_arms(hu, half_w, cx_mm, y, x)
    # the hollow table on every slice, under everything else
    frac_shell, frac_air = _table()
    table_air = np.broadcast_to(frac_air >= 0.5, SHAPE).copy()
    empty = (hu <= -1000.0) & ~(bowel_gas | head_air)
    empty[cz] &= ~body_c[cz]
    table_hu = frac_shell * TABLE_HU + (1.0 - frac_shell) * -1000.0
    hu = np.where(empty & (frac_shell > 0)[None], table_hu[None], hu)
    # partial volume and noise everywhere but in the chest phantom's body (it has its own)
    hu = ndi.gaussian_filter(hu, sigma=(0, 0.6, 0.6))
    noise = ndi.gaussian_filter(rng.standard_normal(SHAPE).astype(np.float32), sigma=(0, 0.7, 0.7))
    hu += noise * (NOISE_HU / float(noise.std()))
    hu[cz, cy_sl, cx_sl][chest_body] = chest_hu[chest_body]
    # the reconstruction circle
    r = (n - 1) / 2.0 * SPACING_MM[1]
    hu[:, (y ** 2 + x ** 2) > r ** 2] = -1024.0
    hu_i16 = np.clip(np.round(hu), -1024, 3071).astype(np.int16)
    return WholeBody(volume=CTVolume(hu_i16, SPACING_MM), lungs=lungs, table_air=table_air,
                     head_air=head_air, bowel_gas=bowel_gas, chest_slices=cz)
