"""The 2.5-D lung and lesion network: training data from real anatomy, training, inference.

Training data are real near-healthy chest CTs with COVID-19-like lesions inserted
(:mod:`imaging.phantom.hybrid`): every slice of each case, lung-free slices (neck, upper
abdomen with stomach and bowel gas, the table) included as negatives.  Input and labels:
:mod:`models.slices25d`.  The network is :class:`models.network.UNet2D` with
``in_channels=4, n_classes=4`` (stride-2 stem: a 0.8 mm grid is worked at 1.6 mm).

Training samples random :data:`CROP` x :data:`CROP` crops (most of them holding lung),
with small intensity shifts and noise, cross-entropy plus a soft Dice of the lungs;
checkpoints (with the optimiser) are written every few minutes and a run resumes from
its checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.slices25d import CLASS_NAMES, IN_CHANNELS, labels_of, volume_channels

__all__ = ["CaseArrays", "build_case", "train_lung25d", "predict_classes25d", "load_lung25d", "export_weights", "CROP"]

#: Side of the training crops (pixels of the 0.8 mm grid: about 18 cm).
CROP: int = 224
#: Cross-entropy weights of background, lung, ground-glass, consolidation.
CLASS_WEIGHTS: tuple[float, ...] = (1.0, 1.0, 2.0, 2.0)


@dataclass
class CaseArrays:
    """One training case on the network grid: inputs ``(Z, C, Y, X)`` float16, labels ``(Z, Y, X)``."""

    name: str
    x: np.ndarray
    y: np.ndarray
    #: Where gas may be inserted under the diaphragm (:func:`models.augment25d.gas_zone`).
    zone: Any = None


def build_case(volume: Any, lungs: np.ndarray, involvement_pct: float, *, seed: int, name: str,
               context: Any = None) -> CaseArrays:
    """Insert lesions into a real scan and turn it into network inputs and labels
    (``context``: :func:`imaging.phantom.hybrid.prepare_scan`, to measure the scan once)."""
    from imaging.phantom.hybrid import insert_lesions

    case = insert_lesions(volume, lungs, involvement_pct, rng=seed, context=context)
    sp = tuple(float(s) for s in volume.spacing_mm)
    return CaseArrays(name, volume_channels(case.volume.hu, sp), labels_of(case.lungs, case.ggo, case.consolidation, sp))


#: Share of crops given gas pockets under the diaphragm (cases with a gas zone).
P_GAS: float = 0.3
#: Share of crops centred on inserted lesion (when the slice has some).
P_LESION: float = 0.3
#: Share of crops given the extra noise of a sharp kernel.
P_SHARP: float = 0.25


def _pick_centre(case: CaseArrays, rng: np.random.Generator) -> tuple[int, int, int, bool]:
    """Slice and centre of a crop: gas zone, lesion, lung or anywhere; and whether to add gas."""
    zone = case.zone
    if zone is not None and rng.random() < P_GAS:
        z, cy, cx = zone.centres[rng.integers(len(zone.centres))]
        jitter = rng.integers(-CROP // 3, CROP // 3 + 1, size=2)
        return int(z), int(cy + jitter[0]), int(cx + jitter[1]), True
    z = int(rng.integers(case.x.shape[0]))
    lab = case.y[z]
    lesion = np.argwhere(lab >= 2) if rng.random() < P_LESION else np.empty((0, 2))
    lung = lesion if len(lesion) else (np.argwhere(lab > 0) if rng.random() < 0.8 else np.empty((0, 2)))
    if len(lung):
        cy, cx = lung[rng.integers(len(lung))]
    else:
        cy, cx = rng.integers(lab.shape[0]), rng.integers(lab.shape[1])
    return z, int(cy), int(cx), False


def _crop(case: CaseArrays, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random crop: centred as :func:`_pick_centre` says, mirrored, shifted and noised."""
    from models.augment25d import insert_gas, sharpen_noise

    z, cy, cx, gas = _pick_centre(case, rng)
    img, lab = case.x[z].astype(np.float32), case.y[z]
    H, W = lab.shape
    pad_y, pad_x = max(0, CROP - H), max(0, CROP - W)
    if pad_y or pad_x:
        img = np.pad(img, ((0, 0), (0, pad_y), (0, pad_x)))
        lab = np.pad(lab, ((0, pad_y), (0, pad_x)))
        H, W = lab.shape
    y0 = int(np.clip(cy - CROP // 2, 0, H - CROP))
    x0 = int(np.clip(cx - CROP // 2, 0, W - CROP))
    img, lab = img[:, y0:y0 + CROP, x0:x0 + CROP], lab[y0:y0 + CROP, x0:x0 + CROP]
    if gas and not (pad_y or pad_x):
        img = insert_gas(img, case.zone, z, y0, x0, rng)
    if rng.random() < P_SHARP:
        img = sharpen_noise(img, rng)
    if rng.random() < 0.5:  # mirror right-left (the network does not name the sides)
        img, lab = img[:, :, ::-1], lab[:, ::-1]
    img = img + rng.normal(0.0, 0.02, size=(IN_CHANNELS, 1, 1)).astype(np.float32)  # ~30 HU shift
    img = img + rng.normal(0.0, 0.01, size=img.shape).astype(np.float32)
    return np.ascontiguousarray(img), np.ascontiguousarray(lab)


def _batch(cases: Sequence[CaseArrays], size: int, rng: np.random.Generator) -> tuple[Any, Any]:
    import torch

    pairs = [_crop(cases[int(rng.integers(len(cases)))], rng) for _ in range(size)]
    return (torch.from_numpy(np.stack([p[0] for p in pairs])),
            torch.from_numpy(np.stack([p[1] for p in pairs]).astype(np.int64)))


def _loss(logits: Any, target: Any) -> Any:
    import torch
    from torch.nn import functional as F

    ce = F.cross_entropy(logits, target, weight=torch.tensor(CLASS_WEIGHTS))
    p_lung = 1.0 - torch.softmax(logits, dim=1)[:, 0]
    t_lung = (target > 0).float()
    dice = 1.0 - (2 * (p_lung * t_lung).sum() + 1.0) / (p_lung.sum() + t_lung.sum() + 1.0)
    return ce + dice


def _new_network() -> Any:
    from models.network import UNet2D

    return UNet2D(base=16, levels=4, in_channels=IN_CHANNELS, n_classes=len(CLASS_NAMES))


def _save(path: Path, net: Any, opt: Any, state: dict[str, Any]) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save({"format": "chestct-lung25d-1", "config": net.config, "model": net.state_dict(),
                "optimizer": opt.state_dict(), **state}, tmp)
    tmp.replace(path)


def train_lung25d(cases: Sequence[CaseArrays], checkpoint: str | Path, *, minutes: float, batch: int = 6,
                  lr: float = 2e-3, seed: int = 0, save_every_s: float = 300.0, log: Any = print,
                  init: str | Path | None = None) -> dict[str, Any]:
    """Train (or resume) for ``minutes`` of wall time; returns the checkpoint's state.

    The learning rate is cosine-annealed over the planned total time, which a resumed
    run keeps (``planned_s`` is stored in the checkpoint).  ``init``: a checkpoint whose
    weights start a new run (fine-tuning; its optimiser and schedule are not taken).
    """
    import math

    import torch

    torch.manual_seed(seed)
    checkpoint = Path(checkpoint)
    net = _new_network()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    state: dict[str, Any] = {"step": 0, "trained_s": 0.0, "planned_s": minutes * 60.0, "losses": []}
    if checkpoint.is_file():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        net.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        state = {k: saved[k] for k in ("step", "trained_s", "planned_s", "losses")}
        log(f"resumed at step {state['step']} after {state['trained_s'] / 60:.1f} min")
    elif init is not None:
        net.load_state_dict(torch.load(Path(init), map_location="cpu", weights_only=False)["model"])
        log(f"started from the weights of {init}")
    rng = np.random.default_rng(seed + state["step"])
    start, last_save, running = time.monotonic(), time.monotonic(), []
    net.train()
    while state["trained_s"] + (time.monotonic() - start) < state["planned_s"]:
        elapsed = state["trained_s"] + time.monotonic() - start
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / state["planned_s"])))
        x, y = _batch(cases, batch, rng)
        loss = _loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        state["step"] += 1
        running.append(float(loss.detach()))
        if state["step"] % 50 == 0:
            state["losses"].append((state["step"], float(np.mean(running))))
            log(f"step {state['step']} loss {np.mean(running):.4f} ({elapsed / 60:.1f} min)")
            running = []
        if time.monotonic() - last_save > save_every_s:
            _save(checkpoint, net, opt, {**state, "trained_s": state["trained_s"] + time.monotonic() - start})
            last_save = time.monotonic()
    state["trained_s"] += time.monotonic() - start
    _save(checkpoint, net, opt, state)
    return state


def export_weights(checkpoint: str | Path, out: str | Path, *, training: dict[str, Any] | None = None) -> Path:
    """Write the weights to ship: the network and its training summary, without the optimiser."""
    import torch

    saved = torch.load(Path(checkpoint), map_location="cpu", weights_only=False)
    slim = {"format": saved["format"], "config": saved["config"], "model": saved["model"],
            "step": saved["step"], "trained_s": saved["trained_s"], "training": training or {}}
    out = Path(out)
    tmp = out.with_suffix(".tmp")
    torch.save(slim, tmp)
    tmp.replace(out)
    return out


def load_lung25d(path: str | Path) -> Any:
    """The network of a checkpoint, in evaluation mode."""
    import torch

    saved = torch.load(Path(path), map_location="cpu", weights_only=False)
    net = _new_network()
    net.load_state_dict(saved["model"])
    net.eval()
    return net.to(memory_format=torch.channels_last)  # about a quarter faster on CPU


def _grid_channels(hu: np.ndarray, zs: np.ndarray, k: int, pixel_mm: tuple[float, float]) -> np.ndarray:
    """Network input of slices ``zs`` (as :func:`models.slices25d.volume_channels` makes it
    for a whole volume), ``(len(zs), IN_CHANNELS, Y', X')`` float32."""
    from models.slices25d import SOFT_WINDOW_HU, WIDE_WINDOW_HU, to_grid, window

    last = hu.shape[0] - 1
    below, above = np.clip(zs - k, 0, last), np.clip(zs + k, 0, last)
    need = np.unique(np.concatenate([below, zs, above]))
    wide = to_grid(window(hu[need], WIDE_WINDOW_HU), pixel_mm)
    where = {int(z): i for i, z in enumerate(need)}
    soft = to_grid(window(hu[zs], SOFT_WINDOW_HU), pixel_mm)
    pick = lambda zz: wide[[where[int(z)] for z in zz]]  # noqa: E731
    return np.stack([pick(below), pick(zs), pick(above), soft], axis=1).astype(np.float32)


def _nearest_rows(native: int, grid: int) -> np.ndarray:
    """Grid index of each native pixel (edges aligned, as :func:`models.slices25d.to_grid`)."""
    return np.minimum(((np.arange(native) + 0.5) * grid / native).astype(np.int64), grid - 1)


#: Slices thinner than this are not all run: every ``round(Z_STEP_MM / slice)``-th slice is,
#: and each slice between takes the classes of the nearest one run.
Z_STEP_MM: float = 1.25


def predict_classes25d(net: Any, hu: np.ndarray, spacing_mm: tuple[float, float, float], *,
                       batch: int = 8, box: tuple[int, int, int, int] | None = None,
                       z_step_mm: float = Z_STEP_MM) -> np.ndarray:
    """Class labels (:data:`models.slices25d.CLASS_NAMES`) of a canonical volume, ``(Z, Y, X)`` uint8.

    Slices are run ``batch`` at a time (memory stays small whatever the scan's length),
    inside ``box`` = (row start, row stop, column start, column stop) when given (the
    patient's extent: outside it is background), at the network's grid; classes are
    taken back to the scan's pixels by nearest neighbour.
    """
    import torch

    from models.slices25d import neighbour_offset

    Z, Y, X = hu.shape
    y0, y1, x0, x1 = box if box is not None else (0, Y, 0, X)
    sub = hu[:, y0:y1, x0:x1]
    k = neighbour_offset(spacing_mm[0])
    step = max(1, int(round(z_step_mm / float(spacing_mm[0]))))
    targets = np.unique(np.r_[np.arange(0, Z, step), Z - 1])
    out = np.zeros(hu.shape, np.uint8)
    m = net.multiple
    with torch.inference_mode():
        for i in range(0, len(targets), batch):
            zs = targets[i:i + batch]
            x = _grid_channels(sub, zs, k, tuple(spacing_mm[1:]))
            H, W = x.shape[-2:]
            x = np.pad(x, ((0, 0), (0, 0), (0, (-H) % m), (0, (-W) % m)))
            batch_in = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
            classes = net(batch_in).argmax(dim=1)[:, :H, :W].numpy().astype(np.uint8)
            rows, cols = _nearest_rows(y1 - y0, H), _nearest_rows(x1 - x0, W)
            out[zs, y0:y1, x0:x1] = classes[:, rows[:, None], cols[None, :]]
    if step > 1:  # each slice between takes the nearest slice run
        nearest = targets[np.abs(np.arange(Z)[:, None] - targets[None, :]).argmin(axis=1)]
        out = out[nearest]
    return out
