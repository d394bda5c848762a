"""Train a language model: ``python -m framework.train [group=option] [key=value ...]``.

Composes ``conf/train.yaml`` (see ``--help`` and ``--cfg job``), trains, prints the final
validation metrics and a sample, and returns ``val/loss`` as the objective for sweepers.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from framework.report import print_summary, sample_text
from framework.training import train


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    result = train(cfg)
    sample = sample_text(result, **cfg.sample, seed=cfg.seed)
    print_summary(result, sample)
    return result.metrics["val/loss"]


if __name__ == "__main__":
    main()
