"""imaging.trial.report and ``chestct compare``: offline HTML, figures, tables, atomic writes."""

from __future__ import annotations

import base64
import json
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest

from imaging.cli.main import main
from imaging.trial.compare import MULTIPLICITY_NOTE, compare_arms
from imaging.common.files import atomic_write_text
from imaging.trial.report import (
    key_results,
    methods_text,
    plot_changes,
    plot_responses,
    plot_trajectories,
    write_report,
)
from tests.imaging.trial.test_compare import VISITS, make_trial

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def comparison():
    scores, arms = make_trial(np.random.default_rng(12), n_per_arm=6, effect=-10)
    return compare_arms(scores, arms, metrics=["percent_opacity", "severity_score_total"], visits=VISITS,
                        rng=0, n_boot=500)


def test_write_report_is_self_contained(comparison, tmp_path):
    backend = matplotlib.rcParams["backend"]
    path = write_report(comparison, tmp_path / "out")
    assert matplotlib.rcParams["backend"] == backend  # no global backend change
    assert path == tmp_path / "out" / "report.html"
    text = path.read_text(encoding="utf-8")
    # offline: no external resources at all
    assert not re.search(r"(src|href)=['\"](?!data:)", text)
    assert "http://" not in text and "https://" not in text
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    n_metrics = len(comparison.settings["metrics"])
    assert len(images) == 2 * n_metrics + 1
    assert all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    # the statements a reader needs
    assert MULTIPLICITY_NOTE in text and "not adjusted for multiplicity" in text
    assert "Methods" in text and "Hodges–Lehmann" in text and "statsmodels" in text
    assert "fell by &gt;= 5 units" in text  # the response thresholds
    # files beside it
    out = tmp_path / "out"
    assert {p.name for p in (out / "tables").iterdir()} == {f"{n}.csv" for n in comparison.TABLES}
    assert len(list((out / "figures").glob("*.png"))) == 2 * n_metrics + 1
    doc = json.loads((out / "comparison.json").read_text())
    assert doc["settings"]["reference_arm"] == "placebo"
    tests = pd.read_csv(out / "tables" / "tests.csv")
    assert len(tests) == len(comparison.tests) and "p_unadjusted" in tests.columns
    assert not list(out.rglob("*.tmp"))


def test_methods_and_key_results(comparison):
    text = methods_text(comparison)
    for word in ("day 7 ± 2", "Mann–Whitney", "Welch", "ANCOVA", "χ²", "Fisher", "mixed model",
                 "500 resamples", "seed 0",
                 "not adjusted for multiplicity", comparison.settings["software"]["scipy"]):
        assert word in text, word
    assert "{" not in text and "}" not in text  # every placeholder filled
    kr = key_results(comparison)
    assert len(kr) == 2 * len(comparison.settings["metrics"])
    row = kr[(kr["visit"] == "day 21") & (kr["metric"] == "percent_opacity")].iloc[0]
    hl = comparison.tests.query("stratum == 'all' and visit == 'day 21' and metric == 'percent_opacity' "
                                "and test == 'hodges_lehmann'").iloc[0]
    assert row["HL difference [CI]"].startswith(f"{hl['estimate']:.3g} [")
    assert row["n"] == "6/6"


def test_key_results_medians_of_arms_named_with_vs():
    # "A vs B vs placebo" was split at the first " vs ": both medians showed as "–"
    scores = pd.DataFrame({"patient_id": list("aabbccdd"), "day": [0, 7] * 4,
                           "percent_opacity": [20, 10, 30, 26, 25, 26, 22, 21.0]})
    arms = pd.DataFrame({"patient_id": list("abcd"), "arm": ["MSC vs high dose"] * 2 + ["placebo"] * 2})
    kr = key_results(compare_arms(scores, arms, rng=0, n_boot=100, mixed=False))
    row = kr.iloc[0]
    assert row["median change MSC vs high dose"] == "-7" and row["median change placebo"] == "0"


