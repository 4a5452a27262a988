"""The lazy public API of ``imaging``: every advertised name resolves."""

from __future__ import annotations

import inspect

import imaging
from imaging.common import errors


def test_every_public_name_resolves():
    for name in imaging.__all__:
        assert getattr(imaging, name) is not None, name


def test_every_error_class_is_exported():
    # users catch these by name (the README tells them `load_scan(None)` raises InvalidArgumentError)
    classes = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, errors.ChestCTError)
    }
    missing = sorted(classes - set(imaging.__all__))
    assert not missing, f"error classes not exported from imaging: {missing}"
    for name in classes:
        assert getattr(imaging, name) is getattr(errors, name)
