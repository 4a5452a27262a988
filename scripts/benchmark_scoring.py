"""Benchmark lung segmentation + scoring: time per stage, peak memory, growth with slices.

Cases (each scored ``--repeats`` times; the median is reported):

* ``lidc_idri_0001`` (real, 133 x 512 x 512, 2.5 x 0.70 x 0.70 mm) read with
  :func:`imaging.load_scan`;
* phantoms of 512 x 512 in-plane (0.7 mm) with 133 and 400 slices (``--slices``), to show
  how the time grows with the slice count.

Stages: ``read`` (load_scan, real scan only), ``lungs`` (:func:`imaging.segment_lungs`),
``score`` (:func:`imaging.score_scan` given those lungs: density bands, vessel suppression,
zones, flags) and ``total`` (score_scan from the volume, segmentation included).  Peak
memory is the tracemalloc high-water mark of NumPy/Python allocations during one
``score_scan`` call (the volume itself excluded), in MiB.

Usage::

    python scripts/benchmark_scoring.py [--data ../shared/data] [--repeats 3]
        [--slices 133 400] [--json out.json]

Prints a Markdown table.  Numbers depend on the machine and its load: say which.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _median_time(fn: Any, repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def bench_volume(name: str, volume: Any, repeats: int, read_s: float | None = None) -> dict[str, Any]:
    from imaging.scoring.lungs import segment_lungs
    from imaging.scoring.scores import score_scan

    lungs_s, labels = _median_time(lambda: segment_lungs(volume), repeats)
    score_s, _ = _median_time(lambda: score_scan(volume, lung_labels=labels, opacity_method="density"),
                              repeats)
    total_s, s = _median_time(lambda: score_scan(volume, opacity_method="density"), repeats)
    tracemalloc.start()
    score_scan(volume, opacity_method="density", keep_masks=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"case": name, "shape": "x".join(map(str, volume.shape)),
            "read_s": float("nan") if read_s is None else read_s, "lungs_s": lungs_s,
            "score_s": score_s, "total_s": total_s, "peak_mib": peak / 2**20,
            "lung_ml": s.lung_volume_ml, "po_pct": s.percent_opacity}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slices", nargs="*", type=int, default=[133, 400],
                        help="phantom slice counts (512 x 512, 0.7 mm in-plane)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        print(f"benchmark_scoring: --repeats must be >= 1, got {args.repeats}", file=sys.stderr)
        return 2
    if any(n < 8 for n in args.slices):
        print(f"benchmark_scoring: --slices must be >= 8 each, got {args.slices}", file=sys.stderr)
        return 2

    from imaging.common.errors import ChestCTError
    from imaging.io.load import load_scan
    from imaging.phantom.make import make_phantom

    rows = []
    folder = args.data / "lidc_idri_0001"
    series = sorted(p for p in folder.rglob("*") if p.is_dir() and any(p.glob("*.dcm"))) if folder.is_dir() else []
    try:
        if series:
            read_s, volume = _median_time(lambda: load_scan(series[0]), args.repeats)
            rows.append(bench_volume("lidc_idri_0001", volume, args.repeats, read_s))
        else:
            print(f"benchmark_scoring: {folder} not found, real case skipped", file=sys.stderr)
        for n in args.slices:
            p = make_phantom(shape=(n, 512, 512), spacing_mm=(2.5 if n <= 200 else 0.8, 0.7, 0.7),
                             percent_opacity=10.0, rng=np.random.default_rng(0))
            rows.append(bench_volume(f"phantom {n} slices", p.volume, args.repeats))
    except (ChestCTError, OSError) as exc:
        print(f"benchmark_scoring: {exc}", file=sys.stderr)
        return 1
    if not rows:
        print("benchmark_scoring: nothing to measure (no real scan, no --slices)", file=sys.stderr)
        return 1
    keys = list(rows[0])
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(fmt(r[k]) for k in keys) + " |")
    if args.json is not None:
        from imaging.common.files import atomic_write_json

        atomic_write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
