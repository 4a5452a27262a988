"""The QC gallery of a batch run: every scan of every patient on one offline page.

:func:`write_gallery` reads the run's scores table (``OUT/scores.csv``) and writes
``OUT/qc/index.html`` (:data:`~imaging.pipeline.qc_names.GALLERY_FILE`): one row per scan
with its patient, visit day (days since the patient's first scan), percent opacity (PO),
change from the patient's baseline in percentage points, quality flags, treatment arm
(when an arms table is given), thumbnail, and the error of a failed scan.  The page is
self-contained (inline CSS and JavaScript, no network, no server): its rows are one JSON
array rendered by the page's script, sortable by any column, filterable by patient, flag
and arm; a click on a row shows the scan's full QC picture, a link the patient's course.
Pictures are linked only when they exist on disk: the human-named files of
:mod:`~imaging.pipeline.qc_names` first, else the scan folder's ``qc.png``.  The page holds
only what the scores table holds (IDs or pseudonyms, study dates, series numbers and UIDs,
scores, flags, errors): never a name or birth date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from imaging.common.checks import finite_number as _number
from imaging.common.files import atomic_write_text
from imaging.pipeline.qc_names import COURSES_DIR, GALLERY_FILE, QC_DIR, SCANS_DIR, THUMBS_DIR, patient_label, scan_label

__all__ = ["write_gallery", "refresh_gallery", "gallery_records", "render_gallery", "FLAG_COLUMNS"]

log = logging.getLogger(__name__)

#: Columns of the scores table holding quality flags, each ``;``-separated
#: (:attr:`imaging.scoring.scan_score.ScanScore.quality_flags`).
FLAG_COLUMNS: tuple[str, ...] = ("quality_flags",)

#: Columns read from the scores table as text (everything else the page shows is a number).
_TEXT_COLUMNS: tuple[str, ...] = ("patient_id", "study_date", "study_uid", "series_uid", "error", *FLAG_COLUMNS)


# --------------------------------------------------------------------------- the method

def write_gallery(out: str | os.PathLike[str], *, arms: Any = None, scores: Any = None) -> Path:
    """Write the run's QC gallery ``OUT/qc/index.html`` (atomically).

    Parameters
    ----------
    out : path-like
        The run's output folder (``chestct score -o OUT``).
    arms : pandas.DataFrame or path-like, optional
        Arms table (``patient_id``, ``arm``; CSV or Parquet): adds an arm column and an
        arm filter.  Without it the page has no arm column.
    scores : pandas.DataFrame or path-like, optional
        The scores table (default ``OUT/scores.csv``, else ``OUT/scores.parquet``).

    Returns
    -------
    Path
        ``OUT/qc/index.html``.

    Raises
    ------
    FileNotFoundError
        No scores table in ``OUT`` (and none given).
    """
    out = Path(out)
    table = _read_scores(out, scores)
    arm_of = None if arms is None else _arm_lookup(arms)
    records = gallery_records(table, out, arm_of)
    page = render_gallery(records, has_arms=arm_of is not None)
    return atomic_write_text(out / GALLERY_FILE, page)


def refresh_gallery(out: str | os.PathLike[str], *, arms: Any = None, scores: Any = None) -> Path | None:
    """:func:`write_gallery`, with a failure logged as a warning instead of raised.

    The gallery is a view of outputs already written (the scores table): a run must never
    fail, nor lose its scores, because the page could not be written.

    Returns
    -------
    Path or None
        The page, or ``None`` when it could not be written.
    """
    try:
        return write_gallery(out, arms=arms, scores=scores)
    except Exception as exc:  # noqa: BLE001 - any failure of this optional view is only reported
        log.warning("QC gallery not written (%s: %s); the scores table is complete", type(exc).__name__, exc)
        return None


# --------------------------------------------------------------------------- tables in

def _read_scores(out: Path, scores: Any) -> Any:
    """The scores table: the frame given, the file given, or ``OUT/scores.csv`` / ``.parquet``.

    CSV cells of :data:`_TEXT_COLUMNS` stay text exactly as written (``"007"`` stays
    ``"007"``, ``"NA"`` stays ``"NA"``); an empty cell is missing.
    """
    import pandas as pd

    if isinstance(scores, pd.DataFrame):
        return scores
    path = Path(scores) if scores is not None else out / "scores.csv"
    if scores is None and not path.is_file() and (out / "scores.parquet").is_file():
        path = out / "scores.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"no scores table {str(path)!r}")
    if path.suffix.lower() != ".csv":  # Parquet, TSV, ...: as chestct compare reads them
        from imaging.trial.tables import read_table

        return read_table(path, name="scores")
    header = pd.read_csv(path, nrows=0).columns
    text = {c: str for c in _TEXT_COLUMNS if c in header}
    return pd.read_csv(path, dtype=text, keep_default_na=False, na_values={c: [""] for c in header})


def _arm_lookup(arms: Any) -> dict[str, str]:
    """patient ID (text) -> arm, from an arms table (frame or file); the first arm given wins."""
    import pandas as pd

    if not isinstance(arms, pd.DataFrame):
        from imaging.trial.tables import read_table

        arms = read_table(arms, name="arms")
    missing = {"patient_id", "arm"} - set(arms.columns)
    if missing:
        raise ValueError(f"arms table lacks column(s) {sorted(missing)}")
    lookup: dict[str, str] = {}
    for patient, arm in zip(arms["patient_id"], arms["arm"]):
        if _text(patient) is not None and _text(arm) is not None:
            lookup.setdefault(_text(patient), _text(arm))  # type: ignore[arg-type]
    return lookup


def _text(value: Any) -> str | None:
    """A cell as stripped text; ``None`` for an empty cell (None, NaN, NA, "")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    text = str(value).strip()
    return text or None



