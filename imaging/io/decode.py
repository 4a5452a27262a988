"""Decoding compressed pixel data: the fastest installed decoder, many files at once in worker processes.

Slices whose pixels cannot be read straight from disk (JPEG lossless, JPEG-LS, JPEG 2000,
RLE, deflated or big endian files) are decoded by pydicom, in two ways made faster
(CPU time per 512x512 slice, measured on 2 cores; SimpleITK's GDCM takes about 5.5 ms
for JPEG lossless, 8 ms for JPEG-LS and 29 ms for JPEG 2000, header parse included):

* **The fastest installed decoder** for each transfer syntax.  JPEG-LS: pydicom tries
  ``pylibjpeg`` first, which takes about 20 ms a slice, where ``pyjpegls`` (CharLS)
  takes about 5.5 ms (:data:`PREFERRED_PLUGINS`).  JPEG lossless: pydicom's only
  installed plugin (``pylibjpeg``) takes about 9 ms a slice, GDCM inside SimpleITK about
  5 ms (:func:`stored_values_via_gdcm`; GDCM applies the rescale itself, so its result
  is used only where the stored values can be recovered exactly, else pydicom decodes).
  Other syntaxes keep pydicom's own order (``pylibjpeg``: 25 ms for JPEG 2000).
* **Files are decoded in parallel** by :func:`decode_files` in worker processes, one per
  idle CPU: none of the installed decoders releases the GIL, so threads do not help.
  Workers are forked, which costs a few milliseconds, and only when that is safe and
  worth it (:func:`decode_workers`): on Linux, in a process that runs no other Python
  thread and is not itself a worker of a process pool, for at least
  :data:`MIN_PARALLEL_FILES` files, and only while the load average leaves at least two
  CPUs idle (on a busy machine workers cost CPU time and win nothing).  The environment
  variable ``CHESTCT_DECODE_WORKERS`` caps the number of workers (``1``: decode in the
  calling process).

A file a worker cannot decode comes back as ``None``; the caller decodes it again in its
own process, so that the error it raises names the file and the cause exactly as
without workers.  The decoded values are the same whichever decoder or process decoded
them (lossless codecs; checked by the tests against pydicom's default path and against
SimpleITK).
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
import sys
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from imaging.common.errors import InvalidArgumentError
from imaging.io.headers import SliceHeader

__all__ = [
    "PREFERRED_PLUGINS", "GDCM_SYNTAXES", "MIN_PARALLEL_FILES", "DECODE_WORKERS_VARIABLE", "decoding_plugin",
    "decode_stored_values", "stored_values_via_gdcm", "decode_workers", "decode_files",
]

_JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
_JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"

#: Transfer syntax -> pydicom decoding plugins to use first, fastest first (when installed).
PREFERRED_PLUGINS: dict[str, tuple[str, ...]] = {
    _JPEG_LS_LOSSLESS: ("pyjpegls",),
    _JPEG_LS_NEAR_LOSSLESS: ("pyjpegls",),
}
#: JPEG lossless (process 14, and its selection value 1): decoded by GDCM (SimpleITK) first.
GDCM_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"})
#: Fewest files worth starting worker processes for.
MIN_PARALLEL_FILES: int = 8
#: Most worker processes, whatever the number of CPUs.
MAX_DECODE_WORKERS: int = 8
#: Environment variable capping the number of decoding processes (``1``: no workers).
DECODE_WORKERS_VARIABLE = "CHESTCT_DECODE_WORKERS"


@functools.lru_cache(maxsize=None)
def decoding_plugin(transfer_syntax: str) -> str:
    """The pydicom decoding plugin to ask for (``""``: pydicom's own choice).

    Parameters
    ----------
    transfer_syntax : str
        TransferSyntaxUID of the file.

    Returns
    -------
    str
        The first of ``PREFERRED_PLUGINS[transfer_syntax]`` that is installed, else ``""``.
    """
    from pydicom.pixels import get_decoder

    try:
        available = get_decoder(transfer_syntax).available_plugins
    except (NotImplementedError, ValueError):  # no decoder exists for this syntax at all
        return ""
    return next((label for label in PREFERRED_PLUGINS.get(str(transfer_syntax), ()) if label in available), "")


def decode_stored_values(h: SliceHeader) -> np.ndarray:
    """Stored pixel values of one file: GDCM for JPEG lossless when exact, else pydicom.

    Parameters
    ----------
    h : SliceHeader
        The file's header (from the folder scan).

    Returns
    -------
    numpy.ndarray
        As ``Dataset.pixel_array``: (rows, columns), or (frames, rows, columns).

    Raises
    ------
    Exception
        Whatever pydicom or the decoder raises (the caller maps it to a
        :class:`~imaging.common.errors.PixelDecodeError`).
    """
    if h.transfer_syntax in GDCM_SYNTAXES:
        values = stored_values_via_gdcm(h)
        if values is not None:
            return values
    return _via_pydicom(h.path)


def _via_pydicom(path: Path) -> np.ndarray:
    """``Dataset.pixel_array`` of one file, with the plugin of :func:`decoding_plugin`."""
    import pydicom

    ds = pydicom.dcmread(path)
    meta = getattr(ds, "file_meta", None)
    plugin = decoding_plugin(str(meta.get("TransferSyntaxUID", ""))) if meta is not None else ""
    if plugin:
        ds.pixel_array_options(decoding_plugin=plugin)
    return ds.pixel_array


def stored_values_via_gdcm(h: SliceHeader) -> np.ndarray | None:
    """Stored values of a single-frame 16-bit file decoded by GDCM (SimpleITK); None unless exact.

    GDCM returns ``stored * RescaleSlope + RescaleIntercept``.  The stored values are
    recovered only when slope and intercept are whole numbers, equal those of the
    header, the result is an integer image of the header's size, and every recovered
    value lies in the range of BitsStored and PixelRepresentation; in every other case
    (and when GDCM cannot read the file) the answer is None and pydicom decodes.

    Parameters
    ----------
    h : SliceHeader
        The file's header.

    Returns
    -------
    numpy.ndarray or None
        (rows, columns), int16 when PixelRepresentation is 1, else uint16 (as pydicom).
    """
    if h.n_frames != 1 or len(h.frames) != 1 or h.samples_per_pixel != 1 or h.bits_allocated != 16:
        return None
    slope, intercept = h.frames[0].slope, h.frames[0].intercept
    if not all(math.isfinite(v) and float(v).is_integer() for v in (slope, intercept)) or slope == 0:
        return None
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(str(h.path))
    try:
        image = reader.Execute()
    except RuntimeError:
        return None
    if (_tag_number(reader, "0028|1053", 1.0), _tag_number(reader, "0028|1052", 0.0)) != (slope, intercept):
        return None
    hu = sitk.GetArrayViewFromImage(image)
    if hu.dtype.kind not in "iu" or hu.shape != (1, h.rows, h.columns):
        return None
    return _unscaled(hu[0], int(slope), int(intercept), h)


def _tag_number(reader: object, key: str, default: float) -> float | None:
    """A numeric tag GDCM read (``"0028|1053"``), ``default`` when absent, None when not a number."""
    if not reader.HasMetaDataKey(key):  # type: ignore[attr-defined]
        return default
    try:
        return float(reader.GetMetaData(key))  # type: ignore[attr-defined]
    except ValueError:
        return None


def _unscaled(hu: np.ndarray, slope: int, intercept: int, h: SliceHeader) -> np.ndarray | None:
    """``(hu - intercept) / slope`` as the stored dtype; None when not exact or out of range."""
    bits = max(1, min(h.bits_stored, 16))
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if h.pixel_representation == 1 else (0, (1 << bits) - 1)
    dtype = np.int16 if h.pixel_representation == 1 else np.uint16
    if hu.size == 0:
        return None
    if slope == 1 and hu.dtype.itemsize <= 4:  # the usual case: one subtraction, in 32 bits
        if int(hu.min()) - intercept < lo or int(hu.max()) - intercept > hi:
            return None
        return np.subtract(hu, intercept, dtype=np.int32).astype(dtype)
    stored, rest = np.divmod(hu.astype(np.int64) - intercept, slope)
    if rest.any() or stored.min() < lo or stored.max() > hi:
        return None
    return stored.astype(dtype)


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _worker_cap() -> int:
    """``CHESTCT_DECODE_WORKERS`` when set, else the CPUs available (at most :data:`MAX_DECODE_WORKERS`)."""
    value = os.environ.get(DECODE_WORKERS_VARIABLE, "").strip()
    if not value:
        return min(_available_cpus(), MAX_DECODE_WORKERS)
    try:
        cap = int(value)
    except ValueError:
        cap = 0
    if cap < 1:
        raise InvalidArgumentError(f"{DECODE_WORKERS_VARIABLE} must be a whole number >= 1, got {value!r}")
    return cap


def decode_workers(n_files: int) -> int:
    """How many worker processes :func:`decode_files` should use for ``n_files`` files (1: none).

    Workers are forked: that is done only on Linux, from a process that runs no other
    Python thread (a fork copies a lock another thread holds, never released in the
    child) and that is not itself a worker of a process pool (those already decode
    several series at once), for at least :data:`MIN_PARALLEL_FILES` files, and only
    as many as there are idle CPUs (:func:`_idle_cpus`).

    Parameters
    ----------
    n_files : int
        Files to decode.

    Returns
    -------
    int
        Between 1 and the cap (CPUs available, at most :data:`MAX_DECODE_WORKERS`, or
        ``CHESTCT_DECODE_WORKERS``), at most the idle CPUs.

    Raises
    ------
    InvalidArgumentError
        ``CHESTCT_DECODE_WORKERS`` is not a whole number >= 1.
    """
    cap = min(_worker_cap(), max(1, n_files), _idle_cpus())
    if cap < 2 or n_files < MIN_PARALLEL_FILES or not sys.platform.startswith("linux"):
        return 1
    if multiprocessing.parent_process() is not None or threading.active_count() > 1:
        return 1
    return cap


def _idle_cpus() -> int:
    """CPUs the 1-minute load average leaves idle, this process's own CPU counted as idle (>= 1).

    This process waits while its workers decode, so its own share of the load average is
    theirs to use.  On a busy machine workers win nothing (they wait for the same CPUs)
    and cost about a quarter more CPU time than decoding in one process (forking, copying
    the decoded slices back), so they are used only where CPUs are idle.
    """
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return max(1, int(_available_cpus() - load + 1 + 0.5))


def _decode_or_none(h: SliceHeader) -> np.ndarray | None:
    """Worker side: the stored values of one file, or None when they cannot be decoded here."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the caller decodes again, and reports, what failed
            return np.asarray(decode_stored_values(h))
    except Exception:  # noqa: BLE001 - any failure is decoded again (and reported) by the caller
        return None


def decode_files(headers: Sequence[SliceHeader], workers: int) -> Iterator[np.ndarray | None]:
    """Decode files in ``workers`` forked processes; yield each file's stored values in order.

    Parameters
    ----------
    headers : sequence of SliceHeader
        Headers of the files to decode.
    workers : int
        Worker processes (from :func:`decode_workers`; at least 2).

    Yields
    ------
    numpy.ndarray or None
        As :func:`decode_stored_values`, one per file in order; None for a file that could
        not be decoded in a worker, and for every file left when a worker died (the caller
        decodes those itself).
    """
    if not headers:
        return
    # The first file is decoded here: the decoder's imports and tables (GDCM's dictionaries
    # take about 0.1 s) are then set up once, before the fork, not once in every worker.
    first = _decode_or_none(headers[0])
    rest = headers[1:]
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        try:
            results = iter(pool.map(_decode_or_none, rest, chunksize=max(1, min(8, len(rest) // (4 * workers)))))
        except OSError:  # no process could be forked: the caller decodes every file
            results = iter(())
        yield first
        done = 0
        try:
            for values in results:
                done += 1
                yield values
        except BrokenProcessPool:  # a worker was killed (e.g. out of memory): the caller decodes the rest
            pass
        yield from (None for _ in rest[done:])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
