"""The few exceptions callers of :mod:`imaging` are expected to catch.

Every message names the file or series concerned, says what is wrong, and says how
to fix it where there is a fix.  All derive from :class:`ChestCTError`, so a batch
runner can catch one type, record the message against the scan, and go on.
"""

from __future__ import annotations

__all__ = [
    "ChestCTError",
    "NoDicomFoundError",
    "NotCTVolumeError",
    "IrregularSpacingError",
    "PixelDecodeError",
    "NotAChestError",
    "InvalidTableError",
    "InvalidArgumentError",
    "MissingInputError",
]


class ChestCTError(Exception):
    """Base class of every error this toolkit raises on purpose."""


class NoDicomFoundError(ChestCTError, FileNotFoundError):
    """A path holds no readable DICOM (or supported image) file."""


class NotCTVolumeError(ChestCTError, ValueError):
    """A series is not a CT volume: wrong modality, too few slices, mixed sizes or
    orientations, gantry tilt that cannot be handled, duplicated positions, …"""


class IrregularSpacingError(NotCTVolumeError):
    """Slice positions along the normal are not evenly spaced (a missing slice,
    a gap); the message gives the gap found and where."""


class PixelDecodeError(ChestCTError, ValueError):
    """Pixel data cannot be decoded (unsupported or corrupt compression, truncated file)."""


class NotAChestError(ChestCTError, ValueError):
    """The scan read correctly but does not show a chest with lungs to score."""


class InvalidTableError(ChestCTError, ValueError):
    """A scores or arms table cannot be used: a required column is missing, a patient is
    given two arms, or no patient is left to compare; the message names the table and
    column and says what to fix."""


class InvalidArgumentError(ChestCTError, ValueError):
    """An argument cannot be used (an output folder inside the input, ``workers < 1``,
    a malformed override, a key too short); the message names the argument and value."""


class MissingInputError(ChestCTError, FileNotFoundError):
    """A file named by an argument (pseudonym key, overrides table) does not exist."""
