"""Hydra multirun support: what a sweep varies, CPU threads for parallel jobs, and jobs that
need several processes.

:class:`SweepCallback` (enabled in ``conf/hydra/default.yaml``) runs in the launching process
before any job starts and records the swept keys and the sweep's name for the jobs
(``framework.process_env``); jobs use them for their directory names and W&B run names. After
the last job it prints and writes the sweep's summary.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from framework import process_env
from framework.cpus import usable_cpus
from framework.errors import USER_ERROR_STATUS, UserInputError
from framework.run.sweep_summary import report_sweep

log = logging.getLogger(__name__)


def swept_keys(config: DictConfig) -> list[str]:
    """Override keys that take several values in this sweep: comma/range sweeps and sweeper params."""
    overrides = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    keys = [override.get_key_element().lstrip("+~") for override in overrides if override.is_sweep_override()]
    keys += [str(key) for key in (config.hydra.sweeper.get("params") or {})]
    return list(dict.fromkeys(keys))


def threads_per_job(parallel_jobs: int, cpus: int | None = None) -> int:
    """Torch threads for each of ``parallel_jobs`` jobs sharing ``cpus`` cores (at least 1)."""
    if cpus is None:
        cpus = usable_cpus()
    return max(1, cpus // max(1, parallel_jobs))


class SweepCallback(Callback):
    """Records the swept keys and sweep name for the jobs; splits CPU threads between parallel
    jobs; at the end prints the table of the jobs and writes ``summary.md``
    (:func:`framework.run.sweep_summary.report_sweep`)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        process_env.record_sweep(swept_keys(config), Path(str(config.hydra.sweep.dir)).name)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = config.hydra.launcher
        if "joblib" in str(launcher.get("_target_", "")):
            import torch

            parallel = launcher.n_jobs if launcher.n_jobs > 0 else (os.cpu_count() or 1)
            torch.set_num_threads(threads_per_job(parallel))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        if sweep_dir.is_dir():
            report_sweep(sweep_dir, swept_keys(config), str(config.optimized_metric))


def single_run_command(overrides: list[str], output_dir: Path) -> list[str]:
    """The command that runs one sweep job on its own: its overrides, its directory, and
    ``hydra.mode=RUN`` (an Optuna search config sets ``MULTIRUN``, which would start a sweep)."""
    quoted_dir = '"' + str(output_dir).replace("\\", "\\\\").replace('"', '\\"') + '"'  # Hydra's quoted-string grammar
    return [
        sys.executable,
        "-m",
        "framework.train",
        *overrides,
        f"hydra.run.dir={quoted_dir}",
        "hydra.output_subdir=null",
        "hydra.mode=RUN",
    ]


def run_sweep_job_in_own_process(overrides: list[str], output_dir: Path, optimized_metric: str) -> float | None:
    """Run one multirun job as its own single-run command (:func:`single_run_command`).

    Lightning re-launches a run's command line to start its other processes; in a multirun that
    command line is the whole sweep. The job's own command line is safe to re-launch, and all
    its processes have exited when this returns. The objective is read from its ``run.json``:
    a diverged trial gives NaN (a failed trial for sweepers), a run with nothing to do None.

    Raises:
        UserInputError: the job refused its config or data (its one-paragraph error is above).
        RuntimeError: the job failed for another reason (its log says why).
    """
    command = single_run_command(overrides, output_dir)
    log.info("Running this job's processes from its own command line: %s", " ".join(command))
    completed = subprocess.run(command, check=False)
    record_path = output_dir / "run.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    if completed.returncode == 0:
        return record.get("objective", {}).get(optimized_metric)
    if record.get("error_type") == "TrainingDivergedError":
        return math.nan
    if completed.returncode == USER_ERROR_STATUS:
        raise UserInputError(f"The sweep job in {output_dir} refused its settings ({' '.join(overrides)}); its error is printed above.")
    raise RuntimeError(f"The sweep job in {output_dir} failed with exit status {completed.returncode}; see {output_dir / 'train.log'}.")
