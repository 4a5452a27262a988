"""``chestct inspect``: table, --json, --csv, overrides and exit codes."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from pydicom.uid import generate_uid

from imaging.cli.main import main
from tests.imaging.dicom_synth import write_series

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def study(tmp_path):
    uid = generate_uid()
    _, _, _, thin = write_series(tmp_path / "thin", n=20, spacing=1.0, thickness=1.0, study_uid=uid, series_number=2)
    _, _, _, thick = write_series(tmp_path / "thick", n=20, spacing=5.0, thickness=5.0, study_uid=uid, series_number=3)
    (tmp_path / "shot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    return tmp_path, uid, thin, thick


def test_table_names_chosen_series_and_reasons(study, capsys):
    root, uid, thin, thick = study
    assert main(["inspect", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"study {uid}" in out and f"chosen: {thin}" in out
    assert "passed over: eligible, but thicker (5 mm vs 1 mm)" in out
    assert "1 not DICOM" in out


def test_json_output(study, capsys):
    root, uid, thin, thick = study
    assert main(["inspect", str(root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (st,) = doc["studies"]
    assert st["study_uid"] == uid and st["chosen_series_uid"] == thin
    assert {s["series_uid"]: s["chosen"] for s in st["series"]} == {thin: True, thick: False}
    assert doc["skipped_files"][0]["reason"] == "not DICOM: PNG image"


def test_csv_output_and_override(study, capsys):
    root, uid, thin, thick = study
    assert main(["inspect", str(root), "--csv", "--choose", f"{uid}={thick}"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(frame) == 2
    chosen = frame.loc[frame["chosen"], "series_uid"].tolist()
    assert chosen == [thick]


def test_rules_options(study, capsys):
    root, uid, thin, thick = study
    assert main(["inspect", str(root), "--json", "--min-slices", "30"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["studies"][0]["chosen_series_uid"] is None


def test_empty_folder_exits_1_and_missing_root_exits_2(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 1
    assert "no DICOM image series found" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_bad_override_is_a_usage_error(study, capsys):
    root, uid, thin, thick = study
    assert main(["inspect", str(root), "--choose", "nonsense"]) == 2
    assert "STUDY_UID=SERIES_UID" in capsys.readouterr().err
    assert main(["inspect", str(root), "--choose", f"{uid}=1.2.3"]) == 2
    assert "not in this study" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_closed_stdout_ends_quietly_with_141(study, monkeypatch, capsys, extra):
    """``chestct inspect ROOT | head -1``: the reader goes away; no traceback, exit 141."""
    import os

    root, *_ = study
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone
    closed = open(write_end, "w", buffering=1)  # line-buffered: the first line hits the pipe
    monkeypatch.setattr("sys.stdout", closed)
    try:
        assert main(["inspect", str(root), *extra]) == 141
    finally:
        monkeypatch.undo()
        closed.close()  # stdout now points at devnull: closing raises nothing
    assert "Traceback" not in capsys.readouterr().err


def test_choose_for_a_study_not_found_is_a_usage_error(study, capsys):
    root, uid, thin, thick = study
    assert main(["inspect", str(root), "--choose", "1.2.3=4.5.6"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "study UID 1.2.3" in err[0] and uid in err[0], err  # names the UID and what was found


def test_thickness_and_kernel_options_change_the_choice(study, capsys):
    root, uid, thin, thick = study
    assert main(["inspect", str(root), "--json", "--thickness", "4", "6", "--kernel", "lung"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["studies"][0]["chosen_series_uid"] == thick
    assert doc["rules"]["thickness_range_mm"] == [4.0, 6.0] and doc["rules"]["kernel_preference"] == ["LUNG"]
    assert main(["inspect", str(root), "--thickness", "6", "4"]) == 2
    assert "thickness_range_mm" in capsys.readouterr().err


def test_csv_keeps_series_numbers_whole_when_one_is_missing(study, capsys):
    root, uid, thin, thick = study
    write_series(root / "nonum", n=20, spacing=2.0, thickness=2.0, study_uid=uid,
                 edit=lambda ds, k: delattr(ds, "SeriesNumber"))
    assert main(["inspect", str(root), "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split(",")
    numbers = sorted(line.split(",")[header.index("series_number")] for line in lines[1:])
    assert numbers == ["", "2", "3"], numbers  # not "2.0", "3.0"


@pytest.mark.parametrize("fmt", [[], ["--json"], ["--csv"]])
def test_no_patient_name_or_birth_date_is_printed(study, capsys, fmt):
    root, uid, *_ = study
    write_series(root / "named", n=3, study_uid=uid, series_number=9,
                 edit=lambda ds, k: setattr(ds, "PatientBirthDate", "19450317"))  # 19450317: never inside a UID by chance
    assert main(["inspect", str(root), *fmt]) == 0
    out = capsys.readouterr().out.replace(str(root), "ROOT")  # the tmp folder is named after this test
    assert "Anon" not in out and "19450317" not in out and "1945-03-17" not in out and "birth" not in out.lower()


@pytest.mark.parametrize("blank", ["", "  "])
def test_blank_kernel_name_is_a_usage_error(study, capsys, blank):
    # a blank substring matches every kernel: the preference would silently vanish
    root, *_ = study
    assert main(["inspect", str(root), "--kernel", "lung", "--kernel", blank]) == 2
    assert "--kernel" in capsys.readouterr().err
