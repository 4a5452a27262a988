"""Shared basics every stage uses: errors, the CT volume type, argument checks, atomic files.

Modules
-------
errors
    The few exceptions callers catch (:class:`~imaging.common.errors.ChestCTError` and kin).
volume
    :class:`~imaging.common.volume.CTVolume` (HU array with its geometry) and ``ScanInfo``.
checks
    Small argument checks shared by the stages.
files
    Output folders and atomic writes (a file is complete or absent, never half-written).
environment
    Software version, weights fingerprint and machine description for provenance.

Nothing here imports another stage: every other subpackage may import ``common``.
"""
