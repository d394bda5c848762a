"""Train a language model: ``python -m framework.train [group=option] [key=value ...]``.

Composes ``conf/train.yaml`` (see ``--help`` and ``--cfg job``), checks it, trains (resuming
from the run directory's ``last.ckpt`` when there is one), prints the final validation metrics
and a sample, and returns ``val/loss`` as the objective for sweepers.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from framework import cli
from framework.report import print_summary, sample_text
from framework.training import train

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point: train with ``cfg``; bad input exits with status 2 and one paragraph."""
    with cli.user_errors_exit():
        result = train(cfg)
    if result is None:
        return None
    sample = sample_text(result, **cfg.sample, seed=cfg.seed)
    print_summary(result, sample)
    return result.metrics["val/loss"]


if __name__ == "__main__":
    cli.run(main)
