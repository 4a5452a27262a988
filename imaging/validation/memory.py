"""Time and peak resident memory of this process, from ``/proc/self`` (Linux only).

The peak is the kernel's resident high-water mark (``VmHWM``), which
:func:`reset_peak_memory` resets to the current resident size, so the peak of one step
can be read on its own; it includes everything the process holds (interpreter,
libraries, data already in memory).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["proc_status_kib", "reset_peak_memory", "measure"]


def proc_status_kib(field: str, default: int | None = None) -> int:
    """A ``/proc/self/status`` field in KiB (e.g. ``"VmHWM"``, ``"VmRSS"``).

    Raises
    ------
    OSError
        When the field is missing (not Linux) and no ``default`` is given.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        if default is None:
            raise
        return default
    if default is None:
        raise OSError(f"{field} not in /proc/self/status (Linux only)")
    return default


def reset_peak_memory() -> None:
    """Reset the process's resident high-water mark (``VmHWM``) to its current size."""
    with open("/proc/self/clear_refs", "w") as fh:  # "5" resets VmHWM to the current RSS
        fh.write("5")


def measure(fn: Callable[[], Any], repeats: int = 1) -> tuple[Any, dict[str, float]]:
    """Run ``fn`` ``repeats`` times: its last result, median seconds and peak resident MB.

    Examples
    --------
    >>> out, m = measure(lambda: sum(range(10)), repeats=3)
    >>> out, sorted(m)
    (45, ['peak_mb', 'seconds'])
    """
    times, peak, out = [], 0.0, None
    for _ in range(repeats):
        reset_peak_memory()
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        peak = max(peak, proc_status_kib("VmHWM") / 1024)
    return out, {"seconds": round(statistics.median(times), 3), "peak_mb": round(peak, 1)}