def test_plots_return_agg_figures(comparison):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for fig in (plot_trajectories(comparison, "percent_opacity"), plot_changes(comparison, "percent_opacity"),
                plot_responses(comparison)):
        assert isinstance(fig.canvas, FigureCanvasAgg)
        assert len(fig.axes) >= 1
    assert len(plot_trajectories(comparison, "percent_opacity").axes) == 2  # one panel per arm
    with pytest.raises(ValueError, match="was not compared"):
        plot_changes(comparison, "lung_volume_ml")


def test_report_with_one_patient_arm_and_warnings(tmp_path):
    scores = pd.DataFrame({"patient_id": list("aabbcc") + ["z"], "day": [0, 7, 0, 7, 0, 7, 0],
                           "percent_opacity": [20, 10, 30, 25, 25, 26, 5], "error": [""] * 6 + ["failed"]})
    arms = pd.DataFrame({"patient_id": list("abc"), "arm": ["MSC", "placebo", "placebo"]})
    res = compare_arms(scores, arms, rng=0)
    text = write_report(res, tmp_path).read_text()
    assert "failed_scan" in text and "too few patients" in text


def test_figure_files_of_metric_names_with_slashes_stay_in_figures(tmp_path):
    """A user's column "PO/lung %" became the folder figures/trajectories_PO/; names that
    become alike must not overwrite each other's figure."""
    scores = pd.DataFrame({"patient_id": list("aabbccdd"), "day": [0, 7] * 4,
                           "PO/lung %": [20, 10, 30, 25, 25, 26, 22, 21.0]})
    scores["PO_lung"] = scores["PO/lung %"] * 2
    arms = pd.DataFrame({"patient_id": list("abcd"), "arm": ["MSC", "MSC", "placebo", "placebo"]})
    res = compare_arms(scores, arms, metrics=["PO/lung %", "PO_lung"], rng=0, n_boot=100, mixed=False)
    write_report(res, tmp_path)
    figures = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert all(p.is_file() for p in (tmp_path / "figures").iterdir())
    assert figures == ["change_PO_lung.png", "change_PO_lung_2.png", "responses.png",
                       "trajectories_PO_lung.png", "trajectories_PO_lung_2.png"]


def test_rerun_into_the_same_folder_leaves_no_figure_or_table_of_the_earlier_run(tmp_path, comparison):
    write_report(comparison, tmp_path)
    (tmp_path / "figures" / "notes.txt").write_text("the user's own file")
    scores = pd.DataFrame({"patient_id": list("aabbccdd"), "day": [0, 7] * 4,
                           "percent_opacity": [20, 10, 30, 25, 25, 26, 22, 21.0]})
    arms = pd.DataFrame({"patient_id": list("abcd"), "arm": ["MSC", "MSC", "placebo", "placebo"]})
    res = compare_arms(scores, arms, rng=0, n_boot=100, mixed=False)
    write_report(res, tmp_path)
    pngs = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert pngs == ["change_percent_opacity.png", "responses.png", "trajectories_percent_opacity.png"]
    assert not list((tmp_path / "figures").glob("*severity_score_total*"))
    assert (tmp_path / "figures" / "notes.txt").exists()  # not ours: kept
    assert {p.name for p in (tmp_path / "tables").glob("*.csv")} == {f"{n}.csv" for n in res.tables}


