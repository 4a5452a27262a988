"""Command-line options for the series-selection rules, shared by ``inspect`` and ``score``.

Both commands choose one series per study with :class:`imaging.io.selection.SelectionRules`;
defining the options once keeps ``chestct inspect`` (which shows the choice) and
``chestct score`` (which scores it) in step: the same flags give the same choice.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_selection_arguments", "selection_rules"]


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--min-slices``, ``--thickness MIN_MM MAX_MM`` and ``--kernel NAME`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser.
    """
    parser.add_argument("--min-slices", type=int, default=None,
                        help="fewest slices for a series to be chosen (selection rule; default 20)")
    parser.add_argument(
        "--thickness", type=float, nargs=2, metavar=("MIN_MM", "MAX_MM"), default=None,
        help="preferred slice thickness range in mm (selection rule; default 0.5 5.0)",
    )
    parser.add_argument(
        "--kernel", action="append", default=None, metavar="NAME",
        help="preferred kernel substring, repeat in order of preference (replaces the default list)",
    )


def selection_rules(args: argparse.Namespace) -> Any:
    """The :class:`~imaging.io.selection.SelectionRules` asked for by the parsed options.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of a parser set up by :func:`add_selection_arguments`.

    Returns
    -------
    SelectionRules
        The defaults, with each option given on the command line replacing its rule.

    Raises
    ------
    InvalidArgumentError
        A value the rules refuse (``--min-slices 0``, ``--thickness 5 1``, a blank
        ``--kernel ""``, which as a substring would match every kernel).

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_selection_arguments(parser)
    >>> rules = selection_rules(parser.parse_args(["--thickness", "1", "2", "--kernel", "lung"]))
    >>> rules.thickness_range_mm, rules.kernel_preference, rules.min_slices
    ((1.0, 2.0), ('LUNG',), 20)
    """
    from imaging.io.selection import SelectionRules

    kwargs: dict[str, Any] = {}
    if getattr(args, "min_slices", None) is not None:
        kwargs["min_slices"] = args.min_slices
    if getattr(args, "thickness", None) is not None:
        kwargs["thickness_range_mm"] = tuple(args.thickness)
    if getattr(args, "kernel", None):
        if any(not str(k).strip() for k in args.kernel):
            from imaging.common.errors import InvalidArgumentError

            raise InvalidArgumentError(f"--kernel NAME must not be blank (it would match every kernel), got {args.kernel}")
        kwargs["kernel_preference"] = tuple(args.kernel)
    return SelectionRules(**kwargs)
