"""Evaluate a trained run on its validation or test split, or on other data.

    python -m framework.evaluate run_dir=logs/runs/<run> [split=val|test] [checkpoint=best|last|<file>] [data.<key>=<value> ...]

Loads the checkpoint (best by default) and the run's tokenizer, rebuilds the data from the
run's config with the ``data.*`` overrides (``data.path=other.txt`` evaluates the validation
part, the last ``data.val_fraction``, of another corpus; characters the tokenizer never saw
become its unknown token), evaluates every example or window of the split, prints the metrics as JSON and appends them to
``<run_dir>/evaluations.jsonl``. Bad input exits with status 2 and one paragraph.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import OmegaConf, open_dict

from framework.cli import user_errors_exit
from framework.errors import ConfigError
from framework.loading import load_run, parse_arguments
from framework.recipes import LanguageModelingRecipe, recipe_for
from framework.schema import unknown_key_error, validate_config

SETTINGS = {"run_dir": (str, None), "split": (str, "val"), "checkpoint": (str, "best")}


def evaluate(run_dir: str | Path, split: str = "val", checkpoint: str = "best", data_overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Evaluate ``run_dir``'s ``checkpoint`` on ``split``; return and record the result.

    Returns:
        ``{"run_dir", "checkpoint", "step", "split", "data_overrides", "evaluated_at", "metrics"}``
        with ``metrics`` named as in training (``val/loss``..., ``test/acc``...).

    Raises:
        ConfigError: an unknown split, a test split the data lacks, an unknown data key.
        MissingInputError, DataError: missing run, checkpoint or data files.
    """
    if split not in ("val", "test"):
        raise ConfigError(f"split={split!r} must be val or test.")
    loaded = load_run(run_dir, checkpoint)
    cfg = loaded.config
    for override in data_overrides:
        key = override.split("=", 1)[0]
        if OmegaConf.select(cfg, key, default=KeyError) is KeyError:
            raise unknown_key_error(key, list(cfg.data))
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(data_overrides)))
    with open_dict(cfg):  # evaluation runs on one device with its own Trainer
        cfg.trainer.update(strategy="auto", devices=1, num_nodes=1, accelerator="auto")
        cfg.model.compile = False  # as load_run's task: a few batches would not repay compiling
    validate_config(cfg)
    recipe = recipe_for(cfg, trained=loaded.metadata)
    if split == "test" and (isinstance(recipe, LanguageModelingRecipe) or "test" not in recipe.splits):
        raise ConfigError(
            "split=test: this run's data has no test split (language-modelling data has train and val; labelled "
            "data needs data.test_file=<file with labels>)."
        )
    trainer = pl.Trainer(
        accelerator="auto", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        limit_val_batches=1.0, limit_test_batches=1.0,
    )
    run = trainer.validate if split == "val" else trainer.test
    (metrics,) = run(loaded.task, datamodule=recipe.datamodule(world_size=1), verbose=False)
    record = {
        "run_dir": str(loaded.run_dir),
        "checkpoint": str(loaded.checkpoint),
        "step": loaded.step,
        "split": split,
        "data_overrides": list(data_overrides),
        "evaluated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "metrics": {name: float(value) for name, value in metrics.items() if name != "step"},
    }
    with (loaded.run_dir / "evaluations.jsonl").open("a") as file:
        file.write(json.dumps(record) + "\n")
    return record


def main(arguments: list[str] | None = None) -> dict[str, Any]:
    with user_errors_exit():
        settings, data_overrides = parse_arguments(sys.argv[1:] if arguments is None else arguments, SETTINGS, usage=__doc__)
        record = evaluate(settings["run_dir"], settings["split"], settings["checkpoint"], data_overrides)
    print(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main()
