"""Hydra multirun support: naming sweep jobs by what varies, and sharing CPU threads.

A Hydra callback (:class:`SweepCallback`, enabled in ``conf/hydra/default.yaml``) runs in the
launching process before any job starts. It records which override keys the sweep varies
(comma sweeps on the command line and the sweeper's search space) and the sweep's name in
environment variables, which every launcher passes on to its jobs (in-process, joblib
workers, submitit jobs). Jobs use them for their directory names and W&B run names.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from framework.cpus import usable_cpus

SWEEP_KEYS_ENV = "LM_FRAMEWORK_SWEEP_KEYS"
SWEEP_NAME_ENV = "LM_FRAMEWORK_SWEEP_NAME"
MAX_NAME_CHARS = 120


def swept_keys(config: DictConfig) -> list[str]:
    """Override keys that take several values in this sweep: comma/range sweeps and sweeper params."""
    overrides = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    keys = [override.get_key_element().lstrip("+~") for override in overrides if override.is_sweep_override()]
    keys += [str(key) for key in (config.hydra.sweeper.get("params") or {})]
    return list(dict.fromkeys(keys))


def varying_overrides(overrides: Sequence[str]) -> str:
    """``key=value,...`` for this job's overrides of the swept keys, safe as a directory name.

    Outside a sweep (no swept keys recorded) it is ``run``.
    """
    keys = set(filter(None, os.environ.get(SWEEP_KEYS_ENV, "").split(",")))
    parts = [item for item in overrides if item.split("=", 1)[0].lstrip("+~") in keys]
    name = re.sub(r"[^\w.,=+-]", "_", ",".join(parts)) or "run"
    return name[:MAX_NAME_CHARS]


def sweep_name() -> str | None:
    """The running sweep's name (its directory name), or None outside a sweep."""
    return os.environ.get(SWEEP_NAME_ENV) or None


def threads_per_job(parallel_jobs: int, cpus: int | None = None) -> int:
    """Torch threads for each of ``parallel_jobs`` jobs sharing ``cpus`` cores (at least 1)."""
    if cpus is None:
        cpus = usable_cpus()
    return max(1, cpus // max(1, parallel_jobs))


class SweepCallback(Callback):
    """Records the swept keys and sweep name for the jobs; splits CPU threads between parallel jobs."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ[SWEEP_KEYS_ENV] = ",".join(swept_keys(config))
        os.environ[SWEEP_NAME_ENV] = Path(str(config.hydra.sweep.dir)).name

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = config.hydra.launcher
        if "joblib" in str(launcher.get("_target_", "")):
            import torch

            parallel = launcher.n_jobs if launcher.n_jobs > 0 else (os.cpu_count() or 1)
            torch.set_num_threads(threads_per_job(parallel))


def metric_direction(task_target: str, metric: str) -> str:
    """``minimize`` or ``maximize``: how a sweeper should treat ``metric`` of the task ``task_target``
    (the task's ``METRICS``), so an Optuna search maximises accuracy and minimises losses."""
    import hydra.utils

    directions = getattr(hydra.utils.get_class(task_target), "METRICS", {})
    return "maximize" if directions.get(metric) == "max" else "minimize"


def register_resolvers() -> None:
    """``${varying_overrides:<list>}`` and ``${unique_token:}`` for directory names in conf/hydra,
    and ``${metric_direction:<task target>,<metric>}`` for sweepers."""
    if not OmegaConf.has_resolver("varying_overrides"):
        OmegaConf.register_new_resolver("varying_overrides", lambda overrides: varying_overrides(list(overrides)))
    if not OmegaConf.has_resolver("metric_direction"):
        OmegaConf.register_new_resolver("metric_direction", metric_direction)
    if not OmegaConf.has_resolver("unique_token"):
        # Cached, and Hydra copies the cache to every job's config, so a sweep keeps one token.
        OmegaConf.register_new_resolver("unique_token", lambda: secrets.token_hex(3), use_cache=True)
