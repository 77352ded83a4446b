"""Thread-count defaults shared by the CPU engines and the statistics."""

from __future__ import annotations

import os


def default_threads() -> int:
    """Worker threads to use by default: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)
