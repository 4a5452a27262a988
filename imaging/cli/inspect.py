"""``chestct inspect ROOT``: list the studies and series under a folder, and the choice made.

Prints one block per study (patient, date, UID) with one line per series: number,
description, orientation, slices, thickness, kernel, syntax, and whether it was chosen
and why.  ``--json`` prints the same as a JSON document (studies with their series and
the skipped files), ``--csv`` one row per series.  Reads headers only.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from imaging.cli._rules import add_selection_arguments, selection_rules

HELP = "list the DICOM studies and series under a folder and which series is chosen per study, and why"

__all__ = ["HELP", "configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``inspect`` arguments to ``parser``."""
    parser.add_argument("root", help="folder of DICOM studies (any depth), or one DICOM file")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON (studies, series, skipped files)")
    out.add_argument("--csv", action="store_true", help="print CSV, one row per series")
    add_selection_arguments(parser)
    parser.add_argument(
        "--choose", action="append", default=None, metavar="STUDY_UID=SERIES_UID",
        help="override the choice for a study (repeatable)",
    )


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:g}{suffix}"
    return f"{value}{suffix}"


def _print_table(catalog: Any) -> None:
    out = sys.stdout
    n_series = len(catalog.series)
    out.write(
        f"{catalog.root}: {len(catalog.studies)} studies, {n_series} series, "
        f"{catalog.n_files} files examined, {len(catalog.skipped_files)} skipped\n"
    )
    for study in catalog.studies:
        out.write(
            f"\nstudy {study.study_uid}  patient {study.patient_id or '-'}  date {study.study_date or '-'}"
            f"  chosen: {study.chosen.series_uid if study.chosen else 'NONE'}\n"
        )
        for s in study.series:
            mark = "*" if study.chosen is s else " "
            out.write(
                f"  {mark} #{_fmt(s.series_number):>6} {(s.series_description or '-')[:28]:28} {s.modality or '-':3} "
                f"{s.orientation:8} {s.n_slices:5d} sl  {_fmt(s.slice_thickness_mm, ' mm'):>9}  "
                f"{(s.kernel or '-')[:12]:12} {s.as_dict()['transfer_syntax']}\n"
            )
            out.write(f"      {s.series_uid}\n      {study.reasons.get(s.series_uid, '')}\n")
            for p in s.problems:
                out.write(f"      ! {p}\n")
    counts = catalog.skipped_counts()
    if counts:
        out.write("\nskipped files: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + "\n")


def run(args: argparse.Namespace) -> int:
    """Scan ``args.root`` and print the catalog; 0 when some series was found, 1 otherwise."""
    from imaging.io.series import find_series
    from imaging.io.selection import parse_overrides

    try:
        catalog = find_series(args.root, rules=selection_rules(args), overrides=parse_overrides(args.choose))
    except ValueError as exc:  # bad --choose or rule values: a usage error, not a crash
        print(f"chestct inspect: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        doc = {
            "root": str(catalog.root),
            "n_files": catalog.n_files,
            "rules": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(catalog.rules).items()},
            "studies": [
                {
                    "patient_id": st.patient_id,
                    "study_uid": st.study_uid,
                    "study_date": st.study_date,
                    "chosen_series_uid": st.chosen.series_uid if st.chosen else None,
                    "series": [
                        {**s.as_dict(), "chosen": st.chosen is s, "reason": st.reasons.get(s.series_uid, ""),
                         "problems": list(s.problems)}
                        for s in st.series
                    ],
                }
                for st in catalog.studies
            ],
            "skipped_files": [{"path": str(f.path), "reason": f.reason} for f in catalog.skipped_files],
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.csv:
        catalog.to_frame().to_csv(sys.stdout, index=False)  # whole numbers stay whole (Int64)
    else:
        _print_table(catalog)
    if not catalog.studies:
        print(f"chestct inspect: no DICOM image series found under {args.root}", file=sys.stderr)
        return 1
    return 0
