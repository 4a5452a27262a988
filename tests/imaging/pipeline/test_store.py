"""The result store and the run lock of a batch run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imaging.pipeline.store import OutputLockedError, ResultStore, result_key, run_lock, settings_hash


def test_result_store_and_keys(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results")
    key = result_key("1.2.3", settings_hash=settings_hash({"a": 1}), software_version="v1")
    assert key != result_key("1.2.3", settings_hash=settings_hash({"a": 2}), software_version="v1")
    assert key != result_key("1.2.4", settings_hash=settings_hash({"a": 1}), software_version="v1")
    assert store.get(key) is None
    store.put(key, {"key": key, "row": {"x": 1.5}})
    assert store.get(key)["row"] == {"x": 1.5}
    store.path(key).write_text('{"key": "' + key + '", "row": ')  # torn file: treated as absent
    assert store.get(key) is None
    with pytest.raises(ValueError, match="record key"):
        store.put(key, {"key": "other"})
    with pytest.raises(ValueError, match="series_uid"):
        result_key("", settings_hash="x", software_version="v")


def test_run_lock_refuses_a_live_owner_and_takes_over_a_dead_one(tmp_path: Path) -> None:
    with run_lock(tmp_path):
        with pytest.raises(OutputLockedError, match="in use by process"):
            (tmp_path / ".lock").write_text(str(os.getppid()))  # pretend a live process holds it
            with run_lock(tmp_path):
                pass
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / ".lock").write_text(dead.stdout.strip())
    with run_lock(tmp_path) as lock:
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists()
