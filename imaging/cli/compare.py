"""``chestct compare SCORES ARMS -o OUTDIR``: compare the radiographic course of trial arms.

SCORES has one row per scan (``patient_id``, ``study_date`` (``YYYY-MM-DD`` or ``YYYYMMDD``;
``--date-format`` for others) or ``day``, metrics, optional
``visit`` and ``error``); ARMS one row per patient (``patient_id``, ``arm``, optional
strata).  Each may be CSV (``.csv``, ``.txt``: comma, or ``;`` / tab / ``|`` when the header has no comma;
``.tsv``) or Parquet (``.parquet``,
``.pq``).  Writes ``report.html``, ``comparison.json``, ``tables/*.csv`` and
``figures/*.png`` into OUTDIR and prints the key results.  When SCORES lies in a ``chestct score``
run folder that has QC pictures (``qc/`` beside it), the run's QC gallery ``qc/index.html`` is
rewritten with the arms (an arm column and filter) and linked from the report.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

HELP = "compare change in CT scores between treatment arms (tables, statistics, HTML report)"

__all__ = ["HELP", "configure", "run", "parse_visit"]


def parse_visit(text: str) -> tuple[str, tuple[float, float]]:
    """Parse ``LABEL=DAY:WINDOW`` (e.g. ``"day 7=7:2"``) into ``(label, (day, window))``.

    Examples
    --------
    >>> parse_visit("day 7=7:2")
    ('day 7', (7.0, 2.0))
    """
    label, sep, spec = text.rpartition("=")
    day, sep2, window = spec.partition(":")
    try:
        if not (sep and sep2 and label.strip()):
            raise ValueError
        return label.strip(), (float(day), float(window))
    except ValueError:
        raise argparse.ArgumentTypeError(f"visit must look like LABEL=DAY:WINDOW (e.g. 'day 7=7:2'), got {text!r}") from None


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``compare`` arguments to ``parser``."""
    from imaging.trial import constants as C

    parser.add_argument("scores", help="scores table, one row per scan (CSV or Parquet)")
    parser.add_argument("arms", help="arms table: patient_id, arm, optional strata columns (CSV or Parquet)")
    parser.add_argument("-o", "--outdir", required=True, help="folder for report.html, comparison.json, tables/, figures/")
    parser.add_argument("--metric", action="append", default=None, metavar="COLUMN",
                        help="metric to compare (repeatable; default: percent_opacity, percent_high_opacity, "
                             "percent_consolidation, severity_score_total where present)")
    parser.add_argument("--visit", action="append", type=parse_visit, default=None, metavar="LABEL=DAY:WINDOW",
                        help="nominal visit with a window in days, e.g. 'day 7=7:2' (repeatable); default: the "
                             "scores table's visit column, else each distinct day")
    parser.add_argument("--date-format", default=None, metavar="FORMAT",
                        help="strptime format of study_date values that are neither YYYY-MM-DD nor YYYYMMDD, "
                             "e.g. '%%d/%%m/%%Y' (day-first); day/month dates are otherwise refused, never guessed")
    parser.add_argument("--baseline-visit", default=None, help="baseline label when visits come from a visit column")
    parser.add_argument("--reference-arm", default=None, help="control arm (default: the placebo/control-named arm)")
    strata = parser.add_mutually_exclusive_group()
    strata.add_argument("--stratum", action="append", default=None, metavar="COLUMN",
                        help="arms-table column to stratify by (repeatable; default: all extra columns)")
    strata.add_argument("--no-strata", action="store_true", help="do not repeat the analysis within strata")
    parser.add_argument("--response-metric", default=None, help="metric for improved/stable/progressed (default percent_opacity)")
    parser.add_argument("--absolute", type=float, default=C.RESPONSE_ABSOLUTE_CHANGE,
                        help="absolute change (metric units) that counts as improved/progressed (default %(default)s)")
    parser.add_argument("--improved-relative", type=float, default=C.RESPONSE_IMPROVED_RELATIVE_PCT,
                        help="relative fall, %% of baseline, that counts as improved (default %(default)s)")
    parser.add_argument("--progressed-relative", type=float, default=C.RESPONSE_PROGRESSED_RELATIVE_PCT,
                        help="relative rise, %% of baseline, that counts as progressed (default %(default)s)")
    parser.add_argument("--min-absolute", type=float, default=C.RESPONSE_MIN_ABSOLUTE_CHANGE,
                        help="smallest absolute change a relative criterion acts on (default %(default)s)")
    parser.add_argument("--outcome", choices=("change", "value", "relative_change_pct"), default="change",
                        help="what the per-visit tests compare (default %(default)s)")
    parser.add_argument("--confidence", type=float, default=0.95, help="confidence level (default %(default)s)")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default %(default)s)")
    parser.add_argument("--no-mixed", action="store_true", help="skip the linear mixed model")
    parser.add_argument("--title", default="Radiographic response by treatment arm", help="report title")


