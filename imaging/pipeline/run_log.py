"""The run's log, and how paths under ROOT are written in messages and tables.

:func:`_run_logging` sends the ``imaging`` loggers to ``OUT/chestct.log`` (INFO) and to
stderr (WARNING, INFO with -v) for the duration of a run.  Messages of failed scans quote
file paths; :func:`message_scrubber` writes them relative to ``ROOT`` (as the manifest's
``folder`` and ``path`` columns do, :func:`_relative`) or, with pseudonyms on, hides the
folders, since export folders are often named after the patient.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["message_scrubber"]


def message_scrubber(root: Path, catalog: Any, *, hide_paths: bool) -> Callable[[Any], Any]:
    """The scrubber of the run's messages (:func:`_path_scrubber`); with ``hide_paths`` it also
    hides the relative paths of every folder holding a file of ``catalog``."""
    return _path_scrubber(root, hide_paths=hide_paths, folders=_catalog_folders(catalog) if hide_paths else ())


@contextlib.contextmanager
def _run_logging(out: Path | None) -> Iterator[None]:
    """INFO to ``OUT/chestct.log``; WARNING (INFO with -v) to stderr; restored afterwards."""
    logger = logging.getLogger("imaging")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    handlers: list[logging.Handler] = []
    if out is not None:
        file_handler = logging.FileHandler(out / "chestct.log", mode="a", encoding="utf-8")
        file_handler.setLevel(logging.INFO)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(file_handler)
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setLevel(min(logging.WARNING, max(logging.root.getEffectiveLevel(), logging.DEBUG)))
    stderr_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handlers.append(stderr_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for h in handlers:
        logger.addHandler(h)
    try:
        yield
    finally:
        for h in handlers:
            logger.removeHandler(h)
            h.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _path_scrubber(root: Path, *, hide_paths: bool, folders: Iterable[str] = ()) -> Callable[[Any], Any]:
    """A function writing paths under ``root`` in messages relative to ``root``.

    ``/data/exports/PAT/visit/1.dcm`` becomes ``PAT/visit/1.dcm`` (``root`` itself
    becomes ``.``), the same form as the manifest's ``folder`` and ``path`` columns.
    With ``hide_paths`` (pseudonyms on) only the file name is kept, as
    ``<ROOT>/.../1.dcm``, since export folders are often named after the patient;
    ``folders`` (POSIX, relative to ``root``) are the folders whose relative paths
    messages may quote (e.g. ``PAT/visit/1.dcm``): with ``hide_paths`` they become
    ``.../1.dcm`` too.

    Examples
    --------
    >>> _path_scrubber(Path("/data/x"), hide_paths=False)("cannot read /data/x/P1/a.dcm: truncated")
    'cannot read P1/a.dcm: truncated'
    >>> _path_scrubber(Path("/data/x"), hide_paths=True)("cannot read /data/x/P1/a.dcm: truncated")
    'cannot read <ROOT>/.../a.dcm: truncated'
    >>> _path_scrubber(Path("CT"), hide_paths=False)("CT/P1/a.dcm: CT axial, e.g. CT.")
    'P1/a.dcm: CT axial, e.g. CT.'
    >>> scrub = _path_scrubber(Path("/data/x"), hide_paths=True, folders=["DOE J/ct"])
    >>> scrub("in /data/x/DOE J/ct: '/data/x/DOE J/ct/a.dcm'")
    "in <ROOT>/...: '<ROOT>/.../a.dcm'"
    """
    prefixes = sorted({str(root), str(root.absolute()), str(root.resolve())}, key=len, reverse=True)
    # a path starts at a word boundary; a relative ROOT ("CT", ".") counts only followed by "/",
    # else words and full stops of the messages ("CT axial", "e.g.") would be taken for it
    ends = {p: r"(?![^/\s'\",;:)])" if Path(p).is_absolute() else "(?=/)" for p in prefixes}
    pattern = re.compile(r"(?<![^\s'\"(,:=])(" + "|".join(re.escape(p) + ends[p] for p in prefixes)
                         + r")(/[^\s'\",;:)]*)?")
    rel = sorted({f.strip("/") for f in folders if f.strip("/") not in ("", ".")}, key=len, reverse=True)
    rel_pattern = (re.compile(r"(?<![^\s'\"(,:])(?:" + "|".join(re.escape(f) for f in rel) + ")/")
                   if hide_paths and rel else None)
    # the known folders in full first: a folder name with a space ("DOE JOHN") ends the generic match early
    known_pattern = (re.compile("(?:" + "|".join(re.escape(p) for p in prefixes) + ")/(?:"
                                + "|".join(re.escape(f) for f in rel) + r")(?![^/\s'\",;:)])")
                     if hide_paths and rel else None)

    def replace(match: re.Match[str]) -> str:
        tail = match.group(2) or ""
        if hide_paths:
            return "<ROOT>/.../" + tail.rstrip("/").rsplit("/", 1)[-1] if tail.strip("/") else "<ROOT>"
        return tail.strip("/") or "."

    def scrub(text: Any) -> Any:
        if not isinstance(text, str) or "/" not in text:  # every path matched here holds a "/"
            return text
        if known_pattern is not None:
            text = known_pattern.sub("<ROOT>/...", text)
        text = pattern.sub(replace, text)
        return rel_pattern.sub(".../", text) if rel_pattern is not None else text

    return scrub


def _catalog_folders(catalog: Any) -> set[str]:
    """Every folder holding a file of ``catalog``, POSIX and relative to its root."""
    root = Path(catalog.root)
    paths = [f for s in catalog.series for f in s.files] + [s.path for s in catalog.skipped_files]
    folders: set[str] = set()
    for p in paths:
        rel = _relative(Path(p).parent, root)
        if not rel.startswith("/"):
            folders.add(rel)
    return folders


def _relative(path: Path, root: Path) -> str:
    try:
        # resolve the folder only: the entry itself may be a link (even a loop), named as found
        return (Path(path).parent.resolve() / Path(path).name).relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)

