"""Training of the opacity U-Net on the CPU (or a GPU when present).

Data per batch: COVID-19 display slices of the training blocks (expert lungs and
infection) and synthetic HU chest slices converted with :func:`hu_to_display` under a
randomly jittered window (healthy negatives and lesions with known truth). Every image
is then augmented at the display level (affine, left-right flip, gamma / contrast,
blur, down-up resampling, noise). The schedule is set by a wall-clock budget (cosine
learning rate over the budget), or by a fixed step count for exact reproduction.

:func:`train` reads like the run: check the settings, build the training data
(:class:`_TrainingData`), the network, optimise (:func:`_optimise`: batch, loss, step,
periodic evaluation and partial checkpoint), evaluate and write the final checkpoint.
The lesion threshold is calibrated afterwards (:func:`models.calibrate.calibrate_lesion_threshold`,
re-exported here); checkpoints are written by :func:`models.checkpoint.save_checkpoint`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import cv2
import numpy as np

from imaging.scoring.constants import DISPLAY_WINDOW_HU
from models.calibrate import calibrate_lesion_threshold, dice
from models.checkpoint import CHECKPOINT_FORMAT, save_checkpoint
from models.data import (
    CovidSlices,
    block_indices,
    find_scan_blocks,
    load_covid_slices,
    make_labels,
    phantom_slices,
    split_blocks,
    synthetic_chest_slice,
)
from models.preprocess import NET_SIZE, hu_to_display

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "TrainConfig", "train", "augment", "random_window_display", "save_checkpoint",
    "calibrate_lesion_threshold",
]

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

    _check_config(config)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.time()
    Path(config.log).parent.mkdir(parents=True, exist_ok=True)
    with open(config.log, "a", encoding="utf-8") as logf:
        journal = _Journal(logf, t0)
        data = _training_data(config, rng, log, t0)
        net = _network(config, device, log)
        step, history = _optimise(net, data, config, rng, device, journal, log)
        ev = _evaluate_and_record(net, data, device, step, history, journal, final=True)
        log("final " + json.dumps(ev))
        save_checkpoint(_checkpoint(net, config, data, step, t0, history, device, final=True), config.out)
    return {"steps": step, "seconds": round(time.time() - t0, 1), "out": config.out, **ev}


def _check_config(config: TrainConfig) -> None:
    """Refuse settings that cannot train, before any work (ValueError, FileNotFoundError)."""
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


class _Journal:
    """The JSON-lines progress log of a run; each record gets ``t_s``, seconds since the start."""

    def __init__(self, file: TextIO, t0: float) -> None:
        self.file = file
        self.t0 = t0

    def record(self, **kw: Any) -> None:
        kw["t_s"] = round(time.time() - self.t0, 1)
        self.file.write(json.dumps(kw) + "\n")
        self.file.flush()


@dataclass
class _TrainingData:
    """What one run trains and validates on.

    ``covid`` (display slices with expert lungs and infection) split by whole-scan blocks
    into ``train_idx`` / ``val_idx``; ``labels`` their classes 0/1/2; the synthetic HU bank
    (``synthetic_hu``, ``synthetic_labels``, from ``synthetic_source``); a fixed synthetic
    validation set of healthy slices (``synthetic_val_x`` display in [0, 1],
    ``synthetic_val_lungs``).
    """

    covid: CovidSlices
    labels: np.ndarray
    blocks: list[tuple[int, int]]
    train_blocks: list[int]
    val_blocks: list[int]
    train_idx: np.ndarray
    val_idx: np.ndarray
    synthetic_hu: list[np.ndarray]
    synthetic_labels: list[np.ndarray]
    synthetic_source: str
    synthetic_val_x: np.ndarray
    synthetic_val_lungs: np.ndarray


def _training_data(config: TrainConfig, rng: np.random.Generator, log: Callable[[str], None],
                   t0: float) -> _TrainingData:
    """Read the COVID-19 slices, split them by scan, build the synthetic bank and validation."""
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
    return _TrainingData(data, labels, blocks, train_b, val_b, tr, va, syn_hu, syn_lab, syn_source,
                         syn_val_x, syn_val_lungs)


def _network(config: TrainConfig, device: "torch.device", log: Callable[[str], None]) -> "torch.nn.Module":
    """A new U-Net, or the ``config.init`` checkpoint to fine-tune (same network config), on ``device``."""
    import torch

    from models.network import UNet2D

    net = UNet2D(base=config.base, levels=config.levels)
    if config.init:
        init = torch.load(config.init, map_location="cpu", weights_only=True)
        if dict(init["config"]) != dict(net.config):
            raise ValueError(f"init checkpoint {config.init!r} has network config "
                             f"{init['config']}, expected {net.config}")
        net.load_state_dict(init["state_dict"])
        log(f"fine-tuning from {config.init} ({init['training']['steps']} steps)")
    return net.to(device)


def _learning_rate(config: TrainConfig, step: int, elapsed: float) -> float:
    """Linear warm-up, then cosine decay over the step count or the wall-clock budget."""
    frac = step / config.steps if config.steps else elapsed / (config.minutes * 60.0)
    warm = min(1.0, (step + 1) / max(1, config.warmup))
    return config.lr * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, frac)))


def _batch(data: _TrainingData, config: TrainConfig, rng: np.random.Generator,
           device: "torch.device") -> tuple["torch.Tensor", "torch.Tensor"]:
    """One augmented batch: synthetic slices (random window) with ``synthetic_fraction``, else COVID-19 slices."""
    import torch

    xs, ys = [], []
    for _ in range(config.batch):
        if rng.random() < config.synthetic_fraction:
            j = int(rng.integers(0, len(data.synthetic_hu)))
            img, lab = random_window_display(data.synthetic_hu[j], rng), data.synthetic_labels[j]
        else:
            j = int(data.train_idx[int(rng.integers(0, len(data.train_idx)))])
            img, lab = data.covid.images[j], data.labels[j]
        x, y = augment(img, lab, rng, crop=config.crop)
        xs.append(x)
        ys.append(y)
    xb = torch.from_numpy(np.stack(xs))[:, None].to(device)
    yb = torch.from_numpy(np.stack(ys).astype(np.int64)).to(device)
    return xb, yb


def _loss(logits: "torch.Tensor", yb: "torch.Tensor", class_w: "torch.Tensor",
          config: TrainConfig) -> tuple["torch.Tensor", "torch.Tensor"]:
    """(loss, cross-entropy): weighted cross-entropy + soft lung Dice + weighted soft lesion Dice."""
    from torch.nn import functional as F

    ce = F.cross_entropy(logits, yb, weight=class_w)
    prob = logits.softmax(1)
    p_lung = prob[:, 1] + prob[:, 2]
    p_les = prob[:, 2]
    t_lung = (yb > 0).float()
    t_les = (yb == 2).float()
    d_lung = 1 - (2 * (p_lung * t_lung).sum() + 1) / (p_lung.sum() + t_lung.sum() + 1)
    d_les = 1 - (2 * (p_les * t_les).sum() + 1) / (p_les.sum() + t_les.sum() + 1)
    return ce + d_lung + config.lesion_dice_weight * d_les, ce


def _optimise(net: "torch.nn.Module", data: _TrainingData, config: TrainConfig, rng: np.random.Generator,
              device: "torch.device", journal: _Journal, log: Callable[[str], None]) -> tuple[int, list[dict]]:
    """The training loop, until ``config.steps`` or the time budget; evaluates and saves a
    partial checkpoint every ``config.eval_every_s``.  Returns the step count and the
    evaluation history."""
    import torch

    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    class_w = torch.tensor([1.0, 1.0, config.lesion_class_weight], device=device)
    budget_s = config.minutes * 60.0
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
        xb, yb = _batch(data, config, rng, device)
        for g in opt.param_groups:
            g["lr"] = _learning_rate(config, step, elapsed)
        loss, ce = _loss(net(xb), yb, class_w, config)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 25 == 0:
            journal.record(step=step, loss=round(float(loss.detach()), 4), ce=round(float(ce.detach()), 4),
                           lr=round(opt.param_groups[0]["lr"], 6))
        if time.time() - last_eval > config.eval_every_s:
            ev = _evaluate_and_record(net, data, device, step, history, journal, final=False)
            log(json.dumps(ev))
            last_eval = time.time()
            save_checkpoint(_checkpoint(net, config, data, step, journal.t0, history, device, final=False),
                            Path(config.log).with_suffix(".partial.pt"))
    return step, history


def _evaluate(net: "torch.nn.Module", data: _TrainingData, device: "torch.device") -> dict:
    """Lung and infection Dice on the validation blocks; lung Dice and false opacity (% of
    lung) on the healthy synthetic validation slices."""
    import torch

    net.eval()
    va = data.val_idx
    inter_l = sum_l = inter_i = sum_i = 0.0
    with torch.inference_mode():
        for s in range(0, len(va), 32):
            idx = va[s:s + 32]
            x = torch.from_numpy(data.covid.images[idx].astype(np.float32) / 255)[:, None].to(device)
            pred = net(x).argmax(1).cpu().numpy()
            pl, pi = pred > 0, pred == 2
            rl, ri = data.covid.lungs[idx], data.covid.infection[idx]
            inter_l += np.logical_and(pl, rl).sum(); sum_l += pl.sum() + rl.sum()
            inter_i += np.logical_and(pi, ri).sum(); sum_i += pi.sum() + ri.sum()
        pred = net(torch.from_numpy(data.synthetic_val_x)[:, None].to(device)).argmax(1).cpu().numpy()
    fp = float((pred == 2).sum() / max(1, data.synthetic_val_lungs.sum()) * 100)
    syn_lung = dice(pred > 0, data.synthetic_val_lungs)
    net.train()
    return {"val_lung_dice": float(2 * inter_l / max(sum_l, 1)),
            "val_infection_dice": float(2 * inter_i / max(sum_i, 1)),
            "synthetic_healthy_opacity_pct": fp, "synthetic_lung_dice": syn_lung}


def _evaluate_and_record(net: "torch.nn.Module", data: _TrainingData, device: "torch.device", step: int,
                         history: list[dict], journal: _Journal, *, final: bool) -> dict:
    """Evaluate, stamp with the step and time, append to ``history`` and the journal."""
    ev = _evaluate(net, data, device)
    ev.update(step=step, t_s=round(time.time() - journal.t0, 1))
    history.append(ev)
    if final:
        journal.record(final=True, **ev)
    else:
        journal.record(**ev)
    return ev


def _checkpoint(net: "torch.nn.Module", config: TrainConfig, data: _TrainingData, step: int, t0: float,
                history: list[dict], device: "torch.device", *, final: bool) -> dict:
    """The checkpoint of the network now: weights, network and preprocessing config, and
    how it was trained (config, whole-scan split, steps, time, hardware, history)."""
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
            "blocks": [list(b) for b in data.blocks],
            "train_blocks": list(data.train_blocks),
            "validation_blocks": list(data.val_blocks),
            "steps": step,
            "seconds": round(time.time() - t0, 1),
            "device": str(device),
            "hardware": f"{platform.processor() or platform.machine()}, "
                        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
            "synthetic_source": data.synthetic_source,
            "history": history,
            "final": final,
        },
    }
