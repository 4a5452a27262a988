"""``compare_arms`` / ``chestct compare`` on the input mistakes of real trial tables: DICOM
and day-first dates, arm labels differing in case, clashing column names, other separators,
IDs differing in case, and the units of the key results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from imaging.cli.main import main
from imaging.trial.compare import compare_arms
from imaging.common.errors import InvalidTableError
from imaging.trial.report import key_results
from imaging.trial.dates import parse_study_dates
from tests.imaging.trial.test_compare import make_trial

FAST = {"rng": 0, "n_boot": 200, "strata": []}


def _trial(seed=4, **kw):
    return make_trial(np.random.default_rng(seed), n_per_arm=3, jitter=False, **kw)


def _cli(tmp_path, scores, arms, *extra):
    scores.to_csv(tmp_path / "scores.csv", index=False)
    arms.to_csv(tmp_path / "arms.csv", index=False)
    return main(["compare", str(tmp_path / "scores.csv"), str(tmp_path / "arms.csv"), "-o", str(tmp_path / "rep"),
                 "--n-boot", "200", "--no-strata", *extra])


# ------------------------------------------------------------------ 1. DICOM YYYYMMDD dates


def test_yyyymmdd_dates_as_text_or_integers_are_dates(tmp_path, capsys):
    scores, arms = _trial()
    iso = compare_arms(scores, arms, mixed=True, **FAST)
    compact = scores["study_date"].str.replace("-", "")
    for dates in (compact, compact.astype(int), compact.astype(int).astype(float)):
        res = compare_arms(scores.assign(study_date=dates), arms, mixed=True, **FAST)
        assert res.settings["visit_order"] == ["day 0", "day 7", "day 21"]
        assert res.warnings.query("kind == 'bad_date'").empty
        pd.testing.assert_frame_equal(res.changes, iso.changes)
        slope = res.tests.query("test == 'mixed_model' and metric == 'percent_opacity'")["estimate"].iloc[0]
        assert abs(slope) < 5  # points per day, not 1e12 from dates read as nanoseconds
    # through a CSV file, where the reader sees integers
    assert _cli(tmp_path, scores.assign(study_date=compact.astype(int)), arms) == 0
    doc = json.loads((tmp_path / "rep" / "comparison.json").read_text())
    assert doc["settings"]["visit_order"] == ["day 0", "day 7", "day 21"]
    assert "e-1" not in capsys.readouterr().out


def test_unreadable_numeric_dates_are_bad_date_warnings():
    scores, arms = _trial()
    scores["study_date"] = scores["study_date"].astype(object)
    scores.loc[1, "study_date"] = "20201341"  # month 13
    scores.loc[4, "study_date"] = 43880  # a spreadsheet serial number, not a date
    res = compare_arms(scores, arms, mixed=False, **FAST)
    bad = res.warnings.query("kind == 'bad_date'")
    assert bad["patient_id"].tolist() == ["P000", "P001"]
    assert bad["detail"].str.contains("YYYYMMDD").all() and bad["detail"].str.contains("43880").any()
    assert res.settings["visit_order"] == ["day 0", "day 7", "day 21"]


# ------------------------------------------------------------------ 2. day-first dates


def test_day_first_dates_are_refused_unless_the_format_is_given(tmp_path, capsys):
    scores, arms = _trial()
    iso = compare_arms(scores, arms, mixed=False, **FAST)
    day_first = scores.assign(study_date=pd.to_datetime(scores["study_date"]).dt.strftime("%d/%m/%Y"))
    with pytest.raises(InvalidTableError, match=r"never guessed.*YYYY-MM-DD.*date_format='%d/%m/%Y'"):
        compare_arms(day_first, arms, mixed=False, **FAST)
    got = compare_arms(day_first, arms, mixed=False, date_format="%d/%m/%Y", **FAST)
    pd.testing.assert_frame_equal(got.changes, iso.changes)
    assert got.settings["date_format"] == "%d/%m/%Y"
    # one value alone that is day-first only (17/02) is refused too: nothing is guessed
    with pytest.raises(InvalidTableError, match="can only be day-first"):
        parse_study_dates(["17/02/2020"])

    assert _cli(tmp_path, day_first, arms) == 2
    assert "--date-format '%d/%m/%Y'" in capsys.readouterr().err
    assert _cli(tmp_path, day_first, arms, "--date-format", "%d/%m/%Y") == 0


# ------------------------------------------------------------------ 3. arm labels and reference


@pytest.mark.parametrize("variant", ["Placebo", "placebo ", "PLACEBO"])
def test_arm_labels_differing_only_in_case_or_whitespace_are_refused(variant, tmp_path, capsys):
    scores, arms = _trial()
    arms.loc[arms.index[-1], "arm"] = variant
    with pytest.raises(InvalidTableError, match="differ only in case or whitespace") as err:
        compare_arms(scores, arms, mixed=False, **FAST)
    assert repr(variant) in str(err.value) and "'placebo'" in str(err.value)
    assert _cli(tmp_path, scores, arms) == 2
    assert repr(variant) in capsys.readouterr().err


def test_reference_arm_and_its_rule_are_recorded_and_printed(tmp_path, capsys):
    scores, arms = _trial()
    res = compare_arms(scores, arms, mixed=False, **FAST)
    assert res.settings["reference_arm"] == "placebo"
    assert "only arm named by a reference term" in res.settings["reference_rule"]
    # no placebo-like name: alphabetically first, and the outputs say so
    renamed = arms.assign(arm=arms["arm"].map({"MSC": "MSC", "placebo": "vehicle"}))
    res = compare_arms(scores, renamed, mixed=False, **FAST)
    assert res.settings["reference_arm"] == "MSC"
    assert "alphabetically first" in res.settings["reference_rule"]
    assert any("minus MSC (reference arm: default: alphabetically first" in n for n in res.notes)
    assert _cli(tmp_path, scores, renamed) == 0
    out = capsys.readouterr().out
    assert "vehicle minus MSC (reference arm: default: alphabetically first" in out and "--reference-arm" in out
    doc = json.loads((tmp_path / "rep" / "comparison.json").read_text())
    assert doc["settings"]["reference_arm"] == "MSC" and "alphabetically" in doc["settings"]["reference_rule"]


def test_reference_arm_named_by_the_term_alone_beats_a_combination_arm():
    # arms MSC, MSC + SOC and SOC: two names contain "SOC", and MSC was taken as the reference
    from imaging.trial.arms import choose_reference, reference_rule

    arms = ["MSC", "MSC + SOC", "SOC"]
    assert choose_reference(arms, None) == "SOC" and "term alone" in reference_rule(arms, None)
    assert choose_reference(["Drug + standard of care", "Standard of care"], None) == "Standard of care"
    assert choose_reference(["A + SOC", "B + SOC"], None) == "A + SOC"  # ambiguous: alphabetically first
    assert "alphabetically first" in reference_rule(["A + SOC", "B + SOC"], None)
    assert choose_reference(["associate", "MSC"], None) == "MSC"  # "soc" inside a word is no match
    assert reference_rule(["associate", "MSC"], None).startswith("default: alphabetically first, as no arm")


# ------------------------------------------------------------------ 5. clashing column names


def test_arms_columns_named_like_scores_columns_do_not_crash():
    scores, arms = _trial()
    scores["notes"] = "scan note"
    arms["notes"] = np.where(np.arange(len(arms)) % 2, "site A", "site B")
    arms["percent_opacity"] = 1.0  # named like a metric
    arms["day"] = "x"  # named like a scores column the analysis needs
    plain = compare_arms(scores.drop(columns="notes"), arms[["patient_id", "arm"]], mixed=False, **FAST)
    res = compare_arms(scores, arms, mixed=False, rng=0, n_boot=200)
    assert res.settings["strata"] == ["severity", "notes", "percent_opacity_arms", "day_arms"]
    renamed = res.warnings.query("kind == 'arms_column_renamed'")["detail"].tolist()
    assert len(renamed) == 2 and "'percent_opacity_arms'" in renamed[0] and "'day_arms'" in renamed[1]
    assert {"notes=site A", "notes=site B"} <= set(res.tests["stratum"])
    assert set(res.changes["notes"]) == {"site A", "site B"}  # the arms table's, not the scores'
    all_tests = res.tests.query("stratum == 'all'").drop(columns="stratum").reset_index(drop=True)
    pd.testing.assert_frame_equal(all_tests, plain.tests.drop(columns="stratum"))
    # an arm column in the scores table is not used either
    res = compare_arms(scores.assign(arm="wrong"), arms[["patient_id", "arm"]], mixed=False, **FAST)
    assert set(res.changes["arm"]) == {"MSC", "placebo"}


# ------------------------------------------------------------------ messages


def test_semicolon_and_tab_separated_csv_are_read(tmp_path, capsys):
    scores, arms = _trial()
    scores.to_csv(tmp_path / "scores.csv", index=False, sep=";")
    arms.to_csv(tmp_path / "arms.csv", index=False, sep=";")
    arms.to_csv(tmp_path / "arms.txt", index=False, sep="\t")
    expected = compare_arms(scores, arms, mixed=False, **FAST).tests
    for arms_file in ("arms.csv", "arms.txt"):
        got = compare_arms(tmp_path / "scores.csv", tmp_path / arms_file, mixed=False, **FAST).tests
        pd.testing.assert_frame_equal(got, expected)
    # a table whose columns were glued by a wrong separator says so
    glued = pd.DataFrame({"patient_id;arm": ["P000;MSC"]})
    with pytest.raises(InvalidTableError, match="separated by ';'"):
        compare_arms(scores, glued)


def test_ids_equal_ignoring_case_are_hinted_not_merged():
    scores, arms = _trial()
    arms.loc[0, "patient_id"] = "p000"
    res = compare_arms(scores, arms, mixed=False, **FAST)
    no_arm = res.warnings.query("kind == 'no_arm'")
    no_scans = res.warnings.query("kind == 'no_scans'")
    assert no_arm["patient_id"].tolist() == ["P000"] and "'p000'" in no_arm["detail"].iloc[0]
    assert no_scans["patient_id"].tolist() == ["p000"] and "'P000'" in no_scans["detail"].iloc[0]
    assert "ignoring case" in no_arm["detail"].iloc[0]
    assert "P000" not in set(res.changes["patient_id"])  # not merged


def test_key_results_units_follow_the_tested_outcome():
    scores, arms = _trial(effect=-8)
    res = compare_arms(scores, arms, mixed=False, outcome="relative_change_pct", metrics=["percent_opacity"],
                       **FAST)
    kr = key_results(res).set_index("visit")
    assert not any(c.startswith("median change ") and "%" not in c for c in kr.columns)
    assert "HL difference [CI]" not in kr.columns
    summ = res.summary.query("stratum == 'all' and visit == 'day 21' and outcome == 'relative_change_pct' "
                             "and arm == 'MSC'")
    assert kr.loc["day 21", "median change, % of baseline MSC"] == f"{summ['median'].iloc[0]:.3g}"
    hl = res.tests.query("stratum == 'all' and visit == 'day 21' and test == 'hodges_lehmann'").iloc[0]
    assert kr.loc["day 21", "HL difference, % of baseline [CI]"].startswith(f"{hl['estimate']:.3g} [")
    assert "ANCOVA difference in value, metric units [CI]" in kr.columns
    value = key_results(compare_arms(scores, arms, mixed=False, outcome="value", metrics=["percent_opacity"], **FAST))
    assert {"median value MSC", "HL difference in value [CI]"} <= set(value.columns)


# ------------------------------------------------------------------ tables built in Python


def test_scores_concatenated_without_ignore_index_are_read_row_by_row():
    """pd.concat of per-site tables repeats index labels: a failed scan crashed the join
    (``.loc`` of a repeated label gave several rows) or could mark its twin row as well."""
    scores, arms = _trial(seed=8)
    scores.loc[3, "error"] = "NotAChestError: no chest to score"
    half = len(scores) // 2
    glued = pd.concat([scores.iloc[:half].reset_index(drop=True), scores.iloc[half:].reset_index(drop=True)])
    assert glued.index.has_duplicates
    ref = compare_arms(scores, arms, mixed=False, **FAST)
    res = compare_arms(glued, arms, mixed=False, **FAST)
    assert (res.scans["status"] != "used").sum() == (ref.scans["status"] != "used").sum() >= 1
    pd.testing.assert_frame_equal(res.warnings, ref.warnings)
    pd.testing.assert_frame_equal(res.changes, ref.changes)


def test_time_zone_aware_study_dates_are_dates():
    """Timestamps with a time zone (e.g. from a database) raised a pandas TypeError."""
    scores, arms = _trial(seed=9)
    ref = compare_arms(scores, arms, mixed=False, **FAST)
    local = pd.to_datetime(scores["study_date"]).dt.tz_localize("Europe/Berlin") + pd.Timedelta(hours=23)
    res = compare_arms(scores.assign(study_date=local), arms, mixed=False, **FAST)
    assert res.warnings.query("kind == 'bad_date'").empty
    pd.testing.assert_frame_equal(res.changes, ref.changes)


def test_ids_that_lost_leading_zeros_are_hinted_and_shown_in_the_error():
    """Arms saved through a spreadsheet turn '007' into 7: nothing joins, and the error
    only listed warning kinds, with the warnings table never returned."""
    scores, arms = _trial()
    scores["patient_id"] = scores["patient_id"].str.replace("P", "", regex=False)  # '000', '001', ...
    arms["patient_id"] = arms["patient_id"].str.replace("P", "", regex=False).astype(int)
    with pytest.raises(InvalidTableError, match=r"patient 000 has 3 scan\(s\) but no arm.*the arms table has '0', "
                                                r"equal ignoring case/whitespace/leading zeros"):
        compare_arms(scores, arms, mixed=False, **FAST)


def test_infinite_metric_values_are_missing_values_not_a_crash():
    """An inf (e.g. a ratio over a 0 mL lung) raised "baseline and change must be finite;
    drop missing values first" from deep inside the response classification."""
    scores, arms = _trial(seed=10)
    scores.loc[4, "percent_opacity"] = np.inf
    res = compare_arms(scores, arms, metrics=["percent_opacity"], mixed=False, **FAST)
    miss = res.warnings.query("kind == 'missing_value'")
    assert len(miss) == 1 and "inf (not a finite number)" in miss["detail"].iloc[0]
    assert np.isfinite(res.changes["value"]).all() and len(res.changes) == len(scores) - 1


