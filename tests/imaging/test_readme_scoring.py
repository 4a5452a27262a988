"""The README ``scoring`` example runs as written (on a bundled sample series)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _scoring_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("<!-- section: scoring -->", 1)[1].split("<!-- /section: scoring -->", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_scoring_example_runs_and_uses_every_import(tmp_path, monkeypatch):
    code = _scoring_example()
    imported = re.search(r"from imaging import (.*)", code).group(1).split(", ")
    body = code.split("\n", 1)[1]
    unused = [name for name in imported if f"{name.strip()}(" not in body]
    assert not unused, f"README scoring example imports but never calls {unused}"
    series = sorted((REPO / "sample_data" / "studies").glob("P*/*/*"))
    if not series:
        pytest.skip("sample_data/studies is not present (run `chestct demo` to regenerate it)")
    monkeypatch.chdir(tmp_path)  # mask_dir="masks/" lands here
    namespace: dict = {}
    exec(compile(code.replace('"path/to/series"', repr(str(series[0]))), "README.md", "exec"), namespace)
    assert namespace["bands"].labels.shape == namespace["vol"].hu.shape
    assert isinstance(namespace["row"], dict)
