"""Train a model: ``lmf-train`` or ``python -m framework.train [group=option] [key=value ...]``.

Composes ``conf/train.yaml`` (see ``--help`` and ``--cfg job``), trains (resuming from the run
directory's ``last.ckpt`` when there is one), prints the final validation metrics and a sample,
and returns the best ``optimized_metric`` as the objective for sweepers. Bad input exits with
status 2 and one paragraph; a run directory this attempt created is removed, and an existing
one keeps everything but the error, appended to its ``train.log``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from framework import process_env
from framework.cli.attempt import AttemptFiles
from framework.cli.precheck import CONFIG_DIR, run_command, user_errors_exit
from framework.cli.process import configure_process
from framework.cpus import limit_threads
from framework.errors import TrainingDivergedError
from framework.run.report import print_summary
from framework.run.schema import validate_config
from framework.run.sweep import run_sweep_job_in_own_process
from framework.run.training import train_checked
from framework.strategy.launch import launch_rank, lightning_starts_processes
from framework.strategy.processes import end_process_group

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def train_job(cfg: DictConfig) -> float | None:
    """One Hydra job: train with ``cfg`` and return the objective (NaN for a diverged sweep trial,
    which sweepers record as failed while the sweep goes on)."""
    hydra_config = HydraConfig.get()
    if launch_rank() != 0:  # a process Lightning started: rank 0's config, warnings only
        cfg = OmegaConf.create(process_env.rank_zero_config() or OmegaConf.to_container(cfg))
        logging.getLogger().setLevel(logging.WARNING)
    sweeping = hydra_config.mode == RunMode.MULTIRUN
    with user_errors_exit(), AttemptFiles(Path(hydra_config.runtime.output_dir), hydra_config.output_subdir):
        validate_config(cfg)  # once per run, before any setting is used
        if cfg.get("threads"):
            limit_threads(cfg.threads)
        if lightning_starts_processes(cfg.trainer):
            if sweeping:
                return run_sweep_job_in_own_process(
                    list(hydra_config.overrides.task), Path(hydra_config.runtime.output_dir), cfg.optimized_metric
                )
            if launch_rank() == 0:
                process_env.share_rank_zero_config(OmegaConf.to_container(cfg, resolve=True))
        try:
            result = train_checked(cfg)
        except TrainingDivergedError as error:
            if not sweeping:
                raise
            log.error("Trial failed: %s", error)
            return math.nan
    if result is None:
        return None
    end_process_group()
    if result.trainer.is_global_zero:
        checkpoints = {"best": result.best_checkpoint, "last": result.last_checkpoint}
        print_summary(result.run_dir, result.trainer.global_step, result.metrics, checkpoints, result.sample, prompt=cfg.sample.prompt)
    return result.objective


def main() -> None:
    """The console script ``lmf-train``."""
    configure_process()
    run_command(train_job, "train")