def test_non_numeric_metric_error_shows_an_offending_value():
    scores, arms = _trial()
    scores["percent_opacity"] = scores["percent_opacity"].astype(object)
    scores.loc[5, "percent_opacity"] = "n/a"
    with pytest.raises(InvalidTableError, match=r"'percent_opacity' is not numeric: 1 value\(s\) such as 'n/a'"):
        compare_arms(scores, arms, **FAST)


def test_one_stratum_as_a_string_and_a_metric_named_twice():
    """strata="severity" was read letter by letter ("lacks column(s) ['s', 'e', ...]");
    a metric listed twice doubled its rows in the tests table."""
    scores, arms = _trial()
    opts = {**FAST, "strata": "severity"}
    res = compare_arms(scores, arms, metrics=["percent_opacity", "percent_opacity"], mixed=False, **opts)
    assert res.settings["strata"] == ["severity"] and res.settings["metrics"] == ["percent_opacity"]
    once = compare_arms(scores, arms, metrics=["percent_opacity"], mixed=False, **{**FAST, "strata": ["severity"]})
    pd.testing.assert_frame_equal(res.tests, once.tests)


def test_study_dates_with_times_count_calendar_days():
    """Dates with a time of day (ISO 'T14:05' or DICOM DT) gave fractional days, so without
    nominal visits every scan became its own visit ('day 6.88', 'day 7.05', ...) of one patient."""
    scores, arms = _trial(seed=11)
    ref = compare_arms(scores, arms, mixed=False, **FAST)
    hours = np.random.default_rng(0).integers(8, 18, len(scores))
    iso = scores["study_date"] + pd.Series([f"T{h:02d}:05" for h in hours])
    dicom = scores["study_date"].str.replace("-", "") + pd.Series([f"{h:02d}0500" for h in hours])
    for dates in (iso, dicom):
        res = compare_arms(scores.assign(study_date=dates), arms, mixed=False, **FAST)
        assert res.settings["visit_order"] == ["day 0", "day 7", "day 21"]
        pd.testing.assert_frame_equal(res.changes, ref.changes)


