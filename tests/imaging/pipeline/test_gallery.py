"""The QC gallery ``OUT/qc/index.html``: its data, escaping, links, arms, hooks and a real browser.

The page's rows are one JSON array the page's script renders; the unit tests read that
array back.  The browser test drives a headless Chromium with the page's self-test hook
(``#selftest=...`` writes the shown order into ``<html data-selftest>``; uncaught errors
land in ``<html data-errors>``) and reads the DOM with ``--dump-dom``.
"""

from __future__ import annotations

import html
import json
import logging
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imaging.pipeline.gallery import gallery_records, refresh_gallery, write_gallery
from imaging.pipeline.qc_names import patient_label, scan_label

NASTY = "P<1>&\"x'</script><b>"


def _png(path: Path, width: int = 24, height: int = 16) -> Path:
    """A small valid grey PNG (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes([(x * 9 + y * 5) % 256 for x in range(width)]) for y in range(height))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def _scores(rows: list[tuple]) -> pd.DataFrame:
    """A scores table from (patient, date, series number, uid, PO, flags, error) rows."""
    return pd.DataFrame([{"patient_id": p, "study_date": d, "study_uid": f"9.{u}", "series_uid": u, "error": e,
                          "series_number": n, "percent_opacity": po, "quality_flags": f,
                          "series_description": "CHEST DR WHO"} for p, d, n, u, po, f, e in rows])


def _run(tmp_path: Path, rows: list[tuple]) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    _scores(rows).to_csv(out / "scores.csv", index=False)
    return out


def _data(page: Path) -> list[dict]:
    text = page.read_text(encoding="utf-8")
    block = re.search(r'<script type="application/json" id="gallery-data">(.*?)</script>', text, re.S)
    assert block is not None
    return json.loads(block.group(1))


ROWS = [
    ("P01", "2020-03-01", 2, "1.2.1", 20.0, "thick_slices", None),
    ("P01", "2020-03-08", 2, "1.2.2", 12.5, None, None),
    ("P01", "2020-03-22", 3, "1.2.3", None, None, "not a CT image (Modality MR)"),
    ("007", "2020-04-02", 5, "1.2.4", None, None, "unreadable pixel data"),
    ("007", "2020-04-09", 5, "1.2.5", 3.0, "contrast_suspected;thick_slices", None),
]


# --------------------------------------------------------------------------- data and escaping

def test_every_scan_is_a_record_with_day_change_flags_and_error(tmp_path: Path) -> None:
    out = _run(tmp_path, ROWS)
    data = _data(write_gallery(out))
    assert len(data) == len(ROWS)
    by_uid = {d["uid"]: d for d in data}
    assert {d["id"] for d in data} == {scan_label(p, dt, n, u) for p, dt, n, u, *_ in ROWS}
    assert [by_uid[u]["day"] for u in ("1.2.1", "1.2.2", "1.2.3", "1.2.4", "1.2.5")] == [0, 7, 21, 0, 7]
    assert by_uid["1.2.1"]["baseline"] and by_uid["1.2.1"]["change"] == 0
    assert by_uid["1.2.2"]["change"] == pytest.approx(-7.5) and by_uid["1.2.3"]["change"] is None
    # the first scan of 007 failed: its baseline is the first scan with a PO
    assert by_uid["1.2.5"]["baseline"] and by_uid["1.2.4"]["error"] == "unreadable pixel data"
    assert by_uid["1.2.5"]["flags"] == ["contrast_suspected", "thick_slices"] and by_uid["1.2.2"]["flags"] == []
    assert by_uid["1.2.4"]["patient"] == "007"  # IDs stay text, leading zeros kept
    assert [d["patient"] for d in data] == ["007", "007", "P01", "P01", "P01"]  # by patient, then date
    assert "arm" not in data[0] and "CHEST DR WHO" not in (out / "qc" / "index.html").read_text()


def test_values_are_escaped_and_read_back_unchanged(tmp_path: Path) -> None:
    rows = [(NASTY, "2020-01-01", 1, "1.9.1", 5.0, "a<b>;c&d", "bad </script><script>alert(1)</script> & 'x'"),
            (NASTY, "2020-01-03", 1, "1.9.2", 6.0, None, None)]
    out = _run(tmp_path, rows)
    arms = pd.DataFrame({"patient_id": [NASTY], "arm": ["<i>arm & co</i>"]})
    page = write_gallery(out, arms=arms)
    text = page.read_text(encoding="utf-8")
    assert text.count("</script>") == 4 and text.count("<script") == 4  # error hook, data, meta, page script
    for raw in ("<b>", "<i>", "alert(1)</script>", "a<b>", "c&d"):
        assert raw not in text
    data = _data(page)
    assert {d["patient"] for d in data} == {NASTY} and data[0]["error"].startswith("bad </script>")
    assert data[0]["flags"] == ["a<b>", "c&d"] and {d["arm"] for d in data} == {"<i>arm & co</i>"}
    assert data[1]["day"] == 2 and data[1]["change"] == pytest.approx(1.0)


def test_links_only_to_files_that_exist(tmp_path: Path) -> None:
    out = _run(tmp_path, ROWS)
    first = scan_label("P01", "2020-03-01", 2, "1.2.1")
    _png(out / "qc" / "thumbs" / f"{first}.png")
    _png(out / "qc" / "scans" / f"{first}.png")
    _png(out / "qc" / "courses" / f"{patient_label('P01')}.png")
    _png(out / "scans" / "1.2.2" / "qc.png")  # the scan folder's picture: the fallback
    data = {d["uid"]: d for d in _data(write_gallery(out))}
    assert data["1.2.1"]["thumb"] == f"thumbs/{first}.png" and data["1.2.1"]["full"] == f"scans/{first}.png"
    assert data["1.2.1"]["course"] == "courses/P01.png" and data["1.2.2"]["course"] == "courses/P01.png"
    assert data["1.2.2"]["thumb"] == data["1.2.2"]["full"] == "../scans/1.2.2/qc.png"
    for uid in ("1.2.3", "1.2.4", "1.2.5"):
        assert data[uid]["thumb"] is None and data[uid]["full"] is None
    assert data["1.2.5"]["course"] is None
    links = [d[k] for d in data.values() for k in ("thumb", "full", "course") if d[k]]
    assert links and all((out / "qc" / link).is_file() for link in links)


def test_the_runs_own_qc_paths_come_first(tmp_path: Path) -> None:
    """Two studies with the same label get a suffix from the run: the table's qc_* columns win."""
    out = tmp_path / "run"
    out.mkdir()
    table = _scores(ROWS[:2]).assign(qc_picture=["qc/scans/P01_20200301_2-ab12cd34.png", None],
                                     qc_thumbnail=["qc/thumbs/P01_20200301_2-ab12cd34.png", None],
                                     qc_course=["qc/courses/P01-2.png", None])
    table.to_csv(out / "scores.csv", index=False)
    for rel in ("qc/scans/P01_20200301_2-ab12cd34.png", "qc/thumbs/P01_20200301_2-ab12cd34.png",
                "qc/courses/P01-2.png", "qc/courses/P01.png"):
        _png(out / rel)
    data = {d["uid"]: d for d in _data(write_gallery(out))}
    assert data["1.2.1"]["full"] == "scans/P01_20200301_2-ab12cd34.png"
    assert data["1.2.1"]["thumb"] == "thumbs/P01_20200301_2-ab12cd34.png"
    assert data["1.2.1"]["course"] == "courses/P01-2.png" and data["1.2.2"]["course"] == "courses/P01.png"

