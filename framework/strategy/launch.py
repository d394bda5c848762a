"""How this process was started: by Lightning, torchrun or SLURM, and as which rank.

Three ways start the processes of a distributed run:

- Lightning itself (``strategy=ddp`` or ``fsdp`` with ``trainer.devices=N``): the first process
  re-runs the command line once per extra device, adding ``hydra.run.dir=<its run dir>``.
- ``torchrun`` (TorchElastic) or ``srun`` (SLURM, also through Hydra's submitit launcher):
  every process runs the command; Lightning detects the environment and starts nothing.
- A Hydra multirun job that needs several processes runs as its own single-run process
  (``framework.run.sweep.run_sweep_job_in_own_process``), because Lightning's re-launch would
  repeat the whole sweep's command line; see the README's "Sweeps of distributed runs".

Rank 0's resolved config reaches the other processes through ``framework.process_env``.
"""

from __future__ import annotations

import os

from omegaconf import DictConfig


def external_launcher() -> str | None:
    """``torchrun`` or ``slurm`` when one of them started this process as one of several, else None.

    Uses Lightning's own detection (``TorchElasticEnvironment.detect``, ``SLURMEnvironment.detect``),
    so the answer is the cluster environment the Trainer will pick.
    """
    from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

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
    import torch

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
