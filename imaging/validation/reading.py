"""Reading speed: :func:`imaging.io.load.load_scan` against SimpleITK, and the header scan.

:func:`time_reader` reads one series folder once with one reader and returns its time and
peak memory; call it in a fresh process per run (``scripts/benchmark.py reading`` does,
alternating the readers), so the peak of one reader is not the other's.
:func:`summarize_runs` turns the runs of both readers into medians, peaks and their ratio.
:func:`compare_readers` checks that both readers give the same HU, voxel for voxel, once
SimpleITK's image is put in the canonical orientation :func:`~imaging.io.load.load_scan`
returns.  :func:`time_header_scan` writes a synthetic tree of small DICOM files and times
:func:`imaging.io.series.find_series` over it.
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from imaging.validation.memory import proc_status_kib

__all__ = ["READERS", "time_reader", "summarize_runs", "compare_readers", "series_folder_in", "warm_page_cache",
           "write_header_tree", "time_header_scan"]

#: The readers compared: ours, and SimpleITK's series reader.
READERS = ("load_scan", "sitk")


def time_reader(method: str, folder: str | Path) -> dict[str, Any]:
    """Read the series in ``folder`` once with ``method`` (one of :data:`READERS`).

    Returns
    -------
    dict
        ``method``, ``seconds``, ``peak_mib`` (resident high-water mark minus the
        resident size before reading), ``worker_peak_mib`` (the resident peak of the
        largest worker process :func:`~imaging.io.load.load_scan` decoded in, not part of
        ``peak_mib``; 0 when none was started), ``shape`` and ``dtype`` of the voxels.
    """
    import numpy as np  # noqa: F401  (imports outside the timed region)
    import SimpleITK as sitk

    from imaging.io.load import load_scan

    folder = str(folder)
    base = proc_status_kib("VmRSS", default=0)
    start = time.perf_counter()
    if method == "load_scan":
        volume = load_scan(folder)
        shape, dtype = volume.shape, str(volume.hu.dtype)
    else:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
        array = sitk.GetArrayFromImage(reader.Execute())
        shape, dtype = array.shape, str(array.dtype)
    seconds = time.perf_counter() - start
    peak = (proc_status_kib("VmHWM", default=0) - base) / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    return {"method": method, "seconds": seconds, "peak_mib": peak, "worker_peak_mib": workers,
            "shape": list(shape), "dtype": dtype}


def summarize_runs(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians and peaks of the runs of each reader (from :func:`time_reader`), and their ratio.

    Parameters
    ----------
    runs : dict
        Reader (``"load_scan"``, ``"sitk"``) -> its runs, one dict per run.

    Returns
    -------
    dict
        ``readers``: per reader ``median_seconds``, ``min_seconds``, ``peak_mib`` (the
        largest of its runs, MiB), ``worker_peak_mib``, ``shape``, ``dtype`` and the raw
        ``runs``; ``ratio``: median seconds of load_scan / median seconds of SimpleITK.
    """
    readers = {method: {"median_seconds": statistics.median(r["seconds"] for r in rs),
                        "min_seconds": min(r["seconds"] for r in rs),
                        "peak_mib": max(r["peak_mib"] for r in rs),
                        "worker_peak_mib": max(r.get("worker_peak_mib", 0.0) for r in rs),
                        "shape": rs[0]["shape"], "dtype": rs[0]["dtype"], "runs": rs}
               for method, rs in runs.items()}
    ratio = readers["load_scan"]["median_seconds"] / readers["sitk"]["median_seconds"]
    return {"readers": readers, "ratio": ratio}


def compare_readers(folder: str | Path) -> dict[str, Any]:
    """Read the series with both readers and compare their HU, voxel for voxel.

    SimpleITK's image (sorted along the slice normal, rescale applied) is put in the
    canonical orientation (:meth:`~imaging.common.volume.CTVolume.canonical`) that
    :func:`~imaging.io.load.load_scan` returns, then compared with it.

    Returns
    -------
    dict
        ``transfer_syntax`` (its name), ``shape`` (load_scan's), ``same_grid`` (same shape,
        and spacing and origin within 1e-3 mm), ``same_hu`` (same grid and every voxel
        equal) and ``max_abs_diff_hu`` (largest |difference|, HU; None when the grids differ).
    """
    import numpy as np
    import SimpleITK as sitk

    from imaging.common.volume import CTVolume
    from imaging.io.load import load_scan
    from imaging.io.series_info import syntax_name

    ours = load_scan(folder)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    theirs = CTVolume.from_sitk(reader.Execute()).canonical()
    same_grid = (ours.shape == theirs.shape and np.allclose(ours.spacing_mm, theirs.spacing_mm, atol=1e-3)
                 and np.allclose(ours.origin_mm, theirs.origin_mm, atol=1e-3))
    diff = float(np.abs(ours.hu.astype(np.float64) - theirs.hu).max()) if ours.shape == theirs.shape else None
    return {"transfer_syntax": syntax_name(ours.info.transfer_syntax or "unknown"), "shape": list(ours.shape),
            "same_grid": bool(same_grid), "same_hu": bool(same_grid and diff == 0), "max_abs_diff_hu": diff}


def series_folder_in(root: str | Path) -> Path:
    """The first folder (sorted) at or under ``root`` holding ``*.dcm`` files, else ``root``."""
    root = Path(root)
    for path in sorted(root.rglob("*")):
        if path.is_dir() and any(path.glob("*.dcm")):
            return path
    return root


def warm_page_cache(folder: str | Path) -> int:
    """Read every file of the folder once (so no reader pays for the disk); the file count."""
    files = [f for f in Path(folder).iterdir() if f.is_file()]
    for f in files:
        f.read_bytes()
    return len(files)


def write_header_tree(root: str | Path, n_files: int) -> None:
    """``n_files`` 32 × 32 CT slices: up to 50 patients with one study and series each."""
    import numpy as np

    from imaging.common.volume import CTVolume
    from imaging.io.writers import write_dicom_series

    n_studies = min(50, n_files)
    per, extra = divmod(n_files, n_studies)
    for s in range(n_studies):
        n = per + (1 if s < extra else 0)
        volume = CTVolume(np.full((n, 32, 32), -1000, np.int16), (1.0, 0.7, 0.7))
        write_dicom_series(volume, Path(root) / f"patient{s:03d}" / "study", patient_id=f"P{s:03d}")


def time_header_scan(n_files: int) -> dict[str, Any]:
    """:func:`imaging.io.series.find_series` over a fresh tree of ``n_files`` files (deleted after).

    Returns ``files`` and ``studies`` found, ``scan_seconds``, ``ms_per_file`` and
    ``write_seconds`` (the tree's).
    """
    from imaging.io.series import find_series

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_header_tree(tmp, n_files)
        write_s = time.perf_counter() - start
        start = time.perf_counter()
        catalog = find_series(tmp)
        scan_s = time.perf_counter() - start
    return {"files": catalog.n_files, "studies": len(catalog.studies), "scan_seconds": scan_s,
            "ms_per_file": 1000 * scan_s / max(1, catalog.n_files), "write_seconds": write_s}
