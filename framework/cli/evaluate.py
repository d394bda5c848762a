"""Evaluate a finished run: ``lmf-evaluate`` or ``python -m framework.evaluate``.

    python -m framework.evaluate run_dir=logs/runs/<run> [split=val|test] [checkpoint=best|last|<file>] [data.<key>=<value> ...]
        [harness.tasks=[shipped,<task>...]] [harness.limit=N] [harness.shakespeare=<input.txt>]

Loads the checkpoint (best by default) and the run's tokenizer, rebuilds the data from the
run's config with the ``data.*`` overrides (``data.path=other.txt`` evaluates the validation
part, the last ``data.val_fraction``, of another corpus; characters the tokenizer never saw
become its unknown token), evaluates every example or window of the split, prints the record
as JSON and appends it to ``<run_dir>/evaluations.jsonl``. ``harness.tasks`` adds
lm-evaluation-harness tasks (``framework.harness``; the ``[eval]`` extra), run offline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from framework.cli.finished_run import run_finished_run_command
from framework.cli.precheck import CONFIG_DIR, user_errors_exit
from framework.harness.evaluation import HarnessSettings
from framework.run.evaluation import evaluate


@dataclass
class EvaluateConfig:
    run_dir: str = "???"  # the finished run's directory
    split: str = "val"  # val or test
    checkpoint: str = "best"  # best, last or a checkpoint file
    data: dict[str, Any] = field(default_factory=dict)  # overrides of the run's data config
    harness: HarnessSettings = field(default_factory=HarnessSettings)  # lm-evaluation-harness tasks (framework/harness)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def evaluate_job(cfg: DictConfig) -> None:
    with user_errors_exit():
        harness = HarnessSettings(**OmegaConf.to_container(cfg.harness, resolve=True))
        record = evaluate(cfg.run_dir, cfg.split, cfg.checkpoint, OmegaConf.to_container(cfg.data), harness)
    print(json.dumps(record, indent=2))


def main() -> None:
    """The console script ``lmf-evaluate``."""
    run_finished_run_command(evaluate_job, "evaluate", EvaluateConfig, open_keys=("data",))