# ------------------------------------------------------------------ spreadsheet exports


def _excel_csv(path, frame, *, sep=",", trailing_cols=2, trailing_rows=3, decimal="."):
    """``frame`` as a spreadsheet exports it: UTF-8 BOM, CRLF, empty columns and rows at the end."""
    body = frame.to_csv(index=False, sep=sep, decimal=decimal, lineterminator="\n").splitlines()
    lines = [line + sep * trailing_cols for line in body]
    lines += [sep * (len(frame.columns) - 1 + trailing_cols)] * trailing_rows
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


def test_excel_export_with_empty_rows_and_columns_and_spaced_labels(tmp_path, capsys):
    """Trailing empty columns became a stratum 'Unnamed: 2' (the report said every analysis
    was repeated within it) and trailing empty rows became missing_patient_id warnings."""
    scores, arms = _trial()
    arms = arms[["patient_id", "arm"]]
    expected = compare_arms(scores, arms, mixed=False, **{**FAST, "strata": None}).tests
    arms = arms.assign(arm=arms["arm"] + " ")  # every label with a trailing space
    arms = pd.concat([arms, pd.DataFrame({"patient_id": ["P999"], "arm": ["placebo "]})], ignore_index=True)
    _excel_csv(tmp_path / "scores.csv", scores)
    _excel_csv(tmp_path / "arms.csv", arms)
    res = compare_arms(tmp_path / "scores.csv", tmp_path / "arms.csv", mixed=False, **{**FAST, "strata": None})
    assert res.settings["strata"] == []
    assert not any(str(c).startswith("Unnamed") for c in res.changes.columns)
    assert set(res.warnings["kind"]) == {"no_scans"} and res.warnings["patient_id"].tolist() == ["P999"]
    pd.testing.assert_frame_equal(res.tests, expected)


