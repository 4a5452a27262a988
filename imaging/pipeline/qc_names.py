"""Names a person can read for the QC files of a batch run.

QC pictures live under ``OUT/qc/`` beside the UID-named scan folders:

* ``OUT/qc/scans/<label>.png``: the scan's QC picture, ``<label>`` from :func:`scan_label`;
* ``OUT/qc/thumbs/<label>.png``: its thumbnail for the gallery;
* ``OUT/qc/courses/<patient>.png``: the patient's course (every visit side by side);
* ``OUT/qc/index.html``: the gallery.

Labels use only the IDs the scores table already carries (pseudonyms when the run is
pseudonymized), never a name or birth date.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["scan_label", "patient_label", "QC_DIR", "SCANS_DIR", "THUMBS_DIR", "COURSES_DIR", "GALLERY_FILE"]

#: Folders and files under the run's output folder (relative paths, POSIX).
QC_DIR = "qc"
SCANS_DIR = "qc/scans"
THUMBS_DIR = "qc/thumbs"
COURSES_DIR = "qc/courses"
GALLERY_FILE = "qc/index.html"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(text: Any, fallback: str) -> str:
    """``text`` made safe for a file name (letters, digits, ``.``, ``_``, ``-``)."""
    if text is None or (isinstance(text, float) and text != text):
        return fallback
    cleaned = _UNSAFE.sub("-", str(text).strip()).strip(".-")
    return cleaned[:64] or fallback


def patient_label(patient_id: Any) -> str:
    """The file-name form of a patient ID (``unknown-patient`` when missing).

    >>> patient_label("P 17/a")
    'P-17-a'
    """
    return _safe(patient_id, "unknown-patient")


def scan_label(patient_id: Any, study_date: Any, series_number: Any, series_uid: Any = None) -> str:
    """``<patient>_<study date YYYYMMDD>_<series number>``, unique enough to find a scan by eye.

    Parameters
    ----------
    patient_id, study_date, series_number : Any
        As in the scores table; ``study_date`` ISO ``YYYY-MM-DD`` (dashes dropped).
    series_uid : str, optional
        Its last 8 characters are appended when the series number is missing, so that
        two series without numbers in one study get distinct names.

    Examples
    --------
    >>> scan_label("P017", "2020-04-02", 3)
    'P017_20200402_3'
    >>> scan_label("P017", None, None, "1.2.3.4567890123")
    'P017_nodate_uid-67890123'
    """
    date = _safe(str(study_date).replace("-", "") if study_date is not None else None, "nodate")
    number = series_number
    if isinstance(number, float) and number == number and number.is_integer():
        number = int(number)
    if number is None or (isinstance(number, float) and number != number) or str(number).strip() == "":
        tail = _safe(str(series_uid)[-8:] if series_uid else None, "noseries")
        series = f"uid-{tail}" if series_uid else tail
    else:
        series = _safe(number, "noseries")
    return f"{patient_label(patient_id)}_{date}_{series}"
