"""Benchmark the DICOM readers: ``load_scan`` against SimpleITK's series reader, and the header scan.

Two measurements:

1. **Series read** (default data: the LIDC-IDRI-0001 series in ``../shared/data``):
   wall time and peak memory of ``imaging.load_scan(folder)`` (folder scan, checks,
   pixels in HU, canonical orientation) against SimpleITK
   ``ImageSeriesReader`` (``GetGDCMSeriesFileNames`` + ``Execute`` +
   ``GetArrayFromImage``) on the same files.  Each reader runs in its own fresh
   subprocess, alternating, so peak resident memory (``VmHWM`` minus the resident size
   after imports) is not shared between them; the page cache is warmed first.
2. **Header scan**: ``find_series`` over a synthetic tree of ``--tree-files`` small
   DICOM files (50 studies, written by :func:`imaging.io.writers.write_dicom_series`) in a
   temporary folder deleted afterwards.

Usage::

    python scripts/benchmark_reading.py [--series FOLDER] [--repeat 5] [--tree-files 10000]

Prints a Markdown table.  Exit code 0, or 2 with one line on stderr when the data is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imaging.common.environment import machine_description

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lidc_idri_0001"


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _child(method: str, folder: str) -> int:
    """Run one reader once in this (fresh) process; print JSON with seconds and peak MiB."""
    import numpy as np  # noqa: F401  (imports outside the timed region)
    import SimpleITK as sitk

    from imaging.io.load import load_scan

    base = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    if method == "load_scan":
        volume = load_scan(folder)
        shape, dtype = volume.shape, str(volume.hu.dtype)
    else:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
        image = reader.Execute()
        array = sitk.GetArrayFromImage(image)
        shape, dtype = array.shape, str(array.dtype)
    seconds = time.perf_counter() - t0
    peak = (_rss_kib("VmHWM") - base) / 1024
    print(json.dumps({"method": method, "seconds": seconds, "peak_mib": peak, "shape": shape, "dtype": dtype}))
    return 0


def _run_child(method: str, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", method, "--series", str(folder)],
        check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _find_series_folder(root: Path) -> Path:
    for path in sorted(root.rglob("*")):
        if path.is_dir() and any(path.glob("*.dcm")):
            return path
    return root


def _write_tree(root: Path, n_files: int) -> None:
    """``n_files`` 32x32 CT slices: 50 patients with one study and series each, two levels deep."""
    import numpy as np

    from imaging.common.volume import CTVolume
    from imaging.io.writers import write_dicom_series

    n_studies = min(50, n_files)
    per, extra = divmod(n_files, n_studies)
    for s in range(n_studies):
        n = per + (1 if s < extra else 0)
        volume = CTVolume(np.full((n, 32, 32), -1000, np.int16), (1.0, 0.7, 0.7))
        write_dicom_series(volume, root / f"patient{s:03d}" / "study", patient_id=f"P{s:03d}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=Path, default=None, help="series folder (default: LIDC-IDRI-0001)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per reader (default 5)")
    parser.add_argument("--tree-files", type=int, default=10000, help="files in the header-scan tree (0 skips)")
    parser.add_argument("--child", choices=("load_scan", "sitk"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, str(args.series))
    folder = args.series or _find_series_folder(DEFAULT_DATA)
    if not folder.exists():
        print(f"benchmark_reading: error: {folder} does not exist (real data is in ../shared/data)", file=sys.stderr)
        return 2
    if not folder.is_dir():
        print(f"benchmark_reading: error: --series {folder} is not a folder (give a DICOM series folder)",
              file=sys.stderr)
        return 2
    # absolute: the readers run in child processes started in the repository folder
    folder = _find_series_folder(folder.resolve())
    if args.repeat < 1:
        print(f"benchmark_reading: error: --repeat must be >= 1, got {args.repeat}", file=sys.stderr)
        return 2
    for f in folder.iterdir():  # warm the page cache for both readers
        if f.is_file():
            f.read_bytes()
    runs: dict[str, list[dict]] = {"load_scan": [], "sitk": []}
    for _ in range(args.repeat):
        for method in runs:
            try:
                runs[method].append(_run_child(method, folder))
            except subprocess.CalledProcessError as exc:
                last = (exc.stderr or "").strip().splitlines()[-1:] or ["(no message)"]
                print(f"benchmark_reading: error: {method} could not read {folder}: {last[0]}", file=sys.stderr)
                return 1
    print(f"machine: {machine_description()}")
    print(f"data: {folder} ({sum(f.is_file() for f in folder.iterdir())} files)\n")
    print("| reader | median s | min s | peak MiB | shape | dtype |")
    print("|---|---|---|---|---|---|")
    med = {}
    for method, rs in runs.items():
        secs = [r["seconds"] for r in rs]
        med[method] = statistics.median(secs)
        print(f"| {method} | {med[method]:.3f} | {min(secs):.3f} | {max(r['peak_mib'] for r in rs):.0f} | "
              f"{tuple(rs[0]['shape'])} | {rs[0]['dtype']} |")
    print(f"\nratio load_scan / SimpleITK (median time): {med['load_scan'] / med['sitk']:.2f}")
    if args.tree_files > 0:
        from imaging.io.series import find_series

        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            _write_tree(Path(tmp), args.tree_files)
            write_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            catalog = find_series(tmp)
            scan_s = time.perf_counter() - t0
        print(
            f"\nheader scan: find_series over {catalog.n_files} files ({len(catalog.studies)} studies) "
            f"in {scan_s:.2f} s ({1000 * scan_s / max(1, catalog.n_files):.2f} ms/file; tree written in {write_s:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