def test_a_reused_series_uid_links_its_own_scan_folder(tmp_path: Path) -> None:
    import hashlib

    # a broken export reused series UID 1.5 in two studies: make_tasks adds 8 hex digits of the study UID
    table = pd.DataFrame({"patient_id": ["P1", "P1"], "study_date": ["2020-01-01", "2020-01-09"],
                          "study_uid": ["9.a", "9.b"], "series_uid": ["1.5", "1.5"], "series_number": [1, 1],
                          "percent_opacity": [1.0, 2.0], "error": [None, None]})
    folders = [f"1.5-{hashlib.sha256(s.encode()).hexdigest()[:8]}" for s in ("9.a", "9.b")]
    for folder in folders:
        _png(tmp_path / "scans" / folder / "qc.png")
    data = gallery_records(table, tmp_path)
    assert [d["full"] for d in data] == [f"../scans/{f}/qc.png" for f in folders]


def test_arm_column_only_with_arms(tmp_path: Path) -> None:
    out = _run(tmp_path, ROWS)
    text = write_gallery(out).read_text()
    assert "data-key='arm'" not in text and "id='f-arm'" not in text
    arms_file = tmp_path / "arms.csv"
    arms_file.write_text("patient_id,arm\nP01,MSC\n")
    page = write_gallery(out, arms=arms_file)
    text = page.read_text()
    assert "data-key='arm'" in text and "id='f-arm'" in text
    assert {d["patient"]: d["arm"] for d in _data(page)} == {"P01": "MSC", "007": None}
    meta = json.loads(re.search(r'id="gallery-meta">(.*?)</script>', text).group(1))
    assert meta["arms"] == ["MSC"] and meta["hasNoArm"] and meta["flags"] == ["contrast_suspected", "thick_slices"]


