"""Training data for the opacity network: COVID-19 CT slices, split by scan, and negatives.

The COVID-19 slices (``../shared/data/covid19_ct_slices``; Ma et al., Med Phys 2021,
Zenodo 3757476) are 1,614 axial 256 x 256 8-bit display images of 20 scans, stored in
source order as contiguous blocks, with expert lung and infection masks. Adjacent slices
of one scan are near copies, so the train/validation split must be by whole scans:
:func:`find_scan_blocks` recovers the blocks from the masks and images, and
:func:`split_blocks` holds out whole blocks by a fixed, documented rule.

Every COVID slice contains infection; negatives (healthy lungs) come from synthetic HU
chest slices: :func:`phantom_slices` (the project's phantom, :mod:`imaging.phantom.make`) when
it is available, else :func:`synthetic_chest_slice` (a simple built-in generator).
With ``lung_free=True`` the phantoms' slices without lungs (neck; upper abdomen with
liver, stomach and gastric air bubble; shifted along the table to see more of them) are
negatives too, labelled background.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "CovidSlices",
    "load_covid_slices",
    "find_scan_blocks",
    "split_blocks",
    "make_labels",
    "synthetic_chest_slice",
    "phantom_slices",
    "BLOCK_LUNG_DICE_MAX",
    "BLOCK_IMAGE_DIFF_MIN",
    "BLOCK_MIN_SLICES",
    "N_VALIDATION_BLOCKS",
]

#: A new scan starts where the lung masks of consecutive slices overlap with Dice below
#: this (within a scan, consecutive masks have Dice ~0.99 for thin and >0.7 for thick
#: slices)...
BLOCK_LUNG_DICE_MAX: float = 0.5
#: ...or where the Dice is below ``BLOCK_LUNG_DICE_WEAK`` and the mean absolute grey-level
#: difference between consecutive images exceeds this (within a scan the median is ~12).
BLOCK_IMAGE_DIFF_MIN: float = 45.0
#: Weaker lung-mask Dice limit used together with :data:`BLOCK_IMAGE_DIFF_MIN`.
BLOCK_LUNG_DICE_WEAK: float = 0.65
#: Blocks shorter than this are merged into the following block (a conservative choice:
#: merging two scans never leaks slices across the split, splitting one scan could).
BLOCK_MIN_SLICES: int = 5
#: Number of whole blocks (scans) held out for validation.
N_VALIDATION_BLOCKS: int = 4


@dataclass(frozen=True)
class CovidSlices:
    """The COVID-19 slices in memory.

    Attributes
    ----------
    images : (N, 256, 256) uint8 ndarray
        CLAHE-equalised display images.
    lungs : (N, 256, 256) bool ndarray
        Expert lung masks.
    infection : (N, 256, 256) bool ndarray
        Expert infection masks (ground-glass and consolidation together).
    """

    images: np.ndarray
    lungs: np.ndarray
    infection: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def load_covid_slices(root: str | Path, *, limit: int | None = None) -> CovidSlices:
    """Read ``ct/``, ``lungs/`` and ``covid/`` PNGs of the COVID-19 slice set.

    Parameters
    ----------
    root : path
        Folder ``covid19_ct_slices`` holding ``ct/NNNN.png``, ``lungs/`` and ``covid/``.
    limit : int or None
        Read only the first ``limit`` slices (tests).

    Returns
    -------
    CovidSlices
    """
    root = Path(root)
    for sub in ("ct", "lungs", "covid"):
        if not (root / sub).is_dir():
            raise FileNotFoundError(f"root {str(root)!r} has no {sub}/ folder: "
                                    "expected the covid19_ct_slices layout")
    names = sorted(p.name for p in (root / "ct").glob("*.png"))
    if limit is not None:
        names = names[:limit]
    if not names:
        raise FileNotFoundError(f"no PNG slices under {str(root / 'ct')!r}")

    def read(sub: str, name: str) -> np.ndarray:
        img = cv2.imread(str(root / sub / name), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise OSError(f"cannot read image {str(root / sub / name)!r}")
        return img

    images = np.stack([read("ct", n) for n in names])
    lungs = np.stack([read("lungs", n) > 127 for n in names])
    infection = np.stack([read("covid", n) > 127 for n in names])
    return CovidSlices(images=images, lungs=lungs, infection=infection)


def _consecutive_dice(masks: np.ndarray) -> np.ndarray:
    a, b = masks[:-1], masks[1:]
    inter = np.logical_and(a, b).sum(axis=(1, 2)).astype(np.float64)
    total = a.sum(axis=(1, 2)) + b.sum(axis=(1, 2))
    return np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)


def find_scan_blocks(images: np.ndarray, lungs: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous blocks of slices that belong to one scan, detected from content jumps.

    Parameters
    ----------
    images : (N, Y, X) uint8 ndarray
        Display images in source order.
    lungs : (N, Y, X) bool ndarray
        Lung masks.

    Returns
    -------
    list of (start, stop)
        Half-open slice index ranges covering ``0..N`` in order.

    Notes
    -----
    A boundary lies between slices ``i`` and ``i + 1`` when the Dice of their lung masks
    is below :data:`BLOCK_LUNG_DICE_MAX`, or below :data:`BLOCK_LUNG_DICE_WEAK` with a
    mean absolute grey-level difference above :data:`BLOCK_IMAGE_DIFF_MIN`. Blocks shorter
    than :data:`BLOCK_MIN_SLICES` are merged into the next block (the last into the
    previous). On ``covid19_ct_slices`` this gives 18 blocks (the 10 thin-slice scans
    and the thick-slice tail, where a few scans with similar neighbours stay merged).

    Examples
    --------
    >>> lungs = np.zeros((12, 8, 8), bool); lungs[:6, :4] = True; lungs[6:, 4:] = True
    >>> find_scan_blocks(np.zeros((12, 8, 8), np.uint8), lungs)
    [(0, 6), (6, 12)]
    """
    images = np.asarray(images)
    lungs = np.asarray(lungs, dtype=bool)
    if images.ndim != 3 or images.shape != lungs.shape:
        raise ValueError(f"images and lungs must be (N, Y, X) of one shape, got "
                         f"{images.shape} and {lungs.shape}")
    n = len(images)
    if n < 2:
        return [(0, n)]
    dice = _consecutive_dice(lungs)
    diff = np.array([np.abs(images[i + 1].astype(np.float32) - images[i]).mean()
                     for i in range(n - 1)])
    cut = (dice < BLOCK_LUNG_DICE_MAX) | ((dice < BLOCK_LUNG_DICE_WEAK) & (diff > BLOCK_IMAGE_DIFF_MIN))
    starts = [0] + [i + 1 for i in np.flatnonzero(cut)]
    blocks = [(int(s), int(e)) for s, e in zip(starts, starts[1:] + [n])]
    merged: list[tuple[int, int]] = []
    pending: int | None = None
    for s, e in blocks:
        s = s if pending is None else pending
        if e - s < BLOCK_MIN_SLICES:
            pending = s
            continue
        merged.append((s, e))
        pending = None
    if pending is not None:
        if merged:
            merged[-1] = (merged[-1][0], n)
        else:
            merged.append((pending, n))
    return merged