def _date(value: Any) -> dt.date | None:
    """``YYYY-MM-DD`` or ``YYYYMMDD`` as a date, else ``None``."""
    text = _text(value)
    if text is None:
        return None
    if len(text) == 8 and text.isdigit():
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


# --------------------------------------------------------------------------- rows

def gallery_records(table: Any, out: str | os.PathLike[str], arms: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One record per scan for the page, ordered by patient, then date, then table order.

    Parameters
    ----------
    table : pandas.DataFrame
        The scores table (:func:`imaging.pipeline.tables.scores_table`).
    out : path-like
        The run's output folder: pictures are linked only when they exist there.
    arms : mapping, optional
        patient ID -> arm; ``None``: no arm field.

    Returns
    -------
    list of dict
        ``id`` (the scan label), ``patient``, ``date``, ``day`` (days since the patient's
        first dated scan), ``series``, ``uid``, ``po`` (percent opacity, %), ``change``
        (PO minus the baseline's PO, percentage points), ``baseline`` (this scan is the
        baseline: the patient's first scan with a PO), ``flags`` (list), ``error``, ``arm``
        (only with ``arms``) and the links ``thumb``, ``full``, ``course`` (relative to
        ``OUT/qc/``; ``None`` when the file does not exist).
    """
    out = Path(out)
    records = [_scan_record(row, out) for row in table.to_dict("records")]
    order = sorted(range(len(records)), key=lambda i: (
        records[i]["patient"] is None, records[i]["patient"] or "", records[i]["_date"] is None,
        records[i]["_date"] or dt.date.min, i))
    records = [records[i] for i in order]
    _add_visit_days(records)
    _add_baseline_changes(records)
    for record in records:
        del record["_date"]
        if arms is not None:
            record["arm"] = arms.get(record["patient"] or "")
    return records


def _scan_record(row: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """The page's fields of one scores-table row (day and change come later)."""
    patient, uid, date = _text(row.get("patient_id")), _text(row.get("series_uid")), _text(row.get("study_date"))
    number = _number(row.get("series_number"))
    series = int(number) if number is not None and number.is_integer() else _text(row.get("series_number"))
    label = scan_label(patient, date, series, uid)
    flags = [f.strip() for c in FLAG_COLUMNS for f in (_text(row.get(c)) or "").split(";") if f.strip()]
    po = _number(row.get("percent_opacity"))
    # the run's own paths first (qc_* columns: they carry the suffixes that keep names unique)
    full = (_recorded(out, row, "qc_picture") or _existing(out, f"{SCANS_DIR}/{label}.png")
            or _scan_folder_qc(out, uid, _text(row.get("study_uid"))))
    course = _recorded(out, row, "qc_course") or (
        _existing(out, f"{COURSES_DIR}/{patient_label(patient)}.png") if patient is not None else None)
    return {
        "id": label, "patient": patient, "date": date, "_date": _date(date), "day": None, "series": series,
        "uid": uid, "po": None if po is None else round(po, 4), "change": None, "baseline": False,
        "flags": flags, "error": _text(row.get("error")),
        "thumb": _recorded(out, row, "qc_thumbnail") or _existing(out, f"{THUMBS_DIR}/{label}.png") or full,
        "full": full, "course": course,
    }


def _recorded(out: Path, row: Mapping[str, Any], column: str) -> str | None:
    """The link to the file a ``qc_*`` column of the scores table names, if it exists."""
    relative = _text(row.get(column))
    return _existing(out, relative.replace("\\", "/")) if relative else None


def _existing(out: Path, relative: str) -> str | None:
    """The link from ``OUT/qc/`` to ``OUT/<relative>`` (URL-quoted), if that file exists."""
    if not (out / relative).is_file():
        return None
    parts = Path(relative).parts
    link = parts[1:] if parts[0] == QC_DIR else ("..", *parts)
    return "/".join(quote(p) for p in link)


def _scan_folder_qc(out: Path, series_uid: str | None, study_uid: str | None) -> str | None:
    """``scans/<series UID>[-<study hash>]/qc.png`` if it exists (the scan folder's picture;
    the study hash is added when a broken export reused the series UID,
    :func:`imaging.pipeline.scan_task.make_tasks`)."""
    if series_uid is None:
        return None
    folder = "".join(c if c.isalnum() or c in "-_." else "_" for c in series_uid)
    candidates = [f"scans/{folder}/qc.png"]
    if study_uid is not None:
        candidates.insert(0, f"scans/{folder}-{hashlib.sha256(study_uid.encode()).hexdigest()[:8]}/qc.png")
    for candidate in candidates:
        link = _existing(out, candidate)
        if link is not None:
            return link
    return None


def _add_visit_days(records: list[dict[str, Any]]) -> None:
    """``day``: days since the patient's first dated scan (records grouped by patient)."""
    first: dict[str | None, dt.date] = {}
    for record in records:
        date = record["_date"]
        if date is not None:
            first.setdefault(record["patient"], date)
            record["day"] = (date - first[record["patient"]]).days


def _add_baseline_changes(records: list[dict[str, Any]]) -> None:
    """``change``: PO minus the PO of the patient's baseline (first scan with a PO), in
    percentage points; the baseline itself is marked ``baseline`` (change 0)."""
    baseline: dict[str | None, dict[str, Any]] = {}
    for record in records:
        if record["po"] is not None and record["patient"] is not None:
            baseline.setdefault(record["patient"], record)
    for record in records:
        base = baseline.get(record["patient"])
        if base is not None and record["po"] is not None:
            record["change"] = round(record["po"] - base["po"], 4)
            record["baseline"] = record is base


# --------------------------------------------------------------------------- the page

def render_gallery(records: list[dict[str, Any]], *, has_arms: bool, title: str = "chestct QC gallery") -> str:
    """The gallery page: static head, filters and table header; rows rendered from JSON.

    Every value reaches the page either HTML-escaped (the few static texts) or as JSON in
    a ``<script type="application/json">`` block with ``<``, ``>`` and ``&`` written as
    ``\\u003c`` etc. (so no value can close the block), and the script writes it into
    the document as text, never as markup.
    """
    import html

    flags = sorted({f for r in records for f in r["flags"]})
    arm_names = sorted({r["arm"] for r in records if r.get("arm")}) if has_arms else []
    meta = {"hasArms": has_arms, "flags": flags, "arms": arm_names,
            "hasNoArm": has_arms and any(not r.get("arm") for r in records)}
    n_patients = len({r["patient"] for r in records})
    n_failed = sum(1 for r in records if r["error"])
    columns = [("thumb", "QC", ""), ("patient", "Patient", "text"), ("day", "Day", "num"),
               ("date", "Study date", "text"), ("series", "Series", "num"), ("po", "PO (%)", "num"),
               ("change", "\u0394 PO from baseline (pp)", "num"), ("flags", "Flags / error", "text")]
    if has_arms:
        columns.append(("arm", "Arm", "text"))
    head = "".join(
        f"<th data-key='{key}' data-type='{kind}' aria-sort='none'>"
        + (f"<button type='button'>{html.escape(label)}</button>" if kind else html.escape(label)) + "</th>"
        for key, label, kind in columns)
    arm_filter = ("<label>Arm <select id='f-arm'><option value=''>all</option></select></label>" if has_arms else "")
    return _PAGE.format(
        title=html.escape(title), css=_CSS, js=_JS, head=head, arm_filter=arm_filter,
        summary=html.escape(f"{len(records)} scans of {n_patients} patients, {n_failed} failed"),
        data=_json_for_script(records), meta=_json_for_script(meta), error_hook=_ERROR_HOOK)


def _json_for_script(value: Any) -> str:
    """``value`` as JSON safe inside ``<script>``: ``<``, ``>``, ``&`` escaped, no NaN."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<script>{error_hook}</script>
<style>{css}</style></head>
<body>
<header><h1>{title}</h1><p id="summary">{summary}</p>
<form id="filters" onsubmit="return false">
<label>Patient <input id="f-patient" type="search" placeholder="ID contains&hellip;" autocomplete="off"></label>
<label>Flag <select id="f-flag"><option value="">all</option><option value="!none">no flags</option>
<option value="!any">any flag</option><option value="!failed">failed</option></select></label>
{arm_filter}<span id="shown"></span></form>
<p class="hint">Click a column header to sort, a row to see its QC picture (&larr;/&rarr; next, Esc close).
PO: percent of the lungs with opacity; &Delta;: percentage points from the patient's first scored scan.</p>
</header>
<main><table id="scans"><thead><tr>{head}</tr></thead><tbody></tbody></table></main>
<div id="viewer" hidden><div class="box"><p class="bar"><span id="v-caption"></span>
<a id="v-open" target="_blank" rel="noopener">open picture</a> <a id="v-course" target="_blank" rel="noopener">patient's course</a>
<button type="button" id="v-close">close</button></p><img id="v-img" alt=""></div></div>
<script type="application/json" id="gallery-data">{data}</script>
<script type="application/json" id="gallery-meta">{meta}</script>
<script>{js}</script>
</body></html>
"""

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;color:#222}
header{position:sticky;top:0;background:#fff;padding:.5em 1em;border-bottom:1px solid #ccc;z-index:2}
h1{font-size:1.3em;margin:.2em 0}#summary,.hint{margin:.2em 0;color:#555}.hint{font-size:.9em}
#filters{display:flex;gap:1.2em;align-items:center;flex-wrap:wrap}#shown{color:#555}
main{padding:0 1em 2em}table{border-collapse:collapse;width:100%}
th,td{padding:.25em .6em;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:middle}
th{background:#f3f3f3;position:sticky;top:var(--head,0px);z-index:1}
th button{font:inherit;font-weight:600;border:0;background:none;cursor:pointer;padding:0}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}tbody tr{cursor:pointer}tbody tr:hover{background:#f0f6ff}
tr.failed{background:#fff1f0}td img{height:64px;width:auto;display:block;background:#000}
.flag{display:inline-block;background:#fff4e5;border:1px solid #e69f00;border-radius:3px;padding:0 .3em;margin:1px;font-size:.85em}
.err{color:#b00020}.base{color:#777;font-size:.85em}.none{color:#aaa}
#viewer{position:fixed;inset:0;background:rgba(0,0,0,.85);z-index:3;display:flex;align-items:center;justify-content:center}
#viewer[hidden]{display:none}#viewer .box{max-width:96vw;max-height:96vh;background:#fff;padding:.5em;overflow:auto}
#viewer img{max-width:94vw;max-height:85vh;display:block}.bar{margin:0 0 .4em;display:flex;gap:1em;align-items:center}
"""

#: First script of the page: records uncaught errors, rejected promises and console
#: errors into ``<html data-errors>``, so a headless browser's DOM dump shows them.
_ERROR_HOOK = """(function(){var errs=[];function rec(m){errs.push(String(m));
document.documentElement.setAttribute("data-errors",JSON.stringify(errs));}
window.onerror=function(msg,src,line){rec("Uncaught "+msg+" (line "+line+")");};
window.addEventListener("unhandledrejection",function(e){rec("Unhandled rejection "+e.reason);});
var ce=console.error;console.error=function(){rec(Array.prototype.join.call(arguments," "));
return ce.apply(console,arguments);};})();"""

_JS = r"""
(function(){"use strict";
var data=JSON.parse(document.getElementById("gallery-data").textContent);
var meta=JSON.parse(document.getElementById("gallery-meta").textContent);
var table=document.getElementById("scans"),tbody=table.tBodies[0],t0=performance.now();
var cols=Array.prototype.map.call(table.tHead.rows[0].cells,function(th){return th.getAttribute("data-key");});
var shown=[],sort={key:null,dir:1},current=-1;
function el(tag,text,cls){var e=document.createElement(tag);if(text!=null)e.textContent=text;if(cls)e.className=cls;return e;}
function fmt(v,d){return v==null?"\u2013":v.toFixed(d);}
function cell(tr,d,key){var td=tr.insertCell();
  if(key==="thumb"){if(d.thumb){var a=el("a");a.href=d.full||d.thumb;var im=el("img");im.loading="lazy";
      im.decoding="async";im.alt="QC "+d.id;im.setAttribute("data-src",d.thumb);a.appendChild(im);td.appendChild(a);}
    else td.appendChild(el("span","no picture","none"));}
  else if(key==="patient"){td.appendChild(el("span",d.patient==null?"\u2013":d.patient));
    if(d.course){var c=el("a","course");c.href=d.course;c.target="_blank";c.className="course";
      td.appendChild(document.createTextNode(" "));td.appendChild(c);}}
  else if(key==="po"){td.textContent=fmt(d.po,2);td.className="num";}
  else if(key==="change"){td.textContent=d.baseline?"0.00 ":(d.change==null?"\u2013":(d.change>0?"+":"")+d.change.toFixed(2));
    if(d.baseline)td.appendChild(el("span","baseline","base"));td.className="num";}
  else if(key==="day"||key==="series"){td.textContent=d[key]==null?"\u2013":d[key];td.className="num";}
  else if(key==="flags"){if(d.error)td.appendChild(el("span",d.error,"err"));
    d.flags.forEach(function(f){td.appendChild(el("span",f,"flag"));});}
  else td.textContent=d[key]==null?"\u2013":d[key];}
var rows=data.map(function(d,i){var tr=document.createElement("tr");tr.setAttribute("data-i",i);
  tr.setAttribute("data-id",d.id);if(d.error)tr.className="failed";
  cols.forEach(function(k){cell(tr,d,k);});return tr;});
var thumbs=rows.map(function(tr){return tr.querySelector("img");});
function options(sel,values){values.forEach(function(v){var o=el("option",v);o.value=v;sel.appendChild(o);});}
var fPatient=document.getElementById("f-patient"),fFlag=document.getElementById("f-flag"),fArm=document.getElementById("f-arm");
options(fFlag,meta.flags);
if(fArm){options(fArm,meta.arms);if(meta.hasNoArm){var o=el("option","(no arm)");o.value="!none";fArm.appendChild(o);}}
function keep(d){var p=fPatient.value.trim().toLowerCase(),f=fFlag.value,a=fArm?fArm.value:"";
  if(p&&String(d.patient==null?"":d.patient).toLowerCase().indexOf(p)<0)return false;
  if(f==="!none"&&(d.flags.length||d.error))return false;if(f==="!any"&&!d.flags.length)return false;
  if(f==="!failed"&&!d.error)return false;if(f&&f[0]!=="!"&&d.flags.indexOf(f)<0)return false;
  if(a==="!none")return !d.arm;if(a&&d.arm!==a)return false;return true;}
function value(d,k){return k==="flags"?(d.error?"~"+d.error:d.flags.join(";")):d[k];}
function compare(i,j){var k=sort.key,a=value(data[i],k),b=value(data[j],k),na=a==null||a==="",nb=b==null||b==="";
  if(na||nb)return na&&nb?i-j:(na?1:-1);
  var c=typeof a==="number"&&typeof b==="number"?a-b:String(a).localeCompare(String(b),undefined,{numeric:true});
  return c?c*sort.dir:i-j;}
function render(){var idx=[];for(var i=0;i<data.length;i++)if(keep(data[i]))idx.push(i);
  if(sort.key)idx.sort(compare);shown=idx;var frag=document.createDocumentFragment();
  idx.forEach(function(i){frag.appendChild(rows[i]);});tbody.textContent="";tbody.appendChild(frag);
  idx.forEach(function(i){var im=thumbs[i];if(im&&!im.src)im.src=im.getAttribute("data-src");});// lazy once connected
  document.getElementById("shown").textContent=idx.length+" of "+data.length+" scans shown";}
function sortBy(key){var th=table.tHead.querySelector("th[data-key='"+key+"']");if(!th||!th.getAttribute("data-type"))return;
  sort.dir=sort.key===key?-sort.dir:1;sort.key=key;
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(c){c.setAttribute("aria-sort","none");});
  th.setAttribute("aria-sort",sort.dir>0?"ascending":"descending");render();}
table.tHead.addEventListener("click",function(e){var th=e.target.closest("th");if(th)sortBy(th.getAttribute("data-key"));});
[fPatient,fFlag,fArm].forEach(function(c){if(c)c.addEventListener(c===fPatient?"input":"change",render);});
var viewer=document.getElementById("viewer"),vImg=document.getElementById("v-img");
function show(pos){if(pos<0||pos>=shown.length)return;current=pos;var d=data[shown[pos]],src=d.full||d.thumb;
  document.getElementById("v-caption").textContent=d.id+(d.po==null?"":"  PO "+d.po.toFixed(2)+" %")+(d.error?"  "+d.error:"");
  var open=document.getElementById("v-open"),course=document.getElementById("v-course");
  open.hidden=!src;if(src){open.href=src;vImg.src=src;}else vImg.removeAttribute("src");
  course.hidden=!d.course;if(d.course)course.href=d.course;viewer.hidden=false;}
function hide(){viewer.hidden=true;current=-1;}
tbody.addEventListener("click",function(e){var a=e.target.closest("a");
  if(a&&a.className==="course")return;if(a&&(e.ctrlKey||e.metaKey||e.shiftKey||e.button))return;
  var tr=e.target.closest("tr");if(!tr)return;e.preventDefault();show(shown.indexOf(+tr.getAttribute("data-i")));});
viewer.addEventListener("click",function(e){if(e.target===viewer)hide();});
document.getElementById("v-close").addEventListener("click",hide);
document.addEventListener("keydown",function(e){if(viewer.hidden)return;if(e.key==="Escape")hide();
  else if(e.key==="ArrowRight")show(current+1);else if(e.key==="ArrowLeft")show(current-1);});
function headerHeight(){document.documentElement.style.setProperty("--head",document.querySelector("header").offsetHeight+"px");}
window.addEventListener("resize",headerHeight);headerHeight();render();
document.documentElement.setAttribute("data-render-ms",(performance.now()-t0).toFixed(1));
// self-test for headless browsers: #selftest=sort:po,patient:P01,flag:X,arm:Y,open:0 -> <html data-selftest>
var m=/^#selftest=(.*)$/.exec(location.hash);
if(m){decodeURIComponent(m[1]).split(",").forEach(function(step){var kv=step.split(":"),k=kv[0],v=kv.slice(1).join(":");
    if(k==="sort"){var b=table.tHead.querySelector("th[data-key='"+v+"'] button");if(b)b.click();}
    else if(k==="patient"){fPatient.value=v;fPatient.dispatchEvent(new Event("input"));}
    else if(k==="flag"||k==="arm"){var s=k==="flag"?fFlag:fArm;if(s){s.value=v;s.dispatchEvent(new Event("change"));}}
    else if(k==="open"){var r=tbody.rows[+v];if(r)r.cells[1].click();}});
  document.documentElement.setAttribute("data-selftest",JSON.stringify({order:Array.prototype.map.call(tbody.rows,
    function(r){return r.getAttribute("data-id");}),po:shown.map(function(i){return data[i].po;}),
    viewer:viewer.hidden?null:vImg.getAttribute("src")}));}
})();
"""
