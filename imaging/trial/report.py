"""Plots and a self-contained HTML report of a :class:`imaging.trial.comparison.Comparison`.

:func:`write_report` writes into one folder::

    report.html          one file, opens offline: figures embedded as PNG (base64)
    comparison.json      every table, the settings and notes (Comparison.to_json)
    tables/<name>.csv    every result table
    figures/<name>.png   the figures, also as files (``<kind>_<metric>.png``, the metric name
                         reduced to letters, digits, ``.``, ``_`` and ``-``)

Figures are drawn with Matplotlib's Agg canvas on :class:`matplotlib.figure.Figure`
objects created here (no ``pyplot``), so importing or calling this module never changes
the global Matplotlib backend or state.  Every file is written atomically (temporary
file in the same folder, then :func:`os.replace`; :mod:`imaging.common.files`).
"""

from __future__ import annotations

import base64
import html
import io
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imaging.common.files import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from imaging.trial.comparison import Comparison

__all__ = [
    "write_report",
    "render_html",
    "methods_text",
    "key_results",
    "trajectory_results",
    "plot_trajectories",
    "plot_changes",
    "plot_responses",
]

#: Colours for up to eight arms (colour-blind safe, Okabe & Ito 2008).
ARM_COLOURS: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
#: Colours of the response categories improved / stable / progressed.
CATEGORY_COLOURS: dict[str, str] = {"improved": "#009E73", "stable": "#BBBBBB", "progressed": "#D55E00"}


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _arm_colours(arms: list[str]) -> dict[str, str]:
    return {a: ARM_COLOURS[i % len(ARM_COLOURS)] for i, a in enumerate(arms)}


def _arms(comparison: Comparison) -> list[str]:
    s = comparison.settings
    return [s["reference_arm"], *s["treatment_arms"]]


def _wrap(label: str, width: int) -> str:
    """``label`` broken into lines of at most ``width`` characters (long arm names)."""
    return "\n".join(textwrap.wrap(label, width, break_long_words=True, break_on_hyphens=False)) or label


def _axis_label(quantity: str, unit: str) -> str:
    """``quantity (unit)``, the unit on a second line when the label would not fit a
    3.5-inch axis.

    >>> _axis_label("percent_opacity", "%"), _axis_label("change in percent_consolidation", "percentage points")
    ('percent_opacity (%)', 'change in percent_consolidation\\n(percentage points)')
    """
    label = f"{quantity} ({unit})"
    return label if len(label) <= 36 else f"{quantity}\n({unit})"


def _units(metric: str) -> tuple[str, str]:
    """(unit of a value, unit of a change) of ``metric``, guessed from its name.

    >>> _units("percent_opacity"), _units("severity_score_total"), _units("lung_volume_ml")
    (('%', 'percentage points'), ('score points', 'score points'), ('mL', 'mL'))
    """
    name = metric.lower()
    if name.endswith("_ml"):
        return "mL", "mL"
    if "_hu" in name or name.startswith("hu_"):
        return "HU", "HU"
    if "percent" in name or name.endswith("_pct") or "%" in name:
        return "%", "percentage points"
    if "score" in name:
        return "score points", "score points"
    return "metric units", "metric units"


