"""The validation and benchmark results as Markdown tables, one renderer per kind of result.

Each ``*_markdown`` function takes the dictionary the matching run returns (and that
``scripts/validate.py`` / ``scripts/benchmark.py`` write as JSON) and returns Markdown
for ``docs/validation.md``: one captioned table per data set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imaging.validation.markdown import markdown_table

__all__ = ["lungs_markdown", "network_markdown", "truth_markdown", "stages_markdown", "reading_markdown"]

#: Caption of each table of :func:`lungs_markdown`, by result key.
LUNG_CAPTIONS: dict[str, str] = {
    "cip_ct64": "**cip_ct64** (real chest, 64 × 64 × 79): Dice against `wholeLung-64`, volumes (mL), "
                "share of voxels in the same lung third as `lm-64` regions 9–14 (height and volume thirds)",
    "phantoms_summary": "**Phantoms** (60 × 128 × 128, 5 × 2.7 × 2.7 mm, 40 % of the disease consolidation): "
                        "min..max over the seeds of lung Dice, density-band PO − truth (points) and the "
                        "fraction of lesion voxels inside the lung mask",
    "lidc_idri_0001": "**lidc_idri_0001** (real chest, no pneumonia): lung volumes (mL), density-band percent "
                      "opacity and high opacity (%), flags, seconds to segment and score",
    "jpeg2000_abdomen": "**dicom_variants/jpeg2000_abdomen** (upper abdomen): must come out `not_a_chest`, "
                        "percent opacity NaN (—), never 0 %",
    "sample_trial": "**Sample trial** (`sample_data/`, density bands): PO − truth in points",
}


def _block(caption: str, table: str) -> str:
    return f"{caption}:\n\n{table}"


def lungs_markdown(results: Mapping[str, Any]) -> str:
    """Tables of the lung validation (keys of :data:`LUNG_CAPTIONS`; raw phantom rows left out)."""
    parts = [_block(LUNG_CAPTIONS.get(name, f"**{name}**"), markdown_table(rows))
             for name, rows in results.items() if name != "phantoms"]
    return "\n\n".join(parts)


def truth_markdown(rows: list[dict[str, Any]]) -> str:
    """The errors of each lung × opacity pair against the truth (percentage points)."""
    return markdown_table(rows, digits=2, column_digits={"pearson_r": 3})


def _network_summary(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    lidc, speed = results.get("lidc"), results.get("speed")
    if lidc:
        rows += [{"check": "lidc_idri_0001 (no pneumonia): lung volume (mL)", "measured": lidc["lung_volume_ml"]},
                 {"check": "lidc_idri_0001: percent opacity / consolidation (%)",
                  "measured": f"{lidc['percent_opacity']} / {lidc['percent_consolidation']}"},
                 {"check": "lidc_idri_0001: seconds", "measured": lidc["seconds"]}]
    if speed:
        rows.append({"check": f"speed {tuple(speed['shape'])}: seconds / peak RSS (MB)",
                     "measured": f"{speed['seconds']} / {speed['peak_rss_mb']:.0f}"})
    covid = results.get("covid_validation")
    if covid:
        what = f"held-out COVID scans ({len(covid['validation_blocks'])} scans, {covid['n_slices']} slices)"
        rows += [{"check": f"{what}: infection Dice (rim trimmed)",
                  "measured": f"{covid['infection_dice']} ({covid['infection_dice_rim_trimmed']})"},
                 {"check": f"{what}: lung Dice", "measured": covid["lung_dice"]},
                 {"check": "infected-lung % vs expert: Pearson r per scan / per slice",
                  "measured": f"{covid['pearson_r_per_scan']} / {covid['pearson_r_per_slice']}"}]
    cip = results.get("cip_ct64")
    if cip:
        rows += [{"check": "cip_ct64: lung Dice", "measured": cip["lung_dice"]},
                 {"check": "cip_ct64: percent opacity (%)", "measured": cip["percent_opacity"]}]
    rows += [{"check": f"{name}: skipped", "measured": why} for name, why in results.get("skipped", {}).items()]
    return rows


def _phantom_rows(phantoms: Mapping[str, Any]) -> list[dict[str, Any]]:
    def rel(row: Mapping[str, Any], name: str) -> str:
        err = row.get(f"{name}_rel_error")
        return f"{row[f'{name}_ml']}" + ("" if err is None else f" ({100 * err:+.0f} %)")

    rows = []
    for p in phantoms["phantoms"]:
        for kind in ("hu", "display"):
            rows.append({"seed": p["seed"], "truth PO %": p["truth_percent"], "input": kind,
                         "GGO mL (truth)": p["truth_ggo_ml"], "GGO mL (error)": rel(p[kind], "ggo"),
                         "consolidation mL (truth)": p["truth_consolidation_ml"],
                         "consolidation mL (error)": rel(p[kind], "consolidation"),
                         "lung Dice": p[kind]["lung_dice"], "lesion Dice": p[kind]["lesion_dice"],
                         "PO %": p[kind]["percent_opacity"]})
    return rows


def network_markdown(results: Mapping[str, Any]) -> str:
    """The opacity network's validation: summary, held-out scans, phantoms."""
    head = (f"Weights `{results.get('weights')}` on {results.get('device')} ({results.get('threads')} threads), "
            f"lesion threshold {results.get('lesion_threshold')} (HU input) / "
            f"{results.get('display_lesion_threshold')} (display input).")
    parts = [head, markdown_table(_network_summary(results), digits=None)]
    covid = results.get("covid_validation")
    if covid:
        parts.append(_block("**Held-out COVID scans**, one row per scan (display images, expert masks)",
                            markdown_table(covid["per_scan"], digits=None)))
    phantoms = results.get("phantoms")
    if phantoms:
        shape = " × ".join(map(str, phantoms["shape"]))
        spacing = " × ".join(f"{s:g}" for s in phantoms["spacing_mm"])
        parts.append(_block(f"**Phantoms** never trained on ({shape}, {spacing} mm): volumes against the truth",
                            markdown_table(_phantom_rows(phantoms), digits=None)))
    return "\n\n".join(parts)


