"""How this process was started, and keeping every process of a run on one config.

Three ways start the processes of a distributed run:

- Lightning itself (``strategy=ddp`` or ``fsdp`` with ``trainer.devices=N``): the first process
  re-runs the command line once per extra device, adding ``hydra.run.dir=<its run dir>``.
- ``torchrun`` (TorchElastic) or ``srun`` (SLURM, also through Hydra's submitit launcher):
  every process runs the command; Lightning detects the environment and starts nothing.
- A Hydra multirun job that needs several processes runs as its own single-run process
  (:func:`run_sweep_job_in_own_process`), because Lightning's re-launch would repeat the whole
  sweep's command line; see the README's "Sweeps of distributed runs".
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import torch
from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from omegaconf import DictConfig, OmegaConf

from framework.errors import UserInputError

log = logging.getLogger(__name__)

RANK_ZERO_CONFIG_ENV = "LM_FRAMEWORK_RANK_ZERO_CONFIG"
USER_ERROR_STATUS = 2  # framework.cli.user_errors_exit


def external_launcher() -> str | None:
    """``torchrun`` or ``slurm`` when one of them started this process as one of several, else None.

    Uses Lightning's own detection (``TorchElasticEnvironment.detect``, ``SLURMEnvironment.detect``),
    so the answer is the cluster environment the Trainer will pick.
    """
    if TorchElasticEnvironment.detect():
        return "torchrun"
    if SLURMEnvironment.detect() and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return "slurm"
    return None


def launch_rank() -> int:
    """0 for the process that writes the run's files, non-zero for every other one, from the
    environment its launcher set: ``RANK`` (torchrun) or ``SLURM_PROCID`` (srun), the global
    rank; else ``NODE_RANK + LOCAL_RANK`` as Lightning sets them for the processes it starts
    (zero exactly for the first process, though not the global rank on several nodes).
    """
    for name in ("RANK", "SLURM_PROCID") if external_launcher() else ("RANK",):
        if name in os.environ:
            return int(os.environ[name])
    return int(os.environ.get("NODE_RANK", "0")) + int(os.environ.get("LOCAL_RANK", "0"))


def requested_processes(trainer: DictConfig) -> int:
    """Processes the Trainer settings ask for: devices per node x ``num_nodes``.

    ``devices`` may be a count, ``-1``/``"auto"`` (every visible GPU, one process on CPU) or a list
    of device indices.
    """
    devices = trainer.devices
    on_gpu = trainer.accelerator in ("gpu", "cuda") or (trainer.accelerator == "auto" and torch.cuda.is_available())
    if isinstance(devices, str) and devices != "auto":
        devices = [part for part in devices.split(",") if part.strip()] if "," in devices else int(devices)
    if devices in ("auto", -1):
        per_node = torch.cuda.device_count() if on_gpu else 1
    elif isinstance(devices, int):
        per_node = devices
    else:
        per_node = len(devices)
    return max(1, per_node) * trainer.num_nodes


def lightning_starts_processes(trainer: DictConfig) -> bool:
    """True when Lightning will re-run the command line to start this run's other processes."""
    strategy = trainer.strategy
    spawned = isinstance(strategy, str) and "spawn" in strategy
    return external_launcher() is None and requested_processes(trainer) > 1 and not spawned


def share_config_with_started_processes(cfg: DictConfig) -> None:
    """Hand the fully resolved ``cfg`` to the processes Lightning is about to start.

    They inherit this process's environment and take the config from it
    (:func:`config_of_rank_zero`), so values that resolve differently in another process
    (``${hydra:job.name}``, ``${now:...}``, environment lookups) are the same on every rank.
    """
    os.environ[RANK_ZERO_CONFIG_ENV] = json.dumps(OmegaConf.to_container(cfg, resolve=True))


def config_of_rank_zero(cfg: DictConfig) -> DictConfig:
    """On a process Lightning started, rank 0's resolved config; elsewhere ``cfg`` unchanged."""
    shared = os.environ.get(RANK_ZERO_CONFIG_ENV)
    if shared is None or launch_rank() == 0:
        return cfg
    return OmegaConf.create(json.loads(shared))


def single_run_command(overrides: list[str], output_dir: Path) -> list[str]:
    """The command that runs one sweep job on its own: its overrides, its directory, and
    ``hydra.mode=RUN`` (an Optuna search config sets ``MULTIRUN``, which would start a sweep)."""
    quoted_dir = '"' + str(output_dir).replace("\\", "\\\\").replace('"', '\\"') + '"'  # Hydra's quoted-string grammar
    return [
        sys.executable, "-m", "framework.train", *overrides,
        f"hydra.run.dir={quoted_dir}", "hydra.output_subdir=null", "hydra.mode=RUN",
    ]


def run_sweep_job_in_own_process(overrides: list[str], output_dir: Path, optimized_metric: str) -> float | None:
    """Run one multirun job as its own single-run command (:func:`single_run_command`).

    Lightning then starts the job's other processes from that command line, and all of them
    have exited when this returns. The job's objective is read from its ``run.json``: a
    diverged trial gives NaN (a failed trial for sweepers), a run with nothing to do None.

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