def test_write_text_atomic_replaces(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two" and [x.name for x in tmp_path.iterdir()] == ["a.txt"]
    assert p.stat().st_mode & 0o777 == 0o644


def test_write_report_rejects_wrong_input(tmp_path, comparison):
    with pytest.raises(TypeError, match="Comparison"):
        write_report({"tests": []}, tmp_path)  # type: ignore[arg-type]
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        write_report(comparison, tmp_path / "file")


def test_cli_compare_csv_and_parquet(tmp_path, capsys):
    scores, arms = make_trial(np.random.default_rng(3), n_per_arm=5, effect=-8)
    scores.to_csv(tmp_path / "scores.csv", index=False)
    arms.to_parquet(tmp_path / "arms.parquet")
    rc = main(["compare", str(tmp_path / "scores.csv"), str(tmp_path / "arms.parquet"), "-o", str(tmp_path / "rep"),
               "--visit", "day 7=7:2", "--visit", "day 21=21:3", "--metric", "percent_opacity",
               "--no-strata", "--n-boot", "300", "--absolute", "4"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "HL difference" in out and "not adjusted for multiplicity" in out
    assert (tmp_path / "rep" / "report.html").is_file()
    doc = json.loads((tmp_path / "rep" / "comparison.json").read_text())
    assert doc["settings"]["response_criteria"]["absolute"] == 4.0
    assert doc["settings"]["strata"] == [] and doc["settings"]["seed"] == 0


def test_cli_compare_prints_the_mixed_model_slope_it_writes(tmp_path, capsys):
    import pandas as pd

    scores, arms = make_trial(np.random.default_rng(3), n_per_arm=6, effect=-8)
    scores.to_csv(tmp_path / "scores.csv", index=False)
    arms.to_csv(tmp_path / "arms.csv", index=False)
    rc = main(["compare", str(tmp_path / "scores.csv"), str(tmp_path / "arms.csv"), "-o", str(tmp_path / "rep"),
               "--visit", "day 7=7:2", "--visit", "day 21=21:3", "--metric", "percent_opacity",
               "--no-strata", "--n-boot", "200"])
    out = capsys.readouterr().out
    assert rc == 0
    tests = pd.read_csv(tmp_path / "rep" / "tables" / "tests.csv")
    mixed = tests[(tests["test"] == "mixed_model") & (tests["stratum"] == "all")].iloc[0]
    assert np.isfinite(mixed["estimate"])
    block = out.split("Mixed model over all visits", 1)[1]
    line = next(row for row in block.splitlines() if "percent_opacity" in row)
    assert f"{mixed['estimate']:.3g}" in line and f"{mixed['ci_low']:.3g}" in line and f"{mixed['ci_high']:.3g}" in line
    # with the mixed model switched off, nothing is printed for it
    rc = main(["compare", str(tmp_path / "scores.csv"), str(tmp_path / "arms.csv"), "-o", str(tmp_path / "rep2"),
               "--visit", "day 7=7:2", "--visit", "day 21=21:3", "--metric", "percent_opacity",
               "--no-strata", "--n-boot", "200", "--no-mixed"])
    assert rc == 0 and "Mixed model" not in capsys.readouterr().out

def test_cli_compare_errors(tmp_path, capsys):
    scores, arms = make_trial(np.random.default_rng(3), n_per_arm=3)
    scores.to_csv(tmp_path / "scores.csv", index=False)
    arms.drop(columns="arm").to_csv(tmp_path / "arms.csv", index=False)
    assert main(["compare", str(tmp_path / "scores.csv"), str(tmp_path / "nope.csv"), "-o", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "scores.csv"), str(tmp_path / "arms.csv"), "-o", str(tmp_path / "r")]) == 2
    assert "lacks column(s) ['arm']" in capsys.readouterr().err
    (tmp_path / "arms.xlsx").write_text("x")
    assert main(["compare", str(tmp_path / "scores.csv"), str(tmp_path / "arms.xlsx"), "-o", str(tmp_path / "r")]) == 2
    assert "unknown suffix" in capsys.readouterr().err
    (tmp_path / "report.txt").write_text("x")  # -o names a file: one line, exit 2
    assert main(["compare", str(tmp_path / "scores.csv"), str(tmp_path / "nope.csv"), "-o", str(tmp_path / "report.txt")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", "s.csv", "a.csv", "-o", "r", "--visit", "day7"])


LONG_ARM = "High-dose mesenchymal stromal cells plus standard of care (cohort B)"


@pytest.fixture(scope="module")
def three_arms():
    """Three arms, one of them with a long name, non-ASCII names, the reference given."""
    scores, arms = make_trial(np.random.default_rng(5), n_per_arm=3, effect=-10, arms=("MSC é", LONG_ARM, "Плацебо"))
    return {outcome: compare_arms(scores, arms, metrics=["percent_opacity", "percent_consolidation", "severity_score_total"],
                                  visits=VISITS, reference_arm="Плацебо", outcome=outcome, rng=0, n_boot=100, mixed=False,
                                  strata=[])
            for outcome in ("change", "relative_change_pct")}


def _box_medians(fig) -> list[float]:
    """y of every box plot's median line (horizontal two-point lines but the zero line)."""
    return sorted(float(ln.get_ydata()[0]) for ln in fig.axes[0].lines
                  if len(ln.get_xdata()) == 2 and ln.get_xdata()[0] != ln.get_xdata()[1]
                  and ln.get_ydata()[0] == ln.get_ydata()[1] and ln.get_xdata()[1] - ln.get_xdata()[0] < 1)


def test_change_figure_shows_the_tested_outcome_with_its_units(three_arms):
    """With outcome="relative_change_pct" the key results give medians in % of baseline but
    the figure drew the absolute change, labelled "change in percent_opacity" (no units)."""
    for outcome, unit in (("change", "percentage points"), ("relative_change_pct", "% of baseline")):
        res = three_arms[outcome]
        fig = plot_changes(res, "percent_opacity")
        assert unit in fig.axes[0].get_ylabel()
        s = res.summary.query("stratum == 'all' and metric == 'percent_opacity' and outcome == @outcome "
                              "and visit != 'baseline'")
        medians = _box_medians(fig)
        for m in s["median"]:  # every box's median where the table says it is
            assert min(abs(np.asarray(medians) - m)) < 1e-9, (outcome, m, medians)
    assert "score points" in plot_changes(three_arms["change"], "severity_score_total").axes[0].get_ylabel()
    assert "%" in plot_trajectories(three_arms["change"], "percent_opacity").axes[0].get_ylabel()


def _texts_overlap_or_clipped(fig, texts) -> list[str]:
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(r)) for t in texts if t.get_text()]
    bad = [a for a, b in boxes if b.x0 < -1 or b.y0 < -1 or b.x1 > fig.bbox.x1 + 1 or b.y1 > fig.bbox.y1 + 1]
    bad += [f"{a} / {c}" for i, (a, b) in enumerate(boxes) for c, d in boxes[i + 1:] if b.overlaps(d)]
    return bad


def test_long_arm_names_neither_overlap_nor_are_clipped(three_arms):
    res = three_arms["change"]
    fig = plot_trajectories(res, "percent_opacity")
    assert not _texts_overlap_or_clipped(fig, [ax.title for ax in fig.axes])
    fig = plot_changes(res, "percent_opacity")
    ax = fig.axes[0]
    legend = [t.get_text().replace("\n", " ") for t in ax.get_legend().get_texts()]
    assert legend == ["Плацебо", LONG_ARM, "MSC é"]  # every arm, reference first
    assert not _texts_overlap_or_clipped(fig, [ax.title, *ax.get_legend().get_texts()])
    fig = plot_changes(res, "percent_consolidation")  # a long y label: not cut at the figure's edge
    assert not _texts_overlap_or_clipped(fig, [fig.axes[0].yaxis.label])
    fig = plot_responses(res)
    assert not _texts_overlap_or_clipped(fig, fig.axes[0].get_xticklabels())


def test_key_results_median_columns_stay_together_with_three_arms(three_arms):
    """Each comparison added its own "median change <arm>" column, so with two treatment
    arms the second one's median landed after "ANCOVA p"."""
    kr = key_results(three_arms["change"])
    cols = list(kr.columns)
    assert cols[:7] == ["comparison", "visit", "metric", "n", f"median change {LONG_ARM}", "median change MSC é",
                        "median change Плацебо"]
    row = kr[(kr["comparison"] == f"{LONG_ARM} vs Плацебо") & (kr["visit"] == "day 21")
             & (kr["metric"] == "percent_opacity")].iloc[0]
    s = three_arms["change"].summary.query("stratum == 'all' and visit == 'day 21' and metric == 'percent_opacity' "
                                           "and outcome == 'change' and arm == @LONG_ARM")
    assert row[f"median change {LONG_ARM}"] == f"{float(s['median'].iloc[0]):.3g}"


def test_methods_and_captions_name_the_relative_outcome(three_arms, tmp_path):
    # read "the relative change pct was compared" (the column name with spaces)
    text = methods_text(three_arms["relative_change_pct"])
    assert "the relative change from baseline (% of baseline) was compared" in text and "change pct" not in text
    page = write_report(three_arms["relative_change_pct"], tmp_path).read_text(encoding="utf-8")
    assert "<figcaption>Change from baseline in percent_opacity, % of baseline, by visit and arm</figcaption>" in page
