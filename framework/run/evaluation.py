"""Evaluating a finished run on its validation or test split, or on other data."""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra.utils
import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from framework.checkpointing.resume import flatten
from framework.errors import ConfigError
from framework.harness.evaluation import HarnessSettings, HarnessTasks, find_tasks, run_tasks
from framework.logger import finish_loggers
from framework.run.loading import LoadedRun, load_run
from framework.run.recipes import LanguageModelingRecipe, recipe_for
from framework.run.schema import unknown_key_error, validate_config
from framework.run.stored_config import make_paths_absolute
from framework.tokenizer import unknown_token_id


def language_model_data_facts(recipe: LanguageModelingRecipe) -> dict[str, int]:
    """``tokens``: the target tokens the sequential validation windows score; ``unknown_tokens``:
    how many of them are the tokenizer's unknown token (characters it never saw in training)."""
    tokens, block_size = recipe.corpus.tokens("val"), recipe.cfg.data.block_size
    targets = tokens[1 : 1 + (len(tokens) - 1) // block_size * block_size]
    unknown_id = unknown_token_id(recipe.tokenizer)
    return {"tokens": int(targets.size), "unknown_tokens": int(np.count_nonzero(targets == unknown_id)) if unknown_id is not None else 0}


def with_runs_shakespeare(settings: HarnessSettings, cfg: DictConfig) -> HarnessSettings:
    """``settings`` reading Tiny Shakespeare from the run's own ``data.path`` when none is given
    and the run trained on it (``data=tinyshakespeare``)."""
    source = cfg.data.get("source") or {}
    if settings.shakespeare or not str(source.get("_target_", "")).endswith("TinyShakespeareSource") or not cfg.data.get("path"):
        return settings
    return dataclasses.replace(settings, shakespeare=str(cfg.data.path))


def harness_results(loaded: LoadedRun, tasks: HarnessTasks, settings: HarnessSettings) -> dict[str, dict[str, Any]]:
    """The run's language model on ``tasks`` through lm-evaluation-harness, on a GPU when there
    is one (``framework.harness.evaluation.run_tasks``)."""
    from framework.harness.model import HarnessModel

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = HarnessModel(loaded.task.model.to(device), loaded.tokenizer, loaded.config.data.block_size, settings.batch_size, device)
    return run_tasks(model, tasks, settings.limit)


def log_to_tracker(cfg: DictConfig, step: int, metrics: Mapping[str, float]) -> None:
    """Add ``metrics`` at ``step`` to the run's W&B run (the id kept in the run directory), when
    it was tracked with W&B."""
    node = cfg.logger.get("wandb") if cfg.get("logger") else None
    if not node or node.get("mode") == "disabled":
        return
    logger = hydra.utils.instantiate(node)
    logger.log_metrics(dict(metrics), step=step)
    finish_loggers([logger])


def evaluate(
    run_dir: str | Path,
    split: str = "val",
    checkpoint: str = "best",
    data: Mapping[str, Any] | None = None,
    harness: HarnessSettings | None = None,
) -> dict[str, Any]:
    """Evaluate ``run_dir``'s ``checkpoint`` on ``split``; return the result and append it to
    ``<run_dir>/evaluations.jsonl``.

    With ``harness`` tasks, the language model is also scored on them
    (:func:`harness_results`): the record's ``harness`` holds each task's metrics, and the
    run's W&B run (if any) gets them as ``eval/<task>/<metric>`` at the checkpoint's step.

    ``data`` overrides keys of the run's data config (``{"path": "other.txt"}``) before the data
    is rebuilt with the run's own tokenizer; keys that follow an overridden one (the source's
    ``path`` follows ``data.path``) follow it here too, and relative paths mean the working
    directory.

    Returns:
        ``{"run_dir", "checkpoint", "step", "split", "data_overrides", "evaluated_at", "metrics"}``
        with ``metrics`` named as in training (``val/loss``..., ``test/acc``...), and for a
        language model ``data``: the target tokens scored and how many were unknown.

    Raises:
        ConfigError: an unknown split, a test split the data lacks, an unknown data key, harness
            settings that cannot run.
        MissingInputError, DataError: missing run, checkpoint or data files.
    """
    if split not in ("val", "test"):
        raise ConfigError(f"split={split!r} must be val or test.")
    harness = harness or HarnessSettings()
    overrides = {f"data.{key}": value for key, value in flatten(dict(data or {})).items()}
    loaded = load_run(run_dir, checkpoint)
    if harness.tasks and loaded.kind != "language_modeling":
        raise ConfigError(
            f"harness.tasks: {loaded.run_dir} is a {loaded.kind} run; lm-evaluation-harness scores causal language models "
            "(task=language_modeling: GPT or LSTM)."
        )
    tasks = find_tasks(with_runs_shakespeare(harness, loaded.config)) if harness.tasks else None
    cfg = loaded.config
    for key in overrides:
        if OmegaConf.select(cfg, key, default=KeyError) is KeyError:
            raise unknown_key_error(key, list(cfg.data))
    trained_model = OmegaConf.to_container(cfg.model, resolve=True)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, merge=False)
    changed = sorted(key for key, value in OmegaConf.to_container(cfg.model, resolve=True).items() if trained_model.get(key) != value)
    if changed:
        raise ConfigError(
            f"{', '.join(overrides)} would change model.{', model.'.join(changed)}, which the trained model fixes "
            f"({', '.join(f'{key}={trained_model.get(key)}' for key in changed)}); evaluate with values that keep them."
        )
    if cfg.data.get("mixture") is not None:
        raise ConfigError(
            "This run trained on a data mixture; evaluate it on one of its datasets at a time: "
            "data.mixture=null data.path=<dataset> (its validation figures per dataset are in metrics.csv as val/<name>/loss)."
        )
    make_paths_absolute(cfg)
    with open_dict(cfg):  # evaluation runs on one device with its own Trainer
        cfg.trainer.update(strategy="auto", devices=1, num_nodes=1, accelerator="auto")
        cfg.model.compile = False  # as load_run's task: a few batches would not repay compiling
    validate_config(cfg)
    recipe = recipe_for(cfg, trained=loaded.metadata)
    language_model = loaded.kind == "language_modeling"
    if split == "test" and (language_model or "test" not in recipe.splits):
        raise ConfigError(
            "split=test: this run's data has no test split (language-modelling data has train and val; labelled "
            "data needs data.test_file=<file with labels>)."
        )
    trainer = pl.Trainer(
        accelerator="auto",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1.0,
        limit_test_batches=1.0,
    )
    run = trainer.validate if split == "val" else trainer.test
    (metrics,) = run(loaded.task, datamodule=recipe.datamodule(world_size=1), verbose=False)
    record = {
        "run_dir": str(Path(loaded.run_dir).resolve()),
        "checkpoint": str(Path(loaded.checkpoint).resolve()),
        "step": loaded.step,
        "split": split,
        "data_overrides": [f"{key}={OmegaConf.select(cfg, key)}" for key in overrides],  # paths as made absolute
        "evaluated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "metrics": {name: float(value) for name, value in metrics.items() if name != "step"},
    }
    if language_model:
        record["data"] = language_model_data_facts(recipe)
    if tasks:
        record["harness"] = harness_results(loaded, tasks, harness)
        log_to_tracker(
            cfg, loaded.step, {f"eval/{task}/{name}": value for task, values in record["harness"].items() for name, value in values.items()}
        )
    with (loaded.run_dir / "evaluations.jsonl").open("a") as file:
        file.write(json.dumps(record) + "\n")
    return record