def test_page_is_self_contained(tmp_path: Path) -> None:
    text = write_gallery(_run(tmp_path, ROWS)).read_text()
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", text) and "@import" not in text and "url(" not in text
    assert 'im.loading="lazy"' in text  # thumbnails are made by the script, each loaded lazily


def test_refresh_logs_a_failure_as_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="imaging.pipeline.gallery"):
        assert refresh_gallery(tmp_path / "nothing-here") is None
    assert "QC gallery not written" in caplog.text


# --------------------------------------------------------------------------- hooks

def test_score_studies_writes_the_gallery_and_survives_its_failure(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from imaging.io.selection import SelectionRules
    from imaging.pipeline import gallery
    from imaging.pipeline.batch import score_studies
    from tests.imaging.batch_helpers import BIRTH_DATE, PATIENT_NAME, chest_hu, toy_scorer, write_series

    root = tmp_path / "in"
    for i, date in enumerate(("20200301", "20200308")):
        write_series(root / "A" / f"v{i}", patient_id="PID-<A>", study_key=f"v{i}", series_key="ax",
                     study_date=date, hu=chest_hu(opacity_fraction=0.1 * (i + 1)))
    options = dict(workers=1, rules=SelectionRules(min_slices=4), scorer=toy_scorer, progress=False, masks=False)
    table = score_studies(root, out=tmp_path / "out", **options)
    page = tmp_path / "out" / "qc" / "index.html"
    data = _data(page)
    assert sorted(d["uid"] for d in data) == sorted(table["series_uid"]) and [d["day"] for d in data] == [0, 7]
    assert all(d["full"] and (page.parent / d["full"]).is_file() for d in data)
    text = page.read_text()
    assert PATIENT_NAME not in text and BIRTH_DATE not in text and "PID-<A>" not in text

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(gallery, "write_gallery", broken)
    again = score_studies(root, out=tmp_path / "out2", **options)
    assert len(again) == 2 and (tmp_path / "out2" / "scores.csv").is_file()
    assert not (tmp_path / "out2" / "qc" / "index.html").exists()
    assert "WARNING" in (log := (tmp_path / "out2" / "chestct.log").read_text()) and "QC gallery not written" in log
    assert "disk full" in log


def test_compare_rewrites_the_gallery_with_arms_and_links_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imaging.cli.main import main
    from tests.imaging.trial.test_compare import make_trial

    scores, arms = make_trial(np.random.default_rng(3), n_per_arm=4, effect=-8)
    run, plain = tmp_path / "run", tmp_path / "plain"
    for folder in (run, plain):
        folder.mkdir()
        scores.to_csv(folder / "scores.csv", index=False)
    (run / "qc").mkdir()
    arms.to_csv(tmp_path / "arms.csv", index=False)
    options = ["--visit", "day 7=7:2", "--visit", "day 21=21:3", "--metric", "percent_opacity", "--no-strata",
               "--n-boot", "100", "--no-mixed"]
    assert main(["compare", str(run / "scores.csv"), str(tmp_path / "arms.csv"), "-o", str(tmp_path / "rep"),
                 *options]) == 0
    assert "QC gallery: " in capsys.readouterr().out
    data = _data(run / "qc" / "index.html")
    assert len(data) == len(scores) and {d["arm"] for d in data} == set(arms["arm"])
    report = (tmp_path / "rep" / "report.html").read_text()
    assert "href='../run/qc/index.html'" in report and "QC gallery" in report
    # no qc/ beside the scores: no gallery, no link
    assert main(["compare", str(plain / "scores.csv"), str(tmp_path / "arms.csv"), "-o", str(tmp_path / "rep2"),
                 *options]) == 0
    assert not (plain / "qc").exists() and "QC gallery" not in (tmp_path / "rep2" / "report.html").read_text()


# --------------------------------------------------------------------------- a real browser

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _big_run(tmp_path: Path, n_patients: int = 200, n_visits: int = 5) -> tuple[Path, pd.DataFrame]:
    """A run folder of ``n_patients * n_visits`` scans with thumbnails, QC pictures and courses."""
    rng = np.random.default_rng(7)
    rows = []
    for p in range(n_patients):
        for v in range(n_visits):
            failed = (p * n_visits + v) % 37 == 5
            po = None if failed else round(float(rng.uniform(0, 60)), 3)
            flags = "thick_slices" if v == 0 else ("contrast_suspected" if (p + v) % 11 == 0 else None)
            rows.append((f"P{p:04d}", f"2020-{1 + v:02d}-{1 + p % 28:02d}", 2, f"1.3.{p}.{v}", po, flags,
                         "unreadable pixel data" if failed else None))
    out = _run(tmp_path, rows)
    thumb, full = _png(tmp_path / "t.png", 24, 16), _png(tmp_path / "f.png", 96, 64)
    table = pd.read_csv(out / "scores.csv", dtype={"patient_id": str, "study_date": str})
    for row in table.itertuples():
        label = scan_label(row.patient_id, row.study_date, row.series_number, row.series_uid)
        for folder, source in (("thumbs", thumb), ("scans", full)):
            (out / "qc" / folder).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out / "qc" / folder / f"{label}.png")
    for p in range(0, n_patients, 2):
        _png(out / "qc" / "courses" / f"P{p:04d}.png")
    return out, table