def _stage_lines(results: Mapping[str, Any]) -> list[str]:
    lines = ["| scan | stage | median time (s) | peak RSS (MB) |", "|---|---|---:|---:|"]
    for name, scan in results["scans"].items():
        for stage, m in scan["stages"].items():
            lines.append(f"| {name} {tuple(scan['shape'])} | {stage} | {m['seconds']:.2f} | {m['peak_mb']:.0f} |")
        lines.append(f"| {name} | **whole score (read + score_scan, opacity: {scan.get('opacity_method')})** | "
                     f"**{scan['whole_seconds']:.2f}** | **{scan['whole_peak_mb']:.0f}** |")
    lm = results.get("lungmask_r231")
    if lm:
        lines.append(f"| lidc_idri_0001 (real) | lungmask R231 lung mask (random weights; network alone "
                     f"{lm['network_seconds']:.1f} s) | {lm['apply_seconds']:.2f} | {lm['peak_mb']:.0f} |")
    return lines


def _growth_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, scan in results["scans"].items():
        st = scan["stages"]
        rows.append({"scan": name, "slices": scan["shape"][0], "lungs (s)": st["lungs"]["seconds"],
                     "score given the lungs (s)": st.get("score given the lungs", {}).get("seconds", float("nan")),
                     "whole score (s)": scan["whole_seconds"],
                     "s per 100 slices": 100 * scan["whole_seconds"] / scan["shape"][0],
                     "peak RSS (MB)": scan["whole_peak_mb"]})
    return rows


