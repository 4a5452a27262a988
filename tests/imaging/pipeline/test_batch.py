"""The batch runner: outputs, error rows, resume, kill-and-rerun, Dask, pseudonyms, read-only input.

Scans are tiny synthetic DICOM series written here with pydicom; the scorer is the
injected threshold scorer of :mod:`tests.imaging.batch_helpers`, so these tests check the
runner's machinery independently of the real scoring (tested in its own module).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imaging.pipeline.batch import score_studies
from imaging.io.selection import SelectionRules
from tests.imaging.batch_helpers import BIRTH_DATE, PATIENT_NAME, chest_hu, toy_scorer, write_series

REPO = Path(__file__).resolve().parents[3]
RULES = SelectionRules(min_slices=4)


def _tree(root: Path, n_patients: int = 3, *, problems: bool = False) -> Path:
    for i in range(n_patients):
        write_series(root / f"PAT{i}" / "visit0" / "ax", patient_id=f"PID-{i:03d}", study_key="v0", series_key="ax",
                     study_date="20200301", hu=chest_hu(opacity_fraction=0.15 * i))
    if problems:
        (root / "README.txt").write_text("export notes, not DICOM\n")
        # a non-chest series: soft tissue only (the toy scorer raises NotAChestError)
        write_series(root / "PATX" / "abdomen", patient_id="PID-X", study_key="abd", series_key="ax",
                     study_date="20200302", hu=np.full((6, 24, 24), 40, np.int16))
        # a truncated file in an otherwise good series
        files = write_series(root / "PATT" / "visit0", patient_id="PID-T", study_key="v0", series_key="ax",
                             study_date="20200303", hu=chest_hu())
        data = files[3].read_bytes()
        files[3].write_bytes(data[: len(data) - 300])
    return root


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def _all_bytes(out: Path) -> bytes:
    return b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())


def test_tree_with_problems_finishes_with_rows_marked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imaging.cli.main import main

    root = _tree(tmp_path / "in", problems=True)
    before = _snapshot(root)
    out = tmp_path / "out"
    code = main(["score", str(root), "-o", str(out), "-j", "1", "--min-slices", "4", "--dicom-seg",
                 "--scorer", "tests.imaging.batch_helpers:toy_scorer"])
    captured = capsys.readouterr()
    assert code == 1  # some studies failed
    assert "3 of 5 studies scored, 2 failed" in captured.out.splitlines()[-2]
    assert "scoring" in captured.err  # progress bar on stderr

    table = pd.read_csv(out / "scores.csv")
    assert len(table) == 5 and list(table.columns[:5]) == ["patient_id", "study_date", "study_uid", "series_uid", "error"]
    by_patient = table.set_index("patient_id")
    assert by_patient.loc["PID-X", "error"].startswith("NotAChestError")
    assert "truncated" in by_patient.loc["PID-T", "error"].lower() or "PixelDecodeError" in by_patient.loc["PID-T", "error"]
    good = by_patient.loc[["PID-000", "PID-001", "PID-002"]]
    assert good["error"].isna().all()
    assert np.all(np.diff(good["percent_opacity"].to_numpy()) > 0)  # more opacity written, more scored
    pd.testing.assert_frame_equal(table, pd.read_parquet(out / "scores.parquet"), check_dtype=False)

    manifest = pd.read_csv(out / "manifest.csv")
    assert (manifest["entry"] == "skipped file").sum() == 1
    assert manifest.loc[manifest["entry"] == "skipped file", "path"].item() == "README.txt"
    assert manifest.loc[manifest["entry"] == "series", "chosen"].notna().all()
    assert json.loads((out / "manifest.json").read_text())["studies"][0]["series"][0]["reason"]

    import SimpleITK as sitk

    scored = good.iloc[0]
    scan_dir = out / "scans" / scored["series_uid"]
    lungs = sitk.ReadImage(str(scan_dir / "lungs.nii.gz"))
    assert lungs.GetSize() == (24, 24, 8) and lungs.GetSpacing() == pytest.approx((2.0, 2.0, 3.0))
    assert set(np.unique(sitk.GetArrayFromImage(lungs))) == {0, 1, 2}
    assert (scan_dir / "qc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import pydicom

    seg = pydicom.dcmread(scan_dir / "seg.dcm")
    assert seg.Modality == "SEG" and seg.PatientID == "PID-000"
    assert "1 failed" not in (out / "chestct.log").read_text() and "NotAChestError" in (out / "chestct.log").read_text()

    blob = _all_bytes(out)
    assert PATIENT_NAME.encode() not in blob and PATIENT_NAME.split("^")[0].encode() not in blob
    assert BIRTH_DATE.encode() not in blob and b"Smith^Referrer" not in blob
    assert not list(out.rglob(".tmp-*")) and not (out / ".lock").exists()
    assert _snapshot(root) == before  # input byte-for-byte (and mtime) unchanged


def test_rerun_is_a_resume_and_new_settings_rescore(tmp_path: Path) -> None:
    root = _tree(tmp_path / "in", n_patients=2)
    out = tmp_path / "out"
    first = score_studies(root, out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False, qc=False)
    assert first.attrs["summary"]["n_scored"] == 2
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "results").iterdir()}
    second = score_studies(root, out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False, qc=False)
    assert second.attrs["summary"]["n_resumed"] == 2 and second.attrs["summary"]["n_scored"] == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "results").iterdir()} == mtimes
    pd.testing.assert_frame_equal(first, second)
    # asking for QC pictures now: the stored scores lack them, so the scans are redone
    third = score_studies(root, out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False, qc=True)
    assert third.attrs["summary"]["n_scored"] == 2 and len(list(out.glob("scans/*/qc.png"))) == 2
    # other settings: another resume key, rescored
    fourth = score_studies(root, out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False,
                           score_options={"threshold_hu": -600.0})
    assert fourth.attrs["summary"]["n_scored"] == 2
    assert (fourth["settings"] == '{"threshold_hu": -600.0}').all()


def test_series_whose_files_changed_is_scored_again(tmp_path: Path) -> None:
    # a series scored while its export was still being copied kept its partial result
    import shutil

    staged = tmp_path / "staged"
    files = sorted(write_series(staged, patient_id="PID-C", study_key="v0", series_key="ax",
                                study_date="20200301", hu=chest_hu((8, 24, 24))))
    series = tmp_path / "in" / "P" / "ax"
    series.mkdir(parents=True)
    for f in files[:5]:  # the copy is half done: 5 of 8 slices
        shutil.copy2(f, series / f.name)
    out = tmp_path / "out"
    first = score_studies(series.parents[1], out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False,
                          qc=False, masks=False)
    for f in files[5:]:
        shutil.copy2(f, series / f.name)
    second = score_studies(series.parents[1], out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False,
                           qc=False, masks=False)
    assert second.attrs["summary"]["n_scored"] == 1 and second.attrs["summary"]["n_resumed"] == 0
    assert second["lung_volume_ml"].iloc[0] > first["lung_volume_ml"].iloc[0]
    third = score_studies(series.parents[1], out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False,
                          qc=False, masks=False)
    assert third.attrs["summary"]["n_resumed"] == 1  # unchanged files: resumed as before


def test_killed_run_then_rerun_equals_uninterrupted_run(tmp_path: Path) -> None:
    root = _tree(tmp_path / "in", n_patients=4)
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHESTCT_TEST_DELAY_S": "0.5"}
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "imaging.cli.main", "score", str(root), "-o", str(out), "-j", "1", "--min-slices", "4",
           "--no-progress", "--scorer", "tests.imaging.batch_helpers:slow_toy_scorer"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    def finished() -> int:  # stored results; ".tmp-*" files are writes the kill may cut short
        return sum(1 for p in (out / "results").glob("*.json") if not p.name.startswith("."))

    while time.monotonic() < deadline and finished() < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_done = finished()
    assert 2 <= n_done < 4 and not (out / "scores.csv").exists()
    rerun = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"({n_done} resumed" in rerun.stdout
    os.environ["CHESTCT_TEST_DELAY_S"] = "0"
    try:
        from tests.imaging.batch_helpers import slow_toy_scorer

        whole = score_studies(root, out=tmp_path / "whole", workers=1, rules=RULES, scorer=slow_toy_scorer,
                              progress=False)
    finally:
        del os.environ["CHESTCT_TEST_DELAY_S"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "scores.csv"), pd.read_csv(tmp_path / "whole" / "scores.csv"))
    assert len(whole) == 4 and not list(out.rglob(".tmp-*"))


def test_ctrl_c_keeps_finished_scans_and_rerun_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path / "in", n_patients=3)
    out = tmp_path / "out"
    marker = tmp_path / "interrupt-at-PID-001"
    marker.touch()
    monkeypatch.setenv("CHESTCT_TEST_INTERRUPT", str(marker))
    from tests.imaging.batch_helpers import interrupting_scorer

    with pytest.raises(KeyboardInterrupt):
        score_studies(root, out=out, workers=1, rules=RULES, scorer=interrupting_scorer, progress=False)
    assert len(list((out / "results").glob("*.json"))) == 1 and not (out / "scores.csv").exists()
    assert "interrupted" in (out / "chestct.log").read_text() and not (out / ".lock").exists()
    again = score_studies(root, out=out, workers=1, rules=RULES, scorer=interrupting_scorer, progress=False)
    assert again.attrs["summary"]["n_resumed"] == 1 and again["error"].isna().all()


def test_process_pool_and_dask_give_the_same_table_as_in_process(tmp_path: Path) -> None:
    from distributed import LocalCluster

    root = _tree(tmp_path / "in", n_patients=3, problems=False)
    local = score_studies(root, out=tmp_path / "serial", workers=1, rules=RULES, scorer=toy_scorer, progress=False,
                          qc=False)
    pool = score_studies(root, out=tmp_path / "pool", workers=2, rules=RULES, scorer=toy_scorer, progress=False,
                         qc=False)
    pd.testing.assert_frame_equal(local, pool)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        dask = score_studies(root, out=tmp_path / "dask", scheduler=cluster.scheduler_address, rules=RULES,
                             scorer=toy_scorer, progress=False, qc=False)
    pd.testing.assert_frame_equal(local, dask)
    assert len(list((tmp_path / "dask" / "results").glob("*.json"))) == 3
    assert len(list((tmp_path / "dask" / "scans").glob("*/lungs.nii.gz"))) == 3


def test_dask_run_keeps_distributed_info_logs_quiet_like_the_caller(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from distributed import LocalCluster

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    root = _tree(tmp_path / "in", n_patients=1)
    dask_log, keep = logging.getLogger("distributed"), Keep()
    monkeypatch.setattr(logging.root, "level", logging.WARNING)  # the CLI's root level without -v
    monkeypatch.setattr(dask_log, "level", logging.INFO)  # as distributed's own config sets it
    dask_log.addHandler(keep)
    try:
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
            keep.records.clear()
            score_studies(root, out=tmp_path / "out", scheduler=cluster.scheduler_address, rules=RULES,
                          scorer=toy_scorer, progress=False, qc=False, masks=False)
            noise = [r.getMessage() for r in keep.records if r.levelno < logging.WARNING]
    finally:
        dask_log.removeHandler(keep)
    assert noise == []
    assert dask_log.level == logging.INFO  # restored


def test_unreachable_scheduler_is_a_one_line_error_and_nothing_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import dask

    from imaging.cli.main import main

    root = _tree(tmp_path / "in", n_patients=1)
    out = tmp_path / "out"
    with dask.config.set({"distributed.comm.timeouts.connect": "0.5s"}):  # nothing listens on port 1
        code = main(["score", str(root), "-o", str(out), "--scheduler", "tcp://127.0.0.1:1", "--min-slices", "4",
                     "--scorer", "tests.imaging.batch_helpers:toy_scorer"])
    err = capsys.readouterr().err
    assert code == 2 and "tcp://127.0.0.1:1" in err and "cannot connect" in err and "Traceback" not in err
    assert not out.exists()
    code = main(["score", str(root), "-o", str(out), "--scheduler", "nonsense", "--min-slices", "4"])
    assert code == 2 and "'nonsense'" in capsys.readouterr().err and not out.exists()


def test_pseudonyms_replace_patient_ids_everywhere(tmp_path: Path) -> None:
    root = _tree(tmp_path / "in", n_patients=2, problems=True)
    key_file = tmp_path / "secret.key"
    key_file.write_text("a" * 64 + "\n")
    out = tmp_path / "out"
    table = score_studies(root, out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False,
                          pseudonym_key=key_file, dicom_seg=True)
    assert table["patient_id"].str.fullmatch(r"anon-[0-9a-f]{16}").all()
    blob = _all_bytes(out)
    # folder names (often patient names) also hide inside problem texts quoting relative paths
    for secret in (b"PID-000", b"PID-001", b"PID-X", b"PID-T", b"PAT0", b"PATT", b"PATX", PATIENT_NAME.encode(), b"a" * 64):
        assert secret not in blob, secret
    again = score_studies(root, out=tmp_path / "out2", workers=1, rules=RULES, scorer=toy_scorer, progress=False,
                          pseudonym_key=key_file)
    assert list(again["patient_id"]) == list(table["patient_id"])  # stable with the same key
    with pytest.raises(ValueError, match="inside the output folder"):
        score_studies(root, out=tmp_path / "out3", rules=RULES, scorer=toy_scorer, progress=False,
                      pseudonym_key=(tmp_path / "out3" / "k").parent.mkdir() or _write(tmp_path / "out3" / "k"))


def test_pseudonyms_hide_folder_names_in_skipped_file_reasons(tmp_path: Path, monkeypatch) -> None:
    """A skip reason quoting the file path (e.g. PermissionError) must not reveal the folder."""
    import imaging.io.series as dicom_mod
    from imaging.io.headers import SkippedFile

    root = _tree(tmp_path / "in", n_patients=1)
    secret_dir = root / "SMITH_JOHN_PID-S"
    secret_dir.mkdir()
    (secret_dir / "locked.dcm").write_bytes(b"\0" * 200)
    real = dicom_mod.read_header

    def read_header(path, size):  # as when the file is not readable (running as root bypasses chmod)
        if path.name == "locked.dcm":
            return SkippedFile(path, f"unreadable DICOM header (PermissionError: [Errno 13] Permission denied: '{path}')")
        return real(path, size)

    monkeypatch.setattr(dicom_mod, "read_header", read_header)
    key_file = tmp_path / "secret.key"
    key_file.write_text("a" * 64 + "\n")
    out = tmp_path / "out"
    score_studies(root, out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False,
                  pseudonym_key=key_file, masks=False, qc=False)
    for name in ("manifest.csv", "manifest.json"):
        assert b"SMITH_JOHN" not in (out / name).read_bytes(), name
    assert "locked.dcm" in (out / "manifest.json").read_text()


def _write(path: Path) -> Path:
    path.write_text("b" * 64)
    return path


def test_arguments_are_checked(tmp_path: Path) -> None:
    root = _tree(tmp_path / "in", n_patients=1)
    with pytest.raises(ValueError, match="overlaps root"):
        score_studies(root, out=root / "out", scorer=toy_scorer)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        score_studies(root, out=tmp_path / "o", workers=0, scorer=toy_scorer)
    with pytest.raises(TypeError, match="top-level function"):
        score_studies(root, scorer=lambda v: v)
    from imaging.common.errors import NoDicomFoundError

    with pytest.raises(NoDicomFoundError, match="does not exist"):
        score_studies(tmp_path / "absent", scorer=toy_scorer)
    table = score_studies(root, rules=RULES, scorer=toy_scorer, progress=False)  # no OUT: nothing written
    assert len(table) == 1 and table["error"].isna().all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_a_worker_killed_by_the_system_fails_only_its_own_scan(tmp_path: Path) -> None:
    from tests.imaging.batch_helpers import worker_killing_scorer

    root = _tree(tmp_path / "in", n_patients=3)
    table = score_studies(root, out=tmp_path / "out", workers=2, rules=RULES, scorer=worker_killing_scorer,
                          progress=False, qc=False, masks=False)
    errors = table.set_index("patient_id")["error"]
    assert errors["PID-001"].startswith("worker process died") and errors.drop("PID-001").isna().all()
    # the lost scan is stored as transient, not as done: the next run tries it again
    from imaging.pipeline.store import ResultStore

    records = [ResultStore(tmp_path / "out" / "results").get(p.stem) for p in (tmp_path / "out" / "results").iterdir()]
    assert sorted(bool(r.get("transient")) for r in records) == [False, False, True]


def test_overrides_table_chooses_the_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imaging.cli.main import main
    from tests.imaging.batch_helpers import _uid

    root = tmp_path / "in"
    for key, thickness in (("thin", 1.0), ("thick", 3.0)):
        write_series(root / key, patient_id="PID-0", study_key="v0", series_key=key, study_date="20200301",
                     hu=chest_hu(), spacing_mm=(thickness, 2.0, 2.0), series_number=2 if key == "thick" else 1)
    study, thick = _uid("PID-0", "v0"), _uid("PID-0", "v0", "thick")
    table = tmp_path / "overrides.csv"
    table.write_text(f"study_uid,series_uid\n{study},{thick}\n")
    out = tmp_path / "out"
    code = main(["score", str(root), "-o", str(out), "-j", "1", "--min-slices", "4", "--no-progress", "--no-qc",
                 "--overrides", str(table), "--scorer", "tests.imaging.batch_helpers:toy_scorer"])
    capsys.readouterr()
    assert code == 0
    assert pd.read_csv(out / "scores.csv")["series_uid"].tolist() == [thick]
    manifest = pd.read_csv(out / "manifest.csv").set_index("series_uid")
    assert bool(manifest.loc[thick, "chosen"]) and "override" in manifest.loc[thick, "reason"].lower()


def test_failure_line_of_a_study_with_only_a_truncated_file_names_study_and_file(tmp_path: Path) -> None:
    root = _tree(tmp_path / "in", n_patients=1)
    files = write_series(root / "PATT" / "v0", patient_id="PID-T", study_key="v0", series_key="ax",
                         study_date="20200303", hu=chest_hu()[:1])
    files[0].write_bytes(files[0].read_bytes()[:-300])
    table = score_studies(root, rules=RULES, scorer=toy_scorer, progress=False)
    (failure,) = table.attrs["summary"]["failures"]
    study_uid = table.loc[table["patient_id"] == "PID-T", "study_uid"].item()
    assert failure.startswith(f"{study_uid}: no series to score")  # not "nan: ..."
    assert "truncated file(s): PATT/v0/000001.dcm" in failure


def test_empty_root_is_no_dicom_found_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imaging.cli.main import main
    from imaging.common.errors import NoDicomFoundError

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not DICOM\n")
    with pytest.raises(NoDicomFoundError, match=r"no DICOM studies found under .*\(1 files looked at, 1 skipped: 1 not DICOM"):
        score_studies(empty, out=tmp_path / "o", scorer=toy_scorer, progress=False)
    assert main(["score", str(empty), "-o", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no DICOM studies found" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # no OUT created


@pytest.mark.parametrize("extra", [["-o", "{root}/out"], ["-o", "{tmp}/o", "-j", "0"], ["-o", "{tmp}/o", "--min-slices", "0"],
                                   ["-o", "{tmp}/o", "--override", "nonsense"],
                                   ["-o", "{tmp}/o", "--overrides", "{tmp}/absent.csv"],
                                   ["-o", "{tmp}/o", "--pseudonymize", "{tmp}/absent.key"]])
def test_argument_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:
    from imaging.cli.main import main

    root = _tree(tmp_path / "in", n_patients=1)
    args = [a.format(root=root, tmp=tmp_path) for a in extra]
    assert main(["score", str(root), *args, "--no-progress", "--scorer", "tests.imaging.batch_helpers:toy_scorer"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chestct score: error: "), err


# ------------------------------------------------------------------ options, overrides, rules, table format

@pytest.mark.parametrize("option, expected", [("foo=1", "'foo' is not an option of imaging.scoring.scores:score_scan"),
                                              ("lung_method=bogus", "lung_method='bogus' is not accepted"),
                                              ("opacity_method=cnn", "opacity_method='cnn' is not accepted"),
                                              ("on_not_chest=ignore", "on_not_chest='ignore' is not accepted"),
                                              ("ggo_min_hu=low", "ggo_min_hu='low' must be a finite number")])
def test_bad_score_options_are_a_usage_error_before_anything_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, expected: str) -> None:
    from imaging.cli.main import main

    root = _tree(tmp_path / "in", n_patients=1)
    assert main(["score", str(root), "-o", str(tmp_path / "out"), "--no-progress", "--option", option]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chestct score: error: --option ") and expected in err[0], err
    assert not (tmp_path / "out").exists()


def test_score_studies_refuses_bad_options_up_front(tmp_path: Path) -> None:
    from imaging.common.errors import InvalidArgumentError

    root = _tree(tmp_path / "in", n_patients=1)
    with pytest.raises(InvalidArgumentError, match="score_options 'foo' is not an option"):
        score_studies(root, out=tmp_path / "out", score_options={"foo": 1}, progress=False)
    with pytest.raises(InvalidArgumentError, match="lung_method='bogus'.*classical"):
        score_studies(root, out=tmp_path / "out", score_options={"lung_method": "bogus"}, progress=False)
    # a custom scorer: its own keyword names are checked, its values are its business
    with pytest.raises(InvalidArgumentError, match="'lung_method' is not an option of .*toy_scorer"):
        score_studies(root, out=tmp_path / "out", scorer=toy_scorer, score_options={"lung_method": "classical"})
    assert not (tmp_path / "out").exists()
    table = score_studies(root, rules=RULES, scorer=toy_scorer, score_options={"threshold_hu": -400}, progress=False)
    assert table["error"].isna().all()


def test_override_of_a_study_not_in_root_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imaging.cli.main import main
    from imaging.common.errors import InvalidArgumentError

    root = _tree(tmp_path / "in", n_patients=1)
    base = ["score", str(root), "-o", str(tmp_path / "out"), "--no-progress", "--min-slices", "4",
            "--scorer", "tests.imaging.batch_helpers:toy_scorer"]
    assert main([*base, "--override", "1.2.3=4.5.6"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "study UID 1.2.3" in err[0] and "not found under" in err[0], err
    table = tmp_path / "overrides.csv"
    table.write_text("study_uid,series_uid\n9.8.7,6.5.4\n")
    assert main([*base, "--overrides", str(table)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "study UID 9.8.7" in err[0], err
    with pytest.raises(InvalidArgumentError, match="study UID 1.2.3"):
        score_studies(root, out=tmp_path / "out", overrides={"1.2.3": "4.5.6"}, scorer=toy_scorer, progress=False)
    assert not (tmp_path / "out").exists()


def test_score_takes_the_thickness_and_kernel_rules_of_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imaging.cli.main import build_parser, main
    from imaging.cli._rules import selection_rules
    from tests.imaging.batch_helpers import _uid

    root = tmp_path / "in"
    for key, thickness in (("thin", 1.0), ("thick", 3.0)):
        write_series(root / key, patient_id="PID-0", study_key="v0", series_key=key, study_date="20200301",
                     hu=chest_hu(), spacing_mm=(thickness, 2.0, 2.0), series_number=2 if key == "thick" else 1)
    thick = _uid("PID-0", "v0", "thick")
    rule_args = ["--min-slices", "4", "--thickness", "2.5", "4", "--kernel", "lung", "--kernel", "b30"]
    parser = build_parser()
    inspected = selection_rules(parser.parse_args(["inspect", str(root), *rule_args]))
    assert selection_rules(parser.parse_args(["score", str(root), "-o", "x", *rule_args])) == inspected
    out = tmp_path / "out"
    assert main(["score", str(root), "-o", str(out), "-j", "1", "--no-progress", "--no-qc", *rule_args,
                 "--scorer", "tests.imaging.batch_helpers:toy_scorer"]) == 0
    capsys.readouterr()
    assert pd.read_csv(out / "scores.csv")["series_uid"].tolist() == [thick]  # thin is outside 2.5-4 mm
    rules = json.loads((out / "manifest.json").read_text())["rules"]
    assert rules["thickness_range_mm"] == [2.5, 4.0] and rules["kernel_preference"] == ["LUNG", "B30"]
    assert '"thickness_range_mm": [2.5, 4.0]' in (out / "chestct.log").read_text()


def test_error_paths_are_relative_to_root_and_whole_numbers_stay_whole(tmp_path: Path) -> None:
    root = _tree(tmp_path / "in", n_patients=1, problems=True)
    table = score_studies(root, out=tmp_path / "o1", workers=1, rules=RULES, progress=False, qc=False, masks=False)
    errors = " ".join(e for e in table["error"] if isinstance(e, str))
    assert "PATX/abdomen: no chest to score" in errors  # the scorer's message quoted the absolute folder
    assert "<ROOT>" not in errors and str(root) not in errors
    assert str(root) not in (tmp_path / "o1" / "scores.csv").read_text()

    table = score_studies(root, out=tmp_path / "o2", workers=1, rules=RULES, progress=False, qc=False, masks=False,
                          score_options={"on_not_chest": "flag"})
    assert table["error"].notna().sum() == 1  # the truncated series: no series_number in its row
    assert str(table["series_number"].dtype) == "Int64"
    csv = pd.read_csv(tmp_path / "o2" / "scores.csv", dtype=str, keep_default_na=False)
    assert sorted(csv["series_number"]) == ["", "1", "1"]
    parquet = pd.read_parquet(tmp_path / "o2" / "scores.parquet")
    assert pd.api.types.is_integer_dtype(parquet["series_number"]) and parquet["series_number"].isna().sum() == 1
    assert pd.api.types.is_float_dtype(parquet["percent_opacity"])


def test_symlink_loop_in_root_is_a_skipped_file_and_the_rest_is_scored(tmp_path: Path) -> None:
    from imaging.cli.main import main

    root = _tree(tmp_path / "in", n_patients=1)
    (root / "loopa").symlink_to("loopb")
    (root / "loopb").symlink_to("loopa")
    out = tmp_path / "out"
    assert main(["score", str(root), "-o", str(out), "--no-progress", "-j", "1", "--min-slices", "4",
                 "--scorer", "tests.imaging.batch_helpers:toy_scorer", "--no-masks", "--no-qc"]) == 0
    table = pd.read_csv(out / "scores.csv")
    assert len(table) == 1 and table["error"].isna().all()
    skipped = {Path(s["path"]).name: s["reason"] for s in json.loads((out / "manifest.json").read_text())["skipped_files"]}
    assert skipped["loopa"].startswith("symbolic link loop") and skipped["loopb"].startswith("symbolic link loop")


@pytest.mark.parametrize("command", ["score", "demo"])
@pytest.mark.parametrize("below", [False, True])
def test_out_that_is_an_existing_file_is_a_one_line_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, below: bool) -> None:
    from imaging.cli.main import main

    root = _tree(tmp_path / "in", n_patients=1)
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder\n")
    out = blocker / "sub" if below else blocker
    key = tmp_path / "new.key"
    args = {"score": ["score", str(root), "-o", str(out), "--no-progress", "--pseudonymize", str(key), "--create-key"],
            "demo": ["demo", "-o", str(out), "--no-progress"]}[command]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"chestct {command}: error: ") and str(blocker) in err[0], err
    assert "is not a folder" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before and blocker.read_text() == "not a folder\n"


def notes_scorer(volume, **options):
    """The toy score plus the volume's ``notes``, as :meth:`imaging.ScanScore.as_dict` carries them."""
    result = toy_scorer(volume, **options)
    result.row["notes"] = volume.info.notes
    return result