def _browse(chromium: str, page: Path, tmp_path: Path, selftest: str) -> tuple[dict, str]:
    """Load ``page#selftest=...`` headless; returns the ``<html>`` attributes and the browser's stderr."""
    url = page.resolve().as_uri() + "#selftest=" + selftest
    done = subprocess.run([chromium, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
                           "--virtual-time-budget=5000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    tag = re.search(r"<html([^>]*)>", done.stdout)
    assert tag is not None, done.stdout[:500]
    attributes = {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag.group(1))}
    return attributes, done.stderr


@pytest.mark.slow
def test_headless_browser_loads_sorts_and_filters_1000_scans(tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium, chromium-browser or google-chrome on PATH (apt-get install chromium)")
    out, table = _big_run(tmp_path)
    page = write_gallery(out, arms=pd.DataFrame({"patient_id": table["patient_id"].unique(),
                                                 "arm": ["A", "B"] * (table["patient_id"].nunique() // 2)}))
    po = [d["po"] for d in _data(page)]

    attrs, stderr = _browse(chromium, page, tmp_path, "sort:po")
    assert "data-errors" not in attrs and "Uncaught" not in stderr, (attrs.get("data-errors"), stderr[-2000:])
    result = json.loads(attrs["data-selftest"])
    assert len(result["order"]) == len(table) == 1000
    numbers = [v for v in result["po"] if v is not None]
    assert numbers == sorted(po_ for po_ in po if po_ is not None)
    assert result["po"][len(numbers):] == [None] * (len(po) - len(numbers))  # missing PO last
    assert float(attrs["data-render-ms"]) < 5000

    attrs, _ = _browse(chromium, page, tmp_path, "sort:po,sort:po,flag:contrast_suspected,arm:B,open:0")
    result = json.loads(attrs["data-selftest"])
    shown = table[table["quality_flags"].fillna("").str.contains("contrast_suspected")]
    shown = shown[[int(p[1:]) % 2 == 1 for p in shown["patient_id"]]]
    assert len(result["order"]) == len(shown) > 0
    numbers = [v for v in result["po"] if v is not None]
    assert numbers == sorted(numbers, reverse=True) and result["po"][:len(numbers)] == numbers  # second click: descending
    assert result["viewer"] and result["viewer"].startswith("scans/") and result["viewer"].endswith(".png")


@pytest.mark.slow
def test_headless_browser_reports_a_broken_page(tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium, chromium-browser or google-chrome on PATH (apt-get install chromium)")
    page = write_gallery(_run(tmp_path, ROWS))
    broken = page.with_name("broken.html")
    broken.write_text(page.read_text().replace('JSON.parse(document.getElementById("gallery-data")', "JSON.parse(("))
    attrs, stderr = _browse(chromium, broken, tmp_path, "sort:po")
    assert "Uncaught" in attrs.get("data-errors", "") and "data-selftest" not in attrs
