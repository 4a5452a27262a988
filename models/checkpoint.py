"""The opacity network's checkpoint: where the shipped one lies, loading it, its threshold.

:func:`load_model` reads a checkpoint written by :mod:`models.train` (format
:data:`CHECKPOINT_FORMAT`; the shipped one is :data:`DEFAULT_WEIGHTS`), checks that it is
a 1-channel, 3-class :class:`models.network.UNet2D`, puts it on a torch device and keeps it
(one network per path and device); :func:`save_checkpoint` writes one atomically.  :func:`lesion_threshold` reads the lesion decision
threshold calibrated with the weights (:func:`models.calibrate.calibrate_lesion_threshold`).
torch is imported on first use, never at import.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.preprocess import check_kind

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["DEFAULT_WEIGHTS", "CHECKPOINT_FORMAT", "load_model", "lesion_threshold", "save_checkpoint"]

#: The shipped weights.
DEFAULT_WEIGHTS: Path = Path(__file__).resolve().parent / "weights" / "opacity_unet.pt"
#: Checkpoint format written by :mod:`models.train`.
CHECKPOINT_FORMAT: str = "chestct-opacity-unet/1"

#: Loaded networks by (resolved path, device); :func:`models.calibrate.calibrate_lesion_threshold`
#: clears it after rewriting a checkpoint.
_CACHE: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def _device(device: Any) -> "torch.device":
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', got {device!r} ({exc})") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here (torch "
                         f"{torch.__version__}); use device='cpu' or None")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    return dev


def load_model(path: str | Path | None = None, *, device: "str | torch.device | None" = None) -> "torch.nn.Module":
    """Load the opacity network (cached per path and device), in eval mode.

    Parameters
    ----------
    path : path or None
        Checkpoint written by ``scripts/train_opacity.py``; None: the shipped
        ``models/weights/opacity_unet.pt``.
    device : str, torch.device or None
        torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``); None: CUDA when available,
        else CPU.  An unknown device, or CUDA where there is none, is a ValueError.

    Returns
    -------
    torch.nn.Module
        :class:`models.network.UNet2D` with attribute ``checkpoint_info`` (the
        checkpoint's metadata without the weights).

    Raises
    ------
    FileNotFoundError
        When the checkpoint does not exist.
    ValueError
        When the path is a folder, the file is not a readable opacity-network checkpoint
        (truncated, another format, weights not matching their recorded configuration,
        not 1 input channel and 3 classes), or ``device`` is unknown or unavailable.
    """
    import torch

    from models.network import UNet2D

    p = Path(DEFAULT_WEIGHTS if path is None else path).resolve()
    dev = _device(device)
    key = (str(p), str(dev))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        if p.is_dir():
            raise ValueError(f"opacity weights {str(p)!r} is a folder; give the checkpoint file "
                             "(e.g. models/weights/opacity_unet.pt)")
        if not p.is_file():
            raise FileNotFoundError(f"opacity weights {str(p)!r} not found: train them with "
                                    "`python scripts/train_opacity.py`")
        try:
            ckpt = torch.load(p, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, KeyError, ValueError, pickle.UnpicklingError, OSError) as exc:
            if isinstance(exc, (PermissionError, FileNotFoundError)):
                raise
            raise ValueError(f"{str(p)!r} cannot be read as a {CHECKPOINT_FORMAT} checkpoint (truncated or "
                             f"another kind of file?): {type(exc).__name__}: {exc}") from exc
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{str(p)!r} is not a {CHECKPOINT_FORMAT} checkpoint")
        try:
            cfg = ckpt["config"]
            net = UNet2D(base=int(cfg["base"]), levels=int(cfg["levels"]),
                         in_channels=int(cfg["in_channels"]), n_classes=int(cfg["n_classes"]))
            net.load_state_dict(ckpt["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{str(p)!r}: its weights do not match its recorded network config "
                             f"{ckpt.get('config')!r}: {type(exc).__name__}: {str(exc)[:300]}") from exc
        if (net.config["in_channels"], net.config["n_classes"]) != (1, 3):
            raise ValueError(f"{str(p)!r} is a network with {net.config['in_channels']} input channel(s) and "
                             f"{net.config['n_classes']} classes; the opacity model needs 1 and 3 "
                             "(background, lung, lesion)")
        net.eval().to(dev)
        net.checkpoint_info = {k: v for k, v in ckpt.items() if k != "state_dict"}
        _CACHE[key] = net
        return net


def lesion_threshold(model: "torch.nn.Module", kind: str = "hu") -> float:
    """The lesion decision threshold recorded with the weights for this kind of input.

    A lung pixel is lesion when ``p(lesion) / (p(lung) + p(lesion))`` reaches it.

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`load_model`.
    kind : {"hu", "display", "window"}
        HU input uses ``lesion_threshold`` (calibrated with a healthy-phantom limit);
        8-bit input (``"display"`` and ``"window"``) ``display_lesion_threshold`` when the
        weights record one, else the same value
        (:func:`models.calibrate.calibrate_lesion_threshold`).  0.5 when nothing is
        recorded.
    """
    check_kind(kind)
    inference = (getattr(model, "checkpoint_info", {}) or {}).get("inference", {})
    t = float(inference.get("lesion_threshold", 0.5))
    return float(inference.get("display_lesion_threshold", t)) if kind != "hu" else t


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