def test_pseudonyms_hide_folder_names_in_the_notes_of_scored_rows(tmp_path: Path) -> None:
    # a localizer set aside is named by its path in `notes`, which reached scores.csv unscrubbed
    import pydicom

    from tests.imaging.dicom_synth import CORONAL, make_dataset

    root = _tree(tmp_path / "in", n_patients=1)
    series = root / "SMITH_JOHN" / "ax"
    files = write_series(series, patient_id="PID-S", study_key="v0", series_key="ax", study_date="20200301",
                         hu=chest_hu())
    first = pydicom.dcmread(files[0])
    scout = make_dataset(np.zeros((24, 24), np.int16), position=(0, 0, 0), iop=CORONAL,
                         study_uid=first.StudyInstanceUID, series_uid=first.SeriesInstanceUID,
                         image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    scout.save_as(series / "scout.dcm", enforce_file_format=True)
    key_file = tmp_path / "secret.key"
    key_file.write_text("a" * 64 + "\n")
    out = tmp_path / "out"
    table = score_studies(root, out=out, workers=1, rules=RULES, scorer=notes_scorer, progress=False,
                          pseudonym_key=key_file, masks=False, qc=False)
    notes = " ".join(str(n) for n in table["notes"])
    assert "localizer image(s) set aside: .../scout.dcm" in notes  # the note is kept, the folders are not
    assert b"SMITH_JOHN" not in _all_bytes(out)
    plain = score_studies(root, out=tmp_path / "plain", workers=1, rules=RULES, scorer=notes_scorer, progress=False,
                          masks=False, qc=False)
    assert "SMITH_JOHN/ax/scout.dcm" in " ".join(str(n) for n in plain["notes"])  # relative to ROOT without pseudonyms


def description_scorer(volume, **options):
    """The toy score plus the series description, as :meth:`imaging.ScanScore.as_dict` carries it."""
    result = toy_scorer(volume, **options)
    result.row["series_description"] = volume.info.series_description
    return result


def test_pseudonyms_drop_series_descriptions_typed_with_a_name(tmp_path: Path) -> None:
    # free text typed at the scanner reached scores.csv, the manifest and results/*.json
    root = tmp_path / "in"
    write_series(root / "P1" / "ct", patient_id="PID-1", study_key="v0", series_key="ax", study_date="20200301",
                 hu=chest_hu(), description="CHEST AX DR ROE RICHARD")
    key_file = tmp_path / "secret.key"
    key_file.write_text("b" * 64 + "\n")
    out = tmp_path / "out"
    table = score_studies(root, out=out, workers=1, rules=RULES, scorer=description_scorer, progress=False,
                          pseudonym_key=key_file, masks=False, qc=False)
    assert table["error"].isna().all() and table["series_description"].isna().all()
    assert b"ROE RICHARD" not in _all_bytes(out)
    plain = score_studies(root, out=tmp_path / "plain", workers=1, rules=RULES, scorer=description_scorer,
                          progress=False, masks=False, qc=False)
    assert list(plain["series_description"]) == ["CHEST AX DR ROE RICHARD"]  # kept without pseudonyms


def source_quoting_scorer(volume, **options):
    """Fails like a reading error does: quoting the series folder (absolute) and a file in it."""
    from imaging.common.errors import PixelDecodeError

    raise PixelDecodeError(f"series in {volume.info.source}: {volume.info.source}/000003.dcm cannot be decoded")


def test_pseudonyms_hide_folder_names_with_spaces_in_error_messages(tmp_path: Path) -> None:
    # the absolute-path match stopped at the first space: '<ROOT>/.../DOE JOHN/ct/000003.dcm' leaked the name
    root = tmp_path / "in"
    write_series(root / "DOE JOHN" / "ct", patient_id="PID-D", study_key="v0", series_key="ax", study_date="20200301",
                 hu=chest_hu())
    out = tmp_path / "out"
    table = score_studies(root, out=out, workers=1, rules=RULES, scorer=source_quoting_scorer, progress=False,
                          pseudonym_key=b"k" * 32, masks=False, qc=False)
    assert table["error"][0] == "PixelDecodeError: series in <ROOT>/...: <ROOT>/.../000003.dcm cannot be decoded"
    assert b"JOHN" not in _all_bytes(out)


def test_a_relative_root_does_not_rewrite_words_of_the_messages(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # ROOT "CT" turned "chosen: CT axial original" into "chosen: . axial original", and ROOT "."
    # with pseudonyms turned every "e.g. " into "e.g<ROOT> "
    import pydicom

    root = tmp_path / "CT"
    write_series(root / "P1", patient_id="PID-1", study_key="v0", series_key="ax", study_date="20200301", hu=chest_hu())
    files = write_series(root / "P2", patient_id="PID-2", study_key="v0", series_key="ax", study_date="20200301",
                         hu=chest_hu())
    twin = pydicom.dcmread(files[2])  # another instance at the same position: a second acquisition?
    twin.SOPInstanceUID = twin.file_meta.MediaStorageSOPInstanceUID = twin.SOPInstanceUID + ".9"
    twin.save_as(root / "P2" / "twin.dcm")
    monkeypatch.chdir(tmp_path)
    table = score_studies("CT", out="out", workers=1, rules=RULES, scorer=toy_scorer, progress=False, masks=False,
                          qc=False)
    reasons = pd.read_csv(tmp_path / "out" / "manifest.csv")["reason"].dropna()
    assert reasons.str.startswith("chosen: CT axial original").any(), list(reasons)
    assert "(e.g. 000003.dcm and twin.dcm)" in table["error"][1]
    monkeypatch.chdir(root)
    table = score_studies(".", out=tmp_path / "out2", workers=1, rules=RULES, scorer=toy_scorer, progress=False,
                          masks=False, qc=False, pseudonym_key=b"k" * 32)
    assert "(e.g. 000003.dcm and twin.dcm)" in table["error"][1] and "<ROOT>" not in table["error"][1]


def test_one_series_uid_in_two_studies_gets_two_output_folders(tmp_path: Path) -> None:
    # both studies wrote scans/<series UID>/: the first study's record pointed at the second's masks
    import SimpleITK as sitk

    from tests.imaging.dicom_synth import write_series as write_plain

    root = tmp_path / "in"
    big, small = np.full((6, 24, 24), 1064, np.int16), np.full((6, 24, 24), 1064, np.int16)
    big[:, 6:18, 4:20] = 174  # -850 HU: lungs
    small[:, 8:12, 4:20] = 174
    write_plain(root / "A", n=6, rows=24, cols=24, raw=big, series_uid="1.2.3.4", patient_id="PA")
    write_plain(root / "B", n=6, rows=24, cols=24, raw=small, series_uid="1.2.3.4", patient_id="PB")
    out = tmp_path / "out"
    table = score_studies(root, out=out, workers=1, rules=RULES, scorer=toy_scorer, progress=False, qc=False)
    assert table["error"].isna().all() and len(table) == 2
    records = [json.loads(p.read_text()) for p in (out / "results").glob("*.json")]
    folders = {r["artifacts"]["masks"]["lungs"] for r in records}
    assert len(folders) == 2
    counts = sorted(int((sitk.GetArrayFromImage(sitk.ReadImage(str(out / f))) > 0).sum()) for f in folders)
    assert counts[0] < counts[1]  # each study's own mask


def test_pseudonymized_run_into_an_out_written_without_pseudonyms_is_refused(tmp_path: Path) -> None:
    # a run without pseudonyms, then the same OUT with --pseudonymize: the earlier masks, DICOM SEG
    # (real PatientID) and stored records stayed beside the "pseudonymized" table
    from imaging.common.errors import InvalidArgumentError

    root = tmp_path / "in"
    write_series(root / "SMITH_JOHN" / "ct", patient_id="PID-1", study_key="v0", series_key="ax",
                 study_date="20200301", hu=chest_hu(), description="CHEST AX DR ROE RICHARD")
    out = tmp_path / "out"
    options = dict(workers=1, rules=RULES, scorer=description_scorer, progress=False, masks=False, qc=False)
    plain = score_studies(root, out=out, **options)
    assert list(plain["series_description"]) == ["CHEST AX DR ROE RICHARD"]
    key_file = tmp_path / "secret.key"
    key_file.write_text("c" * 64 + "\n")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(InvalidArgumentError, match="without pseudonyms.*new, empty output folder"):
        score_studies(root, out=out, pseudonym_key=key_file, **options)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing written
    pseudo = tmp_path / "pseudo"
    table = score_studies(root, out=pseudo, pseudonym_key=key_file, **options)
    assert table["series_description"].isna().all() and list(table["patient_id"])[0].startswith("anon-")
    again = score_studies(root, out=pseudo, pseudonym_key=key_file, **options)
    assert again.attrs["summary"]["n_resumed"] == 1  # same key: resumed
    other = tmp_path / "other.key"
    other.write_text("d" * 64 + "\n")
    with pytest.raises(InvalidArgumentError, match="with pseudonym key"):
        score_studies(root, out=pseudo, pseudonym_key=other, **options)
    with pytest.raises(InvalidArgumentError, match="this run is without pseudonyms"):
        score_studies(root, out=pseudo, **options)


def test_script_without_main_guard_gets_a_clear_error(tmp_path: Path) -> None:
    # the README's `table = score_studies(...)` pasted into a script: each spawned worker re-ran the
    # script, hit the output lock, died, and every scan became "killed by the system: out of memory?"
    root = _tree(tmp_path / "in", n_patients=2)
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from imaging.io.selection import SelectionRules\n"
        "from imaging.pipeline.batch import score_studies\n"
        "from tests.imaging.batch_helpers import toy_scorer\n"
        f"table = score_studies({str(root)!r}, out={str(tmp_path / 'out')!r}, workers=2, progress=False,\n"
        "                      rules=SelectionRules(min_slices=4), scorer=toy_scorer, masks=False, qc=False)\n"
        "print('ERRORS', list(table['error']))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert "if __name__ == \"__main__\":" in done.stderr  # each worker says why it stopped
    assert "is in use by process" not in done.stderr  # not the misleading lock message
    errors = done.stdout.split("ERRORS", 1)[1]
    assert "__main__" in errors  # the error rows name the likely cause, not only memory
