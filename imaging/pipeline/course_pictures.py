"""Every patient's course on one page: one column per visit, the same levels in every row.

At the end of a batch run (:func:`~imaging.pipeline.batch.score_studies`, also after a
resumed run), :func:`write_courses` groups the scans by patient and writes one PNG per
patient, ``OUT/qc/courses/<patient label>.png`` (:mod:`imaging.pipeline.qc_names`), from
the small panels each scan task stored while it was scored
(:mod:`imaging.pipeline.course_panels`): no volume is read again.

Columns are the patient's visits ordered by study date, titled with the day since the
patient's first scan, the study date, the percent opacity (PO) and any quality flags; a
scan that failed is a grey column saying so.  Rows are the axial slices at the upper,
middle and lower third of each scan's lungs and a coronal slice through their centre.
Within a row every visit is drawn at one scale (mm per pixel), so the lungs of two
visits can be compared by eye; ``R`` and ``L`` mark the patient's right and left.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imaging.common.checks import finite_number as _number
from imaging.common.files import atomic_write
from imaging.pipeline.course_panels import PANEL_NAMES, CoursePanels, read_course_panels
from imaging.pipeline.qc_names import COURSES_DIR, patient_label

__all__ = ["Visit", "CourseColumn", "course_visits", "course_columns", "course_width", "render_course",
           "write_courses", "CELL_PX"]

log = logging.getLogger(__name__)

#: Side of the square cell of one panel in a course picture, pixels.
CELL_PX = 240
_GAP, _LABEL_W, _LINE_H, _TITLE_H = 6, 64, 15, 26
_COLUMN_CHARS = 34  # characters per title line in a column of CELL_PX pixels
_BACKGROUND, _TEXT, _MISSING = (0, 0, 0), (235, 235, 235), (70, 70, 70)


@dataclass(frozen=True)
class Visit:
    """One scan of a patient, as its course shows it.

    Attributes
    ----------
    study_date : str or None
        ISO ``YYYY-MM-DD``.
    series_uid : str
    percent_opacity : float or None
    quality_flags : tuple of str
    error : str or None
        Why the scan failed (``None``: scored).
    panels : Path or None
        Its ``course_panels.npz`` (``None``: failed, or scored without QC pictures).
    """

    study_date: str | None
    series_uid: str
    percent_opacity: float | None = None
    quality_flags: tuple[str, ...] = ()
    error: str | None = None
    panels: Path | None = None


@dataclass(frozen=True)
class CourseColumn:
    """One column of a course picture: its title lines and its panels (``None``: none to show)."""

    title: tuple[str, ...]
    panels: CoursePanels | None
    note: str = ""


# --------------------------------------------------------------------------- visits from the run

def course_visits(tasks: Sequence[Any], records: Mapping[str, Mapping[str, Any]], out: Path,
                  pseudonym: Callable[[str | None], str | None]) -> dict[str | None, list[Visit]]:
    """Every patient's visits, from the tasks of a run and their records (resumed ones too).

    Parameters
    ----------
    tasks : sequence of _Task
        The run's tasks (:func:`imaging.pipeline.scan_task.make_tasks`).
    records : mapping
        Task key -> record (:func:`imaging.pipeline.scan_task.run_task`); a task without a
        record is left out.
    out : Path
        The run's output folder (record paths are relative to it).
    pseudonym : callable
        The patient ID as written in the outputs (:meth:`RunSettings.pseudonym`).

    Returns
    -------
    dict
        Patient ID as in the scores table -> visits in task order.
    """
    visits: dict[str | None, list[Visit]] = {}
    for task in tasks:
        record = records.get(task.key)
        if record is None:
            continue
        series = task.series
        row = record.get("row") or {}
        qc = (record.get("artifacts") or {}).get("qc")
        panels = qc.get("course_panels") if isinstance(qc, Mapping) else None
        visits.setdefault(pseudonym(series.patient_id or None), []).append(Visit(
            study_date=series.study_date, series_uid=series.series_uid,
            percent_opacity=_number(row.get("percent_opacity")),
            quality_flags=tuple(f for f in str(row.get("quality_flags") or "").split(";") if f),
            error=record.get("error"), panels=None if record.get("error") or not panels else out / panels))
    return visits



def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


# --------------------------------------------------------------------------- the columns

def course_columns(visits: Sequence[Visit], *,
                   read: Callable[[Path], CoursePanels] = read_course_panels) -> list[CourseColumn]:
    """The columns of one patient's course: visits ordered by study date, titled.

    Title lines: ``day N`` (days since the patient's first dated scan; ``day ?`` without a
    date), the study date, ``PO x.x %`` or ``failed: <error type>``, and the quality flags.
    A scan that failed, or whose panels cannot be read, keeps its column without panels.

    Examples
    --------
    >>> cols = course_columns([Visit("2020-03-11", "b", 20.0, ("thick_slices",)), Visit("2020-03-01", "a", 12.5),
    ...                        Visit("2020-03-21", "c", error="NotAChestError: no lungs")])
    >>> [c.title for c in cols]  # doctest: +NORMALIZE_WHITESPACE
    [('day 0', '2020-03-01', 'PO 12.5 %'), ('day 10', '2020-03-11', 'PO 20.0 %', 'thick_slices'),
     ('day 20', '2020-03-21', 'failed: NotAChestError')]
    """
    ordered = sorted(visits, key=lambda v: (_date(v.study_date) is None, _date(v.study_date) or dt.date.min,
                                            v.series_uid))
    dates = [d for d in (_date(v.study_date) for v in ordered) if d is not None]
    first = min(dates) if dates else None
    columns = []
    for visit in ordered:
        date = _date(visit.study_date)
        day = f"day {(date - first).days}" if date is not None and first is not None else "day ?"
        if visit.error:
            state = "failed: " + str(visit.error).split(":", 1)[0]
        else:
            state = "PO ?" if visit.percent_opacity is None else f"PO {visit.percent_opacity:.1f} %"
        flags = textwrap.wrap(", ".join(visit.quality_flags), _COLUMN_CHARS) if visit.quality_flags else []
        panels, note = None, "failed" if visit.error else "no picture"
        if visit.panels is not None:
            try:
                panels = read(visit.panels)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("course: panels of series %s not readable (%s)", visit.series_uid, type(exc).__name__)
        columns.append(CourseColumn(title=(day, visit.study_date or "no date", state, *flags), panels=panels,
                                    note=note))
    return columns


# --------------------------------------------------------------------------- the picture

def course_width(n_columns: int) -> int:
    """Width of a course picture of ``n_columns`` visits, pixels (row labels, then the cells).

    >>> course_width(1), course_width(3)
    (316, 808)
    """
    return _LABEL_W + n_columns * (CELL_PX + _GAP) + _GAP


def render_course(path: str | os.PathLike[str], columns: Sequence[CourseColumn], title: str = "") -> Path:
    """Draw one patient's course and write it as PNG (directly to ``path``).

    Parameters
    ----------
    path : path-like
        PNG file to write (callers wanting atomicity pass a temporary path).
    columns : sequence of CourseColumn
        From :func:`course_columns`, left to right.
    title : str
        Drawn at the top (the patient label; put no names here).

    Returns
    -------
    pathlib.Path
        ``path``.  The picture is :func:`course_width` pixels wide.
    """
    from PIL import Image, ImageDraw

    n_lines = max((len(c.title) for c in columns), default=1)
    header = _TITLE_H + n_lines * _LINE_H + _GAP
    width = course_width(len(columns))
    height = header + len(PANEL_NAMES) * (CELL_PX + _GAP)
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((_GAP, 4), title, fill=_TEXT, font=_font(16))
    for i, column in enumerate(columns):
        x = _LABEL_W + _GAP + i * (CELL_PX + _GAP)
        for k, line in enumerate(column.title):
            draw.text((x + CELL_PX // 2, _TITLE_H + k * _LINE_H), line, fill=_TEXT, font=_font(12), anchor="ma")
    for r, name in enumerate(PANEL_NAMES):
        y = header + r * (CELL_PX + _GAP)
        draw.text((_GAP, y + CELL_PX // 2), name, fill=_TEXT, font=_font(13), anchor="lm")
        scale = _row_scale(columns, name)
        for i, column in enumerate(columns):
            _draw_cell(canvas, draw, (_LABEL_W + _GAP + i * (CELL_PX + _GAP), y), column, name, scale)
    out = Path(path)
    canvas.save(out, format="PNG", compress_level=3)  # twice as fast as the default, files 10 % larger
    return out


def _row_scale(columns: Sequence[CourseColumn], name: str) -> float:
    """mm per pixel of one row: the largest panel of the row fills its cell."""
    extents = [float(max(c.panels.images[name].shape[0] * c.panels.pixel_mm[name][0],
                         c.panels.images[name].shape[1] * c.panels.pixel_mm[name][1]))
               for c in columns if c.panels is not None]
    return max(extents, default=1.0) / CELL_PX or 1.0


def _draw_cell(canvas: Any, draw: Any, corner: tuple[int, int], column: CourseColumn, name: str,
               scale: float) -> None:
    """One panel, centred in its cell at ``scale`` mm per pixel, with R / L; or a grey cell."""
    from PIL import Image

    x, y = corner
    if column.panels is None:
        draw.rectangle((x, y, x + CELL_PX - 1, y + CELL_PX - 1), fill=_MISSING)
        draw.text((x + CELL_PX // 2, y + CELL_PX // 2), column.note, fill=_TEXT, font=_font(14), anchor="mm")
        return
    image = np.asarray(column.panels.images[name], np.uint8)
    pixel_mm = column.panels.pixel_mm[name]
    size = (max(1, min(CELL_PX, round(image.shape[1] * pixel_mm[1] / scale))),
            max(1, min(CELL_PX, round(image.shape[0] * pixel_mm[0] / scale))))
    panel = Image.fromarray(image, "RGB").resize(size, Image.Resampling.BILINEAR)
    left, top = x + (CELL_PX - size[0]) // 2, y + (CELL_PX - size[1]) // 2
    canvas.paste(panel, (left, top))
    font = _font(14)
    for letter, at, anchor in (("R", left + 3, "la"), ("L", left + size[0] - 3, "ra")):
        draw.text((at, top + 3), letter, fill=(255, 255, 255), font=font, anchor=anchor, stroke_width=2,
                  stroke_fill=(0, 0, 0))


_FONTS: dict[int, Any] = {}


def _font(size: int) -> Any:
    """Pillow's own scalable font at ``size`` pixels (its bitmap font without FreeType)."""
    from PIL import ImageFont

    if size not in _FONTS:
        try:
            _FONTS[size] = ImageFont.load_default(size=size)
        except (TypeError, ImportError, OSError):
            _FONTS[size] = ImageFont.load_default()
    return _FONTS[size]


