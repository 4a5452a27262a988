"""Benchmark the whole score: time and peak memory per stage, batch throughput, and lungmask.

Measures, on this machine (say which when you quote the numbers):

1. Per stage (read, lungs, opacity, whole score) time and peak resident memory on the
   real ``lidc_idri_0001`` study (``../shared/data``) and on a 512 × 512 × 300 phantom
   (``--big`` adds a 512 × 512 × 600 phantom for the < 3 GB target).  Each scan is
   measured in a fresh child process; the peak of each stage is the process's high-water
   mark (``VmHWM``, reset before each stage through ``/proc/self/clear_refs``), so it
   includes the interpreter, the libraries and the volume already in memory.
2. Throughput of :func:`imaging.score_studies` on ``sample_data/studies`` (scans per
   minute, all outputs written, ``--workers`` processes).
3. lungmask's R231 network (Hofmanninger et al. 2020) on the same real scan, run by
   lungmask's own ``LMInferer`` (pre-processing, inference, post-processing) in its own
   virtual environment, with *random* weights of the R231 architecture (``UNet``, depth 5,
   3 classes): the cost is the architecture, the weights cannot be downloaded here.
   Create that environment once with ``--setup-lungmask`` (CPU torch first, so no CUDA
   build is pulled)::

       python3 -m venv .benchmarks/lungmask-venv
       .benchmarks/lungmask-venv/bin/pip install torch==2.13.0
       .benchmarks/lungmask-venv/bin/pip install lungmask

Usage::

    python scripts/benchmark.py [--setup-lungmask] [--big] [--json results.json]

Prints a Markdown table (pasted into the README's batch section).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from imaging.common.environment import machine_description

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LIDC = REPO.parent / "shared" / "data" / "lidc_idri_0001"
DEFAULT_VENV = REPO / ".benchmarks" / "lungmask-venv"

# ----------------------------------------------------------------------------- memory


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status (Linux only)")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # "5" resets VmHWM to the current RSS
        fh.write("5")


def _measure(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, float]]:
    _reset_peak()
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds = time.perf_counter() - start
    return out, {"seconds": round(seconds, 3), "peak_mb": round(_status_kb("VmHWM") / 1024, 1)}


# ----------------------------------------------------------------------------- child: stages


def run_stages(path: Path, *, opacity_method: str = "auto") -> dict[str, Any]:
    """Read, lungs, opacity and the whole score of one scan, each timed (child process).

    ``opacity_method`` is passed to :func:`imaging.score_scan`; the model stage is timed
    when the weights are installed and the method is not ``"density"``.
    """
    import imaging
    from imaging.scoring.lungs import segment_lungs

    result: dict[str, Any] = {"input": str(path), "stages": {}}
    volume, result["stages"]["read"] = _measure(imaging.load_scan, path)
    result["shape"] = list(volume.shape)
    result["spacing_mm"] = [round(s, 4) for s in volume.spacing_mm]
    lungs, result["stages"]["lungs"] = _measure(segment_lungs, volume)
    weights = REPO / "models" / "weights" / "opacity_unet.pt"
    if weights.is_file() and opacity_method != "density":
        from models import segment_opacity

        _, result["stages"]["opacity (model)"] = _measure(segment_opacity, volume.hu, spacing_mm=volume.spacing_mm)
    from imaging.scoring.opacity import density_bands

    _, result["stages"]["opacity (density bands)"] = _measure(density_bands, volume.hu, lungs > 0,
                                                             spacing_mm=volume.spacing_mm)
    score, result["stages"]["score_scan (lungs + opacity + scores)"] = _measure(imaging.score_scan, volume,
                                                                                opacity_method=opacity_method)
    result["opacity_method"] = score.opacity_method
    row = score.as_dict()
    result["percent_opacity"] = row.get("percent_opacity")
    result["lung_volume_ml"] = row.get("lung_volume_ml")
    whole = result["stages"]["read"]["seconds"] + result["stages"]["score_scan (lungs + opacity + scores)"]["seconds"]
    result["whole_seconds"] = round(whole, 3)
    result["whole_peak_mb"] = max(s["peak_mb"] for s in result["stages"].values())
    return result


# ----------------------------------------------------------------------------- child: lungmask

LUNGMASK_CODE = r"""
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


