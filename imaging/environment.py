"""A one-line description of the machine, recorded beside every benchmark and training run."""

from __future__ import annotations

import os
import platform

__all__ = ["machine_description"]


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
