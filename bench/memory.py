"""Process memory as the operating system sees it (resident set), without third-party tools.

Linux reports the current (VmRSS) and peak (VmHWM) resident set in /proc/self/status, and
lets a process reset its own peak by writing 5 to /proc/self/clear_refs, which is how a case
measures the peak of its run alone. Elsewhere, getrusage's lifetime peak stands in for both.
tracemalloc would see only Python objects and slows the run down severalfold, so it is not
used for timed runs.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _lifetime_peak_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def rss_kib() -> int:
    """Current resident set size."""
    return _status_kib("VmRSS") or _lifetime_peak_kib()


def peak_rss_kib() -> int:
    """Peak resident set size since start or since the last `reset_peak`."""
    return _status_kib("VmHWM") or _lifetime_peak_kib()


def reset_peak() -> bool:
    """Resets the peak to the current size; False where the OS cannot."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True