def split_blocks(
    blocks: Sequence[tuple[int, int]], *, n_validation: int = N_VALIDATION_BLOCKS
) -> tuple[list[int], list[int]]:
    """Train and validation block indices: validation blocks evenly spread, fixed rule.

    Validation block ``k`` (``k = 0..n_validation-1``) is block
    ``floor((k + 0.5) * n_blocks / n_validation)``: deterministic, spread over the
    source order (so both thin-slice and thick-slice scans are held out).

    Parameters
    ----------
    blocks : sequence of (start, stop)
    n_validation : int

    Returns
    -------
    train, validation : lists of block indices

    Examples
    --------
    >>> split_blocks([(i, i + 1) for i in range(18)])
    ([0, 1, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 16, 17], [2, 6, 11, 15])
    """
    nb = len(blocks)
    if not 1 <= n_validation < nb:
        raise ValueError(f"n_validation must be in 1..{nb - 1} for {nb} blocks, got {n_validation!r}")
    val = sorted({int((k + 0.5) * nb / n_validation) for k in range(n_validation)})
    train = [i for i in range(nb) if i not in val]
    return train, val


def block_indices(blocks: Sequence[tuple[int, int]], which: Sequence[int]) -> np.ndarray:
    """Slice indices (int64) of the blocks ``which``."""
    if not which:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(*blocks[b]) for b in which]).astype(np.int64)


