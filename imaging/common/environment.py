"""Provenance: the software version recorded with every score, and the machine of every benchmark."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
from pathlib import Path

__all__ = ["machine_description", "software_version"]


@functools.lru_cache(maxsize=1)
def software_version() -> str:
    """``chestct <version>`` plus ``+weights.<sha8>`` when model weights are installed.

    Recorded in every ``ScanScore`` and part of every batch resume key: installing new
    weights or a new release rescores.  Computed once per process.

    Examples
    --------
    >>> software_version().startswith("chestct ")
    True
    """
    from imaging import __version__

    fingerprint = _weights_fingerprint()
    return f"chestct {__version__}" + (f"+weights.{fingerprint}" if fingerprint else "")


def _weights_fingerprint() -> str:
    """SHA-256 (8 hex) over the shipped model weight files, '' when none are installed."""
    try:
        import models
    except ImportError:
        return ""
    folder = Path(models.__file__).resolve().parent / "weights"
    files = sorted(p for p in folder.glob("*") if p.is_file() and p.suffix in {".pt", ".pth", ".json"})
    if not files:
        return ""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:8]


def machine_description() -> str:
    """CPU model, logical CPU count, memory and Python version, e.g. for a README table.

    Examples
    --------
    >>> "cores" in machine_description()
    True
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        mem = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB RAM"
    except (ValueError, OSError, AttributeError):
        mem = ""
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"
