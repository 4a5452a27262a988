"""The ``chestct`` command line: ``chestct {inspect,score,compare,demo} ...``.

Library errors become exit code 2 and one clear line on stderr; a Ctrl-C gives 130;
a reader that closes stdout early (``chestct inspect ... | head``) ends the command
quietly with exit code 141 (as a shell reports SIGPIPE).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from imaging import __version__
from imaging.common.errors import ChestCTError

__all__ = ["main"]

#: sub-command name -> module under imaging.cli
COMMANDS: dict[str, str] = {
    "inspect": "imaging.cli.inspect",
    "score": "imaging.cli.score",
    "compare": "imaging.cli.compare",
    "demo": "imaging.cli.demo",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(prog="chestct", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"chestct {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # sub-command not part of this build
        sub_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args))
    except ChestCTError as exc:
        print(f"chestct {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"chestct {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


#: exit code when the reader of stdout went away (128 + SIGPIPE), as a shell reports it
EXIT_BROKEN_PIPE = 141


def _silence_stdout() -> None:
    """Point stdout at devnull so the interpreter's final flush raises nothing.

    The recipe from the Python docs (``signal`` module, "Note on SIGPIPE").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout has no real file descriptor
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