def make_labels(lungs: np.ndarray, lesion: np.ndarray) -> np.ndarray:
    """Network target: 0 background, 1 lung without lesion, 2 lesion.

    Parameters
    ----------
    lungs, lesion : bool ndarrays of one shape

    Returns
    -------
    uint8 ndarray, same shape

    Examples
    --------
    >>> make_labels(np.array([1, 1, 0], bool), np.array([0, 1, 1], bool)).tolist()
    [1, 2, 2]
    """
    lungs = np.asarray(lungs, dtype=bool)
    lesion = np.asarray(lesion, dtype=bool)
    if lungs.shape != lesion.shape:
        raise ValueError(f"lungs and lesion shapes differ: {lungs.shape} vs {lesion.shape}")
    out = lungs.astype(np.uint8)
    out[lesion] = 2
    return out


# --------------------------------------------------------------------------- synthetic
def _blob(rng: np.random.Generator, shape: tuple[int, int], sigma: float, frac: float) -> np.ndarray:
    """Smooth random blob mask covering about ``frac`` of the image."""
    f = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return f > np.quantile(f, 1.0 - frac)


def _ellipse(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float,
             rng: np.random.Generator | None = None, wobble: float = 0.0) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    dy, dx = (yy - cy) / ry, (xx - cx) / rx
    r = np.sqrt(dy**2 + dx**2)
    if rng is not None and wobble > 0:
        theta = np.arctan2(dy, dx)
        k = np.arange(2, 6)
        amp = rng.uniform(0, wobble, size=len(k)) / k
        ph = rng.uniform(0, 2 * np.pi, size=len(k))
        r = r / (1 + (amp[:, None, None] * np.cos(k[:, None, None] * theta + ph[:, None, None])).sum(0))
    return r <= 1.0


