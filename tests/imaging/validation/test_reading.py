"""Reader timing on a tiny synthetic series, and the header scan."""

from __future__ import annotations

import pytest

from imaging.validation.reading import READERS, series_folder_in, time_header_scan, time_reader, warm_page_cache
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
