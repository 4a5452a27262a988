"""Compressed pixel data: fastest plugin, files decoded in worker processes, same HU and errors as before."""

from __future__ import annotations

import os

import numpy as np
import pydicom
import pytest

import imaging.io.decode as decode
import imaging.io.load as load_mod
from imaging.common.errors import InvalidArgumentError, PixelDecodeError
from imaging.common.volume import CTVolume
from imaging.io.load import load_scan
from imaging.io.series import find_series
from tests.conftest import shared_path
from tests.imaging.dicom_synth import write_series

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

N_SLICES = decode.MIN_PARALLEL_FILES + 4


def _require_encoder(syntax):
    from pydicom.pixels import get_encoder

    if not get_encoder(syntax).is_available:
        pytest.skip(f"no encoder installed to write {syntax.name} test data")


def _hu_as_before(paths, dtype=np.int16):
    """HU the way load_scan computed them before (pydicom's default plugin, one file after another)."""
    datasets = sorted((pydicom.dcmread(p) for p in paths), key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack([ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                     for ds in datasets]).astype(dtype)


def _jpeg_lossless(stored: np.ndarray, folder) -> bytes:
    """Encapsulated JPEG lossless (process 14, SV1) pixel data of one int16 slice, encoded by GDCM."""
    import SimpleITK as sitk

    path = folder / "encoded.dcm"
    writer = sitk.ImageFileWriter()
    writer.SetFileName(str(path))
    writer.SetImageIO("GDCMImageIO")
    writer.UseCompressionOn()
    writer.SetCompressor("JPEG")
    writer.Execute(sitk.GetImageFromArray(stored[None]))
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGLosslessSV1
    return ds.PixelData


def _jpeg_lossless_series(folder, rescales):
    """A series of JPEG lossless slices with negative and positive stored values; (paths, raw)."""
    raw = np.stack([np.linspace(-2000, 3000, 32 * 32).reshape(32, 32).astype(np.int16) + 7 * k
                    for k in range(len(rescales))])

    def edit(ds, k):
        ds.PixelData = _jpeg_lossless(raw[k], folder)
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEGLosslessSV1
        ds.RescaleSlope, ds.RescaleIntercept = rescales[k]

    paths, *_ = write_series(folder / "s", n=len(rescales), rows=32, cols=32, raw=raw, edit=edit)
    return paths, raw


@pytest.fixture
def in_workers(monkeypatch):
    """Make load_scan decode in 2 worker processes whatever the machine; records the calls."""
    calls: list[int] = []
    real = decode.decode_files

    def spy(paths, workers):
        calls.append(len(paths))
        return real(paths, workers)

    monkeypatch.setattr(load_mod, "decode_workers", lambda n: 2 if n >= decode.MIN_PARALLEL_FILES else 1)
    monkeypatch.setattr(load_mod, "decode_files", spy)
    return calls


@pytest.mark.parametrize("syntax", [pydicom.uid.JPEGLSLossless, pydicom.uid.RLELossless, pydicom.uid.JPEG2000Lossless])
def test_worker_decoding_gives_the_same_hu_as_the_previous_path(tmp_path, monkeypatch, in_workers, syntax):
    _require_encoder(syntax)
    paths, raw, _, _ = write_series(tmp_path / "s", n=N_SLICES, rows=32, cols=32, transfer_syntax=syntax)
    before = _hu_as_before(paths)
    np.testing.assert_array_equal(before, raw - 1024)
    v = load_scan(tmp_path / "s")
    assert in_workers == [N_SLICES]  # every file went through the worker processes
    np.testing.assert_array_equal(v.hu, before)
    assert v.hu.dtype == np.int16
    monkeypatch.setattr(load_mod, "decode_workers", decode.decode_workers)
    monkeypatch.setenv(decode.DECODE_WORKERS_VARIABLE, "1")  # no workers: every file decoded here
    np.testing.assert_array_equal(load_scan(tmp_path / "s").hu, before)
    assert in_workers == [N_SLICES]


@pytest.mark.parametrize("rescale, dtype", [((1, -1024), np.int16), ((2, 0), np.int16), ((0.5, -1024.5), np.float32)])
def test_jpeg_lossless_through_gdcm_gives_the_same_hu_as_pydicom(tmp_path, in_workers, rescale, dtype):
    paths, raw = _jpeg_lossless_series(tmp_path, [rescale] * N_SLICES)
    before = _hu_as_before(paths, dtype)
    np.testing.assert_array_equal(before, (raw * rescale[0] + rescale[1]).astype(dtype))
    v = load_scan(tmp_path / "s")
    assert in_workers == [N_SLICES] and v.info.transfer_syntax == pydicom.uid.JPEGLosslessSV1
    assert v.hu.dtype == dtype
    np.testing.assert_array_equal(v.hu, before)


def test_gdcm_is_used_only_where_the_stored_values_come_back_exactly(tmp_path):
    from imaging.io.headers import read_header

    paths, raw = _jpeg_lossless_series(tmp_path, [(1, -1024), (3, 5), (0.5, 0), (1, 0.25)])
    headers = [read_header(p, p.stat().st_size) for p in paths]
    for h, stored in zip(headers[:2], raw[:2]):
        values = decode.stored_values_via_gdcm(h)
        assert values.dtype == np.int16
        np.testing.assert_array_equal(values, stored)
    assert [decode.stored_values_via_gdcm(h) for h in headers[2:]] == [None, None]  # fractional: pydicom
    for h, stored in zip(headers, raw):
        np.testing.assert_array_equal(decode.decode_stored_values(h), stored)


def test_jpeg_ls_is_decoded_with_pyjpegls_when_installed():
    from pydicom.pixels import get_decoder

    if "pyjpegls" not in get_decoder(pydicom.uid.JPEGLSLossless).available_plugins:
        pytest.skip("pyjpegls is not installed")
    assert decode.decoding_plugin(pydicom.uid.JPEGLSLossless) == "pyjpegls"
    assert decode.decoding_plugin(pydicom.uid.JPEGLosslessSV1) == ""  # pydicom's own choice
    assert decode.decoding_plugin(pydicom.uid.ExplicitVRBigEndian) == ""


@pytest.mark.parametrize("syntax", [pydicom.uid.RLELossless, pydicom.uid.JPEGLosslessSV1])
def test_a_file_a_worker_cannot_decode_is_named_in_the_error(tmp_path, in_workers, syntax):
    if syntax == pydicom.uid.RLELossless:
        _require_encoder(syntax)
        paths, *_ = write_series(tmp_path / "s", n=N_SLICES, rows=32, cols=32, transfer_syntax=syntax)
    else:  # neither GDCM nor pydicom can decode it: pydicom's error is the one reported
        paths, _ = _jpeg_lossless_series(tmp_path, [(1, -1024)] * N_SLICES)
    data = bytearray(paths[5].read_bytes())
    item = data.rindex(b"\xfe\xff\x00\xe0")  # the item of the only fragment
    length = int.from_bytes(data[item + 4:item + 8], "little")
    data[item + 8:item + 8 + length] = b"\xff" * length  # same length, not an RLE or JPEG stream
    paths[5].write_bytes(bytes(data))
    with pytest.raises(PixelDecodeError, match=rf"{paths[5].name}: cannot decode pixel data \({syntax.name[:12]}"):
        load_scan(tmp_path / "s")
    assert in_workers == [N_SLICES]


def _exit_on_the_third_file(h):
    """Stands in for the worker function: the worker dies (as if killed) on the third file."""
    if h.path.name == "IM0002.dcm":
        os._exit(1)
    return decode.np.asarray(decode.decode_stored_values(h))


def test_files_left_when_a_worker_dies_are_decoded_by_the_caller(tmp_path, monkeypatch, in_workers):
    _require_encoder(pydicom.uid.RLELossless)
    paths, raw, _, _ = write_series(tmp_path / "s", n=N_SLICES, rows=32, cols=32, transfer_syntax=pydicom.uid.RLELossless)
    monkeypatch.setattr(decode, "_decode_or_none", _exit_on_the_third_file)
    np.testing.assert_array_equal(load_scan(tmp_path / "s").hu, raw - 1024)


def test_when_no_worker_can_be_forked_the_caller_decodes_every_file(tmp_path, monkeypatch):
    _require_encoder(pydicom.uid.RLELossless)
    from imaging.io.headers import read_header

    paths, raw, _, _ = write_series(tmp_path / "s", n=4, rows=32, cols=32, transfer_syntax=pydicom.uid.RLELossless)

    class NoFork(decode.ProcessPoolExecutor):
        def map(self, *args, **kwargs):
            raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(decode, "ProcessPoolExecutor", NoFork)
    headers = sorted((read_header(p, p.stat().st_size) for p in paths), key=lambda h: h.path.name)
    results = list(decode.decode_files(headers, 2))
    np.testing.assert_array_equal(results[0], raw[0])  # the first file is decoded before any fork
    assert results[1:] == [None, None, None]


def test_decode_workers_policy(monkeypatch):
    monkeypatch.delenv(decode.DECODE_WORKERS_VARIABLE, raising=False)
    monkeypatch.setattr(decode, "_available_cpus", lambda: 4)
    monkeypatch.setattr(decode.os, "getloadavg", lambda: (0.2, 0.5, 0.5))
    monkeypatch.setattr(decode.threading, "active_count", lambda: 1)
    monkeypatch.setattr(decode.sys, "platform", "linux")
    assert decode.decode_workers(100) == 4
    monkeypatch.setattr(decode.os, "getloadavg", lambda: (2.7, 0.5, 0.5))  # 2.3 CPUs idle, with this one
    assert decode.decode_workers(100) == 2
    monkeypatch.setattr(decode.os, "getloadavg", lambda: (3.7, 0.5, 0.5))  # busy: workers win nothing
    assert decode.decode_workers(100) == 1
    monkeypatch.setattr(decode.os, "getloadavg", lambda: (0.2, 0.5, 0.5))
    assert decode.decode_workers(decode.MIN_PARALLEL_FILES - 1) == 1  # too few to be worth a process
    monkeypatch.setenv(decode.DECODE_WORKERS_VARIABLE, "2")
    assert decode.decode_workers(100) == 2
    monkeypatch.setenv(decode.DECODE_WORKERS_VARIABLE, "1")
    assert decode.decode_workers(100) == 1
    for bad in ("0", "two"):
        monkeypatch.setenv(decode.DECODE_WORKERS_VARIABLE, bad)
        with pytest.raises(InvalidArgumentError, match="CHESTCT_DECODE_WORKERS must be a whole number"):
            decode.decode_workers(100)
    monkeypatch.delenv(decode.DECODE_WORKERS_VARIABLE)
    monkeypatch.setattr(decode.threading, "active_count", lambda: 2)  # forking beside a thread is unsafe
    assert decode.decode_workers(100) == 1
    monkeypatch.setattr(decode.threading, "active_count", lambda: 1)
    monkeypatch.setattr(decode.sys, "platform", "darwin")
    assert decode.decode_workers(100) == 1


def test_no_workers_inside_a_worker_process():
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(decode.decode_workers, (100,)) == 1


REAL_COMPRESSED = [
    ("ricord_1a_001012", "1.2.840.10008.1.2.4.70", 248),
    ("lidc_idri_0002", "1.2.840.10008.1.2.4.80", 261),
    ("lidc_idri_0003", "1.2.840.10008.1.2.4.80", 140),
    ("dicom_variants/jpeg2000_abdomen", "1.2.840.10008.1.2.4.90", 20),
]


@pytest.mark.parametrize("name, syntax, n", REAL_COMPRESSED, ids=[r[0].split("/")[-1] for r in REAL_COMPRESSED])
def test_real_compressed_series_read_like_simpleitk(name, syntax, n):
    import SimpleITK as sitk

    root = shared_path(*name.split("/"))
    (series,) = find_series(root).series
    v = load_scan(series)
    assert v.info.transfer_syntax == syntax and v.shape[0] == n
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(r.header.path) for r in series.slices])
    ref = CTVolume.from_sitk(reader.Execute()).canonical()
    np.testing.assert_array_equal(v.hu, ref.hu)
    np.testing.assert_allclose(v.origin_mm, ref.origin_mm, atol=1e-3)
    if syntax in decode.GDCM_SYNTAXES:  # decoded by GDCM: also the same as pydicom's own decoder
        for r in series.slices[::10]:
            np.testing.assert_array_equal(decode.decode_stored_values(r.header), pydicom.dcmread(r.header.path).pixel_array)
