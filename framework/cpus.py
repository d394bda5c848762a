"""The CPU cores this process may run on."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """Cores in this process's CPU affinity mask (what a container or ``taskset`` allows), or
    ``os.cpu_count()`` where affinity is not available; at least 1."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
