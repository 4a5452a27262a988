"""Training of the opacity U-Net on the CPU (or a GPU when present).

Data per batch: COVID-19 display slices of the training blocks (expert lungs and
infection) and synthetic HU chest slices converted with :func:`hu_to_display` under a
randomly jittered window (healthy negatives and lesions with known truth). Every image
is then augmented at the display level (affine, left-right flip, gamma / contrast,
blur, down-up resampling, noise). The schedule is set by a wall-clock budget (cosine
learning rate over the budget), or by a fixed step count for exact reproduction.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from imaging.scoring.constants import DISPLAY_WINDOW_HU
from models.data import (
    block_indices,
    find_scan_blocks,
    load_covid_slices,
    make_labels,
    phantom_slices,
    split_blocks,
    synthetic_chest_slice,
)
from models.preprocess import NET_SIZE, hu_to_display

__all__ = [
    "TrainConfig", "train", "augment", "random_window_display", "save_checkpoint",
    "calibrate_lesion_threshold",
]

CHECKPOINT_FORMAT = "chestct-opacity-unet/1"


@dataclass
class TrainConfig:
    """Settings of one training run (all recorded in the checkpoint)."""

    data_root: str = "../shared/data/covid19_ct_slices"
    out: str = "models/weights/opacity_unet.pt"
    log: str = "runs/train_opacity.jsonl"
    minutes: float = 40.0
    steps: int | None = None  # when set, the schedule is by steps, not by time
    batch: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    base: int = 16
    levels: int = 4
    synthetic_fraction: float = 0.25
    synthetic_bank: int = 160
    healthy_fraction: float = 0.5  # of the synthetic slices
    use_phantom: bool = True
    phantom_volumes: int = 12
    phantom_lung_free: bool = False  # also the neck / abdomen slices (background labels)
    phantom_table_shifts: tuple[float, ...] = (0.0,)  # Pose.dt per phantom, cycled
    phantom_severities: tuple[float, ...] = (0.0, 5.0, 0.0, 15.0, 0.0, 30.0)  # % opacity per phantom, cycled
    init: str | None = None  # checkpoint to fine-tune from (same network config)
    warmup: int = 100
    lesion_class_weight: float = 2.0  # cross-entropy weight of the lesion class
    lesion_dice_weight: float = 1.0  # weight of the soft lesion Dice term
    crop: int | None = 160  # random training crops (speed); inference uses whole slices
    eval_every_s: float = 600.0
    threads: int = 2
    seed: int = 20260426
    limit: int | None = None  # first N covid slices only (smoke tests)
    notes: list[str] = field(default_factory=list)


def random_window_display(hu: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """HU slice to display image under a randomly jittered window (training only).

    70 %: :data:`DISPLAY_WINDOW_HU` with low jittered by +-150 HU and high by -150..+250;
    30 %: a wide "raw range" window (low -1100..-1000, high 600..2000) imitating the
    source volumes that were min-max normalised straight from HU.
    """
    if rng.random() < 0.7:
        lo = DISPLAY_WINDOW_HU[0] + rng.uniform(-150, 150)
        hi = DISPLAY_WINDOW_HU[1] + rng.uniform(-150, 250)
    else:
        lo, hi = rng.uniform(-1100, -1000), rng.uniform(600, 2000)
    return hu_to_display(hu, window_hu=(lo, hi))


def augment(
    image: np.ndarray, label: np.ndarray, rng: np.random.Generator, *, crop: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Random display-level augmentation of one 256 x 256 slice and its labels.

    Parameters
    ----------
    image : (H, W) uint8 ndarray
    label : (H, W) uint8 ndarray, classes 0/1/2
    rng : numpy Generator
    crop : int or None
        Side of a random square crop taken after the affine (training speed: the network
        is fully convolutional); None: the whole slice.

    Returns
    -------
    image : (crop, crop) or (H, W) float32 ndarray in [0, 1]
    label : same shape, uint8 ndarray

    Notes
    -----
    Affine (scale 0.85-1.2, rotation +-12 degrees, shift +-8 %), left-right flip (the
    network does not tell left from right lung, so the flip changes no label meaning),
    gamma 0.7-1.5, contrast 0.8-1.2 and offset +-0.08, Gaussian blur (p 0.25),
    down-up resampling to 50-85 % (p 0.25), Gaussian noise sigma 0-0.05 (p 0.5).
    """
    h, w = image.shape
    ang = rng.uniform(-12, 12)
    sc = rng.uniform(0.85, 1.2)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, sc)
    m[:, 2] += rng.uniform(-0.08, 0.08, size=2) * (w, h)
    border = int(np.percentile(image[:8], 50))
    img = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    lab = cv2.warpAffine(label, m, (w, h), flags=cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if rng.random() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
    if crop is not None and crop < min(h, w):
        y0, x0 = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        img, lab = img[y0:y0 + crop, x0:x0 + crop], lab[y0:y0 + crop, x0:x0 + crop]
        h, w = crop, crop
    x = img.astype(np.float32) / 255.0
    if rng.random() < 0.25:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.3))
    if rng.random() < 0.25:
        f = rng.uniform(0.5, 0.85)
        small = cv2.resize(x, (int(w * f), int(h * f)), interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    x = np.clip(x, 0, 1) ** rng.uniform(0.7, 1.5)
    x = x * rng.uniform(0.8, 1.2) + rng.uniform(-0.08, 0.08)
    if rng.random() < 0.5:
        x = x + rng.normal(0, rng.uniform(0, 0.05), size=x.shape).astype(np.float32)
    return np.clip(x, 0, 1).astype(np.float32), np.ascontiguousarray(lab)


def save_checkpoint(obj: dict, path: str | Path) -> None:
    """torch.save ``obj`` to ``path`` atomically (temp file in the folder, then rename)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _synthetic_bank(n: int, healthy_fraction: float, rng: np.random.Generator,
                    use_phantom: bool, log: Callable[[str], None], *,
                    phantom_volumes: int = 12, lung_free: bool = False,
                    table_shifts: tuple[float, ...] = (0.0,),
                    severities: tuple[float, ...] = (0.0, 5.0, 0.0, 15.0, 0.0, 30.0)):
    hus, labels = [], []
    kinds = [None, "ggo", "consolidation", "mixed"]
    for i in range(n):
        k = None if rng.random() < healthy_fraction else kinds[1 + int(rng.integers(0, 3))]
        hu, lungs, les = synthetic_chest_slice(rng, size=NET_SIZE, lesion=k)
        hus.append(hu)
        labels.append(make_labels(lungs, les > 0))
    source = "builtin synthetic_chest_slice"
    if use_phantom:
        try:
            ph_hu, ph_lungs, ph_les = phantom_slices(rng, n_volumes=phantom_volumes,
                                                     lung_free=lung_free,
                                                     table_shifts=table_shifts,
                                                     percent_opacity=severities)
        except ImportError as exc:
            log(f"imaging.phantom.make not available ({exc}); built-in synthetic slices only")
        else:
            for hu, lu, le in zip(ph_hu, ph_lungs, ph_les):
                if hu.shape != (NET_SIZE, NET_SIZE):
                    hu = cv2.resize(hu, (NET_SIZE, NET_SIZE), interpolation=cv2.INTER_LINEAR)
                    lu = cv2.resize(lu.astype(np.uint8), (NET_SIZE, NET_SIZE),
                                    interpolation=cv2.INTER_NEAREST) > 0
                    le = cv2.resize(le, (NET_SIZE, NET_SIZE), interpolation=cv2.INTER_NEAREST)
                hus.append(hu.astype(np.float32))
                labels.append(make_labels(lu, (le > 0) & lu))
            n_free = int((~ph_lungs.any(axis=(1, 2))).sum())
            source += (f" + {len(ph_hu)} imaging.phantom.make slices ({phantom_volumes} volumes, "
                       f"{n_free} lung-free)")
    return hus, labels, source


def _dice(pred: np.ndarray, ref: np.ndarray) -> float:
    s = pred.sum() + ref.sum()
    return float(2 * np.logical_and(pred, ref).sum() / s) if s else 1.0


def train(config: TrainConfig, *, log: Callable[[str], None] = print) -> dict:
    """Train the network and write the checkpoint to ``config.out``.

    Parameters
    ----------
    config : TrainConfig
    log : callable taking one line of text

    Returns
    -------
    dict
        Summary: steps, seconds, final validation numbers, output path.
    """
    import torch
    from torch.nn import functional as F

    from models.network import UNet2D

    if config.batch < 1:
        raise ValueError(f"batch must be >= 1, got {config.batch!r}")
    if config.minutes <= 0 and config.steps is None:
        raise ValueError(f"minutes must be > 0 when steps is None, got {config.minutes!r}")
    if config.steps is not None and config.steps < 1:
        raise ValueError(f"steps must be >= 1 or None, got {config.steps!r} (it would save an untrained network)")
    if config.threads < 1:
        raise ValueError(f"threads must be >= 1, got {config.threads!r}")
    if not 0.0 <= config.synthetic_fraction <= 1.0:
        raise ValueError(f"synthetic_fraction must be in [0, 1], got {config.synthetic_fraction!r}")
    if Path(config.out).is_dir():
        raise ValueError(f"out {str(config.out)!r} is a folder; give the checkpoint file to write")
    if config.init and not Path(config.init).is_file():
        raise FileNotFoundError(f"init checkpoint {str(config.init)!r} not found")
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.time()
    Path(config.log).parent.mkdir(parents=True, exist_ok=True)
    logf = open(config.log, "a", encoding="utf-8")

    def record(**kw) -> None:
        kw["t_s"] = round(time.time() - t0, 1)
        logf.write(json.dumps(kw) + "\n")
        logf.flush()

    data = load_covid_slices(config.data_root, limit=config.limit)
    blocks = find_scan_blocks(data.images, data.lungs)
    train_b, val_b = split_blocks(blocks)
    tr = block_indices(blocks, train_b)
    va = block_indices(blocks, val_b)
    labels = make_labels(data.lungs, data.infection)
    log(f"{len(data)} covid slices, {len(blocks)} blocks; train blocks {train_b} "
        f"({len(tr)} slices), validation blocks {val_b} ({len(va)} slices)")
    syn_hu, syn_lab, syn_source = _synthetic_bank(
        config.synthetic_bank, config.healthy_fraction, rng, config.use_phantom, log,
        phantom_volumes=config.phantom_volumes, lung_free=config.phantom_lung_free,
        table_shifts=tuple(config.phantom_table_shifts),
        severities=tuple(config.phantom_severities))
    # fixed synthetic validation: healthy slices, default display window
    vrng = np.random.default_rng(config.seed + 1)
    syn_val = [synthetic_chest_slice(vrng, size=NET_SIZE, lesion=None) for _ in range(32)]
    syn_val_x = np.stack([hu_to_display(h) for h, _, _ in syn_val]).astype(np.float32) / 255
    syn_val_lungs = np.stack([lu for _, lu, _ in syn_val])
    log(f"synthetic bank: {len(syn_hu)} slices from {syn_source} "
        f"({time.time() - t0:.0f} s)")

    net = UNet2D(base=config.base, levels=config.levels)
    if config.init:
        init = torch.load(config.init, map_location="cpu", weights_only=True)
        if dict(init["config"]) != dict(net.config):
            raise ValueError(f"init checkpoint {config.init!r} has network config "
                             f"{init['config']}, expected {net.config}")
        net.load_state_dict(init["state_dict"])
        log(f"fine-tuning from {config.init} ({init['training']['steps']} steps)")
    net = net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    class_w = torch.tensor([1.0, 1.0, config.lesion_class_weight], device=device)
    budget_s = config.minutes * 60.0
    warmup = max(1, config.warmup)

    def lr_at(step: int, elapsed: float) -> float:
        frac = step / config.steps if config.steps else elapsed / budget_s
        warm = min(1.0, (step + 1) / warmup)
        return config.lr * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))

    def evaluate() -> dict:
        net.eval()
        inter_l = sum_l = inter_i = sum_i = 0.0
        with torch.inference_mode():
            for s in range(0, len(va), 32):
                idx = va[s:s + 32]
                x = torch.from_numpy(data.images[idx].astype(np.float32) / 255)[:, None].to(device)
                pred = net(x).argmax(1).cpu().numpy()
                pl, pi = pred > 0, pred == 2
                rl, ri = data.lungs[idx], data.infection[idx]
                inter_l += np.logical_and(pl, rl).sum(); sum_l += pl.sum() + rl.sum()
                inter_i += np.logical_and(pi, ri).sum(); sum_i += pi.sum() + ri.sum()
            pred = net(torch.from_numpy(syn_val_x)[:, None].to(device)).argmax(1).cpu().numpy()
        fp = float((pred == 2).sum() / max(1, syn_val_lungs.sum()) * 100)
        syn_lung = _dice(pred > 0, syn_val_lungs)
        net.train()
        return {"val_lung_dice": float(2 * inter_l / max(sum_l, 1)),
                "val_infection_dice": float(2 * inter_i / max(sum_i, 1)),
                "synthetic_healthy_opacity_pct": fp, "synthetic_lung_dice": syn_lung}

    history: list[dict] = []
    step = 0
    last_eval = time.time()
    t_train = time.time()
    net.train()
    while True:
        elapsed = time.time() - t_train
        if (config.steps is not None and step >= config.steps) or (
                config.steps is None and elapsed >= budget_s):
            break
        xs, ys = [], []
        for _ in range(config.batch):
            if rng.random() < config.synthetic_fraction:
                j = int(rng.integers(0, len(syn_hu)))
                img, lab = random_window_display(syn_hu[j], rng), syn_lab[j]
            else:
                j = int(tr[int(rng.integers(0, len(tr)))])
                img, lab = data.images[j], labels[j]
            x, y = augment(img, lab, rng, crop=config.crop)
            xs.append(x)
            ys.append(y)
        xb = torch.from_numpy(np.stack(xs))[:, None].to(device)
        yb = torch.from_numpy(np.stack(ys).astype(np.int64)).to(device)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, elapsed)
        logits = net(xb)
        ce = F.cross_entropy(logits, yb, weight=class_w)
        prob = logits.softmax(1)
        p_lung = prob[:, 1] + prob[:, 2]
        p_les = prob[:, 2]
        t_lung = (yb > 0).float()
        t_les = (yb == 2).float()
        d_lung = 1 - (2 * (p_lung * t_lung).sum() + 1) / (p_lung.sum() + t_lung.sum() + 1)
        d_les = 1 - (2 * (p_les * t_les).sum() + 1) / (p_les.sum() + t_les.sum() + 1)
        loss = ce + d_lung + config.lesion_dice_weight * d_les
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 25 == 0:
            record(step=step, loss=round(float(loss.detach()), 4), ce=round(float(ce.detach()), 4),
                   lr=round(opt.param_groups[0]["lr"], 6))
        if time.time() - last_eval > config.eval_every_s:
            ev = evaluate()
            ev.update(step=step, t_s=round(time.time() - t0, 1))
            history.append(ev)
            record(**ev)
            log(json.dumps(ev))
            last_eval = time.time()
            save_checkpoint(_checkpoint(net, config, blocks, train_b, val_b, step, t0, history,
                                        syn_source, device, final=False),
                            Path(config.log).with_suffix(".partial.pt"))
    ev = evaluate()
    ev.update(step=step, t_s=round(time.time() - t0, 1))
    history.append(ev)
    record(final=True, **ev)
    log("final " + json.dumps(ev))
    save_checkpoint(_checkpoint(net, config, blocks, train_b, val_b, step, t0, history,
                                syn_source, device, final=True), config.out)
    logf.close()
    return {"steps": step, "seconds": round(time.time() - t0, 1), "out": config.out, **ev}


def _checkpoint(net, config, blocks, train_b, val_b, step, t0, history, syn_source, device,
                *, final: bool) -> dict:
    import platform

    import torch

    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return {
        "format": CHECKPOINT_FORMAT,
        "config": dict(net.config),
        "state_dict": state,
        "classes": ["background", "lung", "lesion"],
        "preprocessing": {"net_size": NET_SIZE, "display_window_hu": list(DISPLAY_WINDOW_HU),
                          "clahe_clip_limit": 7.0, "clahe_tiles": [8, 8]},
        "training": {
            "config": asdict(config),
            "blocks": [list(b) for b in blocks],
            "train_blocks": list(train_b),
            "validation_blocks": list(val_b),
            "steps": step,
            "seconds": round(time.time() - t0, 1),
            "device": str(device),
            "hardware": f"{platform.processor() or platform.machine()}, "
                        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
            "synthetic_source": syn_source,
            "history": history,
            "final": final,
        },
    }


#: Thresholds tried by :func:`calibrate_lesion_threshold`.
THRESHOLD_GRID: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
#: Largest opacity, % of lung, allowed on healthy phantoms when calibrating.
HEALTHY_MAX_PCT: float = 0.5


def calibrate_lesion_threshold(
    checkpoint: str | Path,
    *,
    data_root: str | Path = "../shared/data/covid19_ct_slices",
    n_train_slices: int = 240,
    phantom_seeds: tuple[int, ...] = (201, 202, 203, 204),
    log: Callable[[str], None] = print,
) -> dict:
    """Choose the lesion thresholds from TRAINING data and healthy phantoms; store them.

    Rule for HU input (fixed before looking at any validation result): among
    :data:`THRESHOLD_GRID`, keep the thresholds whose predicted opacity on healthy
    phantoms (``phantom_seeds``, 60 x 256 x 256 at 5 x 1.4 x 1.4 mm, not used in
    training or evaluation) stays under :data:`HEALTHY_MAX_PCT` % of the lungs, and
    pick the one with the best infection Dice on ``n_train_slices`` evenly spaced slices
    of the training blocks. When none qualifies, the largest threshold is taken.
    Display input (``kind="display"``) gets its own threshold, the best training Dice
    alone: the healthy-phantom limit is a check on HU input.  The held-out COVID scans
    and the LIDC scan are not used.

    Parameters
    ----------
    checkpoint : path
        Checkpoint written by :func:`train`; rewritten atomically with
        ``checkpoint["inference"] = {"lesion_threshold": t_hu,
        "display_lesion_threshold": t_display, "calibration": ...}``.

    Returns
    -------
    dict
        The ``inference`` entry written.
    """
    import torch

    from imaging.phantom.make import make_phantom
    from models.inference import iter_probabilities, load_model

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    net = load_model(checkpoint)
    info = ckpt["training"]
    blocks = [tuple(b) for b in info["blocks"]]
    tr = block_indices(blocks, info["train_blocks"])
    pick = tr[np.linspace(0, len(tr) - 1, n_train_slices).round().astype(int)]
    data = load_covid_slices(data_root)
    images, inf = data.images[pick], data.infection[pick]
    phantoms = [make_phantom(shape=(60, 256, 256), spacing_mm=(5.0, 1.4, 1.4),
                             percent_opacity=0.0, rng=np.random.default_rng(s))
                for s in phantom_seeds]
    def probs(arr, kind, spacing_yx):
        pl, q = [], []
        for _, p_lung, q_lesion in iter_probabilities(arr, kind=kind, spacing_yx_mm=spacing_yx,
                                                      model=net):
            pl.append(p_lung >= 0.5)
            q.append(q_lesion)
        return np.concatenate(pl), np.concatenate(q)

    train_lung, train_q = probs(images, "display", None)
    ph_probs = [probs(np.asarray(ph.volume.hu), "hu", tuple(ph.volume.spacing_mm[1:]))
                for ph in phantoms]
    rows = []
    for t in THRESHOLD_GRID:
        dice = _dice(train_lung & (train_q >= t), inf)
        healthy = [100.0 * (lu & (q >= t)).sum() / max(1, lu.sum()) for lu, q in ph_probs]
        rows.append({"threshold": t, "train_infection_dice": round(dice, 4),
                     "healthy_phantom_opacity_pct": round(float(np.mean(healthy)), 3)})
        log(json.dumps(rows[-1]))
    ok = [r for r in rows if r["healthy_phantom_opacity_pct"] < HEALTHY_MAX_PCT]
    best = max(ok, key=lambda r: r["train_infection_dice"]) if ok else rows[-1]
    # display input (8-bit slices as public data sets ship them) is never a healthy HU
    # phantom: its threshold is the best training Dice alone
    best_display = max(rows, key=lambda r: r["train_infection_dice"])
    entry = {"lesion_threshold": best["threshold"],
             "display_lesion_threshold": best_display["threshold"],
             "calibration": {"rule": f"HU input: best train-block infection Dice with healthy-phantom "
                                     f"opacity < {HEALTHY_MAX_PCT} % (else the largest threshold); "
                                     "display input: best train-block infection Dice",
                             "train_slices": int(n_train_slices),
                             "phantom_seeds": list(phantom_seeds), "grid": rows}}
    ckpt["inference"] = entry
    save_checkpoint(ckpt, checkpoint)
    from models import inference

    inference._CACHE.clear()
    return entry
