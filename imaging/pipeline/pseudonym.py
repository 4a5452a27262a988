"""Keyed pseudonyms for patient IDs (HMAC-SHA256), with the key kept outside the outputs.

A pseudonym is ``"anon-"`` followed by the first 16 hex digits (64 bits) of
HMAC-SHA256(key, patient ID).  The same key always maps the same patient ID to the same
pseudonym, so follow-up scans of one patient stay linked and a rerun gives the same
table; without the key the mapping cannot be recomputed or reversed by guessing IDs.
The key file is secret: it must never be stored inside the output folder it protects
(:func:`load_key` refuses that), and it is never copied, logged or written anywhere.

Examples
--------
>>> key = b"0123456789abcdef0123456789abcdef"
>>> pseudonymize("LIDC-IDRI-0001", key)
'anon-659c9736de534304'
>>> pseudonymize("LIDC-IDRI-0001", key) == pseudonymize("LIDC-IDRI-0001", key)
True
>>> pseudonymize(None, key) is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from imaging.common.errors import InvalidArgumentError, MissingInputError
from imaging.common.files import is_within

__all__ = ["MIN_KEY_BYTES", "pseudonymize", "load_key", "create_key_file", "key_fingerprint"]

#: Shortest key accepted, bytes (128 bits).
MIN_KEY_BYTES: int = 16

#: Hex digits of the HMAC kept in a pseudonym (64 bits: collisions negligible for any trial).
PSEUDONYM_HEX_DIGITS: int = 16


def pseudonymize(patient_id: str | None, key: bytes) -> str | None:
    """The keyed pseudonym of one patient ID.

    Parameters
    ----------
    patient_id : str or None
        The ID as read from DICOM (PatientID).  ``None`` or an empty string stays
        ``None`` (there is nothing to link).
    key : bytes
        Secret key, at least :data:`MIN_KEY_BYTES` bytes.

    Returns
    -------
    str or None
        ``"anon-" + 16 hex digits``.
    """
    if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"key must be at least {MIN_KEY_BYTES} bytes, got {type(key).__name__} of length "
                         f"{len(key) if isinstance(key, (bytes, bytearray)) else 'n/a'}")
    if patient_id is None or str(patient_id).strip() == "":
        return None
    digest = hmac.new(bytes(key), str(patient_id).strip().encode("utf-8"), hashlib.sha256).hexdigest()
    return "anon-" + digest[:PSEUDONYM_HEX_DIGITS]


def key_fingerprint(key: bytes) -> str:
    """A short, non-secret fingerprint of a key (to tell two keys apart in a log).

    It is HMAC-SHA256(key, "chestct key fingerprint"), 8 hex digits: it reveals nothing
    usable about the key.
    """
    return hmac.new(bytes(key), b"chestct key fingerprint", hashlib.sha256).hexdigest()[:8]


def load_key(path: str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None) -> bytes:
    """Read a pseudonymisation key file.

    Parameters
    ----------
    path : path-like
        File holding the key (any bytes; surrounding whitespace is ignored, so a line of
        hex written by :func:`create_key_file` or ``openssl rand -hex 32`` works).
    out : path-like, optional
        The output folder the pseudonyms go to; the key must not lie inside it.

    Raises
    ------
    MissingInputError
        The key file does not exist (a :class:`FileNotFoundError`).
    InvalidArgumentError
        The key is too short, or it lies inside ``out`` (a :class:`ValueError`).
    """
    key_path = Path(path)
    if out is not None and is_within(key_path, Path(out)):
        raise InvalidArgumentError(f"pseudonym key {key_path} lies inside the output folder {out}: "
                         "keep the key outside OUT so the outputs can be shared without it")
    if not key_path.is_file():
        raise MissingInputError(f"pseudonym key file {key_path} does not exist "
                                "(create one with `openssl rand -hex 32 > KEYFILE`)")
    key = key_path.read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise InvalidArgumentError(f"pseudonym key {key_path} holds {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
    return key


def create_key_file(path: str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None) -> Path:
    """Create a new random key file (64 hex digits, 256 bits), readable by its owner only.

    Refuses to overwrite an existing file (that would silently change every pseudonym),
    and refuses a path inside ``out`` (the outputs must be shareable without the key).
    """
    key_path = Path(path)
    if out is not None and is_within(key_path, Path(out)):
        raise InvalidArgumentError(f"pseudonym key {key_path} would lie inside the output folder {out}: "
                                   "create it outside OUT")
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return key_path