def test_semicolon_csv_with_decimal_commas_and_spaced_headers(tmp_path):
    scores, arms = _trial()
    expected = compare_arms(scores, arms, mixed=False, **FAST).tests
    _excel_csv(tmp_path / "scores.csv", scores.rename(columns={"percent_opacity": " percent_opacity "}),
               sep=";", decimal=",")
    _excel_csv(tmp_path / "arms.csv", arms, sep=";")
    got = compare_arms(tmp_path / "scores.csv", tmp_path / "arms.csv", mixed=False, **FAST).tests
    pd.testing.assert_frame_equal(got, expected)


def test_messages_name_the_file_row_and_column(tmp_path, capsys):
    scores, arms = _trial()
    scores["percent_opacity"] = scores["percent_opacity"].map(lambda v: f"{v:.1f}".replace(".", ","))
    assert _cli(tmp_path, scores, arms) == 2
    err = capsys.readouterr().err
    assert "scores.csv' column 'percent_opacity' is not numeric" in err
    assert f"data row 1, patient_id {scores['patient_id'].iloc[0]}" in err and "decimal comma" in err
    scores, arms = _trial()
    arms.loc[0, "arm"] = arms.loc[0, "arm"].swapcase()
    assert _cli(tmp_path, scores, arms) == 2
    assert "arms table '" in capsys.readouterr().err
    scores["study_date"] = pd.to_datetime(scores["study_date"]).dt.strftime("%d/%m/%Y")
    assert _cli(tmp_path, scores, _trial()[1]) == 2
    assert "scores table '" in capsys.readouterr().err
    (tmp_path / "arms.csv").write_bytes("patient_id,arm,site\nP000,MSC,H\xf4pital\n".encode("cp1252"))
    assert main(["compare", str(tmp_path / "scores.csv"), str(tmp_path / "arms.csv"), "-o", str(tmp_path / "r")]) == 2
    assert "CSV UTF-8" in capsys.readouterr().err


