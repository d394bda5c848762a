"""Train a language model: ``python -m framework.train [group=option] [key=value ...]``.

Composes ``conf/train.yaml`` (see ``--help`` and ``--cfg job``), checks it, trains (resuming
from the run directory's ``last.ckpt`` when there is one), prints the final validation metrics
and a sample, and returns the best ``optimized_metric`` as the objective for sweepers.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from framework import cli
from framework.errors import TrainingDivergedError
from framework.report import print_summary
from framework.strategy import launch
from framework.sweep import register_resolvers
from framework.training import train

log = logging.getLogger(__name__)
register_resolvers()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point: train with ``cfg`` and return the objective.

    Bad input exits with status 2 and one paragraph. In a sweep, a trial whose loss diverges
    returns NaN, which sweepers record as a failed trial, and the sweep goes on. A sweep job
    that needs several processes runs as its own single-run command (``framework.strategy.launch``).
    """
    cfg = launch.config_of_rank_zero(cfg)
    if launch.launch_rank() != 0:
        cli.quiet_logging()
    with cli.user_errors_exit():
        if launch.lightning_starts_processes(cfg.trainer):
            hydra_config = HydraConfig.get()
            if hydra_config.mode == RunMode.MULTIRUN:
                output_dir = Path(hydra_config.runtime.output_dir)
                overrides = list(hydra_config.overrides.task)
                return launch.run_sweep_job_in_own_process(overrides, output_dir, cfg.optimized_metric)
            if launch.launch_rank() == 0:
                launch.share_config_with_started_processes(cfg)
        try:
            result = train(cfg)
        except TrainingDivergedError as error:
            if HydraConfig.get().mode != RunMode.MULTIRUN:
                raise
            log.error("Trial failed: %s", error)
            return math.nan
    if result is None:
        return None
    checkpoints = {"best": result.best_checkpoint, "last": result.last_checkpoint}
    if result.trainer.is_global_zero:
        print_summary(result.run_dir, result.trainer.global_step, result.metrics, checkpoints, result.sample)
    return result.objective


if __name__ == "__main__":
    cli.run(main)
