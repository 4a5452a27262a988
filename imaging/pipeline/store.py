"""The batch run's result store: resume keys, one JSON record per scan, and the run lock.

The result store keeps one small JSON record per scored scan under
``OUT/results/<key>.json``; the key hashes the series UID, the scoring settings and
the software version (:func:`result_key`), so a rerun with the same settings skips the
scan and a rerun with other settings or another version scores it again.  Records are
written atomically (:func:`imaging.common.files.atomic_write_json`), and
:func:`run_lock` keeps two live runs from writing into the same output folder.

Examples
--------
>>> result_key("1.2.3", settings_hash="abc", software_version="0.1.0") == result_key(
...     "1.2.3", settings_hash="abc", software_version="0.1.1")
False
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from imaging.common.errors import ChestCTError
from imaging.common.files import atomic_write_json

__all__ = ["settings_hash", "result_key", "ResultStore", "OutputLockedError", "run_lock"]


def settings_hash(settings: Mapping[str, Any]) -> str:
    """SHA-256 (16 hex digits) of the settings as canonical JSON (sorted keys).

    >>> settings_hash({"a": 1, "b": [1, 2]}) == settings_hash({"b": [1, 2], "a": 1})
    True
    """
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a mapping, got {type(settings).__name__}")
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def result_key(series_uid: str, *, settings_hash: str, software_version: str) -> str:
    """The resume key of one scan: SHA-256 (32 hex digits) of UID, settings and version."""
    if not series_uid:
        raise ValueError(f"series_uid must be a non-empty string, got {series_uid!r}")
    text = "\n".join([str(series_uid), settings_hash, software_version])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class ResultStore:
    """One JSON record per finished scan, under ``folder``.

    Parameters
    ----------
    folder : path-like
        Usually ``OUT/results``; created on first write.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        """Where the record of ``key`` lives."""
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"key must be a lowercase hex string, got {key!r}")
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The record of ``key``, or ``None`` when absent or unreadable."""
        path = self.path(key)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return record if isinstance(record, dict) and record.get("key") == key else None

    def put(self, key: str, record: Mapping[str, Any]) -> Path:
        """Store ``record`` (must carry ``"key": key``) atomically."""
        if record.get("key") != key:
            raise ValueError(f"record key {record.get('key')!r} differs from {key!r}")
        return atomic_write_json(self.path(key), dict(record))


class OutputLockedError(ChestCTError, RuntimeError):
    """Another live run is writing to the same output folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold ``folder/.lock`` for the duration of a run.

    A lock left by a dead process (``kill -9``) on this machine is taken over.

    Raises
    ------
    OutputLockedError
        Another live process holds the lock.
    """
    lock = Path(folder) / ".lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or "0")
            except (ValueError, FileNotFoundError):
                pid = 0
            if pid and pid != os.getpid() and _pid_alive(pid):
                raise OutputLockedError(f"output folder {folder} is in use by process {pid}; "
                                        f"wait for it or remove {lock} if that process is not chestct") from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        break
    else:
        raise OutputLockedError(f"could not take the lock {lock}")
    try:
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
