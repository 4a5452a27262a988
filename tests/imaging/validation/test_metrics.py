"""Agreement measures: Dice, pooled Dice, percents, errors against truth."""

from __future__ import annotations

import math

import numpy as np

from imaging.validation.metrics import PooledDice, dice, errors_against_truth, percent, value_range


def test_dice_of_overlapping_disjoint_and_empty_masks():
    a = np.zeros((3, 4), bool)
    a[0] = True
    assert dice(a, a) == 1.0
    assert dice(a, ~a) == 0.0
    assert dice(np.zeros(5), np.zeros(5)) == 1.0  # nothing to find, nothing found
    assert dice([1, 2, 0, 0], [1, 0, 0, 3]) == 0.5  # any nonzero label counts as inside


def test_pooled_dice_sums_overlaps_before_dividing():
    tally = PooledDice()
    assert tally.value == 0.0
    tally.add([1, 0, 0, 0], [1, 0, 0, 0])  # Dice 1 alone
    tally.add([1, 1, 1, 1], [0, 0, 0, 0])  # Dice 0 alone
    assert tally.value == 2 * 1 / (2 + 4)


def test_percent_and_value_range():
    assert percent(1, 4) == 25.0 and percent(3, 0) == 300.0
    assert value_range([0.1234, 0.1234]) == "0.123"
    assert value_range([2.0, -1.0], digits=1) == "-1.0..2.0"


def test_errors_against_truth_counts_agreement_by_severity():
    row = errors_against_truth([10.0, 20.0, 40.0, 50.0], [11.0, 25.0, 39.0, 45.0])
    assert row["scans"] == 4
    assert math.isclose(row["mean_error"], (1 + 5 - 1 - 5) / 4)
    assert row["mean_abs_error"] == 3.0 and row["max_abs_error"] == 5.0
    assert row["within_2"] == "2/4"
    assert row["within_2_truth_le_30"] == "1/2" and row["within_2_truth_gt_30"] == "1/2"
    assert 0.9 < row["pearson_r"] <= 1.0
    assert math.isnan(errors_against_truth([1.0], [1.0])["pearson_r"])
