"""Time and peak memory of each scoring stage on one scan (Linux: reads ``/proc/self``).

:func:`measure_stages` reads a scan and runs each stage of the default score ``repeats``
times: read (:func:`imaging.io.load.load_scan`), lungs
(:func:`imaging.scoring.lungs.segment_lungs`), the model's opacity when the weights are
installed, the density bands (:func:`imaging.scoring.opacity.density_bands`), the score
given the lungs, and the whole :func:`imaging.scoring.scores.score_scan`.  Time is the
median over the repeats; peak memory is the process's resident high-water mark
(``VmHWM``, reset before each run through ``/proc/self/clear_refs``), so it includes the
interpreter, the libraries and the volume already in memory.  Run it in a fresh process
per scan so one scan's memory does not count in the next.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from imaging.io.load import load_scan
from imaging.scoring.lungs import model_available, segment_lungs
from imaging.scoring.opacity import density_bands
from imaging.scoring.scores import score_scan
from imaging.validation.memory import measure

__all__ = ["measure_stages", "write_phantom_scan", "WHOLE_SCORE"]

#: Name of the ``score_scan`` stage; the whole score is the read plus this stage.
WHOLE_SCORE = "score_scan (lungs + opacity + scores)"


def measure_stages(path: str | Path, *, opacity_method: str = "auto", repeats: int = 1) -> dict[str, Any]:
    """Read, lungs, opacity and the whole score of one scan, each timed (see the module).

    Parameters
    ----------
    path : path
        Anything :func:`imaging.io.load.load_scan` reads.
    opacity_method : {"auto", "density", "model"}
        Passed to :func:`imaging.scoring.scores.score_scan`; the model stage is timed
        when the weights are installed and the method is not ``"density"``.
    repeats : int
        Runs per stage (median time, largest peak).

    Returns
    -------
    dict
        ``input``, ``shape``, ``spacing_mm``, ``stages`` (name -> ``seconds``,
        ``peak_mb``), ``opacity_method`` (as run), ``percent_opacity``,
        ``lung_volume_ml``, ``whole_seconds`` (read + score_scan) and ``whole_peak_mb``.
    """
    stages: dict[str, dict[str, float]] = {}
    result: dict[str, Any] = {"input": str(path), "stages": stages}
    volume, stages["read"] = measure(lambda: load_scan(path), repeats)
    result["shape"] = list(volume.shape)
    result["spacing_mm"] = [round(s, 4) for s in volume.spacing_mm]
    lungs, stages["lungs"] = measure(lambda: segment_lungs(volume), repeats)
    if model_available() and opacity_method != "density":
        from models import segment_opacity

        _, stages["opacity (model)"] = measure(lambda: segment_opacity(volume.hu, spacing_mm=volume.spacing_mm),
                                               repeats)
    _, stages["opacity (density bands)"] = measure(
        lambda: density_bands(volume.hu, lungs > 0, spacing_mm=volume.spacing_mm), repeats)
    _, stages["score given the lungs"] = measure(
        lambda: score_scan(volume, lung_labels=lungs, opacity_method=opacity_method), repeats)
    score, stages[WHOLE_SCORE] = measure(lambda: score_scan(volume, opacity_method=opacity_method), repeats)
    row = score.as_dict()
    result.update(opacity_method=score.opacity_method, percent_opacity=row.get("percent_opacity"),
                  lung_volume_ml=row.get("lung_volume_ml"))
    result["whole_seconds"] = round(stages["read"]["seconds"] + stages[WHOLE_SCORE]["seconds"], 3)
    result["whole_peak_mb"] = max(s["peak_mb"] for s in stages.values())
    return result


def write_phantom_scan(folder: str | Path, n_slices: int, *, z_spacing_mm: float,
                       seed: int = 7) -> tuple[Path, float]:
    """A 512 × 512 × ``n_slices`` phantom (10 % opacity, 0.7 mm pixels) written as MetaImage.

    Returns the file's path and the seconds spent making the phantom.
    """
    import SimpleITK as sitk

    from imaging.phantom.make import make_phantom

    start = time.perf_counter()
    phantom = make_phantom(shape=(n_slices, 512, 512), spacing_mm=(z_spacing_mm, 0.7, 0.7),
                           percent_opacity=10.0, rng=np.random.default_rng(seed))
    seconds = time.perf_counter() - start
    path = Path(folder) / f"phantom_512x512x{n_slices}.mha"
    sitk.WriteImage(phantom.volume.to_sitk(), str(path))
    return path, seconds