def run(args: argparse.Namespace) -> int:
    """Run the comparison and write the report; returns the exit code."""
    import pandas as pd

    from imaging.trial.compare import ResponseCriteria, compare_arms
    from imaging.common.files import check_output_folder
    from imaging.trial.report import key_results, trajectory_results, write_report
    from imaging.trial.tables import read_table

    if args.seed < 0:
        print(f"chestct compare: error: --seed must be an integer >= 0, got {args.seed}", file=sys.stderr)
        return 2
    labels = [label for label, _ in args.visit or []]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:  # dict() would keep the last silently
        print(f"chestct compare: error: --visit label(s) given twice: {twice}", file=sys.stderr)
        return 2
    check_output_folder(args.outdir, what="--outdir")  # before any work: a file in the way
    scores = read_table(args.scores, name="scores")
    arms = read_table(args.arms, name="arms")
    try:
        criteria = ResponseCriteria(
            absolute=args.absolute, improved_relative_pct=args.improved_relative,
            progressed_relative_pct=args.progressed_relative, min_absolute=args.min_absolute,
        )
        comparison = compare_arms(
            scores, arms,
            metrics=args.metric,
            visits=dict(args.visit) if args.visit else None,
            baseline_visit=args.baseline_visit,
            reference_arm=args.reference_arm,
            strata=[] if args.no_strata else args.stratum,
            response_metric=args.response_metric,
            response=criteria,
            outcome=args.outcome,
            confidence=args.confidence,
            n_boot=args.n_boot,
            mixed=not args.no_mixed,
            rng=args.seed,
            date_format=args.date_format,
        )
    except (ValueError, TypeError) as exc:  # InvalidTableError is a ValueError too
        print(f"chestct compare: error: {exc}", file=sys.stderr)
        return 2
    for row in comparison.warnings.itertuples():
        if row.kind == "response_metric_substituted":
            print(f"chestct compare: warning: {row.detail}", file=sys.stderr)
    gallery = _rewrite_gallery(args.scores, scores, arms)
    report = write_report(comparison, args.outdir, title=args.title, links=_gallery_link(gallery, args.outdir))
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 40):
        print(key_results(comparison).to_string(index=False))
        trajectory = trajectory_results(comparison)
        if len(trajectory):
            print("\nMixed model over all visits (value ~ arm * day, random intercept per patient):")
            print(trajectory.to_string(index=False))
    for note in comparison.notes:
        print(f"note: {note}")
    print(f"report: {report}")
    if gallery is not None:
        print(f"QC gallery: {gallery}")
    return 0


def _rewrite_gallery(scores_file: str, scores: Any, arms: Any) -> Path | None:
    """The run's QC gallery rewritten with the arms, when ``scores_file`` lies in a run folder with
    ``qc/``; ``None`` otherwise, or when it could not be written (a warning, never an error)."""
    from imaging.pipeline.gallery import write_gallery
    from imaging.pipeline.qc_names import QC_DIR

    run_dir = Path(scores_file).resolve().parent
    if not (run_dir / QC_DIR).is_dir():
        return None
    try:
        return write_gallery(run_dir, arms=arms, scores=scores)
    except Exception as exc:  # noqa: BLE001 - the gallery is an optional view of the run
        print(f"chestct compare: warning: QC gallery in {str(run_dir / QC_DIR)!r} not rewritten: {exc}", file=sys.stderr)
        return None


def _gallery_link(gallery: Path | None, outdir: str) -> dict[str, str]:
    """The report's link to the gallery, relative to ``outdir`` (a file URI across drives)."""
    if gallery is None:
        return {}
    try:
        url = quote(Path(os.path.relpath(gallery, Path(outdir).resolve())).as_posix())
    except ValueError:  # another drive (Windows)
        url = gallery.as_uri()
    return {"QC gallery of the run: every scan, sortable and filterable by arm": url}
