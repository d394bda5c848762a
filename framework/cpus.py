"""The CPU cores this process may run on, and the ``threads=`` setting that narrows them."""

from __future__ import annotations

import os

# The variables that size the thread pools of OpenMP, MKL, OpenBLAS and Rust's rayon (HF
# tokenizers) in this process, if not started yet, and in every process it starts.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS")


def usable_cpus() -> int:
    """Cores in this process's CPU affinity mask (what a container or ``taskset`` allows), or
    ``os.cpu_count()`` where affinity is not available, capped by ``OMP_NUM_THREADS`` when that
    is set (as :func:`limit_threads` does); at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(cap))) if cap.isdigit() and int(cap) > 0 else max(1, cores)


def limit_threads(threads: int) -> None:
    """Run this process, and the processes it starts, on ``threads`` CPU threads: torch's intra-op
    pool (``torch.set_num_threads``) and the :data:`THREAD_VARIABLES`, for several runs sharing
    one machine (each taking every core, their threads contend for them).

    Raises:
        ValueError: ``threads`` below 1.
    """
    if threads < 1:
        raise ValueError(f"threads={threads} must be at least 1.")
    import torch

    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    torch.set_num_threads(threads)
