"""Keyed pseudonyms: stable per key, and the key file kept outside the output folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from imaging.pipeline.pseudonym import create_key_file, key_fingerprint, load_key, pseudonymize


def test_pseudonyms_are_keyed_stable_and_the_key_stays_outside_out(tmp_path: Path) -> None:
    key_a, key_b = b"k" * 32, b"j" * 32
    assert pseudonymize("P1", key_a) == pseudonymize(" P1 ", key_a) != pseudonymize("P1", key_b)
    assert pseudonymize("P1", key_a) != pseudonymize("P2", key_a)
    assert pseudonymize("", key_a) is None
    with pytest.raises(ValueError, match="at least 16 bytes"):
        pseudonymize("P1", b"short")
    path = create_key_file(tmp_path / "key")
    assert oct(path.stat().st_mode & 0o777) == "0o600" and len(load_key(path)) == 64
    with pytest.raises(FileExistsError):
        create_key_file(path)
    with pytest.raises(ValueError, match="inside the output folder"):
        load_key(path, out=tmp_path)
    with pytest.raises(ValueError, match="inside the output folder"):
        create_key_file(tmp_path / "out" / "key", out=tmp_path / "out")
    assert not (tmp_path / "out" / "key").exists()
    with pytest.raises(FileNotFoundError, match="openssl rand"):
        load_key(tmp_path / "absent")
    assert len(key_fingerprint(load_key(path))) == 8