def plot_trajectories(comparison: Comparison, metric: str) -> Figure:
    """Each patient's ``metric`` against days since baseline, one panel per arm.

    Parameters
    ----------
    comparison : Comparison
    metric : str
        One of ``comparison.settings["metrics"]``.

    Returns
    -------
    matplotlib.figure.Figure
        Agg-backed figure (save with ``fig.savefig``).
    """
    if metric not in comparison.settings["metrics"]:
        raise ValueError(f"metric {metric!r} was not compared; choose one of {comparison.settings['metrics']}")
    arms = _arms(comparison)
    colours = _arm_colours(arms)
    data = comparison.changes[comparison.changes["metric"] == metric]
    fig = _new_figure(4.0 * len(arms), 3.4)
    axes = fig.subplots(1, len(arms), sharey=True, squeeze=False)[0]
    for ax, arm in zip(axes, arms):
        sub = data[data["arm"] == arm]
        for _pid, g in sub.groupby("patient_id"):
            g = g.sort_values("day")
            ax.plot(g["day"], g["value"], "-o", color=colours[arm], alpha=0.6, lw=1.2, ms=3.5)
        med = sub.groupby("visit_order").agg(day=("day", "median"), value=("value", "median"))
        if len(med):
            ax.plot(med["day"], med["value"], "-", color="black", lw=2.5, label="median")
            ax.legend(loc="best", fontsize=8, frameon=False)
        ax.set_title(_wrap(f"{arm} (n={sub['patient_id'].nunique()})", 34), fontsize=11)
        ax.set_xlabel("days since baseline")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(_axis_label(metric, _units(metric)[0]))
    return fig


