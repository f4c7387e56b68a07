"""How many CPU cores the model kernels may use (one place for the rule; no numba needed)."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one), at least 1:
    the kernels' thread count when ``JAQMOO_THREADS`` is unset, outside a multiprocessing worker."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
