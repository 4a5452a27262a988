"""``chestct score ROOT -o OUT``: score every study under ROOT (see :mod:`imaging.pipeline.batch`).

Exit code 0 when every study was scored, 1 when some failed (their rows carry the
``error``; the last lines say how many), 2 for a usage or library error, 130 after Ctrl-C
(finished scans are kept; rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from imaging.cli._rules import add_selection_arguments, selection_rules

HELP = "score every study under a folder (resumable, parallel, Dask-ready)"


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"option must be KEY=VALUE, got {text!r}")
    try:
        parsed: object = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip(), parsed


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``chestct score``."""
    parser.add_argument("root", type=Path, help="folder of DICOM studies (read only)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="output folder (outside ROOT)")
    parser.add_argument("-j", "--workers", type=int, default=None,
                        help="parallel scans (default: the machine's cores; 1 = in this process)")
    parser.add_argument("--scheduler", default=None, metavar="ADDR",
                        help="run on dask.distributed: 'local' (a LocalCluster of --workers processes) or "
                             "tcp://HOST:PORT of a running scheduler (ROOT and OUT must be shared with its workers)")
    parser.add_argument("--override", action="append", default=[], metavar="STUDY_UID=SERIES_UID",
                        help="score this series in this study, whatever the rules say (repeatable)")
    parser.add_argument("--overrides", type=Path, default=None, metavar="CSV",
                        help="table of overrides with columns study_uid,series_uid")
    add_selection_arguments(parser)  # the same rules as `chestct inspect`
    parser.add_argument("--pseudonymize", type=Path, default=None, metavar="KEYFILE",
                        help="replace patient IDs by keyed pseudonyms (HMAC-SHA256); KEYFILE must be outside OUT")
    parser.add_argument("--create-key", action="store_true",
                        help="with --pseudonymize: create KEYFILE (random 256-bit key) when it does not exist")
    parser.add_argument("--dicom-seg", action="store_true", help="also write a DICOM SEG per scan")
    parser.add_argument("--no-masks", action="store_true", help="do not write NIfTI masks")
    parser.add_argument("--no-qc", action="store_true", help="do not write QC pictures")
    parser.add_argument("--no-resume", action="store_true", help="rescore scans already scored in OUT")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--scorer", default=None, metavar="MODULE:FUNCTION",
                        help="your own scorer, scorer(volume, **options) -> object with as_dict() "
                             "(default imaging.scoring.scores:score_scan)")
    parser.add_argument("--option", action="append", default=[], type=_option, metavar="KEY=VALUE",
                        help="keyword option for the scorer; VALUE parsed as JSON when it is JSON (repeatable)")


def read_overrides(path: Path) -> dict[str, str]:
    """``study_uid,series_uid`` CSV to a dict."""
    from imaging.common.errors import InvalidTableError
    from imaging.trial.tables import read_table

    table = read_table(path, name="overrides", dtype=str)
    missing = {"study_uid", "series_uid"} - set(table.columns)
    if missing:
        raise InvalidTableError(f"overrides table {path} lacks columns {sorted(missing)} (has {list(table.columns)})")
    return {str(r.study_uid).strip(): str(r.series_uid).strip() for r in table.itertuples() if isinstance(r.study_uid, str)}


def run(args: argparse.Namespace) -> int:
    """Run ``chestct score``; returns the exit code."""
    from imaging.pipeline.batch import score_studies
    from imaging.pipeline.settings import _resolve_scorer, check_score_options
    from imaging.common.errors import ChestCTError
    from imaging.common.files import check_output_folder
    from imaging.io.selection import parse_overrides

    overrides: dict[str, str] = {}
    if args.overrides is not None:
        overrides.update(read_overrides(args.overrides))
    overrides.update(parse_overrides(args.override))
    rules = selection_rules(args)
    scorer = None
    if args.scorer:
        try:
            scorer = _resolve_scorer(args.scorer)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ChestCTError(f"--scorer {args.scorer!r} cannot be imported ({exc}); give MODULE:FUNCTION "
                               "of a module on PYTHONPATH") from exc
    check_score_options(scorer, dict(args.option), what="--option")  # before anything is created
    check_output_folder(args.out, what="--out")  # before --create-key writes the key
    if args.pseudonymize is not None and args.create_key and not args.pseudonymize.exists():
        from imaging.pipeline.pseudonym import create_key_file

        create_key_file(args.pseudonymize, out=args.out)
        print(f"created pseudonym key {args.pseudonymize} (keep it safe and outside OUT)")
    table = score_studies(
        args.root, out=args.out, workers=args.workers, scheduler=args.scheduler, overrides=overrides or None,
        rules=rules, pseudonym_key=args.pseudonymize, scorer=scorer, score_options=dict(args.option),
        masks=not args.no_masks, qc=not args.no_qc, dicom_seg=args.dicom_seg, resume=not args.no_resume,
        progress=not args.no_progress)
    summary = table.attrs["summary"]
    for failure in summary["failures"][:20]:
        print(f"failed: {failure}")
    if len(summary["failures"]) > 20:
        print(f"... and {len(summary['failures']) - 20} more failures (column 'error' of scores.csv)")
    from imaging.pipeline.tables import BatchSummary

    for line in BatchSummary(**summary).lines():
        print(line)
    return 1 if summary["n_failed"] else 0
