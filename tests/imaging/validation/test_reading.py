"""Reader timing and the HU check on tiny synthetic series, and the header scan."""

from __future__ import annotations

import pytest

from imaging.validation.reading import (
    READERS,
    compare_readers,
    series_folder_in,
    summarize_runs,
    time_header_scan,
    time_reader,
    warm_page_cache,
)
from tests.imaging.dicom_synth import write_series


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_both_readers_read_the_same_shape(tmp_path):
    write_series(tmp_path / "study" / "series", n=4)
    folder = series_folder_in(tmp_path)
    assert folder == tmp_path / "study" / "series" and warm_page_cache(folder) == 4
    for method in READERS:
        row = time_reader(method, folder)
        assert row["method"] == method and row["shape"] == [4, 16, 16] and row["seconds"] > 0


def test_header_scan_of_a_small_tree():
    row = time_header_scan(60)
    assert (row["files"], row["studies"]) == (60, 50)
    assert row["scan_seconds"] > 0 and row["ms_per_file"] > 0


def test_runs_summarized_into_medians_peaks_and_ratio():
    def run(seconds, peak):
        return {"seconds": seconds, "peak_mib": peak, "worker_peak_mib": 0.0, "shape": [4, 16, 16], "dtype": "int16"}

    out = summarize_runs({"load_scan": [run(1.0, 10), run(3.0, 30), run(2.0, 20)],
                          "sitk": [run(4.0, 5), run(4.0, 5), run(5.0, 6)]})
    assert out["readers"]["load_scan"]["median_seconds"] == 2.0 and out["readers"]["load_scan"]["min_seconds"] == 1.0
    assert out["readers"]["load_scan"]["peak_mib"] == 30 and len(out["readers"]["sitk"]["runs"]) == 3
    assert out["ratio"] == 0.5


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_both_readers_give_the_same_hu_once_oriented(tmp_path):
    """A series stacked feet-first with its rows flipped: SimpleITK's array is in another
    order than load_scan's canonical one, and must be equal once reoriented."""
    write_series(tmp_path / "s", n=4, iop=(1, 0, 0, 0, -1, 0))
    row = compare_readers(tmp_path / "s")
    assert row["same_grid"] and row["same_hu"] and row["max_abs_diff_hu"] == 0
    assert row["transfer_syntax"] == "Explicit VR Little Endian" and row["shape"] == [4, 16, 16]