def test_negative_seed_and_a_visit_label_given_twice_are_usage_errors(tmp_path, capsys):
    scores, arms = _trial()
    assert _cli(tmp_path, scores, arms, "--seed", "-1") == 2
    assert "--seed must be an integer >= 0, got -1" in capsys.readouterr().err
    # a visit label given twice kept the last window silently
    assert _cli(tmp_path, scores, arms, "--visit", "day 7=7:2", "--visit", "day 7=21:3") == 2
    assert "--visit label(s) given twice: ['day 7']" in capsys.readouterr().err
    assert not (tmp_path / "rep").exists()


def test_a_scan_without_patient_id_is_named_by_its_1_based_data_row():
    """The warning said "row 2" for the third data row (a 0-based index)."""
    scores, arms = _trial()
    scores = scores.drop(columns=["series_uid"])
    scores.loc[2, "patient_id"] = None
    res = compare_arms(scores, arms, mixed=False, **FAST)
    detail = res.warnings.loc[res.warnings["kind"] == "missing_patient_id", "detail"].tolist()
    assert detail == ["study_date=" + str(scores.loc[2, "study_date"]) + " has no patient_id"]
    scores.loc[2, "study_date"] = None
    res = compare_arms(scores, arms, mixed=False, **FAST)
    assert res.warnings.loc[res.warnings["kind"] == "missing_patient_id", "detail"].tolist() == [
        "data row 3 has no patient_id"]


def test_patients_without_a_stratum_value_are_warned_about_and_an_empty_strata_column_dropped():
    scores = pd.DataFrame({"patient_id": list("aabbccdd"), "day": [0, 7] * 4,
                           "percent_opacity": [20, 10, 30, 25, 25, 26, 22, 21.0]})
    arms = pd.DataFrame({"patient_id": list("abcd"), "arm": ["MSC", "MSC", "placebo", "placebo"],
                         "severity": ["mild", "severe", " ", "mild"], "site": [None] * 4})
    res = compare_arms(scores, arms, rng=0, n_boot=100, mixed=False)
    kinds = res.warnings.groupby("kind")["patient_id"].apply(list).to_dict()
    assert kinds.get("missing_stratum") == ["c"]  # a blank cell is no value
    assert "empty_stratum" in kinds and res.settings["strata"] == ["severity"]
    assert not any("site" in s for s in res.tests["stratum"].unique())
