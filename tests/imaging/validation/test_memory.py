"""Time and peak memory of a step (Linux /proc)."""

from __future__ import annotations

from imaging.validation.memory import measure, proc_status_kib


def test_measure_takes_the_median_and_the_peak():
    calls = []
    out, m = measure(lambda: calls.append(1) or len(calls), repeats=3)
    assert out == 3 and m["peak_mb"] >= proc_status_kib("VmRSS") / 1024 * 0.5
    assert proc_status_kib("NoSuchField", default=-1) == -1