def stages_markdown(results: Mapping[str, Any]) -> str:
    """Per-stage time and memory, growth with the slice count, lungmask, throughput."""
    parts = ["\n".join(_stage_lines(results))]
    lm = results.get("lungmask_r231")
    real = next((s for n, s in results["scans"].items() if "real" in n), None)
    if lm and real:
        parts.append(f"Whole chestct score vs lungmask's lung mask alone on the real scan: "
                     f"{lm['apply_seconds'] / real['whole_seconds']:.1f}x faster.")
    elif "lungmask_skipped" in results:
        parts.append(f"lungmask R231: not measured ({results['lungmask_skipped']}).")
    parts.append(_block("**Growth with the slice count** (512 × 512 slices)",
                        markdown_table(_growth_rows(results), digits=2,
                                       column_digits={"peak RSS (MB)": 0})))
    if "phantom_generation_seconds" in results:
        parts.append("Phantom generation: " + ", ".join(
            f"512x512x{k}: {v} s" for k, v in results["phantom_generation_seconds"].items()))
    tp = results.get("throughput")
    if tp:
        parts.append(f"Throughput on sample_data: {tp['scans']} scans ({tp['failed']} failed) in {tp['seconds']} s "
                     f"with {tp['workers']} workers = {tp['scans_per_minute']} scans/min (all outputs written).")
    return "\n\n".join(parts)


def _same_hu(series: Mapping[str, Any]) -> str:
    if series["same_hu"]:
        return "yes"
    if not series["same_grid"] or series["max_abs_diff_hu"] is None:
        return "**no** (different grid)"
    return f"**no** (max |Δ| {series['max_abs_diff_hu']:g} HU)"


def _reading_row(series: Mapping[str, Any]) -> dict[str, Any]:
    ours, theirs = series["readers"]["load_scan"], series["readers"]["sitk"]
    return {"series": series["name"], "transfer syntax": series["transfer_syntax"],
            "slices × rows × columns": " × ".join(map(str, series["shape"])), "files": series["files"],
            "load_scan s": ours["median_seconds"], "SimpleITK s": theirs["median_seconds"],
            "load_scan / SimpleITK": series["ratio"],
            "load_scan peak MiB": ours["peak_mib"], "SimpleITK peak MiB": theirs["peak_mib"],
            "same HU": _same_hu(series)}


def _reading_notes(results: Mapping[str, Any]) -> list[str]:
    notes = []
    dtypes = {shown: ", ".join(sorted({s["readers"][reader]["dtype"] for s in results["series"]}))
              for reader, shown in (("load_scan", "load_scan"), ("sitk", "SimpleITK"))}
    notes.append("Voxel types: " + "; ".join(f"{shown} {kinds}" for shown, kinds in dtypes.items()) + ".")
    workers = {s["name"]: s["readers"]["load_scan"]["worker_peak_mib"] for s in results["series"]}
    if any(workers.values()):
        notes.append("load_scan decoded in worker processes (largest worker's resident peak, not in the table): "
                     + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in workers.items() if mib))
    notes += [f"Not measured: {name} ({why})." for name, why in results.get("skipped", {}).items()]
    return notes


def reading_markdown(results: Mapping[str, Any]) -> str:
    """One row per series: both readers' median time and peak, their ratio, same HU; the header scan."""
    head = (f"Series read: median of {results['repeats']} runs per reader, each in a fresh process, the readers "
            f"alternated, page cache warm; peak = resident high-water mark minus the resident size after imports; "
            f"same HU = voxel-equal once SimpleITK's image is in load_scan's canonical orientation.")
    table = markdown_table([_reading_row(s) for s in results["series"]], digits=2,
                           column_digits={"load_scan peak MiB": 0, "SimpleITK peak MiB": 0})
    parts = [head, table, *_reading_notes(results)]
    tree = results.get("header_scan")
    if tree:
        parts.append(f"Header scan: find_series over {tree['files']} files ({tree['studies']} studies) "
                     f"in {tree['scan_seconds']:.2f} s ({tree['ms_per_file']:.2f} ms/file; "
                     f"tree written in {tree['write_seconds']:.1f} s).")
    return "\n\n".join(parts)
