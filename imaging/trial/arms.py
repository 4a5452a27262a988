"""The arms table: its checks, the reference arm, and the join of arms to scans.

:func:`prepare_arms` checks the arms table (one row per patient, labels as text,
arm labels that differ only in case or whitespace refused by :func:`check_arm_labels`);
:func:`rename_clashing_strata` and :func:`check_strata_values` settle the strata
columns; :func:`choose_reference` picks the reference arm and :func:`reference_rule`
says how; :func:`join_arms` joins arms to the usable scans, warning about every patient
or arm found in one table only (with a hint when IDs differ only in spelling).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from imaging.common.errors import InvalidTableError
from imaging.trial.tables import _ids, _require_columns, _table_label, _warn

__all__ = [
    "prepare_arms",
    "check_arm_labels",
    "check_strata_values",
    "rename_clashing_strata",
    "reference_rule",
    "choose_reference",
    "join_arms",
]


_REFERENCE_PATTERN = re.compile(r"placebo|control|standard|usual|\bsoc\b", re.IGNORECASE)


#: An arm named by the reference term alone ("SOC", "Placebo", "standard of care") is taken
#: before arms that only contain one ("MSC + SOC").
_REFERENCE_NAME = re.compile(r"\s*(placebo|controls?|standard( of)? care|standard|usual care|soc)\s*", re.IGNORECASE)


def prepare_arms(
    arms: pd.DataFrame, strata: Sequence[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    """Check the arms table: one row per patient, IDs and labels as text.

    Returns
    -------
    arm_table : DataFrame
        ``patient_id, arm, <strata>`` (missing arms as None).
    strata : list of str
        The strata columns (default: every column besides ``patient_id`` and ``arm``).

    Raises
    ------
    InvalidTableError
        A column is missing, a patient has two different rows, or two arm labels differ
        only in case or whitespace (:func:`check_arm_labels`).
    """
    _require_columns(arms, ["patient_id", "arm"], "arms", "It needs one row per patient: patient_id, arm.")
    table = arms.copy()
    table["patient_id"] = _ids(table["patient_id"])
    table = table[table["patient_id"].notna()]
    check_arm_labels(table["arm"], table=_table_label(arms, "arms"))
    table["arm"] = table["arm"].astype("object").where(table["arm"].notna(), None).map(
        lambda v: None if v is None or str(v).strip() == "" else str(v).strip())
    if strata is None:
        strata = [c for c in table.columns if c not in ("patient_id", "arm")]
    else:
        strata = [strata] if isinstance(strata, str) else list(dict.fromkeys(str(s) for s in strata))
        _require_columns(table, strata, "arms", "Name only strata columns of the arms table.")
    table = table[["patient_id", "arm", *strata]].drop_duplicates()
    clash = table[table.duplicated("patient_id", keep=False)]
    if not clash.empty:
        detail = "; ".join(f"{pid}: {sorted(map(str, g['arm'].tolist()))}" for pid, g in clash.groupby("patient_id"))
        raise InvalidTableError(f"{_table_label(arms, 'arms')} gives some patients two arms or strata: {detail}. "
                                "Keep one row per patient.")
    for col in strata:
        table[col] = table[col].astype("object").where(table[col].notna(), None).map(
            lambda v: None if v is None or str(v).strip() == "" else str(v).strip())
    return table.reset_index(drop=True), list(strata)


def check_strata_values(arm_table: pd.DataFrame, strata: Sequence[str],
                        warn: list[dict[str, Any]]) -> list[str]:
    """Warn about patients without a stratum value; drop strata columns without values.

    Parameters
    ----------
    arm_table : DataFrame
        From :func:`prepare_arms` (missing values as None).
    strata : sequence of str
        Its strata columns.
    warn : list of dict
        Warning rows (:data:`WARNING_KINDS`), appended to.

    Returns
    -------
    list of str
        The strata columns holding at least one value.
    """
    kept = []
    for col in strata:
        missing = arm_table.loc[arm_table[col].isna(), "patient_id"]
        if len(missing) == len(arm_table):
            _warn(warn, "empty_stratum", None, None, f"strata column {col!r} of the arms table has no values: not used")
            continue
        kept.append(col)
        for pid in missing:
            _warn(warn, "missing_stratum", pid, None,
                  f"patient {pid} has no {col!r} value: left out of the analyses within {col} levels")
    return kept


def _label_key(label: str) -> str:
    """A label case-folded with its whitespace runs removed: the key two labels must not share."""
    return "".join(str(label).split()).casefold()


def check_arm_labels(labels: Any, *, table: str = "arms table") -> None:
    """Refuse arm labels that differ only in case or whitespace (``placebo`` / ``Placebo ``).

    They are not merged silently: either they are one arm misspelt (then the analysis
    would split it) or they are meant to differ (then the names are too alike to report).
    ``table`` names the table in the message (e.g. ``"arms table 'arms.csv'"``).

    Raises
    ------
    InvalidTableError
        Naming every group of variants and their row counts.

    Examples
    --------
    >>> check_arm_labels(["MSC", "placebo", "MSC"])
    >>> check_arm_labels(["MSC", "placebo", "Placebo "])
    Traceback (most recent call last):
    ...
    imaging.common.errors.InvalidTableError: arms table: arm labels differ only in case or whitespace: 'Placebo ' (1 row) / 'placebo' (1 row). Write each arm exactly one way in the arms table.
    """
    raw = pd.Series(list(labels), dtype=object).dropna().map(str)
    raw = raw[raw.str.strip() != ""]
    groups: dict[str, dict[str, int]] = {}
    for label, count in raw.value_counts(sort=False).items():
        groups.setdefault(_label_key(label), {})[label] = int(count)
    clashes = [variants for variants in groups.values() if len(variants) > 1]
    if clashes:
        detail = "; ".join(" / ".join(f"{v!r} ({n} row{'s' if n != 1 else ''})" for v, n in sorted(variants.items()))
                           for variants in clashes)
        raise InvalidTableError(
            f"{table}: arm labels differ only in case or whitespace: {detail}. "
            "Write each arm exactly one way in the arms table."
        )


#: Result and scores columns an arms-table column may not shadow in the joined tables.
_RESERVED_COLUMNS = frozenset({
    "patient_id", "arm", "study_date", "series_uid", "day", "visit", "target_day", "status", "error",
    "visit_order", "metric", "baseline", "value", "change", "relative_change_pct", "category", "stratum",
})


def rename_clashing_strata(
    arm_table: pd.DataFrame, strata: Sequence[str], reserved: Sequence[str], warn: list[dict[str, Any]]
) -> tuple[pd.DataFrame, list[str]]:
    """Rename arms-table columns named like a metric or a scores/result column (suffix ``_arms``).

    Parameters
    ----------
    arm_table : DataFrame
        From :func:`prepare_arms`.
    strata : sequence of str
        Its strata columns.
    reserved : sequence of str
        Further names in use (the compared metrics).
    warn : list of dict
        An ``arms_column_renamed`` row is appended per renamed column.

    Returns
    -------
    arm_table, strata
        With clashing columns renamed (``notes`` -> ``notes_arms``).
    """
    taken = set(_RESERVED_COLUMNS) | {str(r) for r in reserved}
    renames: dict[str, str] = {}
    for col in strata:
        if col in taken:
            new = f"{col}_arms"
            while new in taken or new in arm_table.columns:
                new += "_arms"
            renames[col] = new
            _warn(warn, "arms_column_renamed", None, None,
                  f"arms column {col!r} has the name of a scores or result column; it is used as {new!r}")
    if not renames:
        return arm_table, list(strata)
    return arm_table.rename(columns=renames), [renames.get(c, c) for c in strata]


def reference_rule(arm_names: list[str], reference_arm: str | None) -> str:
    """How :func:`choose_reference` picks the reference arm, in words (recorded in the outputs)."""
    if reference_arm is not None:
        return "given (reference_arm / --reference-arm)"
    if sum(bool(_REFERENCE_NAME.fullmatch(a)) for a in arm_names) == 1:
        return "default: the only arm named by a reference term alone (placebo/control/standard/usual care/SOC)"
    matches = [a for a in arm_names if _REFERENCE_PATTERN.search(a)]
    if len(matches) == 1:
        return "default: the only arm named placebo/control/standard/usual/SOC"
    why = "no arm" if not matches else f"{len(matches)} arms ({', '.join(matches)})"
    return (f"default: alphabetically first, as {why} named placebo/control/standard/usual/SOC; "
            "pass reference_arm / --reference-arm to choose")


def choose_reference(arm_names: list[str], reference_arm: str | None) -> str:
    """The reference arm: the one given, else the single placebo/control-named arm, else the first by name."""
    if reference_arm is not None:
        if str(reference_arm) not in arm_names:
            raise ValueError(f"reference_arm {reference_arm!r} is not an arm with scans; arms: {arm_names}")
        return str(reference_arm)
    for pattern in (_REFERENCE_NAME.fullmatch, _REFERENCE_PATTERN.search):
        matches = [a for a in arm_names if pattern(a)]
        if len(matches) == 1:
            return matches[0]
    return sorted(arm_names)[0]


def join_arms(scans: pd.DataFrame, arm_table: pd.DataFrame, baseline: str,
              warn: list[dict[str, Any]]) -> pd.DataFrame:
    """Join arms to the usable scans, recording every mismatch.

    Marks (in ``scans["status"]``, in place) scans of patients without an arm and of
    patients without a baseline scan; warns about arms-table patients and arms without
    scans.

    Returns
    -------
    DataFrame
        The used scans with the arm and strata columns.
    """
    used = scans[scans["status"] == "used"]
    with_arm = set(arm_table.loc[arm_table["arm"].notna(), "patient_id"])
    scan_ids = set(used["patient_id"])
    arm_keys = _keys_to_ids(with_arm)
    for pid in sorted(scan_ids - with_arm):
        n_scans = int((used["patient_id"] == pid).sum())
        _warn(warn, "no_arm", pid, None, f"patient {pid} has {n_scans} scan(s) but no arm in the arms table"
              + _near_miss(pid, arm_keys, "arms table"))
    scans.loc[(scans["status"] == "used") & ~scans["patient_id"].isin(with_arm), "status"] = "no_arm"
    used = scans[scans["status"] == "used"]
    scan_keys = _keys_to_ids(set(scans.loc[scans["patient_id"].notna(), "patient_id"]))
    for pid in sorted(with_arm - set(used["patient_id"])):
        _warn(warn, "no_scans", pid, None, f"patient {pid} is in the arms table but has no usable scan"
              + _near_miss(pid, scan_keys, "scores table"))
    arms_with_scans = set(arm_table.loc[arm_table["patient_id"].isin(set(used["patient_id"])), "arm"])
    for arm in sorted(set(arm_table["arm"].dropna()) - arms_with_scans):
        _warn(warn, "arm_without_scans", None, None, f"arm {arm!r} has no patient with usable scans")

    has_base = set(used.loc[used["visit"] == baseline, "patient_id"])
    for pid in sorted(set(used["patient_id"]) - has_base):
        _warn(warn, "missing_baseline", pid, baseline, f"patient {pid} has no scan at baseline visit {baseline!r}")
    scans.loc[(scans["status"] == "used") & ~scans["patient_id"].isin(has_base), "status"] = "missing_baseline"
    used = scans[scans["status"] == "used"]
    # the arms table is the source of arm and strata: same-named scores columns are not carried
    shadowed = [c for c in arm_table.columns if c != "patient_id" and c in used.columns]
    return used.drop(columns=shadowed).merge(arm_table, on="patient_id", how="left")


def _id_key(pid: str) -> str:
    """An ID case-folded, whitespace removed and leading zeros of digit runs dropped
    (``"P 007"`` -> ``"p7"``: a spreadsheet that read IDs as numbers lost those zeros)."""
    return re.sub(r"(?<!\d)0+(?=\d)", "", _label_key(pid))


def _keys_to_ids(ids: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pid in sorted(ids):
        out.setdefault(_id_key(pid), []).append(pid)
    return out


def _near_miss(pid: str, keys: dict[str, list[str]], where: str) -> str:
    """A hint when ``pid`` matches IDs of the other table only ignoring case, whitespace or
    leading zeros."""
    near = [p for p in keys.get(_id_key(pid), []) if p != pid]
    if not near:
        return ""
    return (f"; the {where} has {', '.join(map(repr, near))}, equal ignoring case/whitespace/leading zeros "
            "(IDs are matched exactly: fix the spelling in one table; read IDs as text to keep leading zeros)")