def setup_lungmask(venv: Path) -> None:
    """Create the lungmask environment (CPU torch pinned first, then lungmask)."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "lungmask"], check=True)


def run_lungmask(venv: Path, series_folder: Path) -> dict[str, Any]:
    """lungmask R231 (random weights) on one DICOM series folder, in its own environment."""
    python = venv / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"no lungmask environment at {venv}; run with --setup-lungmask first")
    done = subprocess.run([str(python), "-c", LUNGMASK_CODE, str(series_folder)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"lungmask run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- parent


def _child(path: Path, opacity_method: str) -> dict[str, Any]:
    # absolute: the child runs in the repository folder, a relative path would point there
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_stages", str(Path(path).resolve()),
                           "--opacity", opacity_method],
                          capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"stage run on {path} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_phantom_file(folder: Path, n_slices: int) -> tuple[Path, float]:
    """A 512 × 512 × n phantom (10 % opacity) written as MetaImage; returns (path, seconds to generate)."""
    import numpy as np
    import SimpleITK as sitk

    from imaging.phantom.make import make_phantom

    start = time.perf_counter()
    phantom = make_phantom(shape=(n_slices, 512, 512), spacing_mm=(1.0, 0.7, 0.7), percent_opacity=10.0,
                           rng=np.random.default_rng(7))
    seconds = time.perf_counter() - start
    volume = phantom.volume
    path = folder / f"phantom_512x512x{n_slices}.mha"
    sitk.WriteImage(volume.to_sitk(), str(path))
    return path, seconds


def throughput(sample: Path, workers: int | None) -> dict[str, Any]:
    """Scans per minute of score_studies on the sample trial (outputs to a temporary folder)."""
    from imaging.pipeline.batch import score_studies

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        table = score_studies(sample, out=Path(tmp) / "out", workers=workers, progress=False)
        seconds = time.perf_counter() - start
    n = int(table["error"].isna().sum())
    return {"scans": n, "failed": int(table["error"].notna().sum()), "seconds": round(seconds, 1),
            "scans_per_minute": round(60 * n / seconds, 1), "workers": workers or os.cpu_count()}


def machine() -> str:
    return machine_description()


def _series_folder(study: Path) -> Path:
    folders = sorted({p.parent for p in study.rglob("*.dcm")})
    if len(folders) != 1:
        raise FileNotFoundError(f"expected one series folder under {study}, found {len(folders)}")
    return folders[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lidc", type=Path, default=DEFAULT_LIDC, help="the real study (default ../shared/data/...)")
    parser.add_argument("--sample", type=Path, default=REPO / "sample_data" / "studies", help="sample trial images")
    parser.add_argument("--workers", type=int, default=None, help="processes for the throughput run")
    parser.add_argument("--big", action="store_true", help="also a 512 x 512 x 600 phantom (peak memory target)")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="lungmask virtual environment")
    parser.add_argument("--setup-lungmask", action="store_true", help="create the lungmask environment first")
    parser.add_argument("--no-lungmask", action="store_true")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--opacity", choices=("auto", "model", "density"), default="auto",
                        help="opacity method of score_scan (auto: AUTO_OPACITY_METHOD of imaging.scoring.scores, density bands)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    parser.add_argument("--_stages", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.workers is not None and args.workers < 1:
        parser.error(f"argument --workers: must be >= 1, got {args.workers}")
    if args._stages is not None:  # child process: one scan
        print(json.dumps(run_stages(args._stages, opacity_method=args.opacity)))
        return 0

    results: dict[str, Any] = {"machine": machine(), "scans": {}}
    print(f"machine: {results['machine']}", file=sys.stderr)
    targets: list[tuple[str, Path]] = []
    if args.lidc.exists():
        targets.append(("lidc_idri_0001 (real)", args.lidc))
    else:
        print(f"skipping the real scan: {args.lidc} is absent", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        for n in (300, 600) if args.big else (300,):
            path, seconds = make_phantom_file(Path(tmp), n)
            results.setdefault("phantom_generation_seconds", {})[str(n)] = round(seconds, 1)
            targets.append((f"phantom 512x512x{n}", path))
        for name, path in targets:
            print(f"measuring {name} ...", file=sys.stderr)
            results["scans"][name] = _child(path, args.opacity)
    if not args.no_throughput and args.sample.is_dir():
        print("measuring throughput on the sample trial ...", file=sys.stderr)
        results["throughput"] = throughput(args.sample, args.workers)
    if not args.no_lungmask and args.lidc.exists():
        if args.setup_lungmask:
            setup_lungmask(args.venv)
        print("running lungmask R231 (random weights) ...", file=sys.stderr)
        results["lungmask_r231"] = run_lungmask(args.venv, _series_folder(args.lidc))

    print(render(results))
    if args.json:
        from imaging.common.files import atomic_write_json

        atomic_write_json(args.json, results)
    return 0


def render(results: dict[str, Any]) -> str:
    """The results as Markdown."""
    lines = [f"Machine: {results['machine']}", "", "| scan | stage | time (s) | peak RSS (MB) |", "|---|---|---:|---:|"]
    for name, scan in results["scans"].items():
        for stage, m in scan["stages"].items():
            lines.append(f"| {name} {tuple(scan['shape'])} | {stage} | {m['seconds']:.2f} | {m['peak_mb']:.0f} |")
        lines.append(f"| {name} | **whole score (read + score_scan, opacity: {scan.get('opacity_method')})** | **{scan['whole_seconds']:.2f}** | "
                     f"**{scan['whole_peak_mb']:.0f}** |")
    lm = results.get("lungmask_r231")
    if lm:
        real = next((s for n, s in results["scans"].items() if "real" in n), None)
        lines.append(f"| lidc_idri_0001 (real) | lungmask R231 lung mask (random weights; network alone "
                     f"{lm['network_seconds']:.1f} s) | {lm['apply_seconds']:.2f} | {lm['peak_mb']:.0f} |")
        if real:
            lines += ["", f"Whole chestct score vs lungmask's lung mask alone on the real scan: "
                          f"{lm['apply_seconds'] / real['whole_seconds']:.1f}x faster."]
    if "phantom_generation_seconds" in results:
        lines += ["", "Phantom generation: " + ", ".join(f"512x512x{k}: {v} s"
                                                          for k, v in results["phantom_generation_seconds"].items())]
    tp = results.get("throughput")
    if tp:
        lines += ["", f"Throughput on sample_data: {tp['scans']} scans ({tp['failed']} failed) in {tp['seconds']} s "
                      f"with {tp['workers']} workers = {tp['scans_per_minute']} scans/min (all outputs written)."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