def plot_changes(comparison: Comparison, metric: str) -> Figure:
    """Change from baseline in ``metric`` by visit and arm: box plots with each patient as a dot.

    The change is in % of baseline when the comparison tested ``relative_change_pct``,
    else in the metric's units (follow-up minus baseline).

    Parameters
    ----------
    comparison : Comparison
    metric : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    if metric not in comparison.settings["metrics"]:
        raise ValueError(f"metric {metric!r} was not compared; choose one of {comparison.settings['metrics']}")
    arms = _arms(comparison)
    colours = _arm_colours(arms)
    baseline = comparison.settings["baseline_visit"]
    data = comparison.changes[(comparison.changes["metric"] == metric) & (comparison.changes["visit"] != baseline)]
    relative = comparison.settings.get("outcome") == "relative_change_pct"
    column = "relative_change_pct" if relative else "change"
    visits = [v for v in comparison.settings["visit_order"] if v in set(data["visit"])]
    fig = _new_figure(max(4.0, 1.6 * len(visits) * len(arms) / 2 + 2) + 1.8, 3.6)
    ax = fig.subplots()
    width = 0.8 / len(arms)
    jitter = np.random.default_rng(0)  # fixed: dot positions only, reproducible figures
    for i, arm in enumerate(arms):
        pos, series = [], []
        for j, visit in enumerate(visits):
            vals = data.loc[(data["arm"] == arm) & (data["visit"] == visit), column].to_numpy(float)
            vals = vals[np.isfinite(vals)]  # relative change of a zero baseline is NaN
            x = j + (i - (len(arms) - 1) / 2) * width
            if vals.size:
                pos.append(x)
                series.append(vals)
                ax.scatter(x + jitter.uniform(-width / 5, width / 5, vals.size), vals, s=14,
                           color=colours[arm], zorder=3, alpha=0.8)
        if series:
            bp = ax.boxplot(series, positions=pos, widths=width * 0.8, patch_artist=True,
                            showfliers=False, manage_ticks=False)
            for box in bp["boxes"]:
                box.set(facecolor=colours[arm], alpha=0.25, edgecolor=colours[arm])
            for part in ("medians", "whiskers", "caps"):
                for line in bp[part]:
                    line.set(color=colours[arm])
        ax.plot([], [], "s", color=colours[arm], label=_wrap(arm, 24))
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(visits)), visits)
    ax.set_ylabel(_axis_label(f"change in {metric}", "% of baseline" if relative else _units(metric)[1]))
    ax.set_title(_wrap(f"Change from baseline: {metric}", 40), fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_responses(comparison: Comparison) -> Figure:
    """Response categories as stacked bars (percent of patients) per visit and arm.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from imaging.trial.response import RESPONSE_CATEGORIES

    arms = _arms(comparison)
    cats = comparison.categories[comparison.categories["stratum"] == "all"]
    visits = [v for v in comparison.settings["visit_order"] if v in set(cats["visit"])]
    slot = 0.9 if max(len(a) for a in arms) <= 12 else 1.2  # inches per bar
    fig = _new_figure(max(4.0, slot * len(visits) * len(arms) + 2), 3.6)
    ax = fig.subplots()
    rows = [(v, a) for v in visits for a in arms]
    labels = [f"{v}\n{_wrap(a, 14 if slot > 1 else 12)}" for v, a in rows]
    bottoms = np.zeros(len(rows))
    for cat in RESPONSE_CATEGORIES:
        heights = []
        for v, a in rows:
            sel = cats[(cats["visit"] == v) & (cats["arm"] == a) & (cats["category"] == cat)]
            p = float(sel["percent"].iloc[0]) if len(sel) and np.isfinite(sel["percent"].iloc[0]) else 0.0
            heights.append(p)
        ax.bar(range(len(rows)), heights, bottom=bottoms, color=CATEGORY_COLOURS[cat], label=cat,
               edgecolor="white")
        bottoms += np.asarray(heights)
    for k, (v, a) in enumerate(rows):
        n = int(cats.loc[(cats["visit"] == v) & (cats["arm"] == a), "count"].sum())
        ax.text(k, 101, f"n={n}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylim(0, 112)
    ax.set_ylabel("% of patients")
    ax.set_title(f"Response by {comparison.settings['response_metric']}")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def _fmt_p(p: Any) -> str:
    """A p-value for the tables: ``<0.001``; three significant digits below 0.1 (so 0.0496
    and 0.0504 stay apart); two decimals above.

    >>> [_fmt_p(v) for v in (0.0002, 0.00431, 0.0496, 0.0504, 0.2371, float("nan"))]
    ['<0.001', '0.00431', '0.0496', '0.0504', '0.24', '–']
    """
    if p is None or not np.isfinite(p):
        return "–"
    if p < 0.001:
        return "<0.001"
    return f"{p:.3g}" if p < 0.1 else f"{p:.2f}"


#: outcome -> (median column label, HL column, summary outcome), units in the names.
_OUTCOME_LABELS: dict[str, tuple[str, str, str]] = {
    "change": ("change", "HL difference [CI]", "change"),
    "relative_change_pct": ("change, % of baseline", "HL difference, % of baseline [CI]", "relative_change_pct"),
    "value": ("value", "HL difference in value [CI]", "value"),
}


def key_results(comparison: Comparison) -> pd.DataFrame:
    """One row per comparison × visit × metric (all patients): the headline numbers.

    Returns
    -------
    DataFrame
        Columns ``comparison, visit, metric, n (treatment/reference)``, the median of the
        tested outcome in each arm, the Hodges-Lehmann difference with CI, and unadjusted
        p-values of Mann-Whitney, Welch and ANCOVA (with the ANCOVA estimate and CI).
        Column names carry the outcome and its units: with ``outcome="change"``
        ``median change <arm>`` and ``HL difference [CI]`` (metric units); with
        ``"relative_change_pct"`` ``median change, % of baseline <arm>`` and
        ``HL difference, % of baseline [CI]``; with ``"value"`` ``median value <arm>``
        and ``HL difference in value [CI]``.  ANCOVA is always on the follow-up value
        (metric units).  The median columns stand side by side after ``n`` (treatment
        arms, then the reference); an arm not in a row's comparison shows ``–`` there.
    """
    outcome = comparison.settings.get("outcome", "change")
    label, hl_label, summ_outcome = _OUTCOME_LABELS[outcome]
    ancova_label = "ANCOVA difference [CI]" if outcome == "change" else "ANCOVA difference in value, metric units [CI]"
    t = comparison.tests[(comparison.tests["stratum"] == "all") & (comparison.tests["outcome"] != "response")]
    t = t[t["visit"] != "all visits"]
    summ = comparison.summary[(comparison.summary["stratum"] == "all") & (comparison.summary["outcome"] == summ_outcome)]
    rows = []
    for (comp, visit, metric), g in t.groupby(["comparison", "visit", "metric"], sort=False):
        by = g.set_index("test")
        reference = comparison.settings["reference_arm"]  # arm names may themselves hold " vs "
        treatment = comp[: -len(f" vs {reference}")]

        def med(arm: str) -> str:
            s = summ[(summ["visit"] == visit) & (summ["metric"] == metric) & (summ["arm"] == arm)]
            return _fmt(float(s["median"].iloc[0])) if len(s) else "–"

        hl, an = by.loc["hodges_lehmann"], by.loc["ancova"]
        rows.append({
            "comparison": comp, "visit": visit, "metric": metric,
            "n": f"{int(by.loc['mann_whitney', 'n_treatment'])}/{int(by.loc['mann_whitney', 'n_reference'])}",
            f"median {label} {treatment}": med(treatment),
            f"median {label} {reference}": med(reference),
            hl_label: f"{_fmt(hl['estimate'])} [{_fmt(hl['ci_low'])}, {_fmt(hl['ci_high'])}]",
            "Mann-Whitney p": _fmt_p(by.loc["mann_whitney", "p_unadjusted"]),
            "Welch p": _fmt_p(by.loc["welch_t", "p_unadjusted"]),
            ancova_label: f"{_fmt(an['estimate'])} [{_fmt(an['ci_low'])}, {_fmt(an['ci_high'])}]",
            "ANCOVA p": _fmt_p(an["p_unadjusted"]),
        })
    kr = pd.DataFrame(rows)
    # one median column per arm, side by side (treatment arms, then the reference), so a
    # second treatment arm's median does not land after the p-values
    arms = [*comparison.settings["treatment_arms"], comparison.settings["reference_arm"]]
    medians = [c for c in (f"median {label} {a}" for a in arms) if c in kr.columns]
    first = ["comparison", "visit", "metric", "n"]
    return kr[[c for c in kr.columns if c in first] + medians
              + [c for c in kr.columns if c not in first and c not in medians]].fillna("–")



def trajectory_results(comparison: Comparison) -> pd.DataFrame:
    """One row per comparison × metric (all patients): the mixed model's slope difference.

    The rows of ``tables/tests.csv`` with ``visit == "all visits"`` (the linear mixed
    model ``value ~ treated * day`` with a random intercept per patient), formatted for
    a person: the difference between arms in the slope of the metric, in metric units
    per day (treatment minus reference) with its CI, and the unadjusted p-value.

    Returns
    -------
    DataFrame
        Columns ``comparison, metric, n (treatment/reference), slope difference per day
        [CI], mixed model p, note``; empty when the mixed model was not fitted.
    """
    t = comparison.tests
    t = t[(t["stratum"] == "all") & (t["visit"] == "all visits") & (t["test"] == "mixed_model")]
    rows = [{
        "comparison": r["comparison"], "metric": r["metric"],
        "n": f"{int(r['n_treatment'])}/{int(r['n_reference'])}",
        "slope difference per day [CI]": f"{_fmt(r['estimate'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]",
        "mixed model p": _fmt_p(r["p_unadjusted"]),
        "note": r["note"] if isinstance(r.get("note"), str) else "",
    } for _, r in t.iterrows()]
    columns = ["comparison", "metric", "n", "slope difference per day [CI]", "mixed model p", "note"]
    return pd.DataFrame(rows, columns=columns)

#: outcome -> its name in the methods paragraph.
_OUTCOME_WORDS: dict[str, str] = {
    "change": "change from baseline",
    "relative_change_pct": "relative change from baseline (% of baseline)",
    "value": "follow-up value",
}


def methods_text(comparison: Comparison) -> str:
    """The methods paragraph: visits, response thresholds, tests, software versions."""
    s = comparison.settings
    sw = s["software"]
    if s["visits"]:
        visits = "; ".join(f"{k}: day {t:g} ± {w:g}" for k, (t, w) in s["visits"].items())
        visit_txt = (f"Scans were assigned to nominal visits by days since each patient's baseline scan "
                     f"({visits}); where a patient had two scans in one window the one nearest the nominal "
                     "day was kept.")
    else:
        visit_txt = "Visits were taken from the scores table (visit labels, or each distinct day since baseline)."
    response = next(n for n in comparison.notes if n.startswith("Response by"))
    conf = f"{s['confidence']:.0%}"
    mixed = (" Over all visits, a linear mixed model (statsmodels MixedLM, REML) of the metric on arm, day "
             "and their interaction with a random intercept per patient gave the arm × day effect "
             "(difference in slope per day) with its Wald CI." if s["mixed_model"] else "")
    strata = (f" All analyses were repeated within each level of {', '.join(s['strata'])}." if s["strata"] else "")
    seed = ("not fixed (or a generator passed in)" if s["seed"] is None
            else f"{s['seed']} combined with each comparison, stratum, visit and metric")
    return (
        f"{visit_txt} Days since baseline come from {s['day_source']}; the baseline visit is {s['baseline_visit']!r}; "
        "change is follow-up minus baseline "
        f"and relative change is its percentage of the baseline value. {response} "
        f"Per visit and metric ({', '.join(s['metrics'])}), the {_OUTCOME_WORDS[s['outcome']]} was compared "
        f"between {', '.join(s['treatment_arms'])} and the reference arm {s['reference_arm']} with the two-sided "
        f"Mann–Whitney U test (SciPy) and the Hodges–Lehmann median difference with its {conf} CI by inversion "
        f"of that test (both exact when each arm has fewer than {s['exact_hodges_lehmann_max_n']} patients and "
        "there are no ties; otherwise normal approximation with tie and continuity correction), "
        f"a percentile bootstrap {conf} CI of the difference in medians "
        f"({s['n_boot']} resamples within each arm, seed {seed}), Welch's t test, and ANCOVA of the follow-up "
        "value on arm adjusted for baseline (statsmodels OLS). Response categories were compared with "
        f"Pearson's χ² test without continuity correction and Fisher's exact test (Freeman–Halton for 2 × 3).{mixed}"
        f"{strata} Estimates are treatment minus reference. P-values are two-sided and not adjusted for "
        f"multiplicity. Software: chestct {sw['chestct']}, NumPy {sw['numpy']}, pandas {sw['pandas']}, "
        f"SciPy {sw['scipy']}, statsmodels {sw['statsmodels']}, Matplotlib {sw['matplotlib']}."
    )


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.82em;margin:.6em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#f3f3f3}.warn{background:#fff4e5;border-left:4px solid #e69f00;padding:.6em 1em}
img{max-width:100%;height:auto;display:block;margin:.5em 0}details{margin:.6em 0}summary{cursor:pointer;font-weight:600}
"""


def _table_html(df: pd.DataFrame, *, max_rows: int | None = None) -> str:
    if df.empty:
        return "<p><em>none</em></p>"
    return df.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:.4g}", max_rows=max_rows, border=0)


def render_html(comparison: Comparison, figures: dict[str, bytes], *, title: str = "Radiographic response by treatment arm",
                links: dict[str, str] | None = None) -> str:
    """The report as one HTML string; ``figures`` maps caption -> PNG bytes (embedded as base64),
    ``links`` text -> URL (relative to the report) of pages shown under the title."""
    s = comparison.settings
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>Arms: {', '.join(f'{esc(a)} (n={n})' for a, n in s['n_patients'].items())}; "
        f"reference arm {esc(s['reference_arm'])}; {s['n_scans_used']} of {s['n_scans_in']} scans used; "
        f"visits {esc(', '.join(s['visit_order']))}.</p>",
        *(f"<p><a href='{esc(url)}'>{esc(text)}</a></p>" for text, url in (links or {}).items()),
        "<div class='warn'>" + "<br>".join(esc(n) for n in comparison.notes) + "</div>",
        "<h2>Methods</h2>", f"<p>{esc(methods_text(comparison))}</p>",
        "<h2>Key results (all patients)</h2>",
        "<p>P-values are <strong>not adjusted for multiplicity</strong>. HL: Hodges–Lehmann.</p>",
        _table_html(key_results(comparison)),
        "<h2>Figures</h2>",
    ]
    for caption, png in figures.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<figure><img alt='{esc(caption)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{esc(caption)}</figcaption></figure>")
    t = comparison.tests
    parts += [
        "<h2>Response categories and mixed model</h2>",
        _table_html(t[(t["outcome"] == "response") | (t["visit"] == "all visits")].drop(columns=["confidence"])),
        "<h2>Join and data warnings</h2>",
        _table_html(comparison.warnings),
        "<details><summary>Descriptive statistics</summary>", _table_html(comparison.summary), "</details>",
        "<details><summary>All tests (every stratum)</summary>", _table_html(t), "</details>",
        "<details><summary>Per-patient changes</summary>", _table_html(comparison.changes), "</details>",
        "</body></html>",
    ]
    return "\n".join(parts)


def _figure_file(kind: str, metric: str, taken: dict[str, bytes]) -> str:
    """``<kind>_<metric>.png`` with the metric made a plain file name (a ``/`` in a column
    name must not become a folder), unique among ``taken``."""
    plain = re.sub(r"[^A-Za-z0-9._-]+", "_", metric).strip("._") or "metric"
    name, k = f"{kind}_{plain}.png", 2
    while name in taken:
        name, k = f"{kind}_{plain}_{k}.png", k + 1
    return name


def write_report(comparison: Comparison, outdir: str | Path, *, title: str = "Radiographic response by treatment arm",
                 links: dict[str, str] | None = None) -> Path:
    """Write the HTML report, the JSON, the CSV tables and the figures into ``outdir``.

    Parameters
    ----------
    comparison : Comparison
        From :func:`imaging.compare_arms`.
    outdir : str or Path
        Folder (created if needed); existing files of the same names are replaced.
    title : str, optional
    links : dict, optional
        Text -> URL (relative to ``outdir``) of pages to link under the title, e.g. the
        run's QC gallery.

    Returns
    -------
    Path
        ``outdir / "report.html"``: one file that opens offline (figures embedded).
    """
    from imaging.trial.comparison import Comparison

    if not isinstance(comparison, Comparison):
        raise TypeError(f"comparison must be an imaging.trial.compare.Comparison, got {type(comparison).__name__}")
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise NotADirectoryError(f"outdir {str(outdir)!r} exists and is not a folder")
    outdir.mkdir(parents=True, exist_ok=True)

    figures: dict[str, bytes] = {}
    files: dict[str, bytes] = {}
    relative = ", % of baseline," if comparison.settings.get("outcome") == "relative_change_pct" else ""
    for metric in comparison.settings["metrics"]:
        for kind, fn in (("trajectories", plot_trajectories), ("change", plot_changes)):
            fig = fn(comparison, metric)
            png = _png(fig)
            caption = (f"Each patient's {metric} by arm (black: median)" if kind == "trajectories"
                       else f"Change from baseline in {metric}{relative} by visit and arm")
            figures[caption] = png
            files[_figure_file(kind, metric, files)] = png
    if not comparison.categories.empty:
        png = _png(plot_responses(comparison))
        figures[f"Response categories by {comparison.settings['response_metric']} (all patients)"] = png
        files["responses.png"] = png

    for name, png in files.items():
        atomic_write_bytes(outdir / "figures" / name, png)
    for name, table in comparison.tables.items():
        atomic_write_text(outdir / "tables" / f"{name}.csv", table.to_csv(index=False))
    # a rerun into the same folder with fewer metrics or tables: the earlier run's extras go
    _remove_stale(outdir / "figures", set(files), "*.png")
    _remove_stale(outdir / "tables", {f"{name}.csv" for name in comparison.tables}, "*.csv")
    comparison.to_json(outdir / "comparison.json")
    return atomic_write_text(outdir / "report.html", render_html(comparison, figures, title=title, links=links))


def _remove_stale(folder: Path, keep: set[str], pattern: str) -> None:
    """Delete the files matching ``pattern`` in ``folder`` that this report did not write."""
    for path in folder.glob(pattern):
        if path.name not in keep and path.is_file():
            path.unlink(missing_ok=True)