# --------------------------------------------------------------------------- the run's courses

def write_courses(out: Path, tasks: Sequence[Any], records: Mapping[str, Mapping[str, Any]],
                  pseudonym: Callable[[str | None], str | None]) -> dict[str | None, str]:
    """Write ``OUT/qc/courses/<patient label>.png`` for every patient with a scan (atomically).

    Parameters
    ----------
    out : Path
        The run's output folder.
    tasks, records, pseudonym
        As for :func:`course_visits`.

    Returns
    -------
    dict
        Patient ID as in the scores table -> its picture's path relative to ``out``
        (POSIX).  Two IDs with one label (they differ only in characters a file name
        cannot hold) get ``-2``, ``-3``, ... after the label.
    """
    written: dict[str | None, str] = {}
    used: set[str] = set()
    for patient, visits in course_visits(tasks, records, out, pseudonym).items():
        label = _unused(patient_label(patient), used)
        rel = f"{COURSES_DIR}/{label}.png"
        columns = course_columns(visits)
        atomic_write(out / rel, lambda p, c=columns, t=label: render_course(p, c, title=t))
        written[patient] = rel
    log.info("course pictures of %d patients written under %s", len(written), out / COURSES_DIR)
    return written


def _unused(label: str, used: set[str]) -> str:
    candidate, n = label, 1
    while candidate in used:
        n += 1
        candidate = f"{label}-{n}"
    used.add(candidate)
    return candidate
