"""The cost of a published learned lung mask on the same scan: lungmask's R231 network.

lungmask (Hofmanninger et al. 2020) runs in its own virtual environment (its torch and
ours need not agree), made by :func:`setup_lungmask`; :func:`run_lungmask` runs its own
``LMInferer`` (pre-processing, inference, post-processing) on one DICOM series folder
with *random* weights of the R231 architecture (``UNet``, depth 5, 3 classes): the cost
is the architecture's, the weights cannot be downloaded here.  Time and peak resident
memory are measured inside that process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["LUNGMASK_TORCH", "setup_lungmask", "run_lungmask", "single_series_folder"]

#: The CPU torch installed first in the lungmask environment (so no CUDA build is pulled).
LUNGMASK_TORCH = "torch==2.13.0"

_LUNGMASK_CODE = r"""
import json, sys, tempfile, time, os
import SimpleITK as sitk, torch
from lungmask.mask import LMInferer
from lungmask.resunet import UNet

def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024

folder = sys.argv[1]
torch.manual_seed(0)
# the R231 architecture exactly as lungmask.mask.get_model builds it, random weights
net = UNet(n_classes=3, padding=True, depth=5, up_mode="upsample", batch_norm=True, residual=False)
with tempfile.TemporaryDirectory() as tmp:
    weights = os.path.join(tmp, "R231-random.pth")
    torch.save(net.state_dict(), weights)
    inferer = LMInferer(modelpath=weights, force_cpu=True, tqdm_disable=True)
forward_s = [0.0]
original = inferer.model.forward
def timed(x):
    t = time.perf_counter(); y = original(x); forward_s[0] += time.perf_counter() - t; return y
inferer.model.forward = timed
reader = sitk.ImageSeriesReader()
t0 = time.perf_counter()
reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
image = reader.Execute()
read_s = time.perf_counter() - t0
open('/proc/self/clear_refs', 'w').write('5')
t0 = time.perf_counter()
mask = inferer.apply(image)
apply_s = time.perf_counter() - t0
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "read_seconds": round(read_s, 3),
                  "apply_seconds": round(apply_s, 3), "network_seconds": round(forward_s[0], 3),
                  "peak_mb": round(hwm(), 1), "shape": list(mask.shape)}))
"""


def setup_lungmask(venv: str | Path) -> None:
    """Create the lungmask environment at ``venv`` (CPU torch pinned first, then lungmask)."""
    venv = Path(venv)
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, LUNGMASK_TORCH], check=True)
    subprocess.run([*pip, "lungmask"], check=True)


def run_lungmask(venv: str | Path, series_folder: str | Path) -> dict[str, Any]:
    """lungmask R231 (random weights) on one DICOM series folder, in its own environment.

    Returns
    -------
    dict
        ``torch`` (version), ``threads``, ``read_seconds``, ``apply_seconds`` (the whole
        lung mask), ``network_seconds`` (its forward passes), ``peak_mb`` and ``shape``.

    Raises
    ------
    FileNotFoundError
        When there is no environment at ``venv``.
    RuntimeError
        When the run fails (the end of its error output is in the message).
    """
    python = Path(venv) / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"no lungmask environment at {venv}; run with --setup-lungmask first")
    done = subprocess.run([str(python), "-c", _LUNGMASK_CODE, str(series_folder)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"lungmask run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def single_series_folder(study: str | Path) -> Path:
    """The one folder holding ``*.dcm`` files under a study folder.

    Raises
    ------
    FileNotFoundError
        When there is none, or more than one.
    """
    folders = sorted({p.parent for p in Path(study).rglob("*.dcm")})
    if len(folders) != 1:
        raise FileNotFoundError(f"expected one series folder under {study}, found {len(folders)}")
    return folders[0]