def synthetic_chest_slice(
    rng: np.random.Generator, *, size: int = 256, lesion: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A crude synthetic axial chest CT slice in HU with its lung and lesion masks.

    Body (fat rim, muscle), two lungs with parenchymal texture, vessels and airways,
    heart, spine, ribs and a table, with CT-like noise. With ``lesion`` set, smooth blobs
    of ground-glass (-700..-450 HU) or consolidation (-150..+40 HU) are placed inside the
    lungs.

    Parameters
    ----------
    rng : numpy Generator
    size : int
        Side of the square slice, pixels (field of view ~360 mm).
    lesion : None, "ggo", "consolidation" or "mixed"

    Returns
    -------
    hu : (size, size) float32 ndarray, HU
    lungs : (size, size) bool ndarray
    lesion_mask : (size, size) uint8 ndarray, 0 none, 1 ground-glass, 2 consolidation

    Examples
    --------
    >>> hu, lungs, les = synthetic_chest_slice(np.random.default_rng(0), size=64)
    >>> hu.shape, bool(lungs.any()), int(les.max())
    ((64, 64), True, 0)
    """
    if lesion not in (None, "ggo", "consolidation", "mixed"):
        raise ValueError(f"lesion must be None, 'ggo', 'consolidation' or 'mixed', got {lesion!r}")
    if size < 32:
        raise ValueError(f"size must be >= 32, got {size!r}")
    s = size / 256.0
    shp = (size, size)
    hu = np.full(shp, -1000.0, dtype=np.float32)
    cy, cx = size * rng.uniform(0.44, 0.52), size * rng.uniform(0.47, 0.53)
    ry, rx = size * rng.uniform(0.26, 0.33), size * rng.uniform(0.38, 0.45)
    body = _ellipse(shp, cy, cx, ry, rx, rng, 0.08)
    fat_t = rng.uniform(4, 14) * s
    inner = _ellipse(shp, cy, cx, ry - fat_t, rx - fat_t)
    hu[body] = rng.uniform(-120, -80)
    hu[body & inner] = rng.uniform(30, 60)
    # table
    ty = min(size - 3, int(cy + ry + rng.uniform(4, 14) * s))
    hu[ty: ty + max(2, int(3 * s)), int(size * 0.1): int(size * 0.9)] = rng.uniform(200, 600)
    # lungs
    lung_ry = ry * rng.uniform(0.62, 0.78)
    lung_rx = rx * rng.uniform(0.30, 0.38)
    gap = rx * rng.uniform(0.42, 0.55)
    lcy = cy - ry * rng.uniform(0.0, 0.12)
    right = _ellipse(shp, lcy, cx - gap, lung_ry, lung_rx, rng, 0.25)
    left = _ellipse(shp, lcy, cx + gap, lung_ry, lung_rx * rng.uniform(0.85, 1.0), rng, 0.25)
    heart = _ellipse(shp, cy - ry * rng.uniform(0.0, 0.25), cx + rx * rng.uniform(0.05, 0.2),
                     ry * rng.uniform(0.3, 0.5), rx * rng.uniform(0.22, 0.33), rng, 0.1)
    spine = _ellipse(shp, cy + ry * 0.62, cx, ry * 0.16, ry * 0.16)
    lungs = (right | left) & inner & ~heart & ~spine
    base = rng.uniform(-900, -780)
    texture = ndi.gaussian_filter(rng.standard_normal(shp).astype(np.float32), 2.0 * s) * 60
    gradient = (np.mgrid[:size, :size][0] - lcy) / max(lung_ry, 1) * rng.uniform(20, 60)
    hu[lungs] = (base + texture + gradient)[lungs]
    hu[heart & inner] = rng.uniform(30, 50)
    hu[spine] = rng.uniform(250, 450)
    hu[spine & ~_ellipse(shp, cy + ry * 0.62, cx, ry * 0.12, ry * 0.12)] = rng.uniform(700, 1000)
    # ribs: small bright ovals along the inner body rim
    for ang in rng.uniform(0, 2 * np.pi, size=rng.integers(6, 14)):
        yy = cy + (ry - fat_t - 4 * s) * np.sin(ang)
        xx = cx + (rx - fat_t - 4 * s) * np.cos(ang)
        hu[_ellipse(shp, yy, xx, 3 * s + 1, 5 * s + 1) & body] = rng.uniform(400, 900)
    # vessels (bright dots and short tubes) and airways (dark rings) inside the lungs
    vessels = np.zeros(shp, dtype=np.float32)
    n_v = int(rng.integers(40, 120))
    ys, xs = np.nonzero(lungs)
    if len(ys):
        pick = rng.integers(0, len(ys), size=n_v)
        for y, x in zip(ys[pick], xs[pick]):
            thick = max(1, int(round(rng.uniform(0.5, 2.5) * s)))
            L = rng.uniform(0, 8) * s
            ang = rng.uniform(0, np.pi)
            p0 = (int(x - L * np.cos(ang)), int(y - L * np.sin(ang)))
            p1 = (int(x + L * np.cos(ang)), int(y + L * np.sin(ang)))
            cv2.line(vessels, p0, p1, 1.0, thickness=thick)
        vessels = ndi.gaussian_filter(vessels, 0.7 * s)
        hu = np.where(lungs, hu + vessels * (rng.uniform(0, 60) - hu), hu)
    lesion_mask = np.zeros(shp, dtype=np.uint8)
    if lesion is not None:
        kinds = {"ggo": [1], "consolidation": [2], "mixed": [1, 2]}[lesion]
        for kind in kinds:
            blob = _blob(rng, shp, rng.uniform(5, 14) * s, rng.uniform(0.02, 0.1)) & lungs
            if kind == 1:
                val = rng.uniform(-700, -450)
            else:
                val = rng.uniform(-150, 40)
            soft = ndi.gaussian_filter(blob.astype(np.float32), 1.5 * s)
            patchy = ndi.gaussian_filter(rng.standard_normal(shp).astype(np.float32), 1.5 * s) * 40
            hu = np.where(lungs, hu + soft * (val + patchy - hu), hu)
            lesion_mask[blob & (soft > 0.5)] = kind
    noise = ndi.gaussian_filter(rng.standard_normal(shp).astype(np.float32), 0.6) * rng.uniform(10, 45)
    hu = hu + noise
    return hu.astype(np.float32), lungs, lesion_mask


def phantom_slices(
    rng: np.random.Generator, *, n_volumes: int = 12, shape: tuple[int, int, int] = (24, 256, 256),
    spacing_mm: tuple[float, float, float] = (10.0, 1.4, 1.4),
    percent_opacity: Sequence[float] = (0.0, 5.0, 0.0, 15.0, 0.0, 30.0),
    lung_free: bool = False,
    table_shifts: Sequence[float] = (0.0,),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Axial slices of the project's phantoms (:func:`imaging.phantom.make.make_phantom`).

    Parameters
    ----------
    rng : numpy Generator
    n_volumes : int
        Phantoms to build; volume ``i`` uses ``percent_opacity[i % len(...)]``.
    shape, spacing_mm : (z, y, x) phantom geometry
    percent_opacity : floats, percent of lung volume with lesions (0 = healthy)
    lung_free : bool
        Keep the slices without lungs too (neck above the apices; upper abdomen below the
        diaphragm with liver, stomach and its gastric air bubble, table): negatives
        labelled background. False keeps only the lung-bearing slices.
    table_shifts : floats
        Shifts of the patient along the table (:class:`imaging.phantom.make.Pose` ``dt``,
        normalised ``t`` units, 0.02 ~ 6 mm), cycled over the volumes: positive moves the
        patient superior so more abdomen is in the field of view, negative shows more of
        the neck. The phantom always frames the chest, so this is how lung-free slices are
        obtained.

    Returns
    -------
    hu : (N, Y, X) float32 ndarray, HU
    lungs : (N, Y, X) bool ndarray
    lesions : (N, Y, X) uint8 ndarray, 0 none, 1 ground-glass, 2 consolidation

    Raises
    ------
    ImportError
        When :mod:`imaging.phantom.make` is not available.
    """
    from imaging.phantom.make import Pose, make_phantom  # optional: owned by another module

    if n_volumes < 1:
        raise ValueError(f"n_volumes must be >= 1, got {n_volumes!r}")
    if len(percent_opacity) == 0 or len(table_shifts) == 0:
        raise ValueError("percent_opacity and table_shifts must not be empty")
    hus, lungs, lesions = [], [], []
    for i in range(n_volumes):
        dt = float(table_shifts[i % len(table_shifts)])
        ph = make_phantom(shape=shape, spacing_mm=spacing_mm,
                          percent_opacity=float(percent_opacity[i % len(percent_opacity)]), rng=rng,
                          pose=Pose(dt=dt) if dt else None)
        lung = np.asarray(ph.lungs) > 0
        keep = np.ones(lung.shape[0], dtype=bool) if lung_free else lung.any(axis=(1, 2))
        hus.append(np.asarray(ph.volume.hu, dtype=np.float32)[keep])
        lungs.append(lung[keep])
        lesions.append(np.asarray(ph.lesions, dtype=np.uint8)[keep])
    return np.concatenate(hus), np.concatenate(lungs), np.concatenate(lesions)
